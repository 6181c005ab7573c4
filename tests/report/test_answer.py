"""The report answers "which model do I ship?" first, adapts to what was run (several label
budgets: curves; one budget: the arms side by side), and keeps intervals in the metric's range."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ssl_domains.report.answer import arm_folders
from ssl_domains.report.artifacts import summarize
from ssl_domains.report.htmlpage import fmt
from ssl_domains.report.pages import build_report, load_run
from ssl_domains.scoring.intervals import paired_case_difference

from .conftest import ARMS, write_run, write_sweep
from .test_report import assert_number, parse

SELECTION = {"chosen": "baseline:minirocket", "metric": "auroc", "score": 0.9, "interval": [0.8, 0.97],
             "runner_up": "ssl", "runner_up_score": 0.8, "scores": {"ssl": 0.8, "baseline:minirocket": 0.9},
             "method": "validation (60 items, chosen by validation AUROC)", "n_items": 60}


def minirocket_sweep(path: Path) -> Path:
    """A held-out sweep where MiniRocket beats both networks at every budget and auto ships it
    (auto's test values are MiniRocket's); AUROCs near 1, so Student-t bands would pass 1."""
    rng = np.random.default_rng(3)
    rows = []
    for n_labels in (20, 80):
        for seed in (0, 1, 2):
            rocket = float(np.clip(0.97 + 0.03 * rng.normal(), 0, 1))
            for arm, value in (("ssl", 0.80 + 0.05 * rng.normal()), ("scratch", 0.78 + 0.05 * rng.normal()),
                               ("baseline:minirocket", rocket), ("auto", rocket)):
                rows += [(arm, n_labels, n_labels / 100, seed, "auroc", value),
                         (arm, n_labels, n_labels / 100, seed, "f1", float(np.clip(value - 0.2 + 0.3 * rng.normal(), 0, 1)))]
            cell = path / "sweep" / "cells" / f"auto_{n_labels}_{seed}"
            cell.mkdir(parents=True)
            (cell / "selection.json").write_text(json.dumps(SELECTION))
    pd.DataFrame(rows, columns=["arm", "n_labels", "fraction", "seed", "metric", "value"]).to_csv(
        path / "sweep" / "results.csv", index=False)
    return path


def test_the_summary_says_which_model_to_ship_at_each_budget(tmp_path: Path) -> None:
    sweep = minirocket_sweep(tmp_path / "s")
    text, parser = parse(build_report(sweep))
    summary = summarize(pd.read_csv(sweep / "sweep" / "results.csv", float_precision="round_trip"))
    arms = summary[(summary["kind"] == "arm") & (summary["metric"] == "auroc")].set_index(["n_labels", "arm"])
    ship = parser.rows("ship-table")
    assert [(int(r[0][1]), r[1][0], r[8][0]) for r in ship] == [
        (20, "baseline:minirocket", "baseline:minirocket (3 of 3 seeds)"),
        (80, "baseline:minirocket", "baseline:minirocket (3 of 3 seeds)")]
    for row in ship:
        best = arms.loc[(int(row[0][1]), "baseline:minirocket")]
        auto = arms.loc[(int(row[0][1]), "auto")]
        for i, value in ((2, best["mean"]), (3, best["ci_low"]), (4, best["ci_high"]),
                         (9, auto["mean"]), (10, auto["ci_low"]), (11, auto["ci_high"])):
            assert_number(row[i], value)
        assert row[5][0] == "seeds"
    best = arms.loc[(20, "baseline:minirocket")]
    assert (f"With 20 labels: ship baseline:minirocket, test auroc {fmt(best['mean'])} (95% CI "
            f"{fmt(best['ci_low'])} to {fmt(best['ci_high'])} over seeds)") in text
    assert "select: auto chose baseline:minirocket (3 of 3 seeds) scored" in text
    # the ship answer comes first, SSL against scratch after it
    assert text.index("Which model to ship") < text.index("SSL against scratch") < text.index("answer-table")
    # several budgets: label-efficiency curves, no side-by-side section
    assert (sweep / "report" / "label_efficiency_auroc.png").is_file()
    assert not (sweep / "report" / "roc_arms.png").exists() and "comparison-table" not in text
    # every interval of a metric in [0, 1] stays in [0, 1] (plain Student-t would not here)
    arm_rows = summary[summary["kind"] == "arm"]
    assert ((arm_rows["ci_low"] >= 0) & (arm_rows["ci_high"] <= 1)).all()
    rocket = pd.read_csv(sweep / "sweep" / "results.csv").query("arm == 'auto' and n_labels == 20 and metric == 'auroc'")
    values = rocket["value"].to_numpy()
    t_high = values.mean() + 4.303 * values.std(ddof=1) / np.sqrt(3)
    assert t_high > 1 >= arms.loc[(20, "auto"), "ci_high"]


def test_one_budget_one_seed_shows_the_arms_side_by_side(tmp_path: Path) -> None:
    """The demo's layout: the SSL run's folder holds ``scratch/`` and ``sweep/results.csv`` of
    one size and one seed."""
    root = write_run(tmp_path / "demo", strength=2.0, seed=0)
    write_run(root / "scratch", strength=0.8, seed=0, pretext_figure=False)  # same test cases
    rows = []
    for arm, folder in (("ssl", root), ("scratch", root / "scratch")):
        test = json.loads((folder / "eval.json").read_text())["test"]
        rows += [(arm, 40, 0.5, 0, metric, value) for metric, value in test.items()]
    (root / "sweep").mkdir()
    pd.DataFrame(rows, columns=["arm", "n_labels", "fraction", "seed", "metric", "value"]).to_csv(
        root / "sweep" / "results.csv", index=False)

    text, parser = parse(build_report(root))
    assert "The arms at 40 labels" in text and "no label-efficiency curves" in text
    assert (root / "report" / "roc_arms.png").stat().st_size > 1000
    assert not list((root / "report").glob("label_efficiency_*.png"))
    assert not (root / "report" / "difference_auroc.png").exists()
    intervals = {arm: load_run(folder).test_intervals() for arm, folder in
                 (("ssl", root), ("scratch", root / "scratch"))}
    tests = {arm: json.loads((folder / "eval.json").read_text())["test"] for arm, folder in
             (("ssl", root), ("scratch", root / "scratch"))}
    table = parser.tables["comparison-table"]
    header = [h for h, _ in table[0]]
    assert header[:4] == ["metric", "ssl", "ssl ci_low", "ssl ci_high"]
    for row in table[1:]:
        metric = row[0][0]
        for arm in ("ssl", "scratch"):
            i = header.index(arm)
            assert_number(row[i], tests[arm][metric])  # the arm's test value ...
            assert_number(row[i + 1], intervals[arm][metric].low)  # ... and its interval over
            assert_number(row[i + 2], intervals[arm][metric].high)  # test cases, in [0, 1]
            assert 0 <= intervals[arm][metric].low <= intervals[arm][metric].high <= 1
    (ship,) = parser.rows("ship-table")
    assert ship[1][0] == "ssl" and ship[5][0] == "test cases" and ship[6][0] == "scratch"
    assert_number(ship[3], intervals["ssl"]["auroc"].low)
    assert f"With 40 labels: ship ssl, test auroc {fmt(tests['ssl']['auroc'])} (95% CI" in text
    # one seed: SSL against scratch on the test cases both scored, paired bootstrap over them
    ssl_csv, scratch_csv = (pd.read_csv(f / "predictions" / "test.csv") for f in (root, root / "scratch"))
    assert (ssl_csv["id"] == scratch_csv["id"]).all() and (ssl_csv["label"] == scratch_csv["label"]).all()
    expected = paired_case_difference(ssl_csv["label"].to_numpy(), ssl_csv["score"].to_numpy(),
                                      scratch_csv["score"].to_numpy(), "auroc")
    assert expected.low > 0  # strength 2.0 against 0.8 on 120 cases
    assert (f"With 40 labels and one seed: SSL beat scratch; auroc difference {fmt(expected.mean, signed=True)} "
            f"(95% CI {fmt(expected.low, signed=True)} to {fmt(expected.high, signed=True)}, paired bootstrap "
            "over the 120 test cases both arms scored") in text


@pytest.mark.parametrize("with_cells", [True, False])
def test_a_sweep_of_one_budget_compares_its_cells(tmp_path: Path, with_cells: bool) -> None:
    """A sweep of one size and three seeds: intervals over seeds; ROC curves of the cells of the
    lowest seed when the cells are there, a note when they are not."""
    sweep = write_sweep(tmp_path / "s", with_cells=False)
    results = pd.read_csv(sweep / "sweep" / "results.csv").query("n_labels == 1000")
    results.to_csv(sweep / "sweep" / "results.csv", index=False)
    if with_cells:  # a sweep of fractions names its cells by fraction; baseline:x is baseline-x
        for folder in ("ssl_1.0_0", "scratch_1.0_0", "baseline-logistic_1.0_0", "ssl_1.0_1"):
            write_run(sweep / "sweep" / "cells" / folder, pretext_figure=False)
        found = arm_folders(sweep, sweep / "sweep", list(ARMS), 1000, 0, fraction=1.0)
        assert found == {arm: sweep / "sweep" / "cells" / f"{arm.replace(':', '-')}_1.0_0"
                         for arm in ("ssl", "scratch", "baseline:logistic")}
    text, parser = parse(build_report(sweep))
    assert "The arms at 1000 labels" in text and "95% intervals over seeds" in text
    assert (sweep / "report" / "roc_arms.png").is_file() is with_cells
    assert ("ROC curves of the arms skipped" in text or "no test predictions of the arms" in text) is not with_cells
    summary = summarize(results)
    ssl = summary.query("kind == 'arm' and arm == 'ssl' and metric == 'auroc'").iloc[0]
    row = next(r for r in parser.rows("comparison-table") if r[0][0] == "auroc")
    assert_number(row[1], ssl["mean"])
    assert_number(row[2], ssl["ci_low"])


def test_a_dense_arm_of_one_seed_gets_the_interval_its_eval_json_holds(tmp_path: Path) -> None:
    """Segmentation cells have no predictions CSV: the interval over test cases is the one the
    engine stored (``test_intervals`` of eval.json)."""
    sweep = tmp_path / "s" / "sweep"
    rows = []
    for arm, dice, bounds in (("scratch", 0.61, [0.52, 0.70]), ("baseline:voxel_statistics", 0.35, [0.2, 0.5])):
        for n in (1, 2):
            rows.append((arm, n, float("nan"), 0, "dice", dice))
            cell = sweep / "cells" / f"{arm.replace(':', '-')}_{n}_0"
            cell.mkdir(parents=True)
            (cell / "eval.json").write_text(json.dumps(
                {"test": {"dice": dice}, "test_intervals": {"dice": bounds, "method": "bootstrap"}}))
    pd.DataFrame(rows, columns=["arm", "n_labels", "fraction", "seed", "metric", "value"]).to_csv(
        sweep / "results.csv", index=False)
    text, parser = parse(build_report(sweep.parent))
    ship = parser.rows("ship-table")
    assert [(r[1][0], r[5][0], r[6][0]) for r in ship] == [("scratch", "test cases", "baseline:voxel_statistics")] * 2
    assert_number(ship[0][3], 0.52)
    assert_number(ship[0][4], 0.70)
    assert "With 1 label: ship scratch, test dice 0.610 (95% CI 0.520 to 0.700 over test cases)" in text
