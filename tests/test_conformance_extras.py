"""The conformance kit skips a component whose optional extra is absent, with its install hint,
and fails instead when CI says every extra is installed."""

from __future__ import annotations

import pytest

from ssl_domains.contracts import Example
from ssl_domains.registry import Entry
from ssl_domains.testing import Case, check_case
from ssl_domains.testing.conformance import missing_requirements


class _Never:
    def fit(self, x, y):  # pragma: no cover - must not run: the extra is missing
        raise AssertionError("the kit ran a component whose extra is missing")


def _entry(**meta) -> Entry:
    return Entry(kind="baseline", name="needs_extra", factory=_Never, plugin="demo_plugin",
                 version="0", modalities=("signal",), meta=meta)


def test_missing_extra_is_skipped_with_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_DOMAINS_REQUIRE_EXTRAS", raising=False)
    entry = _entry(requires=("surely_not_installed_mod_42",), install_hint="pip install 'demo[extra]'")
    assert missing_requirements(entry) == ["surely_not_installed_mod_42"]
    with pytest.raises(pytest.skip.Exception,
                       match=r"baseline 'needs_extra' needs surely_not_installed_mod_42: pip install 'demo\[extra\]'"):
        check_case(Case(entry, Example()))


def test_missing_extra_fails_when_ci_requires_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_DOMAINS_REQUIRE_EXTRAS", "1")
    entry = _entry(requires=("surely_not_installed_mod_42",))
    with pytest.raises(pytest.fail.Exception, match="pip install surely_not_installed_mod_42.*REQUIRE_EXTRAS"):
        check_case(Case(entry, Example()))


def test_installed_requirement_runs_the_checks() -> None:
    entry = _entry(requires=("numpy",))
    assert missing_requirements(entry) == []
    with pytest.raises(AssertionError, match="extra is missing"):
        check_case(Case(entry, Example()))


def test_minirocket_declares_its_extra(ssl_host, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ssl_domains_timeseries")
    entry = ssl_host.registry.get("baseline", "minirocket")
    assert entry.meta["requires"] == ("aeon",)
    assert "ssl-domains-timeseries[minirocket]" in entry.meta["install_hint"]
    # a hint that already names the component is the whole message (no repetition)
    monkeypatch.delenv("SSL_DOMAINS_REQUIRE_EXTRAS", raising=False)
    odd = _entry(requires=("surely_not_installed_mod_42",),
                 install_hint="baseline 'needs_extra' needs it: pip install x")
    with pytest.raises(pytest.skip.Exception) as info:
        check_case(Case(odd, Example()))
    assert str(info.value.msg) == "baseline 'needs_extra' needs it: pip install x"
