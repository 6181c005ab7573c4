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
* :func:`crossfit_ensemble`: the ensemble's selection probabilities with its baseline and
  weight chosen on the other folds, so that choosing them does not flatter its score.
* :func:`choose`: the first candidate in an order of preference whose AUROC is within
  :data:`TOLERANCE` (two) standard errors of the best, with a bootstrap interval, and the
  runner-up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from ssl_domains.candidates import (
    AUTO_CANDIDATES,
    TOLERANCE,
    candidate_kind,
    is_candidate_name,
    tolerance_words,
)
from ssl_domains.engine.exports import combine
from ssl_domains.errors import ContractError, SSLDomainsError
from ssl_domains.scoring.intervals import percentile_interval, stratified_resamples
from ssl_domains.scoring.metrics import fast_binary_metrics, fewest_per_class

__all__ = [
    "WEIGHTS",
    "COLLAPSE_AUROC",
    "MIN_VAL_ITEMS",
    "MIN_VAL_PER_CLASS",
    "CV_FOLDS",
    "PREFERENCE",
    "TOLERANCE",
    "Scored",
    "Choice",
    "auroc",
    "combine",
    "ensemble_weight",
    "strongest_baseline",
    "crossfit_ensemble",
    "collapse",
    "small_validation",
    "cv_folds",
    "bootstrap_replicates",
    "choose",
    "checked_preference",
    "candidate_kind",
    "rank_by_score",
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
#: Order of simplicity of the candidates: a classical baseline (fixed features, linear model),
#: then the linear probe (fixed pre-trained features), then the fine-tuned networks, the
#: ensemble last (with ``w`` 0 or 1 it is one of its parts). :func:`choose` takes the first of
#: the candidates within :data:`TOLERANCE` standard errors of the best (the one-standard-error
#: rule of Breiman et al. 1984 and Hastie, Tibshirani, Friedman, *Elements of Statistical
#: Learning*, 7.10, with a wider margin): on 10-50 labels, cross-validated AUROCs of 1.0 against
#: 0.96 are within noise. This order is the default when neither the config
#: (``finetune.prefer``) nor the fine-tuning task (``prefer`` registered by its plugin, read off
#: the benchmark suite for its data kind) gives one. An order may also name one
#: baseline (``baseline:minirocket``), placed apart from the other baselines (``baseline``);
#: candidates of the same place go by score.
PREFERENCE = AUTO_CANDIDATES
#: Bootstrap replicates of the chosen candidate's interval.
BOOTSTRAP = 1000
#: Scores differing by less than this are a tie.
TIE = 1e-9


def auroc(labels: np.ndarray | Sequence[int], probs: np.ndarray) -> float:
    """AUROC of class probabilities ``[N, K]`` (binary: of column 1; K > 2: macro one-vs-rest
    over the classes present, as :func:`~ssl_domains.scoring.metrics.classification_metrics`);
    NaN when fewer than two classes are present. Computed by
    :func:`~ssl_domains.scoring.metrics.fast_binary_metrics`: the same number as
    scikit-learn's, without its per-call checks (the choice and its bootstrap call it
    thousands of times)."""
    y = np.asarray(labels, dtype=int)
    p = np.asarray(probs, dtype=np.float64)
    if len(np.unique(y)) < 2:
        return math.nan
    if p.shape[1] == 2:
        return _binary_auroc(y == 1, p[:, 1])
    per_class = [_binary_auroc(y == c, p[:, c]) for c in range(p.shape[1])
                 if (y == c).any() and (y != c).any()]
    return float(np.mean(per_class)) if per_class else math.nan


def _binary_auroc(positive: np.ndarray, score: np.ndarray) -> float:
    return float(fast_binary_metrics(positive.astype(int), score)["auroc"])


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


def strongest_baseline(labels: np.ndarray | Sequence[int], probs: Mapping[str, np.ndarray]
                       ) -> tuple[str, dict[str, float | None]]:
    """The baseline with the best AUROC on the selection items (the first on a tie), and every
    baseline's AUROC.

    Raises:
        SSLDomainsError: No baseline, or none with a finite AUROC.
    """
    scores = {name: auroc(labels, p) for name, p in probs.items()}
    finite = [(s, -i, n) for i, (n, s) in enumerate(scores.items()) if not math.isnan(s)]
    if not finite:
        raise SSLDomainsError(f"ensemble: no baseline with a validation AUROC among "
                              f"{', '.join(probs) or 'none'}")
    return max(finite)[2], {n: (None if math.isnan(s) else s) for n, s in scores.items()}


def crossfit_ensemble(labels: np.ndarray | Sequence[int], p_deep: np.ndarray,
                      bases: Mapping[str, np.ndarray], seed: int = 0) -> np.ndarray | None:
    """Ensemble probabilities for scoring the ensemble as a candidate: the items of each fold
    (:func:`cv_folds` over ``labels``) get the baseline and weight chosen on the other folds.
    Choosing a weight and a baseline on the very items that score them would flatter the
    ensemble against the single arms. None when the items cannot be split into folds."""
    y = np.asarray(labels, dtype=int)
    try:
        folds = cv_folds(y, seed)
    except SSLDomainsError:
        return None
    out = np.full(np.shape(p_deep), np.nan)
    for tr, held in folds:
        try:
            best, _ = strongest_baseline(y[tr], {b: p[tr] for b, p in bases.items()})
        except SSLDomainsError:
            return None
        w, _ = ensemble_weight(y[tr], p_deep[tr], bases[best][tr])
        out[held] = combine(p_deep[held], bases[best][held], w)
    return out


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
    return len(labels) < MIN_VAL_ITEMS or fewest_per_class(labels) < MIN_VAL_PER_CLASS


def cv_folds(labels: np.ndarray | Sequence[int], seed: int, groups: Sequence[Any] | None = None,
             k: int = CV_FOLDS) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified (and grouped, when ``groups`` are given) ``k``-fold splits, seeded: a list of
    ``(train, held_out)`` index arrays; ``k`` drops to the smallest class's count.

    Raises:
        SSLDomainsError: A class with a single item (no fold could hold it out and train on it).
    """
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
    best: str | None = None
    best_score: float | None = None
    rule: str | None = None
    preference: list[str] | None = None
    tolerance: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record (NaN as None)."""

        def num(v: float | None) -> float | None:
            return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

        return {"chosen": self.chosen, "metric": "auroc", "score": num(self.score),
                "interval": [num(self.low), num(self.high)],
                "interval_method": f"{100 * (1 - self.alpha):.0f}% percentile bootstrap over "
                                   f"the selection items ({BOOTSTRAP} class-stratified "
                                   "resamples)",
                "runner_up": self.runner_up, "runner_up_score": num(self.runner_up_score),
                "scores": {k: num(v) for k, v in self.scores.items()},
                "method": self.method, "n_items": self.n_items, "best": self.best,
                "best_score": num(self.best_score), "rule": self.rule,
                "preference": self.preference, "tolerance": self.tolerance, **self.details}


def bootstrap_replicates(labels: np.ndarray, probs: Sequence[np.ndarray], n: int = BOOTSTRAP,
                         seed: int = 0) -> np.ndarray:
    """:func:`auroc` of every candidate on the same ``n`` class-stratified bootstrap resamples
    of the items (:func:`~ssl_domains.scoring.intervals.stratified_resamples`): an array
    ``[len(probs), n]`` (NaN where a resample has one class). Paired: row differences are the
    bootstrap distribution of the difference of two candidates."""
    y = np.asarray(labels, dtype=int)
    ps = [np.asarray(p, dtype=np.float64) for p in probs]
    out = np.full((len(ps), n), np.nan)
    for r, idx in enumerate(stratified_resamples(y, n, seed)):
        for i, p in enumerate(ps):
            out[i, r] = auroc(y[idx], p[idx])
    return out


def _rank(name: str, preference: Sequence[str] = PREFERENCE) -> int:
    """Place of ``name`` in ``preference``: its own (``baseline:minirocket``), else its kind's
    (``baseline``); kinds not in it come after, in :data:`PREFERENCE`'s order."""
    if name in preference:
        return list(preference).index(name)
    kind = candidate_kind(name)
    if kind in preference:
        return preference.index(kind)
    return len(preference) + (PREFERENCE.index(kind) if kind in PREFERENCE else len(PREFERENCE))


def checked_preference(order: Any, where: str) -> tuple[str, ...]:
    """``order`` as an order of preference: a sequence of distinct names of
    :data:`PREFERENCE`'s candidate kinds or of single baselines (``baseline:<name>``).

    Raises:
        ContractError: Not a sequence of names, an unknown name, or a name twice; the message
            starts with ``where``.
    """
    if isinstance(order, str) or not isinstance(order, Sequence) \
            or not all(isinstance(n, str) for n in order):
        raise ContractError(f"{where}: prefer must be a list of candidate names among "
                            f"{', '.join(PREFERENCE)}; got {order!r}")
    unknown = [n for n in order if not is_candidate_name(n)]
    twice = sorted({n for n in order if list(order).count(n) > 1})
    if unknown or twice:
        what = (f"unknown candidate(s) {', '.join(unknown)}" if unknown
                else f"{', '.join(twice)} listed twice")
        raise ContractError(f"{where}: prefer {list(order)}: {what} (candidates: "
                            f"{', '.join(PREFERENCE)} or baseline:<name>, each at most once)")
    return tuple(order)


def rank_by_score(scores: Mapping[str, float]) -> list[str]:
    """Candidate names best first: highest score, ties (within :data:`TIE`) broken by
    :data:`PREFERENCE`, then by the mapping's order; NaN scores left out."""
    names = [n for n, v in scores.items() if not math.isnan(v)]
    return sorted(names, key=lambda n: (-round(scores[n] / TIE) * TIE, _rank(n)))


def choose(labels: np.ndarray | Sequence[int], candidates: Sequence[Scored] | Mapping[str, np.ndarray],
           method: str, alpha: float = 0.05, seed: int = 0,
           preference: Sequence[str] = PREFERENCE, preference_from: str = "",
           tolerance: float = TOLERANCE) -> Choice:
    """The first candidate in the order of ``preference`` (:data:`PREFERENCE`, simplest first,
    unless the config or the fine-tuning task gives one) whose AUROC on the selection items
    (``labels``) is within ``tolerance`` standard errors of the best candidate's; candidates of
    the same place go by score. The standard error of each difference to the best is
    the standard deviation of the paired bootstrap replicates of ``AUROC(best) - AUROC(c)``
    (:func:`bootstrap_replicates`), so a candidate with the same predictions as the best is
    never told apart by chance, and a difference of 0.04 on 20 items is noise. Returns the
    chosen candidate's score and bootstrap interval, the runner-up (the best-scoring other
    candidate), the best candidate and the rule as a sentence (ending with where the order
    came from, ``preference_from``, when given).

    Raises:
        SSLDomainsError: No candidate, or none with a finite AUROC.
    """
    items = [Scored(k, v) for k, v in candidates.items()] if isinstance(candidates, Mapping) \
        else list(candidates)
    if not items:
        raise SSLDomainsError("model selection: no candidate to choose from")
    y = np.asarray(labels, dtype=int)
    scores = {c.name: auroc(y, c.probs) for c in items}
    order = {name: i for i, name in enumerate(rank_by_score(scores))}
    ranked = sorted((c for c in items if c.name in order), key=lambda c: order[c.name])
    if not ranked:
        raise SSLDomainsError(f"model selection: no candidate has a validation AUROC "
                              f"({len(y)} items, classes {sorted(set(y.tolist()))})")
    best = ranked[0]
    reps = bootstrap_replicates(y, [c.probs for c in ranked], seed=seed)
    se = [_std(reps[0] - reps[i]) for i in range(len(ranked))]
    near = [i for i, c in enumerate(ranked)
            if scores[best.name] - scores[c.name] <= tolerance * se[i] + TIE]
    pick = min(near, key=lambda i: (_rank(ranked[i].name, preference), i))
    chosen = ranked[pick]
    low, high = percentile_interval(reps[pick], alpha)
    others = [c for c in ranked if c is not chosen]
    second = others[0] if others else None
    simplest = tuple(preference) == PREFERENCE
    earlier = "simpler" if simplest else "earlier in the order of preference"
    if len(ranked) == 1:
        rule = "the only candidate"
    elif chosen is best and all(_rank(c.name, preference) >= _rank(best.name, preference)
                                for c in ranked):
        rule = f"the best selection AUROC, and no candidate is {earlier}"
    elif chosen is best:
        rule = f"the best selection AUROC; no candidate {earlier} within {tolerance_words(tolerance)} of it"
    else:
        first = ("the simplest candidate" if simplest else
                 f"the first candidate in the order of preference {', '.join(preference)}")
        rule = (f"{first} within {tolerance_words(tolerance)} of the best "
                f"({best.name}, {scores[best.name]:.3f}; difference {scores[best.name] - scores[chosen.name]:.3f}, "
                f"its paired bootstrap standard error {se[pick]:.3f})")
    if preference_from:
        rule = f"{rule} (order of preference: {preference_from})"
    return Choice(chosen.name, scores[chosen.name], low, high, second.name if second else None,
                  scores[second.name] if second else None,
                  {k: (None if math.isnan(v) else v) for k, v in scores.items()}, method, len(y),
                  alpha, dict(chosen.details), best.name, scores[best.name], rule,
                  list(preference), float(tolerance))


def _std(values: np.ndarray) -> float:
    """Standard deviation of the finite values (0 when fewer than two)."""
    v = values[np.isfinite(values)]
    return float(v.std(ddof=1)) if len(v) > 1 else 0.0
