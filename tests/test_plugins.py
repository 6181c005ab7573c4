"""Plugin loading: isolation of import failures, strict mode, selection, contract errors."""

from __future__ import annotations

import importlib.metadata as md
import json
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from ssl_domains.errors import ContractError, PluginError, RegistryError
from ssl_domains.plugins import Host, PluginImportWarning, get_host

GOOD = """
from ssl_domains import hookimpl
from torch import nn

class Tiny(nn.Module):
    pass

@hookimpl
def register_backbones(registry):
    registry.add("tiny_{suffix}", Tiny, description="tiny")
"""


def _plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, body: str) -> md.EntryPoint:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(name, None)
    return md.EntryPoint(name=name, value=name, group="ssl_domains")


def test_plugin_that_fails_to_import_is_skipped_with_a_warning(tmp_path, monkeypatch) -> None:
    bad = _plugin(tmp_path, monkeypatch, "brokenplug", "raise ImportError('no module named foo')")
    good = _plugin(tmp_path, monkeypatch, "goodplug", GOOD.format(suffix="a"))
    with pytest.warns(PluginImportWarning, match=r'Error importing plugin "brokenplug": ImportError: no module named foo; skipped'):
        host = Host().load([bad, good])
    assert "brokenplug" in host.skipped
    assert host.registry.get("backbone", "tiny_a").plugin == "goodplug"
    assert "goodplug" in host.plugins


def test_strict_mode_makes_import_failure_fatal(tmp_path, monkeypatch) -> None:
    bad = _plugin(tmp_path, monkeypatch, "brokenplug2", "raise RuntimeError('boom')")
    monkeypatch.setenv("SSL_DOMAINS_STRICT", "1")
    with pytest.raises(PluginError, match=r'Error importing plugin "brokenplug2": RuntimeError: boom \(SSL_DOMAINS_STRICT is set\)'):
        Host().load([bad])


def test_only_and_disable_env(tmp_path, monkeypatch) -> None:
    a = _plugin(tmp_path, monkeypatch, "plug_a", GOOD.format(suffix="a"))
    b = _plugin(tmp_path, monkeypatch, "plug_b", GOOD.format(suffix="b"))
    monkeypatch.setenv("SSL_DOMAINS_PLUGINS", "plug_a")
    host = Host().load([a, b])
    assert "plug_a" in host.plugins and "plug_b" not in host.plugins
    monkeypatch.delenv("SSL_DOMAINS_PLUGINS")
    monkeypatch.setenv("SSL_DOMAINS_DISABLE", "plug_a")
    host = Host().load([a, b])
    assert "plug_b" in host.plugins and "plug_a" not in host.plugins
    assert host.skipped["plug_a"] == "disabled by environment"


def test_duplicate_name_names_both_plugins(tmp_path, monkeypatch) -> None:
    a = _plugin(tmp_path, monkeypatch, "dup_a", GOOD.format(suffix="x"))
    b = _plugin(tmp_path, monkeypatch, "dup_b", GOOD.format(suffix="x"))
    with pytest.raises(RegistryError, match="plugin 'dup_b': backbone 'tiny_x' is already registered by plugin 'dup_a'; rename one of them"):
        Host().load([a, b])


def test_misspelled_hook_is_caught(tmp_path, monkeypatch) -> None:
    ep = _plugin(tmp_path, monkeypatch, "typo_plug", """
        from ssl_domains import hookimpl
        @hookimpl
        def register_backbone(registry):
            pass
    """)
    with pytest.raises(PluginError, match="plugin 'typo_plug'.*register_backbone"):
        Host().load([ep])


@pytest.mark.parametrize("body,message", [
    ("registry.add('Bad-Name', lambda: None)", "plugin 'contract_plug': backbone name 'Bad-Name' must be snake_case"),
    ("registry.add('ok_name', 42)", "plugin 'contract_plug': backbone 'ok_name' factory is not callable \\(int\\)"),
    ("registry.add('ok_name', lambda: None, modalities=['audio'])", "plugin 'contract_plug': backbone 'ok_name' has unknown modalities \\['audio'\\]"),
    ("registry.add(lambda: None)", "plugin 'contract_plug': backbone .* has no @component"),
])
def test_contract_violations_name_the_plugin(tmp_path, monkeypatch, body, message) -> None:
    ep = _plugin(tmp_path, monkeypatch, "contract_plug", f"""
        from ssl_domains import hookimpl
        @hookimpl
        def register_backbones(registry):
            {body}
    """)
    with pytest.raises(ContractError, match=message):
        Host().load([ep])


def test_hook_raising_is_a_plugin_error(tmp_path, monkeypatch) -> None:
    ep = _plugin(tmp_path, monkeypatch, "raising_plug", """
        from ssl_domains import hookimpl
        @hookimpl
        def register_pretext_tasks(registry):
            raise KeyError('x')
    """)
    with pytest.raises(PluginError, match="plugin 'raising_plug': register_pretext_tasks failed: KeyError"):
        Host().load([ep])


def test_unknown_names_suggest_and_point_to_plugins() -> None:
    reg = get_host().registry
    with pytest.raises(RegistryError, match=r"unknown backbone 'mpl'; did you mean 'mlp'\?"):
        reg.get("backbone", "mpl")
    with pytest.raises(RegistryError, match="unknown kind 'model'; kinds are: loader, backbone"):
        reg.get("model", "x")
    with pytest.raises(RegistryError, match=r"backbone 'mlp' \(plugin ssl_domains\): got an unexpected keyword argument 'colour'; see `ssl-domains describe backbone mlp`"):
        reg.create("backbone", "mlp", input_shape=[1, 4], colour=1)


def test_missing_plugin_hint(monkeypatch) -> None:
    """The installed plugin's own @component markers name what it provides: no host list."""
    monkeypatch.setenv("SSL_DOMAINS_DISABLE", "medical")
    from ssl_domains.plugins import reset_host

    reset_host()
    try:
        with pytest.raises(RegistryError, match=r"^backbone 'unet_encoder' needs plugin 'medical' \(ssl-domains-medical\), which is installed but not loaded: disabled by environment \(SSL_DOMAINS_PLUGINS / SSL_DOMAINS_DISABLE\)$"):
            get_host().registry.get("backbone", "unet_encoder")
        with pytest.raises(RegistryError, match=r"needs plugin 'medical'"):  # every kind of component
            get_host().registry.get("loader", "tumor_patches")
        with pytest.raises(RegistryError, match=r"^unknown backbone 'no_such_encoder'"):
            get_host().registry.get("backbone", "no_such_encoder")
    finally:
        reset_host()


def test_missing_plugin_hint_for_a_plugin_that_failed_to_import(tmp_path, monkeypatch) -> None:
    bad = _plugin(tmp_path, monkeypatch, "halfplug", """
        from ssl_domains.registry import component

        @component("half_encoder")
        class HalfEncoder:
            pass

        raise ImportError("no module named shiny")
    """)
    with pytest.warns(PluginImportWarning):
        host = Host().load([bad])
    with pytest.raises(RegistryError, match=r"^backbone 'half_encoder' needs plugin 'halfplug' \(halfplug\), which is installed but not loaded: ImportError: no module named shiny$"):
        host.registry.get("backbone", "half_encoder")


def test_plugins_json_lists_shipped_plugins() -> None:
    from ssl_domains.cli import cli

    res = CliRunner().invoke(cli, ["plugins", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    by_name = {p["name"]: p for p in info["plugins"]}
    assert {"ssl_domains", "medical", "timeseries"} <= set(by_name)
    assert by_name["medical"]["distribution"] == "ssl-domains-medical"
    assert "unet_encoder" in by_name["medical"]["components"].get("backbone", [])
    assert "patch_transformer" in by_name["timeseries"]["components"].get("backbone", [])
    assert "mlp" in by_name["ssl_domains"]["components"]["backbone"]
