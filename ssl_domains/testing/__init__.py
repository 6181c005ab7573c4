"""Conformance kit: the same checks over every component a plugin registers.

In a plugin's tests::

    import pytest
    from ssl_domains.testing import check_case, component_cases

    @pytest.mark.parametrize("case", component_cases("medical"), ids=str)
    def test_conformance(case):
        check_case(case)

A new component is covered by registering it (with small ``examples``).
"""

from __future__ import annotations

from ssl_domains.testing.conformance import Case, check_case, component_cases

__all__ = ["Case", "check_case", "component_cases"]
