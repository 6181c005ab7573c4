"""Label-efficiency sweeps on the built-in mlp/denoising/classification pipeline + logistic."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import ssl_domains.engine.finetune as finetune_mod
import ssl_domains.engine.pretrain as pretrain_mod
from ssl_domains.autoselect import choice as sel
from ssl_domains.autoselect.arms import Size
from ssl_domains.builtin.logistic import LogisticBaseline
from ssl_domains.cli import cli, main
from ssl_domains.config import InitConfig, load_config, parse_config
from ssl_domains.engine.assess import read_assessment
from ssl_domains.errors import ConfigError, ContractError
from ssl_domains.layout.sweep import parse_cell_name
from ssl_domains.plugins import get_host, reset_host
from ssl_domains.registry import Registry
from ssl_domains.report.artifacts import read_results, summarize
from ssl_domains.sweep import run as sweep_mod
from ssl_domains.sweep.run import SweepFailed, run_sweep
from tests.conftest import make_config, write_arrays, write_config
from tests.report.test_report import (
    assert_number,
    assert_results_table,
    assert_self_contained,
    assert_summary_table,
    parse,
)

ARMS = ["ssl", "scratch", "linear_probe", "baseline:logistic"]


_data = write_arrays


def _config(folder: Path, data: Path, **overrides: Any) -> dict[str, Any]:
    fast = {"pretrain.train.epochs": 1, "finetune.train.epochs": 2, **overrides}
    return make_config(folder, data, **fast)


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models: one intra-op thread (several threads thrash on a busy 2-core machine)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, float_precision="round_trip")


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One `ssl-domains sweep` (2 sizes x 2 seeds x 4 arms), recording every arm's items."""
    reset_host()
    folder = tmp_path_factory.mktemp("sweep")
    config = write_config(folder / "c.yaml", _config(folder, _data(folder)))
    selected: dict[str, dict[str, list[int]]] = {}
    real = finetune_mod.prepare_finetune_data

    def spy(cfg: Any, fcfg: Any, sources: Any = None) -> dict[str, Any]:
        data = real(cfg, fcfg, sources)
        selected[cfg.name] = {"train": list(data["train"].indices),
                              "val": list(data["val"].indices)}
        return data

    out = folder / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(finetune_mod, "prepare_finetune_data", spy)
        res = CliRunner().invoke(cli, ["sweep", str(config), "--fractions", "0.1", "--counts",
                                       "80", "--seeds", "2", "--out", str(out)])
    assert res.exit_code == 0, (res.output, res.exception)
    yield {"out": out, "output": res.output, "selected": selected, "config": config}
    reset_host()


def test_sweep_writes_results_summary_and_report(swept: dict[str, Any]) -> None:
    out: Path = swept["out"]
    results = _read(out / "results.csv")
    assert list(results.columns) == ["arm", "n_labels", "fraction", "seed", "metric", "value"]
    assert list(dict.fromkeys(results["arm"])) == ARMS
    assert sorted(results["n_labels"].unique()) == [40, 80]  # 10 % of 400, and 80
    by_size = results.groupby("n_labels")["fraction"].unique()
    assert list(by_size[40]) == [0.1] and list(by_size[80]) == [0.2]
    assert set(results["seed"]) == {0, 1}
    assert "loss" not in set(results["metric"]) and "auroc" in set(results["metric"])
    # one row per arm x size x seed x metric, equal to each cell's eval.json "test"
    assert not results.duplicated(["arm", "n_labels", "seed", "metric"]).any()
    for (arm, n, seed), rows in results.groupby(["arm", "n_labels", "seed"]):
        tag = "0.1" if n == 40 else "80"
        ev = json.loads((out / "cells" / f"{arm.replace(':', '-')}_{tag}_{seed}" / "eval.json")
                        .read_text())
        assert ev["n_train"] + ev["n_val"] == n
        assert dict(zip(rows["metric"], rows["value"])) == {
            k: v for k, v in ev["test"].items() if k not in ("loss", "sensitivity_at_specificity")}
    # summary.csv / summary.json = intervals.summarize(results.csv)
    summary = _read(out / "summary.csv")
    expected = summarize(results)
    pd.testing.assert_frame_equal(summary[list(expected.columns)], expected, check_dtype=False)
    # next to mean and sd: the share of seeds that collapsed, from stability.csv
    stability = _read(out / "stability.csv")
    assert len(stability) == 16 and set(stability["arm"]) == set(ARMS)
    arm_rows = summary[summary["kind"] == "arm"]
    for _, row in arm_rows.iterrows():
        st = stability[(stability["arm"] == row["arm"]) & (stability["n_labels"] == row["n_labels"])]
        assert row["collapsed"] == st["collapsed"].mean() and row["n_collapsed"] == st["collapsed"].sum()
    assert summary[summary["kind"] == "difference"]["collapsed"].isna().all()
    rows = json.loads((out / "summary.json").read_text())["rows"]
    assert len(rows) == len(summary)
    diff = summary[(summary["kind"] == "difference") & (summary["metric"] == "auroc")]
    assert list(diff["arm"]) == ["ssl-scratch", "ssl-scratch"] and list(diff["n"]) == [2, 2]
    # pre-trained once, its pictures/loss log next to the results for the report
    assert (out / "pretrain" / "export" / "backbone.safetensors").is_file()
    assert (out / "metrics.jsonl").read_bytes() == (out / "pretrain" / "metrics.jsonl").read_bytes()
    assert (out / "config.yaml").is_file() and (out / "sweep.json").is_file()
    # cell folders are named as the report parses them
    for cell in (out / "cells").iterdir():
        arm, size, seed = parse_cell_name(cell.name)  # type: ignore[misc]
        assert float(size) in (0.1, 80.0) and seed in ("0", "1")
    # progress: one line per cell with the test AUROC and seconds, then the table and report
    lines = swept["output"].splitlines()
    cell_lines = [ln for ln in lines if ln.startswith("[")]
    assert len(cell_lines) == 16
    assert cell_lines[0].startswith("[ 1/16] ssl               f=0.1    seed 0") and "test AUROC 0." in cell_lines[0]
    assert cell_lines[0].rstrip().endswith(" s")
    assert any(ln.startswith("auroc (test)") and "ssl-scratch [95% CI]" in ln for ln in lines)
    assert f"report: {out / 'report' / 'report.html'}" in lines


def test_report_numbers_equal_results_csv(swept: dict[str, Any]) -> None:
    out: Path = swept["out"]
    text, parser = parse(out / "report" / "report.html")
    results = read_results(out / "results.csv")  # what the report read
    assert results is not None
    exact = _read(out / "results.csv")
    np.testing.assert_allclose(results["value"], exact["value"], rtol=1e-13, atol=0)  # default CSV parser: last digit
    assert_results_table(parser, results)
    summary = summarize(results)
    np.testing.assert_allclose(summary["mean"], _read(out / "summary.csv")["mean"], rtol=1e-12)
    assert_summary_table(parser, summary)
    diff = summary[(summary["kind"] == "difference") & (summary["metric"] == "auroc")]
    answer = parser.rows("answer-table")
    assert [int(r[0][1]) for r in answer] == [40, 80]
    for row, (_, d) in zip(answer, diff.sort_values("n_labels").iterrows()):
        assert_number(row[4], d["mean"])
        assert_number(row[5], d["ci_low"])
        assert_number(row[6], d["ci_high"])
    assert "16 of 16 cells finished." in text
    assert "From cell ssl_80_0." in text  # the ssl arm at the largest size
    for name in ("label_efficiency_auroc.png", "difference_auroc.png", "roc.png",
                 "confusion_matrix.png", "loss_curves.png", "cell_loss_curves.png"):
        assert (out / "report" / name).stat().st_size > 1000, name
    assert_self_contained(text, parser)


def test_arms_share_the_same_items(swept: dict[str, Any]) -> None:
    out: Path = swept["out"]
    selected: dict[str, dict[str, list[int]]] = swept["selected"]
    assert len(selected) == 16  # 12 fine-tuning cells + 4 baseline cells
    for size in ("0.1", "80"):
        per_seed = []
        for seed in (0, 1):
            names = [f"{a.replace(':', '-')}_{size}_{seed}" for a in ARMS]
            first = selected[names[0]]
            assert all(selected[n] == first for n in names[1:]), (size, seed)
            assert not set(first["train"]) & set(first["val"])
            val_ids = [pd.read_csv(out / "cells" / n / "predictions" / "val.csv")["id"].tolist()
                       for n in names]
            assert all(v == val_ids[0] for v in val_ids)
            test_ids = [pd.read_csv(out / "cells" / n / "predictions" / "test.csv")["id"].tolist()
                        for n in names]
            assert all(t == test_ids[0] for t in test_ids) and len(test_ids[0]) == 400
            per_seed.append(first)
        assert per_seed[0] != per_seed[1]  # another seed, another labeled subset
    scratch = json.loads((out / "cells" / "scratch_80_0" / "eval.json").read_text())
    ssl = json.loads((out / "cells" / "ssl_80_0" / "eval.json").read_text())
    assert scratch["init"] == "scratch" and "loaded 4 tensors" in ssl["init"]
    probe = load_config(out / "cells" / "linear_probe_80_0" / "config.yaml")
    assert probe.finetune is not None and probe.finetune.mode == "linear"
    base = json.loads((out / "cells" / "baseline-logistic_80_0" / "eval.json").read_text())
    assert set(base) >= {"threshold", "val", "test", "n_train", "n_val", "n_test", "label_counts",
                         "test_intervals", "baseline"}
    assert base["label_counts"] == ssl["label_counts"]
    # one schema: every cell's eval.json reads back as the same Assessment it was written from
    for cell in (out / "cells").iterdir():
        ev = json.loads((cell / "eval.json").read_text())
        assert read_assessment(cell).to_json() == ev, cell.name


def test_interrupted_sweep_finishes_without_recomputing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "c.yaml", _config(tmp_path, _data(tmp_path)))
    out = tmp_path / "out"
    argv = ["sweep", str(config), "--counts", "40", "--seeds", "2",
            "--arms", "ssl,scratch,baseline", "--out", str(out)]
    real_finetune = finetune_mod.finetune
    calls: list[str] = []

    def interrupting(cfg: Any, run_path: Path, **kw: Any) -> dict[str, Any]:
        calls.append(run_path.name)
        if len(calls) == 3:  # killed in the middle of the third fine-tuning cell
            (run_path / "metrics.jsonl").parent.mkdir(parents=True)
            (run_path / "metrics.jsonl").write_text('{"stage": "finetune", "step"')
            raise KeyboardInterrupt
        return real_finetune(cfg, run_path, **kw)

    monkeypatch.setattr(finetune_mod, "finetune", interrupting)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 130
    assert "Interrupted; rerun the same command" in capsys.readouterr().err
    finished = {d.name: (d / "eval.json").stat().st_mtime_ns
                for d in (out / "cells").iterdir() if (d / "eval.json").is_file()}
    assert sorted(finished) == ["baseline-logistic_40_0", "scratch_40_0", "ssl_40_0"]
    assert (out / "cells" / "ssl_40_1" / "metrics.jsonl").is_file()  # the interrupted cell

    calls.clear()
    pretrained: list[Any] = []
    baselines: list[str] = []
    real_baseline = sweep_mod.run_baseline
    monkeypatch.setattr(finetune_mod, "finetune",
                        lambda cfg, run_path, **kw: calls.append(run_path.name)
                        or real_finetune(cfg, run_path, **kw))
    monkeypatch.setattr(pretrain_mod, "pretrain", lambda *a, **k: pretrained.append(a))
    monkeypatch.setattr(sweep_mod, "run_baseline",
                        lambda cfg, ref, cell, *a: baselines.append(cell.name)
                        or real_baseline(cfg, ref, cell, *a))
    main(argv)
    assert calls == ["ssl_40_1", "scratch_40_1"]  # only the unfinished cells
    assert baselines == ["baseline-logistic_40_1"] and not pretrained
    assert {n: (out / "cells" / n / "eval.json").stat().st_mtime_ns for n in finished} == finished
    redone = (out / "cells" / "ssl_40_1" / "metrics.jsonl").read_text().splitlines()
    assert redone and all(json.loads(line)["stage"] == "finetune" for line in redone)
    printed = capsys.readouterr().out
    assert printed.count("(finished earlier)") == 3
    assert "results:" in printed and "(3 cell(s) trained, 3 reused)" in printed
    results = pd.read_csv(out / "results.csv", float_precision="round_trip")
    assert len(results.groupby(["arm", "seed"])) == 6
    assert (out / "report" / "report.html").is_file()


def test_a_baseline_that_changes_the_thread_count_does_not_change_the_next_cells(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A baseline's library may set the process's OpenMP thread count (numba does, for aeon's
    MiniRocket): the cells trained after it keep the threads the sweep started with."""
    import torch

    real_fit = LogisticBaseline.fit

    def greedy_fit(self: LogisticBaseline, x: Any, y: Any) -> Any:
        torch.set_num_threads(torch.get_num_threads() + 1)
        return real_fit(self, x, y)

    threads: list[int] = []
    real_finetune = finetune_mod.finetune
    monkeypatch.setattr(LogisticBaseline, "fit", greedy_fit)
    monkeypatch.setattr(finetune_mod, "finetune",
                        lambda cfg, run_path, **kw: threads.append(torch.get_num_threads())
                        or real_finetune(cfg, run_path, **kw))
    reset_host()
    config = write_config(tmp_path / "c.yaml", _config(tmp_path, _data(tmp_path)))
    res = CliRunner().invoke(cli, ["sweep", str(config), "--counts", "40", "--seeds", "2",
                                   "--arms", "scratch,baseline:logistic",
                                   "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, (res.output, res.exception)
    assert len(threads) == 2 and threads == [1, 1]  # scratch seed 1 ran after baseline seed 0
    assert torch.get_num_threads() == 1
    reset_host()


def test_pretraining_is_resumed_when_it_has_a_checkpoint_but_no_export(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = parse_config(_config(tmp_path, _data(tmp_path)))
    calls: list[bool] = []
    monkeypatch.setattr(pretrain_mod, "pretrain",
                        lambda cfg, path, resume=False, **k: calls.append(resume) or {
                            "steps": 1, "best_val_loss": 1.0})
    out = tmp_path / "out"
    init = sweep_mod._pretrained(cfg, out, None, print, get_host().registry)
    assert init is not None and init.path == str(out / "pretrain" / "export")
    (out / "pretrain" / "checkpoints" / "pretrain").mkdir(parents=True)
    (out / "pretrain" / "checkpoints" / "pretrain" / "last.pt").write_bytes(b"x")
    sweep_mod._pretrained(cfg, out, None, print, get_host().registry)
    (out / "pretrain" / "export").mkdir()
    (out / "pretrain" / "export" / "backbone.safetensors").write_bytes(b"x")
    sweep_mod._pretrained(cfg, out, None, print, get_host().registry)
    assert calls == [False, True]  # fresh, then resumed, then reused
    given = InitConfig(path="elsewhere")
    assert sweep_mod._pretrained(cfg, out, given, print, get_host().registry) is given and calls == [False, True]


def test_missing_optional_dependency_is_skipped_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = parse_config(_config(tmp_path, _data(tmp_path), pretrain=None,
                               baselines=[{"name": "logistic"}, {"name": "signal_stats"}]))

    def missing(self: Any, x: Any, y: Any) -> Any:
        raise ImportError("baseline 'logistic' needs foo: pip install foo")

    monkeypatch.setattr(LogisticBaseline, "fit", missing)
    lines: list[str] = []
    res = run_sweep(cfg, tmp_path / "out", sizes=[Size(count=40), Size(count=80)], seeds=[0, 1],
                    arms=["baseline"], echo=lines.append)
    skipped = [ln for ln in lines if "skipped for the whole sweep" in ln]
    assert skipped == ["baseline:logistic: skipped for the whole sweep (baseline 'logistic' "
                       "needs foo: pip install foo)"]
    assert set(res.results["arm"]) == {"baseline:signal_stats"} and len(res.computed) == 4
    assert not any(d.name.startswith("baseline-logistic") for d in (tmp_path / "out" / "cells").iterdir())


@pytest.fixture
def logistic_fails_under_40(monkeypatch: pytest.MonkeyPatch) -> None:
    """The logistic baseline fails on fewer than 40 training items (a solver failure)."""
    real = LogisticBaseline.fit

    def flaky(self: Any, x: Any, y: Any) -> Any:
        if len(x) < 40:
            raise ValueError("solver did not converge")
        return real(self, x, y)

    monkeypatch.setattr(LogisticBaseline, "fit", flaky)


@pytest.mark.usefixtures("logistic_fails_under_40")
def test_failing_baseline_cell_stays_unfinished(tmp_path: Path) -> None:
    cfg = parse_config(_config(tmp_path, _data(tmp_path), pretrain=None))
    with pytest.raises(SweepFailed, match=r"^2 cell\(s\) failed and stay unfinished \(first: "
                       r"baseline-logistic_40_0: ValueError: solver did not converge\)") as exc:
        run_sweep(cfg, tmp_path / "out", sizes=[Size(count=40), Size(count=80)], seeds=[0, 1],
                  arms=["baseline"], echo=lambda s: None)
    assert sorted(exc.value.result.failed) == ["baseline-logistic_40_0", "baseline-logistic_40_1"]
    results = pd.read_csv(tmp_path / "out" / "results.csv", float_precision="round_trip")
    assert set(results["n_labels"]) == {80}
    assert set(exc.value.result.results["n_labels"]) == {80}


@pytest.mark.usefixtures("logistic_fails_under_40")
def test_sweep_command_reports_the_finished_cells_when_some_failed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "c.yaml", _config(tmp_path, _data(tmp_path), pretrain=None))
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        main(["sweep", str(config), "--counts", "40,80", "--seeds", "1", "--arms", "baseline",
              "--out", str(out)])
    printed = capsys.readouterr()
    assert exc.value.code == 1
    assert "1 cell(s) failed and stay unfinished (first: baseline-logistic_40_0" in printed.err
    assert f"report: {out / 'report' / 'report.html'}" in printed.out.splitlines()
    text, _ = parse(out / "report" / "report.html")
    assert "1 of 2 cells finished." in text


@pytest.mark.parametrize("args,message", [
    (["--fractions", "0,2"], "Error: --fractions: 0 is not in (0, 1]; a fraction is a share of the "
                             "labeled pool, e.g. 0.05 (use --counts for numbers of labels)"),
    (["--fractions", "0.1,2"], "Error: --fractions: 2 is not in (0, 1]"),
    (["--fractions", "a"], "Error: --fractions: 'a' is not a number"),
    (["--fractions", "0.1,,1"], "Error: --fractions '0.1,,1': give comma-separated values"),
    (["--counts", "0"], "Error: --counts: 0 is below 1"),
    (["--counts", "1"], "Error: size n=1: label budget 1 is smaller than the number of classes (2)"),
    (["--counts", "2.5"], "Error: --counts: '2.5' is not a whole number"),
    ([], "Error: give labeled-set sizes with --fractions"),
    (["--counts", "40", "--seeds", "0"], "Error: --seeds 0: need at least 1 seed"),
    (["--counts", "40", "--seed-list", "1,-2"], "Error: --seed-list: -2 is negative"),
    (["--counts", "40", "--arms", "ssl,foo"], "Error: --arms: unknown arm 'foo'; allowed: ssl, "
                                              "scratch, linear_probe, baseline"),
    (["--counts", "40", "--arms", "baseline:logistc"],
     "Error: unknown baseline 'logistc'; did you mean 'logistic'"),
    (["--counts", "1000"], "Error: size n=1000: label budget 1000 is larger than the 400 labeled "
                           "items available"),
    (["--counts", "40", "--alpha", "2"], "Error: --alpha 2.0: must be between 0 and 1"),
])
def test_bad_arguments_give_one_line_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    config = write_config(tmp_path / "c.yaml", _config(tmp_path, _data(tmp_path)))
    with pytest.raises(SystemExit) as exc:
        main(["sweep", str(config), "--out", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 1 and len(err) == 1 and err[0].startswith(message), err
    assert not (tmp_path / "out" / "cells").exists()


def test_config_errors(tmp_path: Path) -> None:
    data = _data(tmp_path)
    sizes, quiet = [Size(count=40)], {"echo": lambda s: None}
    no_pre = parse_config(_config(tmp_path, data, pretrain=None))
    with pytest.raises(ConfigError, match="^arms ssl need pre-trained weights: the config has no "
                                          "'pretrain' section and no 'init'; give --init PATH"):
        run_sweep(no_pre, tmp_path / "a", sizes=sizes, seeds=[0], arms=["ssl", "scratch"], **quiet)
    no_test = _config(tmp_path, data)
    no_test["finetune"]["data"].pop("test")
    with pytest.raises(ConfigError, match="give finetune.data.test"):
        run_sweep(parse_config(no_test), tmp_path / "b", sizes=sizes, seeds=[0], **quiet)
    dup = parse_config(_config(tmp_path, data, baselines=[{"name": "logistic"},
                                                          {"name": "logistic", "args": {"C": 2}}]))
    with pytest.raises(ConfigError, match="baselines: 'logistic' is listed 2 times"):
        run_sweep(dup, tmp_path / "c", sizes=sizes, seeds=[0], **quiet)
    # a folder holding another config's sweep is refused
    run_sweep(no_pre, tmp_path / "d", sizes=sizes, seeds=[0], arms=["baseline"], **quiet)
    other = parse_config(_config(tmp_path, data, pretrain=None, **{"finetune.train.lr": 0.1}))
    with pytest.raises(ConfigError, match=r"d holds a sweep of a different config \(differs in: "
                                          r"finetune\)"):
        run_sweep(other, tmp_path / "d", sizes=sizes, seeds=[0], arms=["baseline"], **quiet)


def test_ensemble_and_auto_arms(tmp_path: Path) -> None:
    """Data a linear baseline fits well: auto picks it (by validation at 200 labels, by
    cross-validation at 40), the ensemble averages on validation data only."""
    config = write_config(tmp_path / "c.yaml", _config(tmp_path, _data(tmp_path)))
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["sweep", str(config), "--counts", "40,200", "--seeds", "1",
                                   "--arms", "auto,ssl,scratch,baseline,ensemble",
                                   "--out", str(out)])
    assert res.exit_code == 0, (res.output, res.exception)
    results = _read(out / "results.csv")
    assert list(dict.fromkeys(results["arm"])) == ["ssl", "scratch", "baseline:logistic",
                                                   "ensemble", "auto"]
    cells = out / "cells"

    def ev(name: str) -> dict[str, Any]:
        return json.loads((cells / name / "eval.json").read_text())

    for tag in ("40", "200"):
        ens = ev(f"ensemble_{tag}_0")
        assert ens["ensemble"]["members"] == ["ssl", "baseline:logistic"]
        assert ens["ensemble"]["weight"] in (0.0, 0.25, 0.5, 0.75, 1.0)
        assert ens["label_counts"] == ev(f"ssl_{tag}_0")["label_counts"]
        chosen = ev(f"auto_{tag}_0")["selection"]
        assert chosen["chosen"] in ("baseline:logistic", "ensemble")
        assert chosen["runner_up"] and chosen["interval"][0] <= chosen["score"] <= chosen["interval"][1]
        if chosen["chosen"] != "ensemble" and tag == "200":  # auto's numbers are the cell's
            src = chosen["chosen"].replace(":", "-")
            assert ev(f"auto_{tag}_0")["test"] == ev(f"{src}_{tag}_0")["test"]
            assert "refit" not in ev(f"auto_{tag}_0")
    # with auto in the sweep, a small validation set's ensemble is chosen out of fold too,
    # on the same cross-validation (computed once, kept in cv/)
    assert ev("ensemble_200_0")["ensemble"]["chosen_on"] == "validation"
    assert ev("ensemble_40_0")["ensemble"]["chosen_on"].startswith(
        "5-fold cross-validation over the 40 labeled items")
    cached = json.loads((out / "cv" / "40_0.json").read_text())
    assert cached["arms"] == ["baseline:logistic", "scratch", "ssl"] and len(cached["labels"]) == 40
    assert not (out / "cv" / "200_0.json").exists() and not (out / "cv" / "folds_40_0").exists()
    big = ev("auto_200_0")["selection"]
    assert big["method"].startswith("validation (40 items")
    assert big["chosen"] == "baseline:logistic"  # 0.99 against ~0.75 on validation
    small = ev("auto_40_0")["selection"]
    assert small["method"].startswith("5-fold cross-validation over the 40 labeled items")
    assert set(small["scores"]) == {"ssl", "scratch", "baseline:logistic", "ensemble"}
    assert small["scores"]["baseline:logistic"] > max(small["scores"]["ssl"], small["scores"]["scratch"])
    oof = _read(cells / "auto_40_0" / "cv_oof.csv")
    assert len(oof) == 40 and not (cells / "auto_40_0" / "folds").exists()
    # chosen by cross-validation, the baseline ships refitted on all 40 labels (its cell used
    # the 32 of the training part): its threshold and validation numbers are out of fold
    assert small["chosen"] == "baseline:logistic"
    refit, cell = ev("auto_40_0"), ev("baseline-logistic_40_0")
    assert refit["refit"].startswith("fitted on all 40 labeled items (training and validation part)")
    assert (refit["n_train"], cell["n_train"], cell["n_val"]) == (40, 32, 8)
    assert refit["label_counts"]["train"] == {"0": 21, "1": 19} == refit["label_counts"]["val"]
    assert refit["test"]["auroc"] != cell["test"]["auroc"]
    val = _read(cells / "auto_40_0" / "predictions" / "val.csv")
    assert len(val) == 40
    np.testing.assert_allclose(val["score"].to_numpy(), oof["baseline:logistic_1"].to_numpy())
    assert set(val["label"]) == {0, 1} and (val["label"].to_numpy() == oof["label"].to_numpy()).all()
    assert "(chose " in res.output
    # the report shows stability and the choices
    text, parser = parse(out / "report" / "report.html")
    stab = parser.rows("stability-table")
    assert len(stab) == 10 and {r[0][0] for r in stab} == {"ssl", "scratch", "baseline:logistic",
                                                          "ensemble", "auto"}
    auto_rows = parser.rows("auto-table")
    assert [(r[0][0], r[2][0]) for r in auto_rows] == [("200", big["chosen"]),
                                                        ("40", small["chosen"])]
    # a rerun reuses every cell, the derived ones included
    again = CliRunner().invoke(cli, ["sweep", str(config), "--counts", "40,200", "--seeds", "1",
                                     "--arms", "ssl,scratch,baseline,ensemble,auto",
                                     "--out", str(out)])
    assert again.exit_code == 0 and "10 reused" in again.output


@pytest.mark.parametrize("folds", [0, 3])
def test_auto_cross_validation_folds(tmp_path: Path, folds: int) -> None:
    """``cv_folds`` sets the folds of a small validation set's cross-validation; below 2 the
    validation set chooses whatever its size."""
    cfg = parse_config(_config(tmp_path, _data(tmp_path)))
    out = tmp_path / "out"
    run_sweep(cfg, out, sizes=[Size(count=40)], seeds=[0], arms=["scratch", "baseline", "auto"],
              echo=lambda _: None, cv_folds=folds)
    chosen = json.loads((out / "cells" / "auto_40_0" / "selection.json").read_text())
    if folds:
        assert chosen["method"].startswith("3-fold cross-validation over the 40 labeled items")
        assert chosen["n_items"] == 40
    else:
        assert chosen["method"].startswith("validation (8 items")
        assert chosen["n_items"] == 8
    assert set(chosen["scores"]) == {"scratch", "baseline:logistic"}
    if folds:  # a cross-validation cache that cannot be read is computed again, not a crash
        cache = out / "cv" / "40_0.json"
        cache.write_text('{"labels": [0, 1')
        shutil.rmtree(out / "cells" / "auto_40_0")
        lines: list[str] = []
        run_sweep(cfg, out, sizes=[Size(count=40)], seeds=[0],
                  arms=["scratch", "baseline", "auto"], echo=lines.append, cv_folds=folds)
        said = [line for line in lines if "cross-validating again" in line]
        assert len(said) == 1 and str(cache) in said[0] and "not valid JSON" in said[0]
        again = json.loads((out / "cells" / "auto_40_0" / "selection.json").read_text())
        assert again["scores"] == chosen["scores"]
        assert json.loads(cache.read_text())["arms"] == ["baseline:logistic", "scratch"]


def test_auto_order_of_preference_from_the_config(tmp_path: Path) -> None:
    """``finetune.prefer`` orders auto's choice (within two standard errors); the order is recorded, and an
    auto cell chosen under another order is chosen again on a rerun (from the cached
    cross-validation: nothing is retrained), while the other cells are reused."""
    cfg = parse_config(_config(tmp_path, _data(tmp_path)))
    out = tmp_path / "out"
    arms = ["scratch", "baseline", "auto"]
    run_sweep(cfg, out, sizes=[Size(count=40)], seeds=[0], arms=arms, echo=lambda _: None)
    cell = out / "cells" / "auto_40_0"
    first = json.loads((cell / "selection.json").read_text())
    assert first["preference"] == list(sel.PREFERENCE)
    assert cfg.finetune is not None
    prefer = cfg.model_copy(update={"finetune": cfg.finetune.model_copy(
        update={"prefer": ["scratch"]})})
    lines: list[str] = []
    run_sweep(prefer, out, sizes=[Size(count=40)], seeds=[0], arms=arms, echo=lines.append)
    assert any("auto" in line and "choosing again" in line for line in lines)
    assert not any("cross-validating" in line for line in lines)
    assert sum("(finished earlier)" in line for line in lines) == 2
    again = json.loads((cell / "selection.json").read_text())
    assert again["preference"] == ["scratch"] and again["scores"] == first["scores"]
    oof = pd.read_csv(cell / "cv_oof.csv")
    y = oof["label"].to_numpy()
    probs = {a: oof[[f"{a}_0", f"{a}_1"]].to_numpy() for a in first["scores"]}
    assert again["chosen"] == sel.choose(y, probs, again["method"],
                                         preference=("scratch",)).chosen
    assert again["tolerance"] == sel.TOLERANCE
    lines.clear()
    run_sweep(prefer, out, sizes=[Size(count=40)], seeds=[0], arms=arms, echo=lines.append)
    assert sum("(finished earlier)" in line for line in lines) == 3
    # a choice recorded before the tolerance was (within one standard error) is made again
    record = json.loads((cell / "eval.json").read_text())
    del record["selection"]["tolerance"]
    (cell / "eval.json").write_text(json.dumps(record))
    lines.clear()
    run_sweep(prefer, out, sizes=[Size(count=40)], seeds=[0], arms=arms, echo=lines.append)
    assert any("auto" in line and "choosing again" in line for line in lines)
    assert json.loads((cell / "selection.json").read_text())["tolerance"] == sel.TOLERANCE
    # chosen by cross-validation, the arm ships fitted again on every label; a cell that
    # shipped its choice as trained in its own cell is chosen again, from the cached
    # cross-validation (it keeps the steps the networks' folds kept: nothing is retrained
    # but the refit)
    record = json.loads((cell / "eval.json").read_text())
    assert record["refit"] and record["n_train"] == 40
    del record["refit"]
    (cell / "eval.json").write_text(json.dumps(record))
    lines.clear()
    run_sweep(prefer, out, sizes=[Size(count=40)], seeds=[0], arms=arms, echo=lines.append)
    assert any("shipped without refitting on every label): choosing again" in line
               for line in lines)
    assert not any("cross-validating" in line for line in lines)
    assert json.loads((cell / "eval.json").read_text())["refit"]
    with pytest.raises(ConfigError, match="each candidate at most once"):
        parse_config(_config(tmp_path, _data(tmp_path), **{"finetune.prefer": ["ssl", "ssl"]}))
    with pytest.raises(ConfigError, match="unknown candidate.*deep"):
        parse_config(_config(tmp_path, _data(tmp_path), **{"finetune.prefer": ["ssl", "deep"]}))
    named = parse_config(_config(tmp_path, _data(tmp_path),
                                 **{"finetune.prefer": ["baseline:logistic", "ssl", "baseline"]}))
    assert named.finetune is not None and named.finetune.prefer == [
        "baseline:logistic", "ssl", "baseline"]



def _with_task_preference(order: Any) -> Registry:
    """The host's registry with ``prefer`` registered on the built-in ``classification``
    task, as a plugin's ``@component(..., prefer=...)`` would."""
    host = get_host().registry
    registry = Registry()
    for entry in host.entries():
        if entry.kind == "finetune" and entry.name == "classification":
            entry = dataclasses.replace(entry, meta={**entry.meta, "prefer": order})
        registry.add(entry)
    return registry


def test_auto_order_of_preference_from_the_task(tmp_path: Path) -> None:
    """Without ``finetune.prefer``, auto's order is the one the fine-tuning task's plugin
    registered; the config's overrides it; a malformed registered order is refused naming the
    plugin and task."""
    cfg = parse_config(_config(tmp_path, _data(tmp_path)))
    assert cfg.finetune is not None
    registry = _with_task_preference(["scratch", "baseline"])
    assert sweep_mod.preference(cfg, registry) == (
        ("scratch", "baseline"), "the default of the fine-tuning task classification "
                                 "(plugin ssl_domains)")
    assert sweep_mod.preference(cfg, get_host().registry) == (sel.PREFERENCE, "")
    own = cfg.model_copy(update={"finetune": cfg.finetune.model_copy(
        update={"prefer": ["baseline", "scratch"]})})
    assert sweep_mod.preference(own, registry) == (("baseline", "scratch"),
                                                   "the config's finetune.prefer")
    for bad, why in ((["scratch", "deep"], "unknown candidate"), (["ssl", "ssl"], "listed twice"),
                     ("ssl", "must be a list")):
        with pytest.raises(ContractError, match=f"finetune task 'classification'.*{why}"):
            sweep_mod.preference(cfg, _with_task_preference(bad))
    out = tmp_path / "out"
    run_sweep(cfg, out, sizes=[Size(count=40)], seeds=[0], arms=["scratch", "baseline", "auto"],
              echo=lambda _: None, registry=registry)
    chosen = json.loads((out / "cells" / "auto_40_0" / "selection.json").read_text())
    assert chosen["preference"] == ["scratch", "baseline"]
    assert chosen["rule"].endswith("(order of preference: the default of the fine-tuning task "
                                   "classification (plugin ssl_domains))")
    oof = pd.read_csv(out / "cells" / "auto_40_0" / "cv_oof.csv")
    probs = {a: oof[[f"{a}_0", f"{a}_1"]].to_numpy() for a in chosen["scores"]}
    assert chosen["chosen"] == sel.choose(oof["label"].to_numpy(), probs, chosen["method"],
                                          preference=("scratch", "baseline")).chosen


def test_auto_with_a_class_too_rare_to_cross_validate(tmp_path: Path) -> None:
    """10 labels with 2 of the rare class: the validation carve holds one of each (not the two
    items of the common class a proportional split would give), and in each of the 2 folds
    the training part has one rare item, so no candidate trains there: each is left out of
    the cross-validation (said in the log) and auto chooses on the validation set instead of
    failing."""
    rng = np.random.RandomState(0)
    x = rng.randn(400, 1, 32).astype("float32")
    m = x[:, 0, :8].mean(1)
    y = (m > np.quantile(m, 0.8)).astype(int)
    data = tmp_path / "rare.npz"
    np.savez(data, x=x, y=y)
    cfg = parse_config(_config(tmp_path, data, pretrain=None))
    out = tmp_path / "out"
    lines: list[str] = []
    run_sweep(cfg, out, sizes=[Size(count=10)], seeds=[0], arms=["scratch", "baseline", "auto"],
              echo=lines.append)
    counts = json.loads((out / "cells" / "scratch_10_0" / "eval.json").read_text())["label_counts"]
    assert counts["train"] == {"0": 7, "1": 1} and counts["val"] == {"0": 1, "1": 1}
    chosen = json.loads((out / "cells" / "auto_10_0" / "selection.json").read_text())
    assert chosen["method"].startswith("validation (2 items")
    assert "the 2-fold cross-validation over the 10 labeled items trained no candidate" in chosen["method"]
    assert set(chosen["scores"]) == {"scratch", "baseline:logistic"}
    left = [line for line in lines if "cross-validation: scratch failed" in line]
    assert left and "left out" in left[0] and "has no items of class" in left[0]
