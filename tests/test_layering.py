"""The layering the import-linter contracts in pyproject.toml describe, seen from running code:
what importing a layer loads, and components that build components get their registry passed
in (no global host below the engine)."""

from __future__ import annotations

import importlib.util
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import ssl_domains
from ssl_domains.builtin.arrays import ArrayDataset
from ssl_domains.builtin.holdout import HoldoutDataset
from ssl_domains.config import ComponentRef
from ssl_domains.contracts import Backbone, Conversion, missing_members
from ssl_domains.engine.build import build_backbone
from ssl_domains.errors import ContractError, RegistryError
from ssl_domains.registry import Registrar, Registry
from tests.conftest import REPO

# imports the given modules (and every module of the given packages) in a fresh interpreter,
# then reports which of the watched libraries got loaded
PROBE = r"""
import importlib, json, pkgutil, sys
for name in json.loads(sys.argv[1]):
    module = importlib.import_module(name)
    for info in pkgutil.iter_modules(getattr(module, "__path__", []), name + "."):
        importlib.import_module(info.name)
watched = ("matplotlib", "pandas", "torch")
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in watched})))
"""


def loaded_by(*modules: str) -> list[str]:
    res = subprocess.run([sys.executable, "-c", PROBE, json.dumps(list(modules))],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_pretraining_loads_no_plotting_and_no_data_frames() -> None:
    loaded = loaded_by("ssl_domains.engine.pretrain")
    assert "matplotlib" not in loaded and "pandas" not in loaded, loaded
    assert "torch" in loaded  # the probe did import the engine


def test_no_module_of_the_engine_loads_plotting_or_data_frames() -> None:
    """Nor finetune, evaluate, assess, ...: scikit-learn imports pandas when it is installed, so
    the engine and what it imports (scoring, data) import scikit-learn where they use it."""
    loaded = loaded_by("ssl_domains.engine")  # the package and every module in it
    assert "matplotlib" not in loaded and "pandas" not in loaded, loaded


def test_the_registry_and_the_plugin_host_load_no_torch() -> None:
    """``ssl-domains --help`` and the catalog's fast path import them; the contracts they read
    name torch types only for type checkers."""
    assert loaded_by("ssl_domains.contracts", "ssl_domains.registry", "ssl_domains.plugins",
                     "ssl_domains.catalog") == []


def _registry_with_arrays_as(name: str) -> Registry:
    registry = Registry()
    Registrar(registry, "loader", "test", "0").add(name, ArrayDataset)
    Registrar(registry, "loader", "ssl_domains", "0").add(HoldoutDataset)
    return registry


def test_a_wrapping_loader_builds_the_wrapped_one_from_the_registry_that_built_it(arrays: Path) -> None:
    registry = _registry_with_arrays_as("private_arrays")  # a name the global host does not know
    args = {"loader": "private_arrays", "loader_args": {"path": str(arrays)}, "test_size": 0.25}
    pool = registry.create("loader", "holdout", **args)
    test = registry.create("loader", "holdout", part="test", **args)
    assert isinstance(pool.base, ArrayDataset)
    assert len(pool) + len(test) == len(pool.base) == 400 and not set(pool.indices) & set(test.indices)
    with pytest.raises(RegistryError, match=r"loader 'holdout' \(plugin ssl_domains\): 'registry' is supplied by the host"):
        registry.create("loader", "holdout", registry=registry, **args)
    with pytest.raises(TypeError, match="registry"):
        HoldoutDataset(**args)  # type: ignore[call-arg]


def test_the_registry_parameter_is_not_shown_as_an_argument() -> None:
    entry = _registry_with_arrays_as("arrays").get("loader", "holdout")
    described = entry.describe()
    assert "registry" not in described["signature"]
    assert described["signature"].startswith("(loader: 'str'")


def test_backbones_without_the_surface_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoSpec:
        num_features = 3

        def forward_features(self, x):  # noqa: ANN001, ANN202
            return x

        def parameters(self, recurse=True):  # noqa: ANN001, ANN202
            return iter(())

        def state_dict(self):  # noqa: ANN202
            return {}

    registry = Registry()
    Registrar(registry, "backbone", "plug", "0").add("no_spec", NoSpec)
    assert missing_members(NoSpec(), Backbone) == ["input_spec"]
    with pytest.raises(ContractError, match=r"plugin 'plug': backbone 'no_spec' has no input_spec \(backbones are nn.Modules"):
        build_backbone(registry, ComponentRef(name="no_spec"))


def test_plugin_facing_types_live_in_the_contracts() -> None:
    import ssl_domains.engine.checkpoints as checkpoints
    import ssl_domains.hookspecs as hookspecs

    assert not hasattr(checkpoints, "Conversion")  # one home: ssl_domains.contracts
    assert "Conversion" in hookspecs.convert_checkpoint.__annotations__["return"]
    assert Conversion(state_dict={}, source="x").notes == []


def test_the_plugin_contract_covers_every_module_of_the_shipped_plugins() -> None:
    """The import-linter contract lists the plugins' modules (their command groups, the CLI
    layer of a plugin, have their own contract): a module added later must be listed too."""
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads pyproject.toml")
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    components = next(c for c in contracts if c["name"].startswith("Plugin components import only"))
    commands = next(c for c in contracts if c["name"].startswith("Plugin command groups"))
    listed = set(components["source_modules"]) | set(commands["source_modules"])
    for plugin in ("ssl_domains_medical", "ssl_domains_timeseries"):
        spec = importlib.util.find_spec(plugin)
        assert spec is not None and spec.submodule_search_locations
        children = {f"{plugin}.{m.name}" for m in pkgutil.iter_modules(spec.submodule_search_locations)}
        assert children and children <= listed, sorted(children - listed)


#: What a plugin's components may import (README "Layering"); the contract forbids the rest.
PUBLIC = {"ssl_domains", "ssl_domains.errors", "ssl_domains.contracts", "ssl_domains.registry",
          "ssl_domains.identifiers", "ssl_domains.kinds", "ssl_domains.data", "ssl_domains.data.skipping",
          "ssl_domains.data.nonfinite",
          "ssl_domains.builtin", "ssl_domains.builtin.classification"}


def test_every_host_module_is_public_or_forbidden_to_plugins() -> None:
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads pyproject.toml")
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    forbidden = next(c for c in contracts if c["name"].startswith("Plugin components import only"))["forbidden_modules"]
    modules = {"ssl_domains"} | {m.name for m in pkgutil.walk_packages(ssl_domains.__path__, "ssl_domains.")}
    for module in sorted(modules):
        banned = any(module == f or module.startswith(f + ".") for f in forbidden)
        assert banned != (module in PUBLIC), f"{module}: {'public and forbidden' if banned else 'neither public nor forbidden'}"
