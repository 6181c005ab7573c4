"""Choosing a model on validation data only: ensemble weights, collapse detection, the choice.

Everything here takes validation (or out-of-fold) labels and class probabilities; nothing
here ever sees test labels. The pieces:

* :func:`ensemble_weight`: the weight ``w`` of ``w * p_deep + (1 - w) * p_baseline`` from
  :data:`WEIGHTS`, by validation AUROC (ties go to the weight nearest 0.5, then the lower).
* :func:`collapse`: whether a fine-tuning run collapsed (validation AUROC at most
  :data:`COLLAPSE_AUROC`, or the same prediction for every item).
* :func:`small_validation`: whether a validation set is too small for its AUROC to choose
  anything (fewer than :data:`MIN_VAL_ITEMS` items or :data:`MIN_VAL_PER_CLASS` of a class);
  then the choice is made by cross-validation over the labeled subset (:func:`cv_folds`).
* :func:`choose`: the best candidate by AUROC, with a bootstrap interval, and the runner-up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ssl_domains.errors import SSLDomainsError

__all__ = [
    "WEIGHTS",
    "COLLAPSE_AUROC",
    "MIN_VAL_ITEMS",
    "MIN_VAL_PER_CLASS",
    "CV_FOLDS",
    "PREFERENCE",
    "Scored",
    "Choice",
    "auroc",
    "combine",
    "ensemble_weight",
    "collapse",
    "small_validation",
    "cv_folds",
    "choose",
]

#: Ensemble weights of the fine-tuned model tried on validation data.
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: A fine-tuning run whose validation AUROC is at most this collapsed.
COLLAPSE_AUROC = 0.55
#: Below these, validation AUROC is noise: the choice is made by cross-validation.
MIN_VAL_ITEMS = 20
MIN_VAL_PER_CLASS = 10
#: Folds of the cross-validation over the labeled subset (fewer when a class has fewer items).
CV_FOLDS = 5
#: Tie-break order of the candidates (earlier wins a tie): the simpler or pre-trained first,
#: the ensemble last (with ``w`` 0 or 1 it is one of its parts).
PREFERENCE = ("ssl", "linear_probe", "scratch", "baseline", "ensemble")
#: Scores differing by less than this are a tie.
TIE = 1e-9


def auroc(labels: np.ndarray | Sequence[int], probs: np.ndarray) -> float:
    """AUROC of class probabilities ``[N, K]`` (binary: of column 1; K > 2: macro one-vs-rest);
    NaN when a class is missing."""
    from ssl_domains.evaluation.metrics import classification_metrics

    y = np.asarray(labels, dtype=int)
    p = np.asarray(probs, dtype=np.float64)
    if len(np.unique(y)) < 2:
        return math.nan
    scores = p[:, 1] if p.shape[1] == 2 else p
    return float(classification_metrics(y, scores).get("auroc", math.nan))


def combine(p_deep: np.ndarray, p_base: np.ndarray, w: float) -> np.ndarray:
    """``w * p_deep + (1 - w) * p_base`` (class probabilities ``[N, K]``, same shape).

    Raises:
        SSLDomainsError: The two do not have the same shape.
    """
    a, b = np.asarray(p_deep, dtype=np.float64), np.asarray(p_base, dtype=np.float64)
    if a.shape != b.shape:
        raise SSLDomainsError(f"ensemble: probabilities of shape {a.shape} and {b.shape} "
                              "cannot be averaged (same items and classes needed)")
    return w * a + (1.0 - w) * b


def ensemble_weight(labels: np.ndarray | Sequence[int], p_deep: np.ndarray, p_base: np.ndarray,
                    weights: Sequence[float] = WEIGHTS) -> tuple[float, dict[float, float]]:
    """The weight of the fine-tuned model with the best validation AUROC, and every weight's
    AUROC. Ties (within :data:`TIE`) go to the weight nearest 0.5 (an even average), then
    the lower weight; all-NaN scores give 0.5."""
    scores = {float(w): auroc(labels, combine(p_deep, p_base, w)) for w in weights}
    finite = {w: s for w, s in scores.items() if not math.isnan(s)}
    if not finite:
        return 0.5, scores
    best = max(finite.values())
    tied = [w for w, s in finite.items() if s >= best - TIE]
    return min(tied, key=lambda w: (abs(w - 0.5), w)), scores


def collapse(labels: np.ndarray | Sequence[int], probs: np.ndarray,
             *other: np.ndarray) -> dict[str, Any]:
    """Whether a run collapsed: validation AUROC <= :data:`COLLAPSE_AUROC`, or a constant
    prediction (every item's probabilities equal within 1e-6, on validation or on any
    ``other`` set of predictions, e.g. test).

    Returns:
        ``{"val_auroc": float | None, "constant": bool, "collapsed": bool}``.
    """
    score = auroc(labels, probs)

    def constant(p: np.ndarray) -> bool:
        p = np.asarray(p, dtype=np.float64)
        return len(p) > 1 and float(np.ptp(p, axis=0).max()) < 1e-6

    flat = constant(probs) or any(constant(p) for p in other)
    low = not math.isnan(score) and score <= COLLAPSE_AUROC
    return {"val_auroc": None if math.isnan(score) else score, "constant": bool(flat),
            "collapsed": bool(flat or low)}


def small_validation(labels: np.ndarray | Sequence[int]) -> bool:
    """Whether a validation set is too small to choose a model by its AUROC."""
    y = np.asarray(labels, dtype=int)
    counts = np.bincount(y) if len(y) else np.array([0])
    present = counts[counts > 0]
    return len(y) < MIN_VAL_ITEMS or len(present) < 2 or int(present.min()) < MIN_VAL_PER_CLASS


def cv_folds(labels: np.ndarray | Sequence[int], seed: int, groups: Sequence[Any] | None = None,
             k: int = CV_FOLDS) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified (and grouped, when ``groups`` are given) ``k``-fold splits, seeded: a list of
    ``(train, held_out)`` index arrays; ``k`` drops to the smallest class's count.

    Raises:
        SSLDomainsError: A class with a single item (no fold could hold it out and train on it).
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    y = np.asarray(labels, dtype=int)
    counts = np.bincount(y)
    smallest = int(counts[counts > 0].min())
    if smallest < 2 or len(counts[counts > 0]) < 2:
        raise SSLDomainsError(f"cross-validation needs at least 2 labeled items of each of 2 "
                              f"classes; the labeled subset has counts {counts.tolist()}")
    k = max(2, min(k, smallest))
    idx = np.arange(len(y))
    if groups is not None and len(set(groups)) < len(y):
        splitter: Any = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        folds = splitter.split(idx, y, groups=np.asarray([str(g) for g in groups]))
    else:
        folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(idx, y)
    return [(np.sort(tr), np.sort(te)) for tr, te in folds]


@dataclass
class Scored:
    """One candidate's selection-data probabilities (validation or out-of-fold)."""

    name: str
    probs: np.ndarray
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Choice:
    """The chosen candidate, its score and interval, the runner-up, and every score."""

    chosen: str
    score: float
    low: float
    high: float
    runner_up: str | None
    runner_up_score: float | None
    scores: dict[str, float | None]
    method: str
    n_items: int
    alpha: float = 0.05
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record (NaN as None)."""

        def num(v: float | None) -> float | None:
            return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

        return {"chosen": self.chosen, "metric": "auroc", "score": num(self.score),
                "interval": [num(self.low), num(self.high)],
                "interval_method": f"{100 * (1 - self.alpha):.0f}% percentile bootstrap over "
                                   "the selection items (1000 class-stratified resamples)",
                "runner_up": self.runner_up, "runner_up_score": num(self.runner_up_score),
                "scores": {k: num(v) for k, v in self.scores.items()},
                "method": self.method, "n_items": self.n_items, **self.details}


def _rank(name: str) -> int:
    kind = "baseline" if name.startswith("baseline") else name
    return PREFERENCE.index(kind) if kind in PREFERENCE else len(PREFERENCE)


def choose(labels: np.ndarray | Sequence[int], candidates: Sequence[Scored] | Mapping[str, np.ndarray],
           method: str, alpha: float = 0.05, seed: int = 0) -> Choice:
    """The candidate with the highest AUROC on the selection items (``labels``), ties broken by
    :data:`PREFERENCE`; its bootstrap interval, and the runner-up.

    Raises:
        SSLDomainsError: No candidate, or none with a finite AUROC.
    """
    from ssl_domains.evaluation.intervals import bootstrap_metrics

    items = [Scored(k, v) for k, v in candidates.items()] if isinstance(candidates, Mapping) \
        else list(candidates)
    if not items:
        raise SSLDomainsError("model selection: no candidate to choose from")
    y = np.asarray(labels, dtype=int)
    scores = {c.name: auroc(y, c.probs) for c in items}
    ranked = sorted((c for c in items if not math.isnan(scores[c.name])),
                    key=lambda c: (-round(scores[c.name] / TIE) * TIE, _rank(c.name)))
    if not ranked:
        raise SSLDomainsError(f"model selection: no candidate has a validation AUROC "
                              f"({len(y)} items, classes {sorted(set(y.tolist()))})")
    best = ranked[0]
    p = np.asarray(best.probs, dtype=np.float64)
    ci = bootstrap_metrics(y, p[:, 1] if p.shape[1] == 2 else p, n=1000, alpha=alpha,
                           seed=seed).get("auroc")
    second = ranked[1] if len(ranked) > 1 else None
    return Choice(best.name, scores[best.name], ci.low if ci else math.nan,
                  ci.high if ci else math.nan, second.name if second else None,
                  scores[second.name] if second else None,
                  {k: (None if math.isnan(v) else v) for k, v in scores.items()}, method, len(y),
                  alpha, dict(best.details))
