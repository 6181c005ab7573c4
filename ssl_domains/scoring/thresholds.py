"""Decision thresholds for binary classifiers, chosen on VALIDATION data only.

The threshold turns P(class 1) into a decision (positive when ``score >= threshold``). It must
be picked on the validation split and then applied unchanged to the test split; choosing it on
test data would report an optimistic operating point that no deployed model can reach.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np

from ssl_domains.metric_names import parse_rule
from ssl_domains.scoring.metrics import as_arrays, sklearn_metrics

log = logging.getLogger(__name__)

#: Threshold used when the validation labels hold one class only.
FALLBACK_THRESHOLD = 0.5


def _above_max(scores: np.ndarray) -> float:
    """A threshold that calls nothing positive (instead of roc_curve's ``inf``)."""
    return float(np.nextafter(scores.max(), np.inf))


def choose_threshold(y_val: Sequence[int] | np.ndarray, scores_val: Sequence[float] | np.ndarray,
                     rule: str = "youden") -> float:
    """Pick a decision threshold from VALIDATION labels and scores (never from test data).

    Rules:
        ``youden``: maximise sensitivity + specificity - 1 on the ROC curve.
        ``f1``: maximise F1 of the positive class.
        ``spec90`` / ``sensitivity_at_specificity:<x>``: the highest sensitivity whose
        specificity is >= x (0.9 for ``spec90``); among equal sensitivities the higher
        specificity.
        ``fixed:<x>``: the threshold x, whatever the data.

    When the validation labels hold one class only, a data-driven rule is undefined: the
    function logs a warning and returns :data:`FALLBACK_THRESHOLD`.

    Args:
        y_val: Validation labels (0/1).
        scores_val: Validation P(class 1), shape [N] (or [N, 2]).
        rule: One of :data:`~ssl_domains.metric_names.THRESHOLD_RULES`.

    Returns:
        The threshold; an item is positive when ``score >= threshold``.

    Raises:
        ValueError: For an unknown rule, multi-class scores, or inputs that do not match.
    """
    skm = sklearn_metrics()
    kind, value = parse_rule(rule)
    if kind == "fixed":
        assert value is not None
        return float(value)
    y, s = as_arrays(y_val, scores_val)
    if s.ndim != 1:
        raise ValueError(f"choose_threshold needs binary scores, got {s.shape[1]} classes; "
                         "multi-class decisions use the arg-max")
    if len(np.unique(y)) < 2:
        log.warning("validation labels hold one class only; rule %r undefined, using "
                    "threshold %s", rule, FALLBACK_THRESHOLD)
        return FALLBACK_THRESHOLD
    if kind == "f1":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            precision, recall, thr = skm.precision_recall_curve(y, s)
        p, r = precision[:-1], recall[:-1]
        f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-300), 0.0)
        return float(thr[int(np.argmax(f1))])
    fpr, tpr, thr = skm.roc_curve(y, s, drop_intermediate=False)
    if kind == "youden":
        best = int(np.argmax(tpr - fpr))
    else:
        assert value is not None
        ok = np.flatnonzero((1.0 - fpr) >= value - 1e-12)
        best_tpr = tpr[ok].max()
        best = int(ok[np.flatnonzero(tpr[ok] == best_tpr)[0]])
    return _above_max(s) if not np.isfinite(thr[best]) else float(thr[best])
