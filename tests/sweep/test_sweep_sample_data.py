"""Acceptance (issue 5): on the bundled sample data, one `sweep` command produces results.csv,
the summary and the report, and the numbers the report shows equal those in the CSV."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ssl_domains.cli import cli
from ssl_domains.report.artifacts import read_results
from tests.report.test_report import assert_results_table, parse

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "sample_data" / "sweep_demo.yaml"


@pytest.mark.skipif(not CONFIG.is_file(), reason="sample_data/sweep_demo.yaml missing")
def test_sample_data_sweep_report_matches_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # the sample config's paths are relative to the repository root
    out = tmp_path / "sweep"
    res = CliRunner().invoke(cli, [
        "sweep", str(CONFIG), "--fractions", "0.5,1", "--seeds", "2",
        "--arms", "ssl,scratch,baseline:signal_stats", "--out", str(out),
        "--set", "pretrain.train.epochs=1", "--set", "finetune.train.epochs=2",
        "--set", "backbone.args.d_model=16", "--set", "backbone.args.depth=1",
    ])
    assert res.exit_code == 0, res.output
    for name in ("results.csv", "summary.csv", "summary.json", "report/report.html"):
        assert (out / name).is_file(), name
    results = read_results(out / "results.csv")
    assert results is not None
    assert set(results["arm"]) == {"ssl", "scratch", "baseline:signal_stats"}
    assert set(results["seed"]) == {0, 1}
    text, parser = parse(out / "report" / "report.html")
    assert_results_table(parser, results)
    assert "12 of 12 cells finished." in text
