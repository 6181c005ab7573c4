"""Files the built-in loaders' ``examples`` name, written for the conformance kit."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["write_arrays_example"]


def write_arrays_example(folder: Path) -> None:
    """``data.npz``: 16 signals ``x`` [16, 1, 32] and balanced binary labels ``y``."""
    rng = np.random.RandomState(0)
    np.savez(folder / "data.npz", x=rng.randn(16, 1, 32).astype("float32"), y=np.arange(16) % 2)
