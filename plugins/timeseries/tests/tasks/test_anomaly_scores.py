from __future__ import annotations

import numpy as np
import pytest
from ssl_domains_timeseries.tasks.anomaly_scores import (
    event_recall,
    f1_with_point_adjust,
    fit_threshold,
    label_intervals,
    point_adjust,
    rolling_zscore,
    window_max,
)


def test_fit_threshold() -> None:
    scores = np.arange(101, dtype=float)
    assert fit_threshold(scores, "quantile", q=0.9) == pytest.approx(90.0)
    s = np.array([1.0, 3.0, np.nan])
    assert fit_threshold(s, "mean_std", k=2.0) == pytest.approx(2.0 + 2 * 1.0)
    with pytest.raises(ValueError, match="at least one finite score"):
        fit_threshold([np.nan])
    with pytest.raises(ValueError, match="unknown threshold method"):
        fit_threshold([1.0], method="otsu")
    with pytest.raises(ValueError, match=r"q must be in \(0, 1\)"):
        fit_threshold([1.0], q=1.0)


def test_rolling_zscore_uses_the_past_only() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    x[200] = 12.0
    z = rolling_zscore(x, window=50, min_periods=10)
    assert z.shape == (300,) and (z >= 0).all()
    assert z[:10].max() == 0.0  # too little history
    assert z.argmax() == 200 and z[200] > 8
    # Future values do not change past scores.
    y = x.copy()
    y[250:] = 1e3
    assert np.array_equal(rolling_zscore(y, 50, 10)[:250], z[:250])
    x[100] = np.nan
    assert rolling_zscore(x, 50, 10)[100] == 0.0
    with pytest.raises(ValueError, match="1-D series"):
        rolling_zscore(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="window must be >= 2"):
        rolling_zscore(x, window=1)


def test_rolling_zscore_constant_past() -> None:
    z = rolling_zscore(np.r_[np.ones(20), 5.0], window=10, min_periods=5)
    assert z[:20].max() == 0.0 and z[20] > 100


def test_window_max() -> None:
    s = np.array([0, 1, 5, 0, 0, 2, 0], dtype=float)
    assert window_max(s, 3, 2).tolist() == [5.0, 5.0, 2.0]
    with pytest.raises(ValueError, match="shorter than one window"):
        window_max(s, 10, 1)
    with pytest.raises(ValueError, match="length and stride"):
        window_max(s, 0, 1)


def test_intervals_and_event_recall() -> None:
    y = np.array([0, 1, 1, 0, 0, 1, 0, 1])
    assert label_intervals(y) == [(1, 3), (5, 6), (7, 8)]
    pred = np.array([0, 0, 1, 0, 0, 0, 0, 1], dtype=bool)
    assert event_recall(pred, label_intervals(y)) == pytest.approx(2 / 3)
    assert np.isnan(event_recall(pred, []))


def test_point_adjusted_f1_is_reported_with_unadjusted() -> None:
    y = np.array([0, 1, 1, 1, 1, 0, 0, 0])
    pred = np.array([0, 0, 1, 0, 0, 0, 1, 0], dtype=bool)
    assert point_adjust(pred, y).tolist() == [0, 1, 1, 1, 1, 0, 1, 0]
    r = f1_with_point_adjust(pred, y)
    assert set(r) == {"f1", "f1_point_adjusted", "event_recall"}
    assert r["f1"] == pytest.approx(2 * 1 / (2 * 1 + 1 + 3))
    assert r["f1_point_adjusted"] == pytest.approx(2 * 4 / (2 * 4 + 1 + 0))
    assert r["f1_point_adjusted"] > r["f1"] and r["event_recall"] == 1.0
    with pytest.raises(ValueError, match="differ in shape"):
        f1_with_point_adjust(pred, y[:-1])
    with pytest.raises(ValueError, match="differ in shape"):
        point_adjust(pred, y[:-1])
