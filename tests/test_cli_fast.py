"""Fast paths of the command line: --help, --version, plugins, list and describe import no
torch, no MONAI and no component module (plugin command groups are lazy; component listings
come from the cached catalog)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from ssl_domains.catalog import catalog_key, load_catalog
from ssl_domains.cli import LazyGroup

# runs the commands in one process, then reports their output and the heavy modules imported
PROBE = r"""
import contextlib, io, json, sys
from ssl_domains.cli import main
outs = []
for args in json.loads(sys.argv[1]):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            main(args)
        except SystemExit as exc:
            assert not exc.code, (args, exc.code)
    outs.append(buf.getvalue())
heavy = sorted(m for m in sys.modules
               if m.split(".")[0] in ("torch", "monai")
               or (m.startswith(("ssl_domains_medical.", "ssl_domains_timeseries."))
                   and not m.endswith(".plugin"))
               or m.startswith("ssl_domains.builtin."))
print(json.dumps({"outs": outs, "heavy": heavy}))
"""

COMMANDS = [["--help"], ["--version"], ["plugins"], ["list", "backbone"], ["list", "loader"],
            ["describe", "backbone", "mlp"], ["describe", "pretext", "masked_inpainting"],
            ["describe", "finetune", "anomaly_classification"]]


def probe(commands: list[list[str]], cache: Path) -> dict:
    env = {**os.environ, "SSL_DOMAINS_CACHE": str(cache), "PYTHONWARNINGS": "ignore"}
    res = subprocess.run([sys.executable, "-c", PROBE, json.dumps(commands)], capture_output=True,
                         text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_help_and_version_import_nothing_heavy_even_without_a_cache(tmp_path: Path) -> None:
    out = probe([["--help"], ["--version"]], tmp_path / "none")
    assert out["heavy"] == []
    assert "medical" in out["outs"][0] and "timeseries" in out["outs"][0]  # lazy plugin groups listed
    assert "Medical imaging tools" in out["outs"][0]
    assert out["outs"][1].strip() == "ssl-domains, version 0.1.0"


def test_listing_from_the_catalog_imports_no_model_code(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = probe(COMMANDS, cache)  # builds the catalog: imports everything once
    assert any(m.startswith("torch") for m in first["heavy"])
    assert len(list(cache.glob("catalog-*.json"))) == 1
    second = probe(COMMANDS, cache)
    for _ in range(2):  # a source file edited meanwhile (a shared checkout) is a rebuild
        if not second["heavy"]:
            break
        second = probe(COMMANDS, cache)
    assert second["heavy"] == []  # no torch, no monai, no component module
    assert second["outs"] == first["outs"]  # same answers as from the loaded plugins
    help_, version, plugins, backbones, loaders, mlp, masked, anomaly = second["outs"]
    assert "resnet_encoder" in backbones and "mlp" in backbones and "tcn" in backbones
    assert "dicom" in loaders and "arrays" in loaders
    assert "plugin ssl_domains" in mlp and "hidden" in mlp
    assert "mask_ratio" in masked and "medical" in masked
    assert ("select: auto prefers, among candidates within two standard errors of the best: "
            "baseline:minirocket, ensemble, ssl, scratch, linear_probe, baseline"
            ) in anomaly  # the task's `prefer`
    assert "medical (ssl-domains-medical 0.1.0)" in plugins


def test_plugin_group_imports_on_use() -> None:
    res = subprocess.run([sys.executable, "-m", "ssl_domains.cli", "timeseries", "--help"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "Time-series plugin" in res.stdout and "Commands:" in res.stdout


def test_catalog_key_follows_plugin_selection(monkeypatch) -> None:
    monkeypatch.delenv("SSL_DOMAINS_DISABLE", raising=False)
    base = catalog_key()
    assert catalog_key() == base
    monkeypatch.setenv("SSL_DOMAINS_DISABLE", "timeseries")
    assert catalog_key() != base


def test_catalog_matches_the_registry(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SSL_DOMAINS_CACHE", str(tmp_path))
    cached = load_catalog()
    again = load_catalog()  # read back from the file
    fresh = load_catalog(use_cache=False)
    assert again == fresh == cached
    names = {(c["kind"], c["name"]) for c in fresh["components"]}
    assert ("backbone", "mlp") in names and ("baseline", "minirocket") in names


def test_unknown_component_still_gets_the_registry_error(tmp_path: Path) -> None:
    env = {**os.environ, "SSL_DOMAINS_CACHE": str(tmp_path)}
    res = subprocess.run([sys.executable, "-m", "ssl_domains.cli", "describe", "backbone", "resnet_encodr"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 1
    assert "did you mean 'resnet_encoder'" in res.stderr.strip().splitlines()[-1]


def test_lazy_group_lists_and_loads() -> None:
    import click

    group = LazyGroup("top")
    group.add_lazy_command("ls", "ssl_domains.cli:list_cmd", "Listing, lazily.")
    runner = CliRunner()
    res = runner.invoke(group, ["--help"])
    assert "ls" in res.output and "Listing, lazily." in res.output
    assert "ls" not in group.commands  # --help did not import it
    res = runner.invoke(group, ["ls", "--help"])
    assert res.exit_code == 0 and "List registered components of KIND" in res.output
    group.add_lazy_command("bad", "ssl_domains.cli:log", "")
    res = runner.invoke(group, ["bad"])
    assert res.exit_code != 0 and "is not a click command" in res.output
    try:
        group.add_lazy_command("x", "no_colon", "")
    except ValueError as exc:
        assert "module:attribute" in str(exc)
    else:
        raise AssertionError("a path without ':' must be refused")
    assert isinstance(group, click.Group)
