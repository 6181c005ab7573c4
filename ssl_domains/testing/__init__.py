"""Conformance kit: the same checks over every component a plugin registers.

In a plugin's tests::

    import pytest
    from ssl_domains.testing import check_case, component_cases

    @pytest.mark.parametrize("case", component_cases("medical"), ids=str)
    def test_conformance(case):
        check_case(case)

Each case is one named property of one component example, e.g.
``loader/nifti/item`` or ``backbone/resnet_encoder[0]/forward_shape``, so a failure names the
promise that broke. A new component is covered by registering it (with small ``examples``; a
loader whose example files can be written on the spot adds ``example_data="pkg.mod:writer"``).
"""

from __future__ import annotations

from ssl_domains.testing.conformance import PROPERTIES, Case, check_case, component_cases

__all__ = ["Case", "PROPERTIES", "check_case", "component_cases"]
