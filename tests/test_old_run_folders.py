"""Run folders written by an earlier version still read: evaluate, predict, report, export.

``tests/fixtures/run_finetune`` is a time-series pre-train + fine-tune run and
``tests/fixtures/run_select_auto`` a ``select: auto`` run (an ensemble export, its candidates'
sweep folder; weights pruned) written by the code before run, export and sweep files got one
owner (:mod:`ssl_domains.artifacts`); ``tests/fixtures/run_*.yaml`` are their configs. Their
data paths are relative to the repository root (``sample_data/timeseries``).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from ssl_domains.config import ComponentRef
from ssl_domains.engine.evaluate import evaluate, predict_data
from ssl_domains.plugins import get_host
from ssl_domains.report.pages import build_report
from tests.conftest import REPO

FIXTURES = Path(__file__).parent / "fixtures"
UNITS = {"path": "sample_data/timeseries/finetune_labeled.parquet", "id_column": "series",
         "time_column": "t", "label_column": "label", "window": 128, "stride": 128,
         "normalize": "global"}


@pytest.fixture
def old_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the fine-tuning fixture (readers may write next to it), cwd at the repo."""
    monkeypatch.chdir(REPO)
    return Path(shutil.copytree(FIXTURES / "run_finetune", tmp_path / "run_finetune"))


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as f:
        return {r["id"]: r for r in csv.DictReader(f)}


def test_evaluate_an_old_run_gives_its_recorded_test_metrics(old_run: Path) -> None:
    recorded = json.loads((FIXTURES / "run_finetune" / "eval.json").read_text())
    again = evaluate(old_run, registry=get_host().registry)
    assert again["n"] == recorded["n_test"] == 48
    assert again["threshold"] == recorded["threshold"]
    assert again["metrics"]["auroc"] == pytest.approx(recorded["test"]["auroc"], abs=1e-6)


def test_predict_with_an_old_export_scores_as_the_run_did(old_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.csv"
    predict_data(old_run, ComponentRef(name="parquet", args={**UNITS, "ids": ["unit18", "unit19"]}), out,
                 registry=get_host().registry)
    got, recorded = _rows(out), _rows(FIXTURES / "run_finetune" / "predictions" / "test.csv")
    assert len(got) == 16 and set(got) <= set(recorded)
    for item, row in got.items():
        assert float(row["score"]) == pytest.approx(float(recorded[item]["score"]), abs=1e-5)
        assert row["decision"] == recorded[item]["decision"]


def test_report_of_old_runs(old_run: Path, tmp_path: Path) -> None:
    page = build_report(old_run).read_text()
    assert "anomaly_classification" in page and "0.534" in page  # the recorded test AUROC
    auto = Path(shutil.copytree(FIXTURES / "run_select_auto", tmp_path / "run_select_auto"))
    page = build_report(auto).read_text()
    assert "ensemble of ssl and baseline:signal_stats, weight 0.5 on ssl" in page
