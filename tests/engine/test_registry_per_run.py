"""One registry per run, passed down: no stage reaches for the plugin host's global registry.
A loader and a baseline that only a private registry knows train, evaluate and predict, and
a sweep's networks and baselines all come from the registry it was given."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ssl_domains.autoselect.arms import Size
from ssl_domains.builtin.arrays import ArrayDataset
from ssl_domains.builtin.logistic import LogisticBaseline
from ssl_domains.config import ComponentRef, parse_config
from ssl_domains.engine.evaluate import evaluate, predict_data
from ssl_domains.engine.finetune import finetune
from ssl_domains.errors import RegistryError
from ssl_domains.plugins import get_host
from ssl_domains.registry import Registrar, Registry
from ssl_domains.sweep.run import run_sweep
from tests.conftest import make_config


def _private_registry() -> Registry:
    """The host's components plus a loader and a baseline under names the host does not know."""
    private = Registry()
    for entry in get_host().registry.entries():
        private.add(entry)
    Registrar(private, "loader", "test", "0").add("private_arrays", ArrayDataset)
    Registrar(private, "baseline", "test", "0").add(
        "private_logistic", LogisticBaseline, modalities=("image", "signal"), dims=(1, 2, 3))
    return private


def _config(tmp_path: Path, arrays: Path) -> dict:
    src = {"name": "private_arrays", "args": {"path": str(arrays)}}
    return make_config(tmp_path, arrays, pretrain=None, baselines=[{"name": "private_logistic"}], **{
        "finetune.data.train": src, "finetune.data.test": src, "finetune.from_scratch": True,
        "finetune.train.epochs": 1})


def test_a_run_builds_evaluates_and_predicts_from_the_registry_it_is_given(tmp_path: Path, arrays: Path) -> None:
    private = _private_registry()
    cfg = parse_config(_config(tmp_path, arrays))
    run = tmp_path / "runs" / "private"
    ran = finetune(cfg, run, registry=private)
    assert ran["n_test"] == 400
    again = evaluate(run, registry=private)
    assert again["metrics"]["auroc"] == pytest.approx(ran["test"]["auroc"])
    loader = ComponentRef(name="private_arrays", args={"path": str(arrays), "y_key": None})
    assert predict_data(run, loader, tmp_path / "p.csv", registry=private)["items"] == 400
    with pytest.raises(RegistryError, match="unknown loader 'private_arrays'"):
        evaluate(run, registry=get_host().registry)  # the host's registry was never asked before


def test_a_sweep_trains_its_networks_and_baselines_from_its_registry(tmp_path: Path, arrays: Path) -> None:
    cfg = parse_config(_config(tmp_path, arrays))
    out = tmp_path / "sweep"
    run_sweep(cfg, out, sizes=[Size(count=40)], seeds=[0], arms=["scratch", "baseline"],
              registry=_private_registry(), echo=lambda line: None)
    cells = sorted(p.parent.name for p in (out / "cells").glob("*/eval.json"))
    assert cells == ["baseline-private_logistic_40_0", "scratch_40_0"]
    ev = json.loads((out / "cells" / "baseline-private_logistic_40_0" / "eval.json").read_text())
    assert ev["n_test"] == 400
