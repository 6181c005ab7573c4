from __future__ import annotations

import builtins
import sys

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from ssl_domains_timeseries.baselines import (
    MiniRocketBaseline,
    SignalStatsBaseline,
    fill_missing,
    signal_features,
)


def toy(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class 1 has a burst of high frequency; NaNs sprinkled in."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, 64)
    y = np.arange(n) % 2
    x = np.sin(2 * np.pi * 3 * t)[None, None, :] + 0.3 * rng.normal(size=(n, 2, 64))
    x[y == 1, 0, 20:40] += np.sin(2 * np.pi * 25 * t[20:40])
    x[rng.random(x.shape) < 0.05] = np.nan
    return x, y


def test_fill_missing() -> None:
    x = np.array([[[np.nan, 1.0, np.nan, 3.0, np.nan]], [[np.nan] * 5]])
    out = fill_missing(x)
    assert out[0, 0].tolist() == [1.0, 1.0, 2.0, 3.0, 3.0]
    assert out[1, 0].tolist() == [0.0] * 5
    assert np.isnan(x).sum() == 8  # input untouched


def test_signal_features_shape_and_finite() -> None:
    x, _ = toy(10)
    f = signal_features(x, n_bands=4)
    assert f.shape == (10, 2 * (12 + 4)) and np.isfinite(f).all()
    x[0, 1] = np.nan  # an all-missing channel
    assert np.isfinite(signal_features(x)).all()
    assert signal_features(x[:, 0]).shape[0] == 10  # [N, T] gets a channel axis
    with pytest.raises(ValueError, match=r"take \[N, C, T\] arrays"):
        signal_features(np.zeros(5))


def test_signal_stats_separates_toy_classes() -> None:
    x, y = toy()
    xt, yt = toy(seed=1)
    proba = SignalStatsBaseline().fit(x, y).predict_proba(xt)
    assert proba.shape == (len(xt), 2) and np.allclose(proba.sum(1), 1)
    assert roc_auc_score(yt, proba[:, 1]) > 0.9


def test_minirocket_separates_toy_classes() -> None:
    pytest.importorskip("aeon")
    x, y = toy()
    xt, yt = toy(seed=1)
    for clf in ("ridge", "logistic"):
        proba = MiniRocketBaseline(n_kernels=84 * 4, classifier=clf).fit(x, y).predict_proba(xt)
        assert proba.shape == (len(xt), 2) and np.allclose(proba.sum(1), 1)
        assert roc_auc_score(yt, proba[:, 1]) > 0.9
        assert len(np.unique(proba[:, 1])) > 2  # a continuous score, not hard labels


def test_minirocket_leaves_the_host_its_torch_threads() -> None:
    """numba's OpenMP layer (MiniRocket's transform) sets the process's OpenMP thread count,
    which torch shares; the host's sweep and exports run baselines under ``keep_threads``."""
    pytest.importorskip("aeon")
    import torch

    from ssl_domains.engine.runtime import keep_threads

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x, y = toy()
        with keep_threads():
            MiniRocketBaseline(n_kernels=84 * 4).fit(x, y).predict_proba(x)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_minirocket_without_aeon_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_aeon(name: str, *args, **kwargs):
        if name.startswith("aeon"):
            raise ImportError("No module named 'aeon'")
        return real_import(name, *args, **kwargs)

    for mod in [m for m in sys.modules if m.startswith("aeon")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(builtins, "__import__", no_aeon)
    x, y = toy(10)
    with pytest.raises(ImportError) as info:
        MiniRocketBaseline().fit(x, y)
    assert str(info.value) == (
        "baseline 'minirocket' needs aeon: pip install 'ssl-domains-timeseries[minirocket]'"
    )


def test_minirocket_bad_classifier() -> None:
    with pytest.raises(ValueError, match="classifier must be 'ridge' or 'logistic'"):
        MiniRocketBaseline(classifier="svm")
