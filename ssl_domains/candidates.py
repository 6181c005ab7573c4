"""What ``select: auto`` chooses among and how much evidence it needs to leave its order of
preference. No heavy imports: the config check, the CLI's ``describe`` and the selection
(:mod:`ssl_domains.autoselect.choice`) all read it."""

from __future__ import annotations

import re

__all__ = ["AUTO_CANDIDATES", "TOLERANCE", "candidate_kind", "is_candidate_name", "tolerance_words"]

#: The kinds of candidate ``select: auto`` chooses among, simplest first.
AUTO_CANDIDATES = ("baseline", "linear_probe", "ssl", "scratch", "ensemble")
#: How many standard errors of its difference to the best a candidate earlier in the order of
#: preference may fall short and still be chosen. Two, not one: the order is what held up on
#: benchmarks of the task's kind, and 10-50 labels rarely give clear evidence against it; on
#: the benchmark suite two did as well as one with each data set held out of the order and
#: better with the orders the plugins ship (benchmarks/HISTORY.md, "auto: two standard errors,
#: one baseline named").
TOLERANCE = 2.0
_ONE_BASELINE = re.compile(r"^baseline:[a-z][a-z0-9_]*$")


def is_candidate_name(name: str) -> bool:
    """Whether ``name`` may stand in an order of preference of ``select: auto``: a kind of
    :data:`AUTO_CANDIDATES`, or one baseline (``baseline:minirocket``)."""
    return name in AUTO_CANDIDATES or bool(_ONE_BASELINE.match(name))


def candidate_kind(name: str) -> str:
    """The kind of a candidate in an order of preference: ``baseline`` for every
    ``baseline:<name>``, else the name itself."""
    return "baseline" if name.startswith("baseline") else name


def tolerance_words(tolerance: float = TOLERANCE) -> str:
    """``"two standard errors"``: a tolerance in words, for rule sentences and help texts."""
    words = {1.0: "one standard error", 2.0: "two standard errors", 3.0: "three standard errors"}
    return words.get(float(tolerance), f"{tolerance:g} standard errors")
