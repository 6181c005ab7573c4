"""Classical baselines for label-efficiency comparisons on signals.

- ``minirocket``: MiniRocket random convolutional features (Dempster, Schmidt, Webb, KDD 2021)
  through aeon, then a linear classifier; needs the ``minirocket`` extra.
- ``signal_stats``: summary statistics and spectral band powers per channel, then logistic
  regression; always available.

Both take ``x`` as ``[N, C, T]`` NumPy arrays with NaN for missing values.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression, RidgeClassifierCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ssl_domains.registry import component

MINIROCKET_HINT = "baseline 'minirocket' needs aeon: pip install 'ssl-domains-timeseries[minirocket]'"


def _as_series(x: Any) -> np.ndarray:
    """``x`` as float ``[N, C, T]`` (a missing channel axis is added).

    Raises:
        ValueError: Not 2-D or 3-D.
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[:, None, :]
    if arr.ndim != 3:
        raise ValueError(f"signal baselines take [N, C, T] arrays, got shape {arr.shape}")
    return arr


def fill_missing(x: np.ndarray) -> np.ndarray:
    """Replace NaNs by linear interpolation along time per series and channel
    (ends held constant; all-missing channels become 0)."""
    out = x.copy()
    t = np.arange(x.shape[-1])
    for idx in zip(*np.nonzero(~np.isfinite(x).all(axis=-1))):
        row = out[idx]
        ok = np.isfinite(row)
        out[idx] = np.interp(t, t[ok], row[ok]) if ok.any() else 0.0
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@component(
    "minirocket",
    description="MiniRocket features (aeon) -> ridge or logistic classifier; needs the [minirocket] extra",
    modalities=("signal",),
    dims=(1,),
    requires=("aeon",),
    install_hint=MINIROCKET_HINT,
)
class MiniRocketBaseline:
    """MiniRocket transform, standardised, then a linear classifier.

    ``classifier="ridge"`` (RidgeClassifierCV, as in the paper) gives probabilities as a
    softmax of its decision values (a monotone score, fine for AUROC; not calibrated);
    ``"logistic"`` gives calibrated-ish probabilities. NaNs are filled by linear
    interpolation first; series shorter than 9 points are padded at the end by repetition.

    Args:
        n_kernels: Number of MiniRocket features (rounded by aeon to a multiple of 84).
        classifier: ``"ridge"`` or ``"logistic"``.
        random_state: Seed of the transform.
        n_jobs: Threads of the transform.

    Raises:
        ImportError: aeon is not installed (one line saying how to install it).
    """

    def __init__(self, n_kernels: int = 10_000, classifier: str = "ridge",
                 random_state: int | None = 0, n_jobs: int = 1) -> None:
        if classifier not in ("ridge", "logistic"):
            raise ValueError(f"classifier must be 'ridge' or 'logistic', got {classifier!r}")
        self.n_kernels = n_kernels
        self.classifier = classifier
        self.random_state = random_state
        self.n_jobs = n_jobs

    @staticmethod
    def _prepare(x: Any) -> np.ndarray:
        arr = fill_missing(_as_series(x))
        if arr.shape[-1] < 9:
            arr = np.pad(arr, ((0, 0), (0, 0), (0, 9 - arr.shape[-1])), mode="edge")
        return arr.astype(np.float32)

    def fit(self, x: Any, y: Any) -> MiniRocketBaseline:
        try:
            from aeon.transformations.collection.convolution_based import MiniRocket
        except ImportError:
            raise ImportError(MINIROCKET_HINT) from None
        self.transform_ = MiniRocket(n_kernels=self.n_kernels, n_jobs=self.n_jobs,
                                     random_state=self.random_state)
        feats = self.transform_.fit_transform(self._prepare(x))
        if self.classifier == "ridge":
            clf: Any = RidgeClassifierCV(alphas=np.logspace(-3, 3, 10), class_weight="balanced")
        else:
            clf = LogisticRegression(C=0.1, max_iter=2000, class_weight="balanced")
        self.model_ = make_pipeline(StandardScaler(), clf)
        self.model_.fit(feats, np.asarray(y))
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, x: Any) -> np.ndarray:
        feats = self.transform_.transform(self._prepare(x))
        if self.classifier == "logistic":
            return self.model_.predict_proba(feats)
        dec = np.asarray(self.model_.decision_function(feats))
        if dec.ndim == 1:  # binary: score of class 1
            dec = np.stack([-dec, dec], axis=1) / 2
        return _softmax(dec)


def signal_features(x: Any, n_bands: int = 8) -> np.ndarray:
    """Per-channel summary features ``[N, C * (12 + n_bands)]`` of ``[N, C, T]`` (NaN-aware).

    Per channel: mean, std, min, max, 10/25/50/75/90 % quantiles, mean absolute first
    difference, share of missing points, linear trend slope, and the log power of
    ``n_bands`` equal-width bands of the spectrum (missing points zero-filled after centring).
    """
    arr = _as_series(x)
    n, c, length = arr.shape
    ok = np.isfinite(arr)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(arr, -1)
        std = np.nanstd(arr, -1)
        qs = np.nanquantile(arr, [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0], axis=-1)  # [7, N, C]
        mad = np.nanmean(np.abs(np.diff(arr, axis=-1)), -1) if length > 1 else np.zeros((n, c))
        t = np.arange(length) - (length - 1) / 2
        centred = np.where(ok, arr - mean[..., None], 0.0)
        slope = (centred * t).sum(-1) / max(float((t**2).sum()), 1.0)
        power = np.abs(np.fft.rfft(centred, axis=-1)) ** 2
        bands = np.array_split(power[..., 1:] if power.shape[-1] > 1 else power,
                               n_bands, axis=-1)
        band_power = np.stack([np.log1p(b.sum(-1) / length) if b.shape[-1] else
                               np.zeros((n, c)) for b in bands], axis=-1)
    feats = np.concatenate([
        np.stack([mean, std, qs[0], qs[-1], *qs[1:-1], mad, 1 - ok.mean(-1), slope], axis=-1),
        band_power,
    ], axis=-1)
    return np.nan_to_num(feats.reshape(n, -1), nan=0.0, posinf=0.0, neginf=0.0)


@component(
    "signal_stats",
    description="Per-channel statistics and FFT band powers -> class-balanced logistic regression",
    modalities=("signal",),
    dims=(1,),
)
class SignalStatsBaseline:
    """Hand-made features (:func:`signal_features`) -> standardised logistic regression.

    Args:
        n_bands: Spectral bands per channel.
        C: Inverse regularisation strength.
        max_iter: Solver iterations.
    """

    def __init__(self, n_bands: int = 8, C: float = 1.0, max_iter: int = 2000) -> None:
        self.n_bands = n_bands
        self.C = C
        self.max_iter = max_iter

    def fit(self, x: Any, y: Any) -> SignalStatsBaseline:
        self.model_ = make_pipeline(
            StandardScaler(),
            LogisticRegression(C=self.C, max_iter=self.max_iter, class_weight="balanced"),
        )
        self.model_.fit(signal_features(x, self.n_bands), np.asarray(y))
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, x: Any) -> np.ndarray:
        return self.model_.predict_proba(signal_features(x, self.n_bands))
