"""How results read in every output: the number format of tables, model cards and progress
lines, and the headline metric of a set of results."""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any

from ssl_domains.scoring.metrics import PRIMARY_METRICS

__all__ = ["DECIMALS", "fmt", "headline_metric", "is_number"]

DECIMALS = 3


def is_number(value: Any) -> bool:
    """Whether ``value`` is a real number (bools are not)."""
    return isinstance(value, Real) and not isinstance(value, bool)


def fmt(value: Any, decimals: int = DECIMALS, signed: bool = False) -> str:
    """Display form: integers as is, floats with ``decimals`` decimals (``0.812``), ``n/a`` for
    NaN and None; anything else as ``str``."""
    if value is None:
        return "n/a"
    if not is_number(value):
        return str(value)
    if isinstance(value, Integral):
        return str(int(value))
    v = float(value)
    if math.isnan(v):
        return "n/a"
    return f"{v:+.{decimals}f}" if signed else f"{v:.{decimals}f}"


def headline_metric(metrics: Iterable[str]) -> str | None:
    """The first of :data:`~ssl_domains.scoring.metrics.PRIMARY_METRICS` among ``metrics``,
    else the first of them; None when there are none."""
    have = list(dict.fromkeys(str(m) for m in metrics))
    return next((m for m in PRIMARY_METRICS if m in have), have[0] if have else None)
