"""Each distribution declares what its package imports (and the host nothing only a plugin uses)."""

from __future__ import annotations

import importlib.metadata as md
import re
import sys

import grimp
import pytest

from tests.conftest import REPO

#: Declared without an import of their own: loaded at run time by a library the package uses.
RUNTIME_ONLY = {
    "pylibjpeg", "pylibjpeg-openjpeg", "pylibjpeg-libjpeg",  # pydicom's JPEG decoders
    "einops",  # MONAI's transformer blocks
    "pyarrow",  # pandas' parquet reader
}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _declared(pyproject: str) -> tuple[set[str], set[str]]:
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads pyproject.toml")
    project = tomllib.loads((REPO / pyproject).read_text())["project"]
    extras = {_name(r) for reqs in project.get("optional-dependencies", {}).values() for r in reqs}
    return {_name(r) for r in project["dependencies"]}, extras


def _imported(package: str) -> set[str]:
    """Distributions of the third-party modules ``package`` imports (anywhere, lazily too)."""
    graph = grimp.build_graph(package, include_external_packages=True)
    owners = md.packages_distributions()
    out = set()
    for module in graph.modules:
        top = module.split(".")[0]
        if top == package or top in sys.stdlib_module_names:
            continue
        # an optional extra that is not installed (aeon in CI's first pass) goes by its name
        out |= {_name(d) for d in owners.get(top, [top])}
    return out


@pytest.mark.parametrize(("package", "pyproject"), [
    ("ssl_domains", "pyproject.toml"),
    ("ssl_domains_medical", "plugins/medical/pyproject.toml"),
    ("ssl_domains_timeseries", "plugins/timeseries/pyproject.toml"),
])
def test_a_distribution_declares_exactly_what_it_imports(package: str, pyproject: str) -> None:
    required, extras = _declared(pyproject)
    imported = _imported(package)
    assert imported - required - extras == set(), f"{pyproject}: imported but not declared"
    assert required - imported - RUNTIME_ONLY == set(), f"{pyproject}: declared but not imported"


def test_the_host_does_not_depend_on_the_medical_libraries() -> None:
    required, _ = _declared("pyproject.toml")
    assert not {"monai", "pydicom", "nibabel"} & required
    assert {"monai", "pydicom", "nibabel"} <= _declared("plugins/medical/pyproject.toml")[0]
