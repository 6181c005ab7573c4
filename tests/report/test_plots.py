"""Each plot writes a PNG and returns its path; bad inputs give clear messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ssl_domains.layout.predictions import Predictions
from ssl_domains.report import plots
from ssl_domains.report.artifacts import read_metrics, read_results, summarize


def _png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_plots(run_dir: Path, tmp_path: Path) -> None:
    metrics, skipped = read_metrics(run_dir / "metrics.jsonl")
    assert skipped == 0
    assert _png(plots.loss_curves(metrics, tmp_path / "a" / "loss.png"))
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(30, int), np.ones(20, int)]
    preds = {"val": Predictions.from_scores(y, rng.random(50) + 0.3 * y),
             "test": Predictions.from_scores(y, rng.random(50) + 0.5 * y)}
    assert _png(plots.roc_curves(preds, tmp_path / "roc.png", threshold=0.6))
    assert _png(plots.pr_curves(preds, tmp_path / "pr.png"))
    assert _png(plots.confusion_matrix(y, (preds["test"].scores > 0.6).astype(int),
                                       tmp_path / "cm.png"))


def test_multiclass_roc_and_confusion(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    y = np.arange(60) % 3
    s = rng.dirichlet(np.ones(3), 60)
    s[np.arange(60), y] += 0.5
    preds = {"test": Predictions.from_scores(y, s)}
    assert _png(plots.roc_curves(preds, tmp_path / "roc.png"))
    assert _png(plots.confusion_matrix(y, s.argmax(1), tmp_path / "cm.png"))
    with pytest.raises(ValueError, match="no split has binary scores with both classes"):
        plots.pr_curves(preds, tmp_path / "pr.png")


def test_sweep_plots(sweep_dir: Path, tmp_path: Path) -> None:
    results = read_results(sweep_dir / "sweep" / "results.csv")
    assert _png(plots.label_efficiency(results, tmp_path / "le.png", "auroc"))
    assert _png(plots.difference_curve(summarize(results), tmp_path / "d.png", "auroc"))
    with pytest.raises(ValueError, match="metric 'f1' not in results \\(have: auroc, "
                                         "balanced_accuracy\\)"):
        plots.label_efficiency(results, tmp_path / "x.png", "f1")
    with pytest.raises(ValueError, match="no 'ssl-scratch' difference rows for metric 'f1'"):
        plots.difference_curve(summarize(results), tmp_path / "x.png", "f1")


def test_loss_curves_need_loss(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no 'loss' values to plot"):
        plots.loss_curves(pd.DataFrame({"step": [0], "lr": [0.1]}), tmp_path / "x.png")


def test_arm_colors_are_stable() -> None:
    arms = ["ssl", "baseline:a", "baseline:b"]
    assert plots.arm_color("ssl", arms) == plots.ARM_COLORS["ssl"]
    assert plots.arm_color("baseline:a", arms) != plots.arm_color("baseline:b", arms)


def test_building_reports_leaves_the_users_matplotlib_backend_alone() -> None:
    import subprocess
    import sys

    code = ("import matplotlib; matplotlib.use('svg'); import ssl_domains.report.pages; "
            "print(matplotlib.get_backend())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().lower() == "svg"
