"""`ssl-domains plan` (what a run would do, measured on this machine) and the demo's report
(pre-trained and scratch arms compared)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from ssl_domains.cli import cli
from ssl_domains.config import parse_config
from ssl_domains.demo import comparison_rows, write_comparison
from ssl_domains.errors import ConfigError
from ssl_domains.plan import _data_info, format_plan, plan
from tests.conftest import make_config, write_config


def test_plan_counts_data_steps_and_parameters(tmp_path: Path, arrays: Path) -> None:
    cfg = parse_config(make_config(tmp_path, arrays))
    p = plan(cfg, measure_steps=2)
    pre, fin = p["stages"]["pretrain"], p["stages"]["finetune"]
    assert pre["data"]["train"]["items"] == 320 and pre["data"]["val"]["items"] == 80  # of 400
    assert pre["steps"] == {"batch_size": 16, "steps_per_epoch": 20, "epochs": 2, "total_steps": 40}
    y = np.load(arrays)["y"]
    assert fin["data"]["pool"]["classes"] == {"0": int((y == 0).sum()), "1": int((y == 1).sum())}
    assert fin["data"]["label_budget"] == 400
    assert fin["data"]["train"]["items"] + fin["data"]["val"]["items"] == 400
    assert fin["steps"]["steps_per_epoch"] == math.ceil(fin["data"]["train"]["items"] / 16)
    # mlp backbone [1, 32] -> hidden 32 (default depth): the backbone count is the model's
    from ssl_domains.engine.build import build_backbone
    from ssl_domains.plugins import get_host

    backbone = build_backbone(get_host().registry, cfg.backbone)
    assert fin["parameters"]["backbone"] == sum(q.numel() for q in backbone.parameters())
    assert fin["parameters"]["total"] > fin["parameters"]["backbone"]
    for stage in (pre, fin):
        m = stage["measured"]
        assert m["measured_steps"] == 2 and m["seconds_per_step"] > 0 and m["device"] == "cpu"
        assert m["seconds_per_epoch"] == pytest.approx(m["seconds_per_step"] * stage["steps"]["steps_per_epoch"])
        assert m["weights_grads_optimizer_bytes"] == 16 * stage["parameters"]["total"]
        assert m["peak_bytes"] > m["weights_grads_optimizer_bytes"]
    text = "\n".join(format_plan(p))
    assert "pretrain (denoising):" in text and "steps: 20 per epoch (batch 16), 40 in all (2 epochs)" in text
    assert "finetune (classification):" in text and "per epoch" in text and "s per step" in text


def test_plan_command_text_json_and_no_measurement(tmp_path: Path, arrays: Path) -> None:
    path = write_config(tmp_path / "c.yaml", make_config(tmp_path, arrays))
    runner = CliRunner()
    res = runner.invoke(cli, ["plan", str(path), "--steps", "0", "--json", "--set", "finetune.label_count=40"])
    assert res.exit_code == 0, res.output
    p = json.loads(res.output)
    assert p["stages"]["finetune"]["data"]["label_budget"] == 40
    assert "measured" not in p["stages"]["pretrain"]
    res = runner.invoke(cli, ["plan", str(path), "--steps", "1"])
    assert res.exit_code == 0 and res.output.startswith("plan of t (backbone mlp)")
    assert not (tmp_path / "runs").exists()  # plan writes nothing


def test_plan_reports_skipped_inputs() -> None:
    class DS:
        skipped = [("a", "bad header"), ("b", "bad header"), ("c", "empty")]
        labels = [0, 1, 1]

        def __len__(self) -> int:
            return 3

    info = _data_info(DS())
    assert info == {"items": 3, "classes": {"0": 1, "1": 2}, "skipped": 3,
                    "skipped_reasons": {"bad header": 2, "empty": 1}}


def test_comparison_rows_follow_the_sweep_table(tmp_path: Path) -> None:
    arms = {"ssl": {"n_labels": 40, "n_pool": 400, "test": {"auroc": 0.9, "loss": 0.3, "f1": None}},
            "scratch": {"n_train": 30, "n_val": 10, "n_pool": 400, "test": {"auroc": 0.8}}}
    rows = comparison_rows(arms, seed=3)
    assert [(r["arm"], r["metric"]) for r in rows] == [("ssl", "auroc"), ("ssl", "f1"), ("scratch", "auroc")]
    assert all(r["n_labels"] == 40 and r["fraction"] == 0.1 and r["seed"] == 3 for r in rows)
    assert math.isnan(rows[1]["value"])
    with pytest.raises(ConfigError, match="needs test data"):
        write_comparison(tmp_path, {"ssl": {"n_labels": 4}}, 0)


def test_demo_reports_both_arms(tmp_path: Path, arrays: Path) -> None:
    cfg = make_config(tmp_path, arrays, **{"pretrain.train.epochs": 1, "finetune.train.epochs": 2})
    data = tmp_path / "demo_data"
    (data / "ssl_domains").mkdir(parents=True)
    (data / "ssl_domains" / "demo.yaml").write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(cli, ["demo", "--data-dir", str(data), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "  ssl      AUROC" in res.output and "  scratch  AUROC" in res.output
    run = next((tmp_path / "out").glob("demo-ssl_domains-*"))
    results = pd.read_csv(run / "sweep" / "results.csv")
    assert set(results["arm"]) == {"ssl", "scratch"}
    ssl_auroc = json.loads((run / "eval.json").read_text())["test"]["auroc"]
    scratch_auroc = json.loads((run / "scratch" / "eval.json").read_text())["test"]["auroc"]
    got = results[results.metric == "auroc"].set_index("arm")["value"]
    assert got["ssl"] == pytest.approx(ssl_auroc) and got["scratch"] == pytest.approx(scratch_auroc)
    html = (run / "report" / "report.html").read_text()
    assert "Which model to ship" in html and "did SSL beat scratch?" in html
    # one size, one seed: the arms side by side, no one-point label-efficiency curves
    assert "roc_arms.png" in html and "label_efficiency_auroc.png" not in html
    assert "paired bootstrap over the" in html  # SSL against scratch on the shared test cases
    assert f"{scratch_auroc:.3f}" in html and f"{ssl_auroc:.3f}" in html


#: (config, how it runs): both plugins' demo configs run as ``pretrain`` then ``finetune``; the
#: sweep config runs one cell (one size, one seed, the scratch arm)
PLAN_CASES = [("sample_data/timeseries/demo.yaml", "stages"), ("sample_data/medical/demo.yaml", "stages"),
              ("sample_data/sweep_demo.yaml", "sweep cell")]


def _json_tail(output: str) -> dict:
    """The JSON document a command printed after its warnings (``warning: ...`` lines)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("{"))
    return json.loads("\n".join(lines[start:]))


@pytest.mark.parametrize(("config", "how"), PLAN_CASES, ids=["timeseries", "medical", "sweep"])
def test_plan_reports_the_items_split_and_steps_the_run_uses(config: str, how: str,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    """``plan`` builds each stage with the run's own skeleton up to its loaders
    (:func:`ssl_domains.engine.stage.prepare`), so its items, split and steps per epoch are
    the run's: on the time-series demo it once said 372/74 items while the run split 250/122.
    One epoch each, so the steps a run trained are its steps per epoch."""
    from tests.conftest import REPO

    monkeypatch.chdir(REPO)  # the configs name sample_data/ relative to the repository
    runner = CliRunner()
    one_epoch = ["--set", "finetune.train.epochs=1", "--set", "finetune.train.progress=false"]
    res = runner.invoke(cli, ["plan", config, "--steps", "0", "--json"])
    assert res.exit_code == 0, res.output
    planned = _json_tail(res.output)["stages"]  # after the warning on the broken sample file
    if how == "stages":
        res = runner.invoke(cli, ["pretrain", config, "--out", str(tmp_path / "pre"),
                                  "--set", "pretrain.train.epochs=1", "--set", "pretrain.train.progress=false"])
        assert res.exit_code == 0, res.output
        ran = _json_tail(res.output)
        pre = planned["pretrain"]
        assert (pre["data"]["train"]["items"], pre["data"]["val"]["items"]) == (ran["n_train"], ran["n_val"])
        assert pre["steps"]["steps_per_epoch"] == ran["steps"] > 0
        res = runner.invoke(cli, ["finetune", config, "--out", str(tmp_path / "fin"),
                                  "--set", "finetune.from_scratch=true", *one_epoch])
        assert res.exit_code == 0, res.output
        counts = json.loads((tmp_path / "fin" / "eval.json").read_text())
    else:  # one cell of the sweep: the config's whole label budget, its seed
        res = runner.invoke(cli, ["sweep", config, "--out", str(tmp_path / "sweep"), "--arms", "scratch",
                                  "--fractions", "1", "--seeds", "1", *one_epoch])
        assert res.exit_code == 0, res.output
        cells = sorted((tmp_path / "sweep" / "cells").glob("*/eval.json"))
        assert len(cells) == 1, cells
        counts = json.loads(cells[0].read_text())
    fin = planned["finetune"]
    assert (fin["data"]["train"]["items"], fin["data"]["val"]["items"], fin["data"]["test"]["items"]) \
        == (counts["n_train"], counts["n_val"], counts["n_test"]), counts
    assert fin["data"]["label_budget"] == counts["n_labels"]
    assert fin["steps"]["steps_per_epoch"] == counts["steps"] > 0
