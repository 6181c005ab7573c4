"""The host's own built-in components pass the conformance kit."""

from __future__ import annotations

import pytest

from ssl_domains.testing import check_case, component_cases


@pytest.mark.parametrize("case", component_cases("ssl_domains"), ids=str)
def test_builtin_conformance(case) -> None:
    check_case(case)
