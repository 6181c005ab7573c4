"""A sweep's tables (:mod:`ssl_domains.sweep.results`) from cell folders written by the
assessment, without training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ssl_domains.autoselect.arms import Arm, Size, cell_name
from ssl_domains.engine.assess import Counts, Predictions, finish_run, read_assessment
from ssl_domains.layout.numbers import headline_metric
from ssl_domains.sweep.results import NOT_METRICS, summary_table, write_results

SIZE = Size(count=40)


def _cell(out: Path, arm: str, seed: int, constant: bool = False) -> None:
    """A finished cell: validation and test predictions that separate the classes (or one
    constant output), assessed as any run."""
    rng = np.random.default_rng(seed)
    y = np.array([0, 1] * 20)

    def preds(prefix: str) -> Predictions:
        p = np.full(len(y), 0.5) if constant else np.clip(0.3 + 0.4 * y + rng.normal(0, 0.2, len(y)),
                                                          0.01, 0.99)
        return Predictions([f"{prefix}{i}" for i in range(len(y))], np.stack([1 - p, p], 1), y)

    finish_run(out / "cells" / cell_name(Arm(arm), SIZE, seed), preds("v"), preds("t"),
               threshold_rule="youden", counts=Counts(n_train=30, n_val=40, n_pool=400, n_labels=40))


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    out = tmp_path / "sweep"
    for seed in (0, 1):
        _cell(out, "ssl", seed)
        _cell(out, "scratch", seed, constant=seed == 1)  # scratch collapses on seed 1
    return out


def test_tables_hold_each_finished_cells_test_metrics(sweep: Path) -> None:
    cells = [(Arm(a), SIZE, s) for a in ("ssl", "scratch") for s in (0, 1)]
    cells.append((Arm("linear_probe"), SIZE, 0))  # unfinished: left out
    results, summary = write_results(sweep, cells)
    pd.testing.assert_frame_equal(pd.read_csv(sweep / "results.csv", float_precision="round_trip"),
                                  results, check_dtype=False)
    for (arm, seed), rows in results.groupby(["arm", "seed"]):
        test = read_assessment(sweep / "cells" / cell_name(Arm(arm), SIZE, seed)).metrics("test")
        assert dict(zip(rows["metric"], rows["value"], strict=True)) == pytest.approx(
            {k: np.nan if v is None else v for k, v in test.items() if k not in NOT_METRICS},
            nan_ok=True)
    assert set(results["arm"]) == {"ssl", "scratch"}
    assert set(results["n_labels"]) == {40} and set(results["fraction"]) == {0.1}
    stability = pd.read_csv(sweep / "stability.csv")
    flagged = stability.set_index(["arm", "seed"])["collapsed"].to_dict()
    assert flagged == {("ssl", 0): False, ("ssl", 1): False, ("scratch", 0): False,
                       ("scratch", 1): True}
    auroc = summary[(summary["metric"] == "auroc") & (summary["kind"] == "arm")].set_index("arm")
    assert auroc.loc["scratch", "n_collapsed"] == 1 and auroc.loc["ssl", "n_collapsed"] == 0
    assert json.loads((sweep / "summary.json").read_text())["alpha"] == 0.05
    assert headline_metric(results["metric"]) == "auroc"
    lines = summary_table(summary, "auroc", ["ssl", "scratch"]).splitlines()
    assert lines[0].split() == ["auroc", "(test)", "n_labels", "ssl", "scratch", "ssl-scratch",
                                "[95%", "CI]"]
    assert len(lines) == 2 and lines[1].split()[0] == "40"
    assert "[1/2 collapsed]" in lines[1]
    ssl_mean = auroc.loc["ssl", "mean"]
    assert f"{ssl_mean:.3f}±" in lines[1]


def test_no_finished_cell_gives_empty_tables(tmp_path: Path) -> None:
    results, summary = write_results(tmp_path, [(Arm("ssl"), SIZE, 0)])
    assert results.empty and summary.empty and headline_metric(results["metric"]) is None
    assert list(pd.read_csv(tmp_path / "results.csv").columns) == list(results.columns)
