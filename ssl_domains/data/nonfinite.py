"""Non-finite input values, found and handled the same way by every loader.

Time-series loaders (NaN marks a missing sample there) and volume loaders (where a NaN voxel is
as wrong as an ``inf``) share one option, ``nonfinite``: ``"mask"`` treats such values as
missing (each loader says what that means for its data) with one warning per file and count,
``"refuse"`` stops with one line naming the file, the count and where the first one is. Values
beyond float32's range (``1e308``) count as non-finite: they become ``inf`` in float32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ssl_domains.errors import DataError

__all__ = ["NONFINITE_MODES", "check_nonfinite_mode", "nonfinite_values", "nonfinite_reason",
           "nonfinite_refusal"]

#: Allowed values of a loader's ``nonfinite`` option.
NONFINITE_MODES = ("mask", "refuse")
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_nonfinite_mode(source: str | Path, mode: str) -> None:
    """Refuse a ``nonfinite`` value that is not one of :data:`NONFINITE_MODES`.

    Raises:
        DataError: Naming ``source`` and the value.
    """
    if mode not in NONFINITE_MODES:
        raise DataError(source, f"nonfinite must be one of {NONFINITE_MODES}, got {mode!r}")


def nonfinite_values(values: np.ndarray, *, nan: bool) -> np.ndarray:
    """Boolean array: where ``values`` is ``inf``, ``-inf``, beyond float32's range, or (with
    ``nan``) NaN. Time series pass ``nan=False`` (NaN is a missing sample there)."""
    arr = np.asarray(values)
    with np.errstate(invalid="ignore", over="ignore"):
        bad = np.isinf(arr) | (np.abs(np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)) > _FLOAT32_MAX)
    return bad | np.isnan(arr) if nan else bad


def nonfinite_reason(count: int, unit: str, where: str, *, nan: bool) -> str:
    """``"3 non-finite value(s) (inf, -inf or beyond float32's range), first at row 12"``."""
    kinds = "NaN, inf, -inf" if nan else "inf, -inf"
    return f"{count} non-finite {unit}(s) ({kinds} or beyond float32's range), first at {where}"


def nonfinite_refusal(count: int, unit: str, where: str, *, nan: bool, masked: str) -> str:
    """:func:`nonfinite_reason` with what to do next (``masked``: what ``"mask"`` would do)."""
    return f"{nonfinite_reason(count, unit, where, nan=nan)}; fix the data or pass nonfinite='mask' to {masked}"
