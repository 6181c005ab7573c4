"""Logistic regression on flattened inputs: the simplest classical baseline."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ssl_domains.registry import component


@component(
    "logistic",
    description="Standardised flattened input -> class-balanced logistic regression",
    modalities=("image", "signal"),
    dims=(1, 2, 3),
)
class LogisticBaseline:
    """Class-balanced L2 logistic regression on the flattened input (NaN -> 0).

    Args:
        C: Inverse regularisation strength.
        max_iter: Solver iterations.
    """

    def __init__(self, C: float = 1.0, max_iter: int = 2000) -> None:
        self.C = C
        self.max_iter = max_iter

    @staticmethod
    def _flat(x: Any) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float64)
        return np.nan_to_num(arr.reshape(arr.shape[0], -1))

    def fit(self, x: Any, y: Any) -> LogisticBaseline:
        self.model_ = make_pipeline(
            StandardScaler(),
            LogisticRegression(C=self.C, max_iter=self.max_iter, class_weight="balanced"),
        )
        self.model_.fit(self._flat(x), np.asarray(y))
        return self

    def predict_proba(self, x: Any) -> np.ndarray:
        return self.model_.predict_proba(self._flat(x))
