"""Shared fixtures for the loader tests: synthetic CT series and the shared data folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ssl_domains_medical.loaders.synthetic import ct_phantom

REPO = Path(__file__).resolve().parents[4]
SHARED = REPO / ".." / "shared" / "data"
SAMPLE = REPO / "sample_data" / "medical"


@pytest.fixture(scope="session")
def ct_volume() -> np.ndarray:
    """A small CT phantom ``[slices=10, rows=16, cols=20]`` in HU with one lesion."""
    return ct_phantom((10, 16, 20), [((5, 8, 10), 3.0)], seed=3)


def shared_data(name: str) -> Path:
    """Path of a shared data set, or skip the test when it is absent."""
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"shared data set {name!r} not found at {path}")
    return path
