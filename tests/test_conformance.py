"""The host's own built-in components pass the conformance kit."""

from __future__ import annotations

import pytest

from ssl_domains.testing import check_case, component_cases


@pytest.mark.parametrize("case", component_cases("ssl_domains"), ids=str)
def test_builtin_conformance(case) -> None:
    check_case(case)


def test_unknown_plugin_is_an_error_not_an_empty_test_set() -> None:
    from ssl_domains.errors import PluginError

    with pytest.raises(PluginError, match="plugin 'nope' is not loaded"):
        component_cases("nope")
