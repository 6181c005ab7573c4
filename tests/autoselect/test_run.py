"""``finetune.select: auto``: candidates chosen on validation data only, the chosen model
exported, and evaluate/predict using it."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ssl_domains.autoselect.run import select_finetune
from ssl_domains.builtin.logistic import LogisticBaseline
from ssl_domains.config import ComponentRef, parse_config
from ssl_domains.engine.assess import read_predictions
from ssl_domains.engine.evaluate import evaluate, predict_data
from ssl_domains.engine.exports import load_finetuned, load_selected, save_baseline_export
from ssl_domains.engine.finetune import finetune
from ssl_domains.engine.model_card import write_model_card
from ssl_domains.errors import CheckpointError
from ssl_domains.layout.export import ExportConfig
from ssl_domains.layout.names import BASELINE_FILE
from ssl_domains.plugins import get_host
from ssl_domains.report.pages import build_report
from ssl_domains.sweep.run import SweepCandidates
from tests.conftest import make_config


def _scores(path: Path) -> np.ndarray:
    return pd.read_csv(path, float_precision="round_trip")["score"].to_numpy()


def _select(cfg: Any, run: Path) -> dict[str, Any]:
    """``select: auto`` into ``run``; the export's card is written with it (rendering it again
    from the run folder gives the same card)."""
    summary = select_finetune(cfg, run, registry=get_host().registry, candidates=SweepCandidates())
    card = (run / "export" / "README.md").read_text()
    assert write_model_card(run).read_text() == card
    return summary


def _pretrain_then_select(tmp_path: Path, arrays: Path) -> tuple[Path, dict]:
    """Pre-train briefly, then fine-tune with ``select: auto`` on 200 labels: (run, summary)."""
    from ssl_domains.engine.pretrain import pretrain

    cfg = parse_config(make_config(tmp_path, arrays, **{
        "pretrain.train.epochs": 1, "finetune.train.epochs": 2, "finetune.select": "auto",
        "finetune.label_count": 200}))
    run = tmp_path / "runs" / "t"
    pretrain(cfg, run, registry=get_host().registry)
    return run, _select(cfg, run)


def test_auto_ships_the_baseline_when_it_wins(tmp_path: Path, arrays: Path) -> None:
    """Labels linear in the input: logistic regression beats the tiny networks clearly."""
    run, s = _pretrain_then_select(tmp_path, arrays)
    sel = s["selection"]
    assert sel["chosen"] == "baseline:logistic"
    assert set(sel["scores"]) == {"ssl", "scratch", "linear_probe", "baseline:logistic", "ensemble"}
    assert sel["score"] == max(v for v in sel["scores"].values())
    assert sel["interval"][0] <= sel["score"] <= sel["interval"][1] and sel["runner_up"]
    assert sel["method"].startswith("validation (40 items")
    # every candidate's test AUROC is reported next to its selection score
    cand = s["candidates"]
    assert cand["baseline:logistic"]["test_auroc"] == s["test"]["auroc"]
    assert cand["baseline:logistic"]["test_auroc"] > cand["ssl"]["test_auroc"] + 0.1
    assert json.loads((run / "eval.json").read_text()) == s
    # the export is the baseline: config + training items, no pickle, no network
    export = run / "export"
    assert sorted(p.name for p in export.iterdir()) == ["README.md", BASELINE_FILE, "config.json"]
    config = json.loads((export / "config.json").read_text())
    assert config["kind"] == "baseline" and config["baseline"]["name"] == "logistic"
    assert config["threshold"] == s["threshold"] and config["selection"] == sel
    # written by the one export writer: what a network export records, too
    assert config["input_spec"] == {"modality": "signal", "dims": 1, "channels": 1}
    assert config["num_features"] == 32 and config["host_version"] and config["run"] == "t"
    with pytest.raises(CheckpointError, match="chose a baseline"):
        load_finetuned(run, registry=get_host().registry)
    # predict: the same scores as the logistic baseline fitted on the cell's training items
    got = load_selected(run, registry=get_host().registry)
    assert got is not None and got[0].kind == "baseline"
    out = predict_data(run, ComponentRef(name="arrays", args={"path": str(arrays), "y_key": None}),
                       tmp_path / "p.csv", registry=get_host().registry)
    assert out["items"] == 400 and out["threshold"] == s["threshold"]
    from safetensors.numpy import load_file

    stored = load_file(str(export / BASELINE_FILE))
    assert len(stored["y"]) == s["n_train"] == 160
    ref = LogisticBaseline().fit(stored["x"], stored["y"])
    data = np.load(arrays)
    np.testing.assert_allclose(_scores(tmp_path / "p.csv"), ref.predict_proba(data["x"])[:, 1],
                               rtol=0, atol=1e-12)
    # ... and as the candidate cell that was chosen; evaluate re-scores to the same numbers
    cell = run / "candidates" / "cells" / "baseline-logistic_200_0"
    np.testing.assert_array_equal(_scores(tmp_path / "p.csv"),
                                  _scores(cell / "predictions" / "test.csv"))
    again = evaluate(run, registry=get_host().registry)
    assert again["metrics"]["auroc"] == pytest.approx(s["test"]["auroc"], abs=1e-12)
    rows = list(csv.DictReader((run / "predictions" / "test.csv").open()))
    assert all(int(r["decision"]) == int(float(r["score"]) >= s["threshold"]) for r in rows)
    # model card and report say what was chosen, its interval and the runner-up
    card = (export / "README.md").read_text()
    assert "chosen by `select: auto`: **baseline:logistic**" in card
    assert f"runner-up {sel['runner_up']}" in card and "This export contains the training inputs" in card
    html = build_report(run).read_text()
    assert "Model chosen by select: auto: baseline:logistic" in html
    assert f"runner-up {sel['runner_up']}" in html
    # and by which rule (the best score here; the simplest within one standard error otherwise)
    assert sel["best"] == "baseline:logistic"
    assert sel["rule"] == "the best selection AUROC, and no candidate is simpler"
    assert f"Chosen as {sel['rule']}" in card and f"as {sel['rule']}" in html


def test_a_baseline_chosen_by_cross_validation_ships_fitted_on_every_label(
        tmp_path: Path, arrays: Path) -> None:
    """30 labels (6 for validation): cross-validation chooses, and the baseline, which needs no
    items to stop on, ships fitted on all 30, its threshold chosen on out-of-fold scores."""
    cfg = parse_config(make_config(tmp_path, arrays, pretrain=None, **{
        "finetune.select": "auto", "finetune.label_count": 30, "finetune.train.epochs": 2}))
    run = tmp_path / "runs" / "r"
    s = _select(cfg, run)
    sel = s["selection"]
    assert sel["chosen"] == "baseline:logistic"
    assert sel["method"].startswith("5-fold cross-validation over the 30 labeled items")
    assert s["refit"].startswith("fitted on all 30 labeled items (training and validation part)")
    cell = run / "candidates" / "cells" / "baseline-logistic_30_0"
    assert json.loads((cell / "eval.json").read_text())["n_train"] == 24
    from safetensors.numpy import load_file

    stored = load_file(str(run / "export" / BASELINE_FILE))
    assert len(stored["y"]) == s["n_train"] == 30
    # the export predicts as a logistic regression fitted on the 30 items, and as auto's cell
    out = predict_data(run, ComponentRef(name="arrays", args={"path": str(arrays), "y_key": None}),
                       tmp_path / "p.csv", registry=get_host().registry)
    ref = LogisticBaseline().fit(stored["x"], stored["y"])
    np.testing.assert_allclose(_scores(tmp_path / "p.csv"),
                               ref.predict_proba(np.load(arrays)["x"])[:, 1], rtol=0, atol=1e-12)
    auto_cell = run / "candidates" / "cells" / "auto_30_0"
    np.testing.assert_allclose(_scores(run / "predictions" / "test.csv"),
                               _scores(auto_cell / "predictions" / "test.csv"), rtol=0, atol=1e-12)
    assert not np.allclose(_scores(run / "predictions" / "test.csv"),
                           _scores(cell / "predictions" / "test.csv"))
    assert out["threshold"] == s["threshold"]
    # the threshold was chosen on the out-of-fold scores of the 30 items (the run's "val")
    val = pd.read_csv(run / "predictions" / "val.csv")
    oof = pd.read_csv(auto_cell / "cv_oof.csv")
    assert len(val) == 30
    np.testing.assert_allclose(val["score"].to_numpy(), oof["baseline:logistic_1"].to_numpy())
    card = (run / "export" / "README.md").read_text()
    assert "- fitted on all 30 labeled items (training and validation part)" in card
    assert "then fitted on all 30 labeled items" in build_report(run).read_text()


def _select_by_cross_validation(tmp_path: Path, arrays: Path, monkeypatch: pytest.MonkeyPatch,
                                arm: str) -> tuple[Path, dict]:
    """Pre-train briefly, then ``select: auto`` on 30 labels (6 for validation: it
    cross-validates), the choice forced to ``arm``: (run, summary)."""
    from ssl_domains.autoselect import choice as selection
    from ssl_domains.engine.pretrain import pretrain

    real = selection.choose

    def forced(*args: object, **kwargs: object) -> selection.Choice:
        c = real(*args, **kwargs)  # type: ignore[arg-type]
        c.chosen, c.score = arm, c.scores[arm] or 0.0
        return c

    monkeypatch.setattr(selection, "choose", forced)
    cfg = parse_config(make_config(tmp_path, arrays, **{
        "pretrain.train.epochs": 1, "finetune.train.epochs": 6, "finetune.select": "auto",
        "finetune.label_count": 30}))
    run = tmp_path / "runs" / "n"
    pretrain(cfg, run, registry=get_host().registry)
    s = _select(cfg, run)
    assert s["selection"]["chosen"] == arm
    return run, s


def test_a_network_chosen_by_cross_validation_ships_trained_on_every_label(
        tmp_path: Path, arrays: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """30 labels (6 for validation), the choice forced to the fine-tuned network: it ships
    trained again on all 30 items for the median number of steps its folds trained (at the
    same number of epochs), its last weights, its threshold chosen on its out-of-fold scores; the export,
    evaluate and the model card say and do so."""
    from ssl_domains.autoselect.refit import network_note, refit_steps

    run, s = _select_by_cross_validation(tmp_path, arrays, monkeypatch, "ssl")
    assert s["selection"]["method"].startswith("5-fold cross-validation over the 30 labeled items")
    cands = run / "candidates"
    trained = json.loads((cands / "cv" / "30_0.json").read_text())["trained_steps"]
    assert set(trained) == {"ssl", "scratch", "linear_probe"}
    assert all(len(v) == 5 and all(0 < n < 30 for _, n in v) for v in trained.values())
    steps = refit_steps([(int(a), int(b)) for a, b in trained["ssl"]], 30, 16)
    assert steps is not None and s["refit"] == network_note(30, steps, 5)
    assert (s["n_train"], s["steps"], s.get("best_step")) == (30, steps, None)
    # it stopped at that step of the recipe's schedule (6 epochs of 2 batches), not at the end
    # of a schedule squeezed into those steps: the learning rate had not decayed to 0
    assert steps < 12
    last = [json.loads(line) for line in
            (cands / "cells" / "auto_30_0" / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["step"] == steps and last["lr"] > 0
    cell = cands / "cells" / "ssl_30_0"
    assert [json.loads((cell / "eval.json").read_text())[k] for k in ("n_train", "n_val")] == [24, 6]
    # the threshold and validation numbers are the out-of-fold scores of the 30 items
    auto_cell = cands / "cells" / "auto_30_0"
    val = pd.read_csv(run / "predictions" / "val.csv")
    oof = pd.read_csv(auto_cell / "cv_oof.csv")
    assert len(val) == 30
    np.testing.assert_allclose(val["score"].to_numpy(), oof["ssl_1"].to_numpy())
    # the export is the network trained on every label: it predicts the auto cell's test
    # scores, not the ssl cell's
    auto_test = _scores(auto_cell / "predictions" / "test.csv")
    assert not np.allclose(auto_test, _scores(cell / "predictions" / "test.csv"), atol=1e-4)
    again = evaluate(run, registry=get_host().registry)
    np.testing.assert_allclose(_scores(run / "predictions" / "test.csv"), auto_test, atol=1e-6)
    assert again["metrics"]["auroc"] == pytest.approx(s["test"]["auroc"], abs=1e-6)
    card = (run / "export" / "README.md").read_text()
    assert f"- trained again on all 30 labeled items (training and validation part) for {steps} " \
           "steps" in card
    assert "then trained again on all 30 labeled items" in build_report(run).read_text()


def test_auto_ships_the_network_when_it_wins(tmp_path: Path) -> None:
    """An XOR label no linear model can fit: the network from scratch is chosen (no
    pre-trained weights: the candidates are scratch and the baselines)."""
    rng = np.random.RandomState(0)
    x = rng.randn(600, 1, 32).astype("float32")
    y = ((x[:, 0, 0] * x[:, 0, 1]) > 0).astype(int)
    data = tmp_path / "xor.npz"
    np.savez(data, x=x, y=y)
    cfg = parse_config(make_config(tmp_path, data, pretrain=None, **{
        "finetune.select": "auto", "finetune.label_count": 300, "finetune.train.epochs": 30,
        "finetune.train.lr": 1e-2,
        "finetune.train.early_stopping": {"metric": "auroc", "patience": 10}}))
    run = tmp_path / "runs" / "x"
    s = _select(cfg, run)
    sel = s["selection"]
    assert set(sel["scores"]) == {"scratch", "baseline:logistic"}
    assert sel["chosen"] == "scratch" and sel["runner_up"] == "baseline:logistic"
    assert sel["score"] > sel["runner_up_score"] + 0.1
    assert load_selected(run, registry=get_host().registry) is None  # a network export, as any fine-tuning run's
    task, config = load_finetuned(run, registry=get_host().registry)
    assert config.selection is not None and config.selection["chosen"] == "scratch"
    cell = run / "candidates" / "cells" / "scratch_300_0"
    again = evaluate(run, registry=get_host().registry)
    np.testing.assert_allclose(_scores(run / "predictions" / "test.csv"),
                               _scores(cell / "predictions" / "test.csv"), atol=1e-6)
    assert again["metrics"]["auroc"] == pytest.approx(s["test"]["auroc"], abs=1e-6)
    assert "chosen by `select: auto`: **scratch**" in (run / "export" / "README.md").read_text()


def test_ensemble_export_predicts_the_weighted_average(tmp_path: Path, arrays: Path) -> None:
    cfg = parse_config(make_config(tmp_path, arrays, pretrain=None, **{
        "finetune.from_scratch": True, "finetune.train.epochs": 2}))
    deep_run = tmp_path / "deep"
    finetune(cfg, deep_run, registry=get_host().registry)
    data = np.load(arrays)
    export = tmp_path / "ens"
    import shutil

    shutil.copytree(deep_run / "export", export / "deep")
    meta = ExportConfig(stage="finetune", backbone={"name": "mlp"})
    save_baseline_export(export / "baseline", meta, ref=ComponentRef(name="logistic"), key="signal",
                         x=data["x"][:50], y=data["y"][:50])
    (export / "config.json").write_text(json.dumps({
        "stage": "finetune", "backbone": {"name": "mlp"}, "kind": "ensemble", "weight": 0.25,
        "threshold": 0.5, "members": {"deep": "scratch", "baseline": "baseline:logistic"}}))
    loader = ComponentRef(name="arrays", args={"path": str(arrays)})
    predict_data(export, loader, tmp_path / "e.csv", registry=get_host().registry)
    predict_data(deep_run, loader, tmp_path / "d.csv", registry=get_host().registry)
    base = LogisticBaseline().fit(data["x"][:50], data["y"][:50]).predict_proba(data["x"])[:, 1]
    np.testing.assert_allclose(_scores(tmp_path / "e.csv"),
                               0.25 * _scores(tmp_path / "d.csv") + 0.75 * base, atol=1e-6)
    got = read_predictions(tmp_path / "e.csv")
    assert got.labels is not None and (got.labels == data["y"]).all()


def test_a_chosen_ensemble_ships_and_predicts_like_its_cell(
        tmp_path: Path, arrays: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever is chosen, the export predicts what the chosen candidate predicted: here the
    choice is forced to the ensemble to check its export end to end."""
    from ssl_domains.autoselect import choice as selection

    real = selection.choose

    def ensemble_wins(*args: object, **kwargs: object) -> selection.Choice:
        c = real(*args, **kwargs)  # type: ignore[arg-type]
        c.runner_up, c.runner_up_score = c.chosen, c.score
        c.chosen, c.score = "ensemble", c.scores["ensemble"] or 0.0
        return c

    monkeypatch.setattr(selection, "choose", ensemble_wins)
    run, s = _pretrain_then_select(tmp_path, arrays)
    assert s["selection"]["chosen"] == "ensemble"
    export = run / "export"
    config = json.loads((export / "config.json").read_text())
    cell = run / "candidates" / "cells" / "ensemble_200_0"
    ens = json.loads((cell / "eval.json").read_text())["ensemble"]
    assert config["kind"] == "ensemble" and config["weight"] == ens["weight"]
    assert config["members"] == {"deep": "ssl", "baseline": ens["members"][1]}
    assert (export / "deep" / "model.safetensors").is_file()
    assert (export / "baseline" / BASELINE_FILE).is_file()
    again = evaluate(run, registry=get_host().registry)
    np.testing.assert_allclose(_scores(run / "predictions" / "test.csv"),
                               _scores(cell / "predictions" / "test.csv"), atol=1e-6)
    assert again["metrics"]["auroc"] == pytest.approx(s["test"]["auroc"], abs=1e-6)
    assert "chosen by `select: auto`: **ensemble**" in (export / "README.md").read_text()


def test_an_ensemble_chosen_by_cross_validation_ships_both_members_refitted(
        tmp_path: Path, arrays: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chosen by cross-validation, the ensemble averages its network and its baseline, each
    fitted again on all 30 labels (kept in the auto cell's members/), with the weight chosen
    out of fold; its export and evaluate predict so."""
    run, s = _select_by_cross_validation(tmp_path, arrays, monkeypatch, "ensemble")
    cands = run / "candidates" / "cells"
    members = cands / "auto_30_0" / "members"
    deep, base = (json.loads((members / m / "eval.json").read_text())
                  for m in ("ssl", "baseline-logistic"))
    assert deep["refit"].startswith("trained again on all 30 labeled items")
    assert base["refit"].startswith("fitted on all 30 labeled items")
    assert s["refit"] == ("both members fitted again on every label: ssl: " + deep["refit"]
                          + "; baseline:logistic: " + base["refit"])
    ens = s["selection"]["ensemble"]
    assert ens["members"] == ["ssl", "baseline:logistic"]
    w = ens["weight"]
    want = w * _scores(members / "ssl" / "predictions" / "test.csv") + \
        (1 - w) * _scores(members / "baseline-logistic" / "predictions" / "test.csv")
    np.testing.assert_allclose(_scores(cands / "auto_30_0" / "predictions" / "test.csv"), want,
                               atol=1e-9)
    # the export holds the refitted members: evaluate gives the auto cell's scores again
    from safetensors.numpy import load_file

    stored = load_file(str(run / "export" / "baseline" / BASELINE_FILE))
    assert len(stored["y"]) == 30
    evaluate(run, registry=get_host().registry)
    np.testing.assert_allclose(_scores(run / "predictions" / "test.csv"), want, atol=1e-6)


def test_auto_refuses_several_processes(tmp_path: Path, arrays: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from ssl_domains.errors import ConfigError

    cfg = parse_config(make_config(tmp_path, arrays, **{"finetune.select": "auto"}))
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="without torchrun"):
        select_finetune(cfg, tmp_path / "runs" / "t", registry=get_host().registry,
                        candidates=SweepCandidates())
    assert not (tmp_path / "runs" / "t" / "candidates").exists()
