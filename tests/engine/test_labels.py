"""Fine-tuning refuses labels and starting points that cannot give the model the user meant, and
writes strict JSON with a reason where a metric is undefined."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ssl_domains.config import parse_config
from ssl_domains.data.splits import split_off
from ssl_domains.engine.finetune import finetune
from ssl_domains.errors import ConfigError, DataError
from ssl_domains.plugins import get_host
from tests.conftest import make_config


def _npz(path: Path, y: np.ndarray, seed: int = 0) -> Path:
    rng = np.random.RandomState(seed)
    x = rng.randn(len(y), 1, 32).astype("float32")
    x[:, 0, :8] += y[:, None]  # learnable
    np.savez(path, x=x, y=y)
    return path


def _cfg(tmp_path: Path, data: Path, **over: Any) -> Any:
    return parse_config(make_config(tmp_path, data, pretrain=None,
                                    **{"finetune.from_scratch": True, "finetune.train.epochs": 1, **over}))


def test_finetune_without_weights_is_refused_unless_from_scratch(tmp_path: Path, arrays: Path) -> None:
    cfg = parse_config(make_config(tmp_path, arrays, pretrain=None))
    with pytest.raises(ConfigError, match=r"fine-tuning has no pre-trained weights to start from .* "
                                          r"set finetune\.from_scratch: true"):
        finetune(cfg, tmp_path / "runs" / "none", registry=get_host().registry)
    assert not (tmp_path / "runs" / "none").exists()  # refused before anything is written
    s = finetune(_cfg(tmp_path, arrays), tmp_path / "runs" / "scratch", registry=get_host().registry)
    assert s["init"] == "scratch"


def test_three_classes_for_a_binary_task_are_refused(tmp_path: Path) -> None:
    data = _npz(tmp_path / "m.npz", np.arange(300) % 3)
    with pytest.raises(ConfigError) as err:
        finetune(_cfg(tmp_path, data), tmp_path / "runs" / "m", registry=get_host().registry)
    assert str(err.value) == (
        "fine-tuning data (arrays): the labels hold 3 classes (0, 1, 2) but task 'classification' is "
        "binary (num_classes, its default = 2, labels 0..1); for a multi-class model set "
        "finetune.task.args.num_classes: 3, otherwise map the labels to 0..1")
    s = finetune(_cfg(tmp_path, data, **{"finetune.task.args": {"num_classes": 3}}), tmp_path / "runs" / "m3", registry=get_host().registry)
    assert s["threshold"] is None and "accuracy" in s["test"]


def test_one_class_is_refused(tmp_path: Path) -> None:
    data = _npz(tmp_path / "one.npz", np.zeros(100, dtype=int))
    with pytest.raises(DataError, match=r"^fine-tuning data \(arrays\): the labeled training items hold "
                                        r"one class only \(0\)"):
        finetune(_cfg(tmp_path, data), tmp_path / "runs" / "one", registry=get_host().registry)


def test_validation_without_every_class_is_refused(tmp_path: Path) -> None:
    data = _npz(tmp_path / "d.npz", np.arange(200) % 2)
    val = _npz(tmp_path / "v.npz", np.zeros(40, dtype=int), seed=1)
    cfg = _cfg(tmp_path, data, **{"finetune.data.val": {"name": "arrays", "args": {"path": str(val)}}})
    with pytest.raises(DataError, match=r"^validation data \(arrays\): has no items of class\(es\) 1 "
                                        r"\(it holds 0\)"):
        finetune(cfg, tmp_path / "runs" / "v", registry=get_host().registry)
    few = _npz(tmp_path / "few.npz", np.array([0] * 38 + [1] * 2), seed=1)
    cfg = _cfg(tmp_path, data, **{"finetune.data.val": {"name": "arrays", "args": {"path": str(few)}}})
    s = finetune(cfg, tmp_path / "runs" / "few", registry=get_host().registry)
    assert s["warnings"][0].startswith("validation holds only 2 item(s) of class 1")
    assert json.loads((tmp_path / "runs" / "few" / "eval.json").read_text())["warnings"] == s["warnings"]


def test_validation_carve_of_one_case_must_hold_every_class() -> None:
    # one recording whose anomalies all come first: the tail carve would validate one class
    with pytest.raises(ConfigError, match="validation is carved from the last 20% of the only case"):
        split_off(100, 0.2, seed=0, labels=[1] * 20 + [0] * 80, groups=["rec"] * 100)
    both = [0] * 60 + [1] * 10 + [0] * 20 + [1] * 10
    keep, held = split_off(100, 0.3, seed=0, labels=both, groups=["rec"] * 100)
    assert list(held) == list(range(70, 100))
    # several cases: a group split that keeps every class on both sides is found (the first
    # seeded split of these 10 cases leaves class 1 out of validation)
    groups = [f"case{i // 10}" for i in range(100)]
    y = [1 if i // 10 in (0, 1) else 0 for i in range(100)]
    keep, held = split_off(100, 0.2, seed=0, labels=y, groups=groups)
    assert {y[i] for i in held} == {0, 1} and {y[i] for i in keep} == {0, 1}
    assert not {groups[i] for i in keep} & {groups[i] for i in held}


def test_one_class_test_set_gives_null_auroc_with_a_reason(tmp_path: Path) -> None:
    data = _npz(tmp_path / "d.npz", np.arange(200) % 2)
    test = _npz(tmp_path / "t.npz", np.zeros(50, dtype=int), seed=2)
    cfg = _cfg(tmp_path, data, **{"finetune.data.test": {"name": "arrays", "args": {"path": str(test)}}})
    run = tmp_path / "runs" / "t"
    s = finetune(cfg, run, registry=get_host().registry)
    text = (run / "eval.json").read_text()
    ev = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert ev["test"]["auroc"] is None and s["test"]["auroc"] is None
    assert ev["undefined_metrics"]["test"]["auroc"] == "one class only (0) in the test labels"
    assert any(w.startswith("test:") and "auroc" in w for w in ev["warnings"])
    for line in (run / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    from ssl_domains.report.pages import build_report

    html = build_report(run).read_text()
    assert "Warning: test: " in html and "one class only (0) in the test labels" in html


@pytest.mark.parametrize(("n0", "n1", "fraction"), [(8, 2, 0.2), (5, 2, 0.2), (4, 3, 0.2),
                                                    (30, 3, 0.1), (80, 20, 0.2)])
def test_a_stratified_carve_holds_every_class(n0: int, n1: int, fraction: float) -> None:
    """A proportional split of 8 + 2 items into a 2-item carve would hold 2 of the common
    class; 7 items at 20 % would hold 1. Both leave a class out of validation. The carve holds
    one of each (and, with enough items, the proportional share), and keeps one of each."""
    y = [0] * n0 + [1] * n1
    for seed in range(5):
        keep, held = split_off(len(y), fraction, seed=seed, labels=y)
        assert sorted([*keep, *held]) == list(range(len(y)))
        assert {y[i] for i in held} == {0, 1} and {y[i] for i in keep} == {0, 1}
        assert len(held) == max(2, round(len(y) * fraction))
    keep, held = split_off(100, 0.2, seed=0, labels=[0] * 80 + [1] * 20)
    assert sum(i >= 80 for i in held) == 4  # the proportional share where it is >= 1
