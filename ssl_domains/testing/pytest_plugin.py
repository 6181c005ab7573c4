"""pytest plugin registered by ssl-domains: fixtures for plugin authors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ssl_domains.plugins import Host, get_host, reset_host


@pytest.fixture
def ssl_host() -> Iterator[Host]:
    """The loaded plugin host (fresh for the test)."""
    reset_host()
    yield get_host()
    reset_host()
