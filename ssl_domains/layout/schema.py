"""What a file that does not fit its schema is told: the first problem, in one line."""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["first_problem"]


def first_problem(err: ValidationError) -> str:
    """``where: what`` of the first error (``and N more`` when there are several), e.g.
    ``backbone: Field required``."""
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "the object"
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"
