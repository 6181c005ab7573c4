"""Label-free anomaly scoring: thresholds, a rolling z-score baseline, event-level metrics.

Pure NumPy functions. Thresholds are fitted on training or validation scores only (never on
test data). Point-adjusted F1 (Xu et al., WWW 2018) inflates scores (Kim et al., "Towards a
Rigorous Evaluation of Time-Series Anomaly Detection", AAAI 2022), so
:func:`f1_with_point_adjust` always returns it next to the unadjusted F1, under a name that
says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "fit_threshold",
    "rolling_zscore",
    "window_max",
    "label_intervals",
    "event_recall",
    "point_adjust",
    "f1_with_point_adjust",
]


def fit_threshold(scores: Sequence[float] | np.ndarray, method: str = "quantile",
                  q: float = 0.99, k: float = 3.0) -> float:
    """Threshold above which a score is called anomalous, from (mostly normal) fit-time scores.

    Use scores of training or validation windows, never of test windows.

    Args:
        scores: Anomaly scores of training/validation windows (NaN ignored).
        method: ``"quantile"`` (the ``q`` quantile) or ``"mean_std"`` (mean + ``k`` * std).
        q: Quantile in (0, 1) for ``"quantile"``.
        k: Number of standard deviations for ``"mean_std"``.

    Returns:
        The threshold.

    Raises:
        ValueError: No finite score, an unknown method or ``q`` outside (0, 1).
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    s = s[np.isfinite(s)]
    if s.size == 0:
        raise ValueError("fit_threshold needs at least one finite score")
    if method == "quantile":
        if not 0.0 < q < 1.0:
            raise ValueError(f"q must be in (0, 1), got {q}")
        return float(np.quantile(s, q))
    if method == "mean_std":
        return float(s.mean() + k * s.std())
    raise ValueError(f"unknown threshold method {method!r}; use 'quantile' or 'mean_std'")


def rolling_zscore(values: Sequence[float] | np.ndarray, window: int = 100,
                   min_periods: int = 10) -> np.ndarray:
    """Point scores ``|x_t - mean| / std`` against the *preceding* ``window`` points.

    The classic NAB-style baseline: only past values are used, so it works online. NaNs are
    skipped in the statistics and score 0; points with fewer than ``min_periods`` past values
    score 0.

    Args:
        values: A univariate series ``[T]``.
        window: Number of past points in the statistics.
        min_periods: Past points required before scoring.

    Returns:
        Scores ``[T]`` (float64, >= 0).

    Raises:
        ValueError: Not 1-D, or ``window < 2``.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"rolling_zscore takes a 1-D series, got shape {x.shape}")
    if window < 2:
        raise ValueError(f"window must be >= 2, got {window}")
    ok = np.isfinite(x)
    xz = np.where(ok, x, 0.0)
    csum = np.concatenate([[0.0], np.cumsum(xz)])
    csq = np.concatenate([[0.0], np.cumsum(xz**2)])
    cnt = np.concatenate([[0], np.cumsum(ok)])
    t = np.arange(len(x))
    lo = np.maximum(t - window, 0)
    n = cnt[t] - cnt[lo]
    mean = (csum[t] - csum[lo]) / np.maximum(n, 1)
    var = (csq[t] - csq[lo]) / np.maximum(n, 1) - mean**2
    std = np.sqrt(np.maximum(var, 0.0))
    scale = np.where(std > 1e-12, std, 1.0)
    z = np.abs(xz - mean) / scale
    # A constant past and a new value: infinitely surprising in theory; cap at a large score.
    z = np.where((std <= 1e-12) & (np.abs(xz - mean) > 1e-12), 1e6, z)
    return np.where(ok & (n >= min_periods), z, 0.0)


def window_max(point_scores: Sequence[float] | np.ndarray, length: int, stride: int) -> np.ndarray:
    """Window scores: the maximum point score in each window ``[i*stride, i*stride+length)``.

    Windows are cut like the loaders cut them (full windows only).

    Raises:
        ValueError: The series is shorter than one window, or non-positive sizes.
    """
    s = np.asarray(point_scores, dtype=np.float64)
    if length < 1 or stride < 1:
        raise ValueError(f"length and stride must be >= 1, got {length}, {stride}")
    if len(s) < length:
        raise ValueError(f"series of {len(s)} points is shorter than one window ({length})")
    starts = np.arange(0, len(s) - length + 1, stride)
    view = np.lib.stride_tricks.sliding_window_view(s, length)[starts]
    return view.max(axis=1)


def label_intervals(labels: Sequence[int] | np.ndarray) -> list[tuple[int, int]]:
    """Runs of positive point labels as ``(start, end)`` pairs, ``end`` exclusive."""
    y = np.asarray(labels).astype(bool).astype(np.int8)
    edges = np.diff(np.concatenate([[0], y, [0]]))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), ends.tolist()))


def event_recall(pred: Sequence[bool] | np.ndarray,
                 intervals: Sequence[tuple[int, int]]) -> float:
    """Share of anomaly events (intervals) with at least one predicted point inside.

    Args:
        pred: Point predictions ``[T]`` (True = anomalous).
        intervals: Events as ``(start, end)``, ``end`` exclusive, in point indices.

    Returns:
        Recall in [0, 1]; NaN when there are no events.
    """
    p = np.asarray(pred).astype(bool)
    if len(intervals) == 0:
        return float("nan")
    hits = sum(bool(p[max(s, 0):max(e, 0)].any()) for s, e in intervals)
    return hits / len(intervals)


def point_adjust(pred: Sequence[bool] | np.ndarray,
                 labels: Sequence[int] | np.ndarray) -> np.ndarray:
    """Point-adjusted predictions: an event counts as fully detected if any point of it is.

    Only for reporting next to unadjusted scores (see the module docstring).
    """
    p = np.asarray(pred).astype(bool).copy()
    y = np.asarray(labels).astype(bool)
    if p.shape != y.shape:
        raise ValueError(f"pred {p.shape} and labels {y.shape} differ in shape")
    for s, e in label_intervals(y):
        if p[s:e].any():
            p[s:e] = True
    return p


def _f1(pred: np.ndarray, y: np.ndarray) -> float:
    tp = float(np.sum(pred & y))
    fp = float(np.sum(pred & ~y))
    fn = float(np.sum(~pred & y))
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def f1_with_point_adjust(pred: Sequence[bool] | np.ndarray,
                         labels: Sequence[int] | np.ndarray) -> dict[str, float]:
    """F1 of point predictions, unadjusted and point-adjusted, always together.

    Returns:
        ``{"f1": unadjusted, "f1_point_adjusted": after point adjustment,
        "event_recall": share of events hit}``.

    Raises:
        ValueError: ``pred`` and ``labels`` differ in shape.
    """
    p = np.asarray(pred).astype(bool)
    y = np.asarray(labels).astype(bool)
    if p.shape != y.shape:
        raise ValueError(f"pred {p.shape} and labels {y.shape} differ in shape")
    return {
        "f1": _f1(p, y),
        "f1_point_adjusted": _f1(point_adjust(p, y), y),
        "event_recall": event_recall(p, label_intervals(y)),
    }
