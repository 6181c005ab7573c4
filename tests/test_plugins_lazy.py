"""Deferred registration: loading plugins runs no registration hook until the registry is used
(the command line's fast path), and then each runs exactly once."""

from __future__ import annotations

import types

import pytest

from ssl_domains import hookimpl
from ssl_domains.errors import PluginError
from ssl_domains.plugins import Host


def _plugin(calls: list[str], fail: bool = False) -> types.SimpleNamespace:
    @hookimpl
    def register_baselines(registry):
        calls.append("baselines")
        if fail:
            raise RuntimeError("boom")
        registry.add("lazy_base", lambda: None, description="x")

    @hookimpl
    def register_commands(cli):
        calls.append("commands")

    return types.SimpleNamespace(register_baselines=register_baselines, register_commands=register_commands)


def test_registration_waits_for_the_registry() -> None:
    calls: list[str] = []
    host = Host()
    plugin = host.register_module(_plugin(calls), name="lazyplug", distribution="lazyplug", version="1",
                                  components=False)
    assert calls == [] and plugin.components == {}
    host.pm.hook.register_commands(cli=None)
    assert calls == ["commands"]
    assert host.registry.get("baseline", "lazy_base").plugin == "lazyplug"
    assert calls == ["commands", "baselines"]
    host.registry  # noqa: B018 - a second use runs nothing again
    assert calls == ["commands", "baselines"]
    assert host.describe()["plugins"][0]["components"] == {"baseline": ["lazy_base"]}


def test_eager_registration_is_the_default() -> None:
    calls: list[str] = []
    Host().register_module(_plugin(calls), name="eagerplug", distribution="eagerplug", version="1")
    assert calls == ["baselines"]


def test_deferred_hook_failure_surfaces_on_first_use() -> None:
    host = Host()
    host.register_module(_plugin([], fail=True), name="badplug", distribution="badplug", version="1",
                         components=False)
    with pytest.raises(PluginError, match="plugin 'badplug': register_baselines failed: RuntimeError: boom"):
        host.registry  # noqa: B018


def test_load_without_components_defers_the_builtins() -> None:
    host = Host().load(entry_points=[], components=False)
    assert "ssl_domains" in host.plugins and host._pending == ["ssl_domains"]
    assert "mlp" in host.registry.names("backbone") and host._pending == []
