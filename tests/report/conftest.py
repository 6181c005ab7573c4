"""Synthetic run and sweep folders in the layout the engine writes."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from ssl_domains.scoring.metrics import classification_metrics  # noqa: E402
from ssl_domains.scoring.thresholds import choose_threshold  # noqa: E402

ARMS = ("ssl", "scratch", "linear_probe", "baseline:logistic")
SIZES = ((10, 0.01), (50, 0.05), (100, 0.1), (1000, 1.0))
SEEDS = (0, 1, 2)


def _scores(rng: np.random.Generator, y: np.ndarray, strength: float) -> np.ndarray:
    return 1 / (1 + np.exp(-(strength * (2 * y - 1) + rng.normal(size=len(y)))))


def write_run(path: Path, strength: float = 1.5, seed: int = 0, n: int = 120,
              pretext_figure: bool = True) -> Path:
    """A complete single run folder; returns it."""
    rng = np.random.default_rng(seed)
    (path / "predictions").mkdir(parents=True)
    splits = {}
    for split in ("val", "test"):
        y = (rng.random(n) < 0.3).astype(int)
        y[:2] = [0, 1]
        s = _scores(rng, y, strength)
        splits[split] = (y, s)
    thr = choose_threshold(*splits["val"], rule="youden")
    for split, (y, s) in splits.items():
        pd.DataFrame({"id": [f"case{i:04d}" for i in range(n)], "label": y, "score": s,
                      "decision": (s >= thr).astype(int)}).to_csv(
            path / "predictions" / f"{split}.csv", index=False)
    ev = {"threshold": thr, "threshold_rule": "youden",
          "val": classification_metrics(*splits["val"], threshold=thr),
          "test": classification_metrics(*splits["test"], threshold=thr),
          "n_train": 40, "n_val": n, "n_test": n,
          "label_counts": {"train": {"0": 28, "1": 12},
                           "test": {"0": int((splits["test"][0] == 0).sum()),
                                    "1": int(splits["test"][0].sum())}}}
    (path / "eval.json").write_text(json.dumps(ev))
    lines = []
    for stage, steps in (("pretrain", 30), ("finetune", 20)):
        for step in range(steps):
            lines.append({"stage": stage, "step": step, "epoch": step // 10, "split": "train",
                          "loss": 2.0 * np.exp(-step / 10) + 0.05 * rng.random(), "lr": 1e-3})
            if step % 10 == 9:
                lines.append({"stage": stage, "step": step, "epoch": step // 10,
                              "split": "val", "loss": 2.2 * np.exp(-step / 12), "lr": 1e-3,
                              "auroc": 0.8})
    (path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    cfg = {"name": "demo <run> & co", "seed": seed,
           "backbone": {"name": "mlp", "args": {"hidden": 32}},
           "finetune": {"task": {"name": "classification"}}}
    (path / "config.yaml").write_text(yaml.safe_dump(cfg))
    (path / "environment.json").write_text(json.dumps(
        {"host": "0.1.0", "plugins": {"medical": "0.1.0"}, "torch": "2.13.0",
         "python": "3.11.9", "device": "cpu"}))
    if pretext_figure:
        (path / "figures").mkdir()
        fig, axes = plt.subplots(1, 2, figsize=(4, 2))
        axes[0].imshow(rng.random((8, 8)))
        axes[1].imshow(rng.random((8, 8)))
        fig.savefig(path / "figures" / "pretext_reconstruction.png")
        plt.close(fig)
    return path


def write_sweep(path: Path, with_cells: bool = True) -> Path:
    """A sweep folder (``path/sweep/results.csv`` + cells) where SSL beats scratch."""
    rng = np.random.default_rng(7)
    rows = []
    base = {"ssl": 0.80, "scratch": 0.70, "linear_probe": 0.76, "baseline:logistic": 0.65}
    for arm in ARMS:
        for n_labels, fraction in SIZES:
            for seed in SEEDS:
                gain = 0.1 * np.log10(n_labels)
                auroc = min(0.99, base[arm] + gain * (0.5 if arm == "ssl" else 1.0)
                            + 0.01 * rng.normal())
                rows.append((arm, n_labels, fraction, seed, "auroc", auroc))
                rows.append((arm, n_labels, fraction, seed, "balanced_accuracy",
                             auroc - 0.1 + 0.01 * rng.normal()))
    (path / "sweep").mkdir(parents=True)
    pd.DataFrame(rows, columns=["arm", "n_labels", "fraction", "seed", "metric", "value"]
                 ).to_csv(path / "sweep" / "results.csv", index=False)
    if with_cells:
        for arm in ("ssl", "scratch"):
            write_run(path / "sweep" / "cells" / f"{arm}_1000_0", pretext_figure=False)
        (path / "sweep" / "cells" / "ssl_1000_1").mkdir()  # interrupted cell
    return path


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A finished single run folder."""
    return write_run(tmp_path / "run")


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    """A sweep folder with results and two finished cells plus one unfinished cell."""
    return write_sweep(tmp_path / "sweep_run")
