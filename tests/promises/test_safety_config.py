"""Promises of README "Safe with untrusted files and shared folders" about what a run is told:
"Config values checked when it is loaded", "Component arguments", "Labels that fit the task,
checked before training", "Strict JSON", and `--init` with `--set init.*`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from tests.promises.cli import ssl_domains, tiny_config


@pytest.mark.parametrize("override,message", [
    ("finetune.train.early_stopping.metric=aucroc",
     "config key 'finetune.train.early_stopping.metric': unknown validation metric 'aucroc'; "
     "allowed: auto, loss, auroc, auprc, sensitivity_at_specificity, sens_at_spec90, accuracy, "
     "balanced_accuracy, f1, dice"),
    ("finetune.threshold_rule=best",
     "config key 'finetune.threshold_rule': unknown threshold rule 'best'; allowed: youden, f1, "
     "spec90, sensitivity_at_specificity:<x>, fixed:<x>"),
    ("finetune.threshold_rule=sensitivity_at_specificity:1.7",
     "config key 'finetune.threshold_rule': threshold rule 'sensitivity_at_specificity:1.7': "
     "specificity must be in [0, 1]"),
    ("pretrain.train.early_stopping={metric: auroc}",
     "config key 'pretrain': train.early_stopping.metric 'auroc': pre-training validates the "
     "pretext loss only; use loss (or auto)"),
    ("finetune.mode=partial", "config key 'finetune.mode': must be 'full', 'linear' or "
     "'frozen_then_unfrozen' (got 'partial')"),
    ("finetune.label_fraction=1.5", "config key 'finetune.label_fraction': Input should be less "
     "than or equal to 1 (got 1.5)"),
])
def test_safety_closed_set_and_ranged_values_are_checked_when_the_config_is_loaded(
        tmp_path: Path, override: str, message: str) -> None:
    cfg = tiny_config(tmp_path)
    for stage in ("pretrain", "finetune"):  # refused before any work, by either stage
        res = ssl_domains(stage, str(cfg), "--set", override)
        assert res.code == 1
        assert res.error == f"Error: {cfg}: {message}"
    assert not (tmp_path / "runs").exists()


def test_safety_component_arguments_are_one_line_naming_component_and_key(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, finetune=None)
    res = ssl_domains("pretrain", str(cfg), "--set", "backbone.args.hidden=abc")
    assert res.code == 1
    assert res.error == "Error: backbone 'mlp' (plugin ssl_domains): hidden='abc': expected an integer"
    assert not (tmp_path / "runs" / "t" / "checkpoints" / "pretrain").exists()


def _labels(folder: Path, y: np.ndarray) -> Path:
    rng = np.random.RandomState(1)
    path = folder / f"labels{len(set(y.tolist()))}.npz"
    np.savez(path, x=rng.randn(len(y), 1, 32).astype("float32"), y=y)
    return path


@pytest.mark.parametrize("train,val,message", [
    (np.arange(120) % 3, None, "the labels hold 3 classes (0, 1, 2) but task 'classification' is binary"),
    (np.zeros(120, dtype=int), None, "the labeled training items hold one class only (0)"),
    (np.arange(120) % 2, np.zeros(30, dtype=int), "has no items of class(es) 1 (it holds 0)"),
], ids=["three-classes-for-binary", "one-class", "validation-missing-a-class"])
def test_safety_labels_that_do_not_fit_the_task_are_refused_before_training(
        tmp_path: Path, train: np.ndarray, val: np.ndarray | None, message: str) -> None:
    src = {"name": "arrays", "args": {"path": str(_labels(tmp_path, train))}}
    sections = {"finetune.data.train": src, "finetune.data.test": src}
    if val is not None:
        (tmp_path / "val").mkdir()
        sections["finetune.data.val"] = {"name": "arrays", "args": {"path": str(_labels(tmp_path / "val", val))}}
    cfg = tiny_config(tmp_path, pretrain=None, **{"finetune.from_scratch": True, **sections})
    res = ssl_domains("finetune", str(cfg))
    assert res.code == 1
    assert message in res.error and len(res.err.strip().splitlines()) == 1
    assert not (tmp_path / "runs" / "t" / "checkpoints" / "finetune").exists()


def test_safety_strict_json_undefined_values_are_null_with_the_reason(tmp_path: Path) -> None:
    one_class = _labels(tmp_path, np.zeros(60, dtype=int))
    cfg = tiny_config(tmp_path, pretrain=None, **{
        "finetune.from_scratch": True, "finetune.train.epochs": 1,
        "finetune.data.test": {"name": "arrays", "args": {"path": str(one_class)}}})
    res = ssl_domains("finetune", str(cfg))
    assert res.code == 0, res.err
    run = tmp_path / "runs" / "t"
    for path in [run / "eval.json", run / "metrics.jsonl", run / "environment.json"]:
        text = path.read_text()
        assert "NaN" not in text and "Infinity" not in text, path
    ev = json.loads((run / "eval.json").read_text())
    assert ev["test"]["auroc"] is None
    assert ev["undefined_metrics"]["test"]["auroc"] == "one class only (0) in the test labels"
    printed = json.loads(res.out)
    assert printed["test"]["auroc"] is None


def test_safety_init_from_the_command_line_takes_set_init_overrides(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, finetune=None, **{"pretrain.train.epochs": 1})
    assert ssl_domains("pretrain", str(cfg)).code == 0
    export = tmp_path / "runs" / "t" / "export"
    res = ssl_domains("pretrain", str(cfg), "--init", str(export), "--set", "init.strict=true",
                      "--out", str(tmp_path / "strict"))
    assert res.code == 0, res.err
    assert json.loads((tmp_path / "strict" / "init_report.json").read_text())["missing"] == []
    assert "strict: true" in (tmp_path / "strict" / "config.yaml").read_text()

    partial = tmp_path / "partial.safetensors"  # one tensor short: strict refuses, lenient loads
    tensors = load_file(str(export / "backbone.safetensors"))
    dropped = sorted(tensors)[0]
    save_file({k: v for k, v in tensors.items() if k != dropped}, str(partial))
    res = ssl_domains("pretrain", str(cfg), "--init", str(partial), "--set", "init.strict=true",
                      "--out", str(tmp_path / "refused"))
    assert res.code == 1
    assert res.error == (f"Error: {partial}: strict init but init from safetensors (ssl-domains): "
                         "loaded 3 tensors, missing 1, unexpected 0, shape-mismatched 0")
    res = ssl_domains("pretrain", str(cfg), "--init", str(partial), "--out", str(tmp_path / "lenient"))
    assert res.code == 0, res.err
    assert json.loads((tmp_path / "lenient" / "init_report.json").read_text())["missing"] == [dropped]


def test_safety_a_monitored_metric_the_validation_never_reports_stops_at_the_first_validation(
        tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, pretrain=None, **{"finetune.from_scratch": True})
    res = ssl_domains("finetune", str(cfg), "--set", "finetune.train.early_stopping.metric=f1")
    assert res.code == 1
    assert res.error == ("Error: finetune.train.early_stopping.metric 'f1': this task's validation reports "
                         "auprc, auroc, loss, sens_at_spec90, sensitivity_at_specificity; choose one")
    run = tmp_path / "runs" / "t"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["split"] for r in records if r["split"] == "val"] == ["val"]  # one validation
    assert max(r["epoch"] for r in records) == 0  # in the first epoch of three
