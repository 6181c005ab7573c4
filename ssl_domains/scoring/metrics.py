"""Classification metrics from labels and scores (binary and multi-class), via scikit-learn.

Binary scores are P(class 1); class 1 is the positive class and an item is called positive when
``score >= threshold`` (the convention of :func:`sklearn.metrics.roc_curve`). Undefined values
(an AUROC when ``y_true`` holds one class only, a sensitivity without positives, ...) are NaN,
never an exception, so a tiny few-label split does not stop a sweep.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from types import ModuleType

import numpy as np

from ssl_domains.metric_names import LOWER_IS_BETTER as LOWER_IS_BETTER  # scoring names it too

#: Metrics tried, in order, as the headline metric of a sweep.
PRIMARY_METRICS = ("dice", "auroc", "balanced_accuracy", "accuracy", "f1")

NAN = float("nan")


def fewest_per_class(labels: Sequence[int] | np.ndarray) -> int:
    """The count of the rarest class in ``labels``; 0 when fewer than two classes are present."""
    counts = np.bincount(np.asarray(labels, dtype=int)) if len(labels) else np.zeros(1, int)
    present = counts[counts > 0]
    return int(present.min()) if len(present) >= 2 else 0


def sklearn_metrics() -> ModuleType:
    """:mod:`sklearn.metrics`, imported where it is used: importing scikit-learn imports pandas
    when pandas is installed, and the engine (which scores with this module) loads no pandas."""
    from sklearn import metrics

    return metrics


def as_arrays(y_true: Sequence[int] | np.ndarray, scores: Sequence | np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert labels and scores.

    A two-column score matrix is treated as binary (column 1 = P(positive)).

    Args:
        y_true: Integer labels, shape [N].
        scores: Binary scores [N] or class scores [N, K].

    Returns:
        ``(y, s)``: int labels [N] and float scores, [N] for binary or [N, K] for K > 2.

    Raises:
        ValueError: On mismatched lengths, empty input, NaN scores or a bad shape.
    """
    y = np.asarray(y_true).astype(int).reshape(-1)
    s = np.asarray(scores, dtype=float)
    if s.ndim == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if s.ndim == 2 and s.shape[1] == 2:
        s = s[:, 1]
    if s.ndim not in (1, 2):
        raise ValueError(f"scores must be [N] or [N, K], got shape {s.shape}")
    if len(s) != len(y):
        raise ValueError(f"{len(y)} labels but {len(s)} scores; they must match one to one")
    if len(y) == 0:
        raise ValueError("no items to score: labels and scores are empty")
    if np.isnan(s).any():
        raise ValueError(f"scores contain {int(np.isnan(s).any(axis=-1).sum())} NaN rows; "
                         "check the model output before computing metrics")
    return y, s


def sensitivity_at_specificity(y_true: np.ndarray, scores: np.ndarray,
                               specificity: float = 0.9) -> float:
    """Best sensitivity among ROC operating points whose specificity is at least ``specificity``.

    Args:
        y_true: Binary labels [N].
        scores: P(positive) [N].
        specificity: Target specificity in [0, 1].

    Returns:
        The sensitivity, or NaN when ``y_true`` lacks a class.
    """
    skm = sklearn_metrics()
    y = np.asarray(y_true).astype(int)
    if len(np.unique(y)) < 2:
        return NAN
    fpr, tpr, _ = skm.roc_curve(y, scores, drop_intermediate=False)
    ok = (1.0 - fpr) >= specificity - 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def _spec_key(specificity: float) -> str:
    pct = specificity * 100
    return f"sens_at_spec{round(pct)}" if math.isclose(pct, round(pct)) else \
        f"sens_at_spec{pct:g}".replace(".", "_")


def binary_metrics(y: np.ndarray, s: np.ndarray, threshold: float | None = None,
                   specificity: float = 0.9) -> dict[str, float]:
    """Binary metrics; see :func:`classification_metrics`."""
    skm = sklearn_metrics()
    both = len(np.unique(y)) == 2
    out: dict[str, float] = {
        "auroc": float(skm.roc_auc_score(y, s)) if both else NAN,
        "auprc": float(skm.average_precision_score(y, s)) if (y == 1).any() else NAN,
    }
    sens = sensitivity_at_specificity(y, s, specificity)
    out["sensitivity_at_specificity"] = sens
    out[_spec_key(specificity)] = sens
    if threshold is None:
        return out
    pred = (s >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    sensitivity = tp / (tp + fn) if tp + fn else NAN
    spec = tn / (tn + fp) if tn + fp else NAN
    out.update(
        accuracy=float(skm.accuracy_score(y, pred)),
        balanced_accuracy=float(np.nanmean([sensitivity, spec])),
        f1=float(skm.f1_score(y, pred, zero_division=0.0)) if (y == 1).any() or pred.any()
        else NAN,
        sensitivity=float(sensitivity),
        specificity=float(spec),
        precision=float(tp / (tp + fp)) if tp + fp else NAN,
    )
    return out


def multiclass_metrics(y: np.ndarray, s: np.ndarray) -> dict[str, float]:
    """Multi-class metrics (decision = arg-max); see :func:`classification_metrics`."""
    skm = sklearn_metrics()
    k = s.shape[1]
    if y.min() < 0 or y.max() >= k:
        raise ValueError(f"labels must lie in 0..{k - 1} for {k} score columns, "
                         f"got {y.min()}..{y.max()}")
    # Macro one-vs-rest AUROC over the classes present with both signs (sklearn's
    # roc_auc_score(multi_class="ovr") refuses absent classes and unnormalised scores).
    per_class = [skm.roc_auc_score(y == c, s[:, c]) for c in range(k)
                 if 0 < (y == c).sum() < len(y)]
    pred = s.argmax(axis=1)
    labels = sorted(set(y.tolist()))
    return {
        "auroc": float(np.mean(per_class)) if per_class else NAN,
        "accuracy": float(skm.accuracy_score(y, pred)),
        "balanced_accuracy": float(np.mean([(pred[y == c] == c).mean() for c in labels])),
        "f1": float(skm.f1_score(y, pred, labels=list(range(k)), average="macro",
                                 zero_division=0.0)),
    }


def classification_metrics(y_true: Sequence[int] | np.ndarray, scores: Sequence | np.ndarray,
                           threshold: float | None = None, specificity: float = 0.9
                           ) -> dict[str, float]:
    """Metrics of one set of predictions.

    Binary (``scores`` = P(class 1), shape [N], or [N, 2]): ``auroc``, ``auprc`` (average
    precision), ``sensitivity_at_specificity`` (best ROC sensitivity with specificity >=
    ``specificity``; also under ``sens_at_spec90`` for 0.9, ``sens_at_spec95`` for 0.95, ...)
    and, when ``threshold`` is given (positive when ``score >= threshold``): ``accuracy``,
    ``balanced_accuracy``, ``f1``, ``sensitivity``, ``specificity``, ``precision``.

    Multi-class (``scores`` [N, K], K > 2): macro one-vs-rest ``auroc``, ``accuracy``,
    ``balanced_accuracy`` and macro ``f1`` of the arg-max decision (``threshold`` is ignored).

    Args:
        y_true: Integer labels [N].
        scores: Scores as above.
        threshold: Decision threshold for binary scores (chosen on validation data).
        specificity: Target specificity of ``sensitivity_at_specificity``.

    Returns:
        Metric name -> float; NaN where undefined (e.g. one class only in ``y_true``).

    Raises:
        ValueError: On mismatched or empty inputs, NaN scores or labels outside 0..K-1.
    """
    y, s = as_arrays(y_true, scores)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if s.ndim == 1:
            if not set(np.unique(y).tolist()) <= {0, 1}:
                raise ValueError(f"binary scores need labels 0/1, got {sorted(set(y.tolist()))}")
            return binary_metrics(y, s, threshold, specificity)
        return multiclass_metrics(y, s)


def fast_binary_metrics(y: np.ndarray, s: np.ndarray, threshold: float | None = None,
                        specificity: float = 0.9) -> dict[str, float]:
    """Same numbers as :func:`binary_metrics`, from one sort in NumPy (no input validation).

    scikit-learn's per-call checks cost ~30 ms, which dominates a 1000-replicate bootstrap;
    this computes the ROC and precision-recall steps the same way (ties grouped, trapezoidal
    AUROC, step-wise average precision). Tests hold it equal to the scikit-learn version.

    Args:
        y: Labels 0/1 [N] (already checked).
        s: P(positive) [N] (already checked).
        threshold: Decision threshold (``score >= threshold`` is positive).
        specificity: Target specificity of ``sensitivity_at_specificity``.
    """
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    order = np.argsort(-s, kind="mergesort")
    ys, ss = y[order], s[order]
    last = np.r_[np.flatnonzero(np.diff(ss)), len(ss) - 1]  # last index of each tied group
    tps = np.cumsum(ys)[last].astype(float)
    fps = (last + 1) - tps
    out: dict[str, float] = {}
    if n_pos and n_neg:
        tpr, fpr = np.r_[0.0, tps / n_pos], np.r_[0.0, fps / n_neg]
        out["auroc"] = float(np.trapezoid(tpr, fpr))
        ok = (1.0 - fpr) >= specificity - 1e-12
        sens = float(tpr[ok].max()) if ok.any() else 0.0
    else:
        out["auroc"], sens = NAN, NAN
    if n_pos:
        recall = np.r_[0.0, tps / n_pos]
        out["auprc"] = float(np.sum(np.diff(recall) * tps / (tps + fps)))
    else:
        out["auprc"] = NAN
    out["sensitivity_at_specificity"] = sens
    out[_spec_key(specificity)] = sens
    if threshold is None:
        return out
    pred = s >= threshold
    tp = int((pred & (y == 1)).sum())
    fp = int(pred.sum()) - tp
    fn = n_pos - tp
    tn = n_neg - fp
    sensitivity = tp / n_pos if n_pos else NAN
    spec = tn / n_neg if n_neg else NAN
    out.update(
        accuracy=(tp + tn) / len(y),
        balanced_accuracy=float(np.nanmean([sensitivity, spec])),
        f1=2 * tp / (2 * tp + fp + fn) if n_pos or pred.any() else NAN,
        sensitivity=float(sensitivity),
        specificity=float(spec),
        precision=tp / (tp + fp) if tp + fp else NAN,
    )
    return out
