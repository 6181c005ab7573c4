"""Classical image baseline for label-efficiency sweeps: logistic regression on simple features."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch.nn import functional as F

from ssl_domains.contracts import Example
from ssl_domains.registry import component

__all__ = ["ImageLogistic", "finite_images"]


def finite_images(x: Any, ndims: tuple[int, ...], expects: str) -> np.ndarray:
    """``x`` as float32 with NaN as 0, refused unless it has one of ``ndims`` dimensions.

    Raises:
        ValueError: Another number of dimensions (``expects``, then "with 2 or 3 spatial dims"
            and the shape).
    """
    arr = np.nan_to_num(np.asarray(x, dtype=np.float32))
    if arr.ndim not in ndims:
        raise ValueError(f"{expects} with 2 or 3 spatial dims, got shape {arr.shape}")
    return arr


@component(
    "image_logistic",
    description="Intensity histogram + downsampled pixels -> class-balanced logistic regression",
    modalities=("image",),
    dims=(2, 3),
    examples=[Example({}), Example({"bins": 8, "grid": 4, "C": 0.1})],
)
class ImageLogistic:
    """Class-balanced L2 logistic regression on hand-made image features.

    Per channel: a normalised intensity histogram (``bins`` bins between the 1st and 99th
    percentiles of the training images) and the image average-pooled to ``grid`` per spatial
    dim. NaN counts as 0.

    Args:
        bins: Histogram bins per channel.
        grid: Downsampled size per spatial dim.
        C: Inverse regularisation strength.
        max_iter: Solver iterations.

    Raises:
        ValueError: Inputs that are not ``[N, C, H, W]`` or ``[N, C, D, H, W]``.
    """

    def __init__(self, bins: int = 32, grid: int = 8, C: float = 0.01, max_iter: int = 5000) -> None:
        self.bins = bins
        self.grid = grid
        self.C = C
        self.max_iter = max_iter

    @staticmethod
    def _array(x: Any) -> np.ndarray:
        return finite_images(x, (4, 5), "image_logistic expects [N, C, *spatial]")

    def features(self, x: Any) -> np.ndarray:
        """Feature matrix ``[N, C * (bins + grid^dims)]`` (after :meth:`fit` set the range)."""
        arr = self._array(x)
        n, c = arr.shape[:2]
        lo, hi = self.range_
        edges = np.linspace(lo, hi, self.bins + 1)
        flat = np.clip(arr.reshape(n, c, -1), lo, hi)
        hist = np.stack([[np.histogram(flat[i, j], bins=edges)[0] for j in range(c)]
                         for i in range(n)]).astype(np.float64) / flat.shape[-1]
        dims = arr.ndim - 2
        pool = F.adaptive_avg_pool2d if dims == 2 else F.adaptive_avg_pool3d
        small = pool(torch.from_numpy(arr), self.grid).numpy().reshape(n, -1)
        return np.concatenate([hist.reshape(n, -1), small], axis=1)

    def fit(self, x: Any, y: Any) -> ImageLogistic:
        arr = self._array(x)
        lo, hi = np.percentile(arr, [1, 99])
        self.range_ = (float(lo), float(hi) if hi > lo else float(lo) + 1.0)
        self.model_ = make_pipeline(
            StandardScaler(),
            LogisticRegression(C=self.C, max_iter=self.max_iter, class_weight="balanced"),
        )
        self.model_.fit(self.features(arr), np.asarray(y).reshape(-1))
        return self

    def predict_proba(self, x: Any) -> np.ndarray:
        return self.model_.predict_proba(self.features(x))
