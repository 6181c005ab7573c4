"""The host's own built-in components pass the conformance kit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from ssl_domains.contracts import Example
from ssl_domains.registry import Entry
from ssl_domains.testing import PROPERTIES, Case, check_case, component_cases


@pytest.mark.parametrize("case", component_cases("ssl_domains"), ids=str)
def test_builtin_conformance(case) -> None:
    check_case(case)


def test_unknown_plugin_is_an_error_not_an_empty_test_set() -> None:
    from ssl_domains.errors import PluginError

    with pytest.raises(PluginError, match="plugin 'nope' is not loaded"):
        component_cases("nope")


def test_every_registered_loader_gets_one_named_check_per_property(ssl_host) -> None:
    ids = {str(c) for c in component_cases()}
    loaders = ssl_host.registry.names("loader")
    assert {"arrays", "holdout"} <= set(loaders)
    for name in loaders:
        for prop in PROPERTIES["loader"]:
            assert f"loader/{name}/{prop}" in ids, f"no check loader/{name}/{prop}"
    assert "backbone/mlp[0]/forward_shape" in ids and "finetune/classification[1]+mlp[1]/inference" in ids


class _Mislabeled(Dataset):
    """Readable items whose ``labels`` disagree with the items' labels."""

    def __init__(self, path: str) -> None:
        self.x = torch.as_tensor(np.load(path), dtype=torch.float32)
        self.labels = [1] * len(self.x)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"signal": self.x[i], "label": 0, "meta": {"index": i}}


def _write_npy(folder: Path) -> None:
    np.save(folder / "x.npy", np.zeros((3, 1, 8), dtype=np.float32))


def _loader(**meta) -> Entry:
    return Entry(kind="loader", name="mislabeled", factory=_Mislabeled, plugin="demo_plugin", version="0",
                 modalities=("signal",), dims=(1,), examples=(Example({"path": "x.npy"}),), meta=meta)


def test_a_failure_names_its_property_and_the_others_still_pass() -> None:
    entry = _loader(example_data=_write_npy)  # the kit writes x.npy into a temporary folder
    case = Case(entry, entry.examples[0], prop="labels")
    assert str(case) == "loader/mislabeled/labels"
    with pytest.raises(AssertionError, match=r"mislabeled: item 0 label 0 != labels\[0\] 1"):
        check_case(case)
    for prop in ("builds", "item", "batch", "reproducible"):
        check_case(Case(entry, entry.examples[0], prop=prop))


def test_missing_example_data_is_a_skip_that_names_the_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    entry = _loader()
    with pytest.raises(pytest.skip.Exception, match=r"loader 'mislabeled': example data not found: x\.npy"):
        check_case(Case(entry, entry.examples[0], prop="builds"))
    bare = Entry(kind="loader", name="bare", factory=_Mislabeled, plugin="demo_plugin", version="0")
    with pytest.raises(pytest.skip.Exception, match="loader 'bare' declares no examples"):
        check_case(Case(bare, Example(), prop="item"))


def test_example_data_must_name_a_function() -> None:
    entry = _loader(example_data="ssl_domains.builtin.examples:no_such_writer")
    with pytest.raises(AssertionError, match="example_data='ssl_domains.builtin.examples:no_such_writer' "
                                             "does not name a function"):
        check_case(Case(entry, entry.examples[0], prop="builds"))
