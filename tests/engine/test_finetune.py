"""Fine-tuning end to end on built-in components: budgets, modes, thresholds, exports."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from ssl_domains.config import ComponentRef, parse_config
from ssl_domains.engine.assess import read_assessment
from ssl_domains.engine.evaluate import evaluate, load_finetuned, predict_data
from ssl_domains.engine.finetune import finetune
from ssl_domains.engine.model_card import write_model_card, write_pretrain_card
from ssl_domains.engine.pretrain import pretrain
from ssl_domains.errors import CheckpointError, ConfigError
from ssl_domains.plugins import get_host
from tests.conftest import make_config


def test_pretrain_then_finetune_with_label_fraction(tmp_path: Path, arrays: Path) -> None:
    cfg = parse_config(make_config(tmp_path, arrays, **{"finetune.label_fraction": 0.1}))
    run = tmp_path / "runs" / "t"
    p = pretrain(cfg, run, registry=get_host().registry)
    assert p["n_train"] == 320 and p["n_val"] == 80
    card = (run / "export" / "README.md").read_text()  # pre-training writes its card with its export
    assert card.startswith("# t: pre-trained backbone\n") and "320 unlabeled training items" in card
    assert write_pretrain_card(run).read_text() == card
    s = finetune(cfg, run, registry=get_host().registry)
    # 10 % of 400 = 40 labels in all; 20 % of them validate
    assert s["n_labels"] == 40 and s["n_train"] == 32 and s["n_val"] == 8
    assert sum(s["label_counts"]["train"].values()) == 32
    assert "loaded" in s["init"] and "missing 0" in s["init"]  # backbone came from this run's pre-training
    assert 0.0 <= s["test"]["auroc"] <= 1.0 and s["n_test"] == 400
    rows = list(csv.DictReader((run / "predictions" / "test.csv").open()))
    assert len(rows) == 400 and set(rows[0]) == {"id", "label", "score", "decision"}
    # decisions follow the validation-chosen threshold exactly
    thr = s["threshold"]
    assert all(int(r["decision"]) == int(float(r["score"]) >= thr) for r in rows)
    card = (run / "export" / "README.md").read_text()  # the engine writes the final card
    assert "- items: train 32, val 8, test 400" in card and "| train | " in card
    assert f"Decision threshold {thr:.3f}" in card
    assert write_model_card(run).read_text() == card  # rendering it again from the folder: the same
    exported = json.loads((run / "export" / "config.json").read_text())
    assert exported["threshold"] == thr and exported["task"]["name"] == "classification"


def test_linear_probe_leaves_backbone_untouched(tmp_path: Path, arrays: Path) -> None:
    cfg = parse_config(make_config(tmp_path, arrays, pretrain=None, **{"finetune.mode": "linear",
                                                                     "finetune.from_scratch": True}))
    torch.manual_seed(0)
    run = tmp_path / "runs" / "lin"
    finetune(cfg, run, registry=get_host().registry)

    torch.manual_seed(0)
    fresh = get_host().registry.create("backbone", "mlp", input_shape=[1, 32], hidden=32)
    trained = load_file(str(run / "export" / "backbone.safetensors"))
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, trained[k]), k


def test_same_seed_same_result_and_budget_too_small(tmp_path: Path, arrays: Path) -> None:
    cfg = parse_config(make_config(tmp_path, arrays, pretrain=None, **{"finetune.label_count": 30,
                                                                       "finetune.from_scratch": True}))
    a = finetune(cfg, tmp_path / "a", registry=get_host().registry)
    b = finetune(cfg, tmp_path / "b", registry=get_host().registry)
    assert a["test"] == b["test"]
    bad = parse_config(make_config(tmp_path, arrays, pretrain=None, **{"finetune.label_fraction": 0.001,
                                                                       "finetune.from_scratch": True}))
    with pytest.raises(ConfigError, match="label budget 0 is smaller than the number of classes"):
        finetune(bad, tmp_path / "c", registry=get_host().registry)


def test_evaluate_and_predict_from_export(tmp_path: Path, arrays: Path) -> None:
    cfg = parse_config(make_config(tmp_path, arrays, pretrain=None, **{"finetune.from_scratch": True}))
    run = tmp_path / "runs" / "t"
    s = finetune(cfg, run, registry=get_host().registry)
    again = evaluate(run, registry=get_host().registry)
    assert again["metrics"]["auroc"] == pytest.approx(s["test"]["auroc"])
    other = evaluate(run, ComponentRef(name="arrays", args={"path": str(arrays)}), registry=get_host().registry)
    ev = read_assessment(run)  # both evaluations went into eval.json, through the schema
    assert ev.evaluations["arrays"].n == other["n"] == 400
    assert ev.metrics("eval_arrays") == other["metrics"] and ev.metrics("test") == again["metrics"]
    assert ev.test_intervals is not None and ev.threshold == s["threshold"]
    assert json.loads((run / "eval.json").read_text())["n_eval_arrays"] == 400
    out = predict_data(run, ComponentRef(name="arrays", args={"path": str(arrays), "y_key": None}), tmp_path / "p.csv", registry=get_host().registry)
    assert out["items"] == 400
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert rows[0]["label"] == "" and len(rows) == 400
    task, config = load_finetuned(run, registry=get_host().registry)
    assert config.num_classes == 2
    with pytest.raises(CheckpointError, match="no export found"):
        load_finetuned(tmp_path, registry=get_host().registry)


def test_multiclass(tmp_path: Path) -> None:
    rng = np.random.RandomState(0)
    x = rng.randn(300, 1, 32).astype("float32")
    y = np.digitize(x[:, 0, :8].mean(1), [-0.2, 0.2])
    np.savez(tmp_path / "m.npz", x=x, y=y)
    cfg = parse_config(make_config(tmp_path, tmp_path / "m.npz", pretrain=None,
                                   **{"finetune.train.early_stopping": None, "finetune.from_scratch": True,
                                      "finetune.task.args": {"num_classes": 3}}))
    s = finetune(cfg, tmp_path / "mc", registry=get_host().registry)
    assert s["threshold"] is None and "accuracy" in s["test"]
    header = next(csv.reader((tmp_path / "mc" / "predictions" / "test.csv").open()))
    assert header == ["id", "label", "score_0", "score_1", "score_2", "decision"]


def test_splits_single_group_and_label_subset_keeps_rare_class() -> None:
    from ssl_domains.data.splits import label_subset, split_off

    keep, held = split_off(100, 0.2, seed=0, groups=["rec"] * 100)
    assert list(held) == list(range(80, 100)) and list(keep) == list(range(80))
    keep, held = split_off(100, 0.2, seed=0, groups=[str(i // 10) for i in range(100)])
    assert not {i // 10 for i in keep} & {i // 10 for i in held}
    y = [0] * 990 + [1] * 10
    sub = label_subset(y, seed=0, fraction=0.01)
    assert len(sub) == 10 and sum(y[i] for i in sub) == 1
    assert list(label_subset(y, seed=0, fraction=0.01)) == list(sub)
    assert list(label_subset(y, seed=1, fraction=0.01)) != list(sub)


def test_holdout_loader_is_sklearn_stratified_split(arrays: Path) -> None:
    from sklearn.model_selection import train_test_split


    reg = get_host().registry
    args = {"loader": "arrays", "loader_args": {"path": str(arrays)}, "test_size": 0.5, "seed": 0}
    pool = reg.create("loader", "holdout", part="pool", **args)
    test = reg.create("loader", "holdout", part="test", **args)
    y = np.load(arrays)["y"]
    p_idx, t_idx = train_test_split(np.arange(400), test_size=0.5, random_state=0, stratify=y)
    assert pool.indices == list(p_idx) and test.indices == list(t_idx)
    assert pool.labels == [int(y[i]) for i in p_idx]
    unl = reg.create("loader", "holdout", part="pool", unlabeled=True, **args)
    assert unl.labels is None and "label" not in unl[0]
    with pytest.raises(ConfigError, match="holdout part must be 'pool' or 'test', got 'train'"):
        reg.create("loader", "holdout", part="train", **args)


def test_val_loader_whole_or_same_fraction(tmp_path: Path, arrays: Path) -> None:
    from ssl_domains.engine.finetune import build_finetune_sources, prepare_finetune_data

    val = {"name": "holdout", "args": {"loader": "arrays", "loader_args": {"path": str(arrays)},
                                       "test_size": 0.25, "seed": 0, "part": "test"}}
    over = {"finetune.label_fraction": 0.1, "finetune.data.val": val}
    whole = parse_config(make_config(tmp_path, arrays, pretrain=None, **over))
    data = prepare_finetune_data(whole, whole.finetune, build_finetune_sources(whole.finetune, get_host().registry))
    assert len(data["train"]) == 40 and len(data["val"]) == 100  # the whole validation set
    same = parse_config(make_config(tmp_path, arrays, pretrain=None, **over, **{"finetune.val_budget": "same_fraction"}))
    data = prepare_finetune_data(same, same.finetune, build_finetune_sources(same.finetune, get_host().registry))
    assert len(data["train"]) == 40 and len(data["val"]) == 10  # 10 % of the validation labels too
    val_labels = data["val"].labels
    assert set(val_labels) == {0, 1}  # stratified: both classes validate
    again = prepare_finetune_data(same, same.finetune, build_finetune_sources(same.finetune, get_host().registry))
    assert again["val"].indices == data["val"].indices
    # a full budget keeps the whole validation set
    full = parse_config(make_config(tmp_path, arrays, pretrain=None, **{**over, "finetune.label_fraction": 1.0},
                                    **{"finetune.val_budget": "same_fraction"}))
    assert len(prepare_finetune_data(full, full.finetune, build_finetune_sources(full.finetune, get_host().registry))["val"]) == 100
    with pytest.raises(ConfigError, match="needs a data.val loader"):
        parse_config(make_config(tmp_path, arrays, pretrain=None, **{"finetune.val_budget": "same_fraction"}))


def test_monitor_auto_keeps_the_best_auroc_only_on_a_validation_set_large_enough(
        tmp_path: Path, arrays: Path) -> None:
    """``early_stopping: {metric: auto, patience: null}``: the weights of the best validation
    AUROC when every class has AUROC_MONITOR_MIN_PER_CLASS validation items, else of the
    lowest validation loss; never stops early; eval.json says which."""
    from ssl_domains.config import EarlyStopping
    from ssl_domains.engine.finetune import AUROC_MONITOR_MIN_PER_CLASS as N
    from ssl_domains.engine.finetune import monitored_metric

    auto = EarlyStopping(metric="auto", patience=None)
    assert monitored_metric(auto, [0] * N + [1] * N) == "auroc"
    assert monitored_metric(auto, [0] * 5 * N + [1] * (N - 1)) == "loss"
    assert monitored_metric(auto, [0] * 5 * N) == "loss"
    assert monitored_metric(None, [0] * N + [1] * N) == "loss"
    assert monitored_metric(EarlyStopping(metric="auroc"), [0, 1]) == "auroc"

    def run(name: str, **budget: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        cfg = parse_config(make_config(tmp_path, arrays, pretrain=None, **{
            "finetune.train.early_stopping": {"metric": "auto", "patience": None},
            "finetune.train.epochs": 6, "finetune.train.eval_every": 3,
            "finetune.from_scratch": True, **budget}))
        s = finetune(cfg, tmp_path / name, registry=get_host().registry)
        vals = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").open()]
        return s, [v for v in vals if v.get("split") == "val"]

    big, vals = run("big")
    assert big["n_val"] == 80 and big["monitor"] == "auroc" and big["stopped_early"] is False
    best = max(vals, key=lambda v: v["auroc"])  # first of equal maxima, as the trainer keeps
    assert big["best_step"] == best["step"] and len(vals) > 6
    small, vals = run("small", **{"finetune.label_count": 30})
    assert small["n_val"] == 6 and small["monitor"] == "loss"
    assert small["best_step"] == min(vals, key=lambda v: v["loss"])["step"]
    assert read_assessment(tmp_path / "small").monitor == "loss"
