"""Every component the timeseries plugin registers passes the host's conformance kit."""

from __future__ import annotations

import pytest

from ssl_domains.testing import Case, check_case, component_cases


@pytest.mark.parametrize("case", component_cases("timeseries"), ids=str)
def test_conformance(case: Case) -> None:
    check_case(case)
