"""NAB realKnownCause: label-free anomaly scores from forecasting error vs a rolling z-score.

Protocol (labels are used for evaluation only, never for training or thresholds):

- For each of the 7 ``realKnownCause`` series, a ``patch_transformer`` + ``forecasting``
  pretext task is pre-trained through the engine (``pretrain()``) on the series read with the
  label-free ``csv`` loader (items: 64-point context + 8-point horizon). Two training variants:
  ``whole`` (the whole series; the engine holds out its last 10 % for validation loss) and
  ``probation`` (only the first 15 % of the series, NAB's probationary period).
- Point scores: each point gets the forecast error (context-standardised MSE) of the 8-point
  horizon it falls in, forecast from the 64 points before it (past-only, like the baseline).
  Baseline: rolling z-score ``|x_t - mean| / std`` over the preceding 100 points.
- Evaluation windows: the ``nab`` loader cuts 128-point windows (stride 64) labelled positive
  when they overlap an anomaly window of ``combined_windows.json``; window score = max point
  score inside it. AUROC/AUPRC over all windows and over windows after the probationary period.
- Threshold: ``fit_threshold`` (0.99 quantile) on the scores of windows that lie entirely in
  the first 15 % of the series; F1 (unadjusted), event-level recall (share of NAB anomaly
  windows overlapped by at least one flagged window) and point-adjusted F1 (labelled as such)
  on the windows that start after that period.

    python benchmarks/nab_forecasting.py [--data ../shared/data/nab] [--out /work/bench/nab]
        [--steps 600] [--seeds 0,1,2] [--variants whole,probation] [--series nyc_taxi,...]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from ssl_domains_timeseries.tasks.anomaly_scores import (
    f1_with_point_adjust,
    fit_threshold,
    rolling_zscore,
    window_max,
)

from ssl_domains.config import parse_config
from ssl_domains.engine.pretrain import pretrain
from ssl_domains.plugins import get_host
from ssl_domains.scoring.metrics import binary_metrics

SERIES = [
    "realKnownCause/ambient_temperature_system_failure.csv",
    "realKnownCause/cpu_utilization_asg_misconfiguration.csv",
    "realKnownCause/ec2_request_latency_system_failure.csv",
    "realKnownCause/machine_temperature_system_failure.csv",
    "realKnownCause/nyc_taxi.csv",
    "realKnownCause/rogue_agent_key_hold.csv",
    "realKnownCause/rogue_agent_key_updown.csv",
]
CONTEXT, HORIZON = 64, 8
ITEM = CONTEXT + HORIZON
EVAL_WINDOW, EVAL_STRIDE = 128, 64
PROBATION = 0.15
ZSCORE_WINDOW = 100
THRESHOLD_Q = 0.99
MAX_TRAIN_ITEMS = 4000
BACKBONE = {"name": "patch_transformer",
            "args": {"in_channels": 1, "patch_len": 8, "stride": 8, "d_model": 32, "depth": 2,
                     "heads": 4, "dropout": 0.1}}
TASK = {"name": "forecasting", "args": {"horizon": HORIZON, "loss": "mse"}}
METHODS = ("zscore", "forecast_whole", "forecast_probation")

log = logging.getLogger("nab_forecasting")


def training_csv(data: Path, series: str, variant: str, work: Path) -> tuple[Path, int]:
    """The CSV the forecaster trains on and its number of points (no labels in either)."""
    src = data / "data" / series
    if variant == "whole":
        return src, len(pd.read_csv(src))
    df = pd.read_csv(src)
    n = int(len(df) * PROBATION)
    dst = work / "probation" / Path(series).name
    dst.parent.mkdir(parents=True, exist_ok=True)
    df.iloc[:n].to_csv(dst, index=False)
    return dst, n


def train_forecaster(csv: Path, n_points: int, run_path: Path, steps: int, seed: int
                     ) -> tuple[torch.nn.Module, dict[str, Any], dict[str, Any]]:
    """Pre-train the forecaster on ``csv`` through the engine; return (task, stats, summary)."""
    stride = max(1, math.ceil((n_points - ITEM + 1) / MAX_TRAIN_ITEMS))
    loader = {"name": "csv", "args": {"path": str(csv), "time_column": "timestamp",
                                      "channels": ["value"], "window": ITEM, "stride": stride,
                                      "normalize": "global"}}
    cfg = parse_config({
        "name": run_path.name, "output_dir": str(run_path.parent), "seed": seed, "device": "cpu",
        "backbone": BACKBONE,
        "pretrain": {
            "data": {"train": loader, "batch_size": 64, "val_fraction": 0.1},
            "task": TASK,
            "train": {"epochs": 1000, "max_steps": steps, "lr": 1e-3, "weight_decay": 0.01,
                      "warmup_steps": 20, "checkpoint_every": 10_000, "log_every": 100,
                      "progress": False},
        },
    })
    reg = get_host().registry
    summary = pretrain(cfg, run_path, registry=reg)
    stats = reg.create("loader", "csv", **loader["args"]).stats
    backbone = reg.create("backbone", BACKBONE["name"], **BACKBONE["args"])
    task = reg.create("pretext", TASK["name"], backbone, **TASK["args"])
    state = torch.load(run_path / "checkpoints" / "pretrain" / "last.pt", weights_only=True)
    task.load_state_dict(state["model"])
    task.eval()
    return task, stats, summary


@torch.no_grad()
def forecast_point_scores(task: torch.nn.Module, data: Path, series: str,
                          stats: dict[str, Any], length: int) -> np.ndarray:
    """Per-point forecast error ``[T]``; the first ``CONTEXT`` points (no past) score 0."""
    ds = get_host().registry.create(
        "loader", "nab", data_root=str(data), series=[series], window=ITEM, stride=HORIZON,
        normalize="global", stats={"mean": stats["mean"], "std": stats["std"]}, cover_end=True)
    points = np.zeros(length)
    for lo in range(0, len(ds), 256):
        items = [ds[i] for i in range(lo, min(lo + 256, len(ds)))]
        batch = {"signal": torch.stack([it["signal"] for it in items]),
                 "mask": torch.stack([it["mask"] for it in items])}
        scores = task.anomaly_scores(batch).numpy()
        for it, s in zip(items, scores):
            start = it["meta"]["start"] + CONTEXT
            points[start:start + HORIZON] = s
    return points


def evaluate(scores: np.ndarray, labels: np.ndarray, starts: np.ndarray, events: list[str],
             length: int) -> dict[str, Any]:
    """Window-level metrics of one method on one series (threshold from the first 15 %)."""
    prob_end = int(length * PROBATION)
    fit = starts + EVAL_WINDOW <= prob_end
    test = starts >= prob_end
    out: dict[str, Any] = {
        "auroc": binary_metrics(labels, scores)["auroc"],
        "auprc": binary_metrics(labels, scores)["auprc"],
        "auroc_after_probation": binary_metrics(labels[test], scores[test])["auroc"],
    }
    thr = fit_threshold(scores[fit], "quantile", q=THRESHOLD_Q)
    pred = scores[test] > thr
    f1 = f1_with_point_adjust(pred, labels[test])
    ev_test = [e for e, t in zip(events, test) if t]
    names = sorted({e for e in ev_test if e})
    hit = {e for e, p in zip(ev_test, pred) if e and p}
    out.update(
        threshold=thr,
        f1=f1["f1"],
        f1_point_adjusted=f1["f1_point_adjusted"],
        event_recall=len(hit) / len(names) if names else float("nan"),
        events=len(names),
        flagged=int(pred.sum()),
        test_windows=int(test.sum()),
        test_positives=int(labels[test].sum()),
    )
    return out


def average(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of each metric over seeds, the AUROC's standard deviation and the per-seed values."""
    out = {k: float(np.nanmean([m[k] for m in per_seed])) for k in per_seed[0]}
    out["events"] = per_seed[0]["events"]
    out["auroc_sd"] = float(np.std([m["auroc"] for m in per_seed]))
    out["per_seed"] = per_seed
    return out


def run_series(data: Path, series: str, variants: list[str], out: Path, steps: int,
               seeds: list[int]) -> dict[str, Any]:
    """Scores and metrics of every method on one series."""
    reg = get_host().registry
    ev = reg.create("loader", "nab", data_root=str(data), series=[series], window=EVAL_WINDOW,
                    stride=EVAL_STRIDE, normalize="none")
    values = ev.recordings[0].signal[0].astype(np.float64)
    length = len(values)
    metas = [ev[i]["meta"] for i in range(len(ev))]
    labels = np.asarray(ev.labels)
    starts = np.asarray([m["start"] for m in metas])
    events = [m.get("event", "") for m in metas]
    point = {"zscore": [rolling_zscore(values, window=ZSCORE_WINDOW)]}
    info: dict[str, Any] = {"series": series, "points": length, "windows": len(ev),
                            "positive_windows": int(labels.sum())}
    for variant in variants:
        for seed in seeds:
            t0 = time.perf_counter()
            csv, n = training_csv(data, series, variant, out / "work")
            run_path = out / "runs" / variant / f"{Path(series).stem}-seed{seed}"
            task, stats, summary = train_forecaster(csv, n, run_path, steps, seed)
            point.setdefault(f"forecast_{variant}", []).append(
                forecast_point_scores(task, data, series, stats, length))
            info.setdefault(f"train_{variant}", []).append(
                {"seed": seed, "points": n, "steps": summary["steps"],
                 "n_train": summary["n_train"], "best_val_loss": summary["best_val_loss"],
                 "seconds": round(time.perf_counter() - t0, 1)})
    info["metrics"] = {}
    for name, runs in point.items():
        per_seed = []
        for p in runs:
            scores = window_max(p, EVAL_WINDOW, EVAL_STRIDE)
            if len(scores) != len(ev):
                raise RuntimeError(f"{series}: {len(scores)} window scores for {len(ev)} windows")
            per_seed.append(evaluate(scores, labels, starts, events, length))
        info["metrics"][name] = average(per_seed)
    return info


def fmt(v: float) -> str:
    """Three decimals, or 'n/a' for NaN."""
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def auroc_cell(m: dict[str, Any]) -> str:
    """AUROC, with its standard deviation over seeds when there are several."""
    return fmt(m["auroc"]) + (f" ± {m['auroc_sd']:.3f}" if len(m["per_seed"]) > 1 else "")


def tables(results: list[dict[str, Any]], methods: list[str]) -> str:
    """Markdown tables: AUROC per series + mean; thresholded metrics per series + mean."""
    short = {"zscore": "z-score", "forecast_whole": "forecast (whole)",
             "forecast_probation": "forecast (first 15%)"}
    lines = ["Window-level AUROC (all windows ± sd over seeds | windows after the first 15 %); "
             "forecaster metrics are means over seeds", "",
             "| series | windows (pos) | " + " | ".join(short[m] for m in methods) + " |",
             "|---|---|" + "---|" * len(methods)]
    rows = [[r["metrics"][m] for m in methods] for r in results]
    for r, row in zip(results, rows):
        cells = [f"{auroc_cell(c)} \\| {fmt(c['auroc_after_probation'])}" for c in row]
        name = Path(r["series"]).stem
        lines.append(f"| {name} | {r['windows']} ({r['positive_windows']}) | " + " | ".join(cells) + " |")
    means = [f"**{fmt(np.nanmean([row[j]['auroc'] for row in rows]))}** \\| "
             f"{fmt(np.nanmean([row[j]['auroc_after_probation'] for row in rows]))}"
             for j in range(len(methods))]
    lines.append("| **mean** | | " + " | ".join(means) + " |")
    lines += ["", "After the first 15 %, threshold = 0.99 quantile of the first 15 %'s window scores: "
              "F1 / event recall / point-adjusted F1 (PA inflates; shown for comparison only)", "",
              "| series | events | " + " | ".join(short[m] for m in methods) + " |",
              "|---|---|" + "---|" * len(methods)]
    keys = ("f1", "event_recall", "f1_point_adjusted")
    for r, row in zip(results, rows):
        cells = [" / ".join(fmt(c[k]) for k in keys) for c in row]
        name = Path(r["series"]).stem
        lines.append(f"| {name} | {row[0]['events']} | " + " | ".join(cells) + " |")
    means = [" / ".join(fmt(np.nanmean([row[j][k] for row in rows])) for k in keys)
             for j in range(len(methods))]
    lines.append("| **mean** | | " + " | ".join(means) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nab"))
    ap.add_argument("--out", default="/work/bench/nab")
    ap.add_argument("--steps", type=int, default=600, help="optimiser steps per forecaster")
    ap.add_argument("--variants", default="whole,probation")
    ap.add_argument("--series", default="", help="comma-separated stems; default: all 7")
    ap.add_argument("--seeds", default="0,1,2", help="forecaster seeds (metrics are averaged)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    data, out = Path(args.data), Path(args.out)
    if not (data / "data" / "realKnownCause").is_dir():
        sys.exit(f"{data}: NAB data not found (expected data/realKnownCause/ inside)")
    out.mkdir(parents=True, exist_ok=True)
    wanted = [s for s in args.series.split(",") if s]
    series = [s for s in SERIES if not wanted or Path(s).stem in wanted]
    variants = [v for v in args.variants.split(",") if v]
    seeds = [int(v) for v in args.seeds.split(",") if v]
    unknown = set(variants) - {"whole", "probation"}
    if unknown:
        sys.exit(f"unknown variants {sorted(unknown)}; use whole and/or probation")
    t0 = time.perf_counter()
    results = []
    for s in series:
        results.append(run_series(data, s, variants, out, args.steps, seeds))
        aucs = ", ".join(f"{m} {fmt(v['auroc'])}" for m, v in results[-1]["metrics"].items())
        print(f"{Path(s).stem}: {aucs} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    methods = [m for m in METHODS if m in results[0]["metrics"]]
    report = tables(results, methods)
    print(report)
    payload = {
        "command": "python " + " ".join(sys.argv),
        "protocol": {"context": CONTEXT, "horizon": HORIZON, "eval_window": EVAL_WINDOW,
                     "eval_stride": EVAL_STRIDE, "probation": PROBATION,
                     "zscore_window": ZSCORE_WINDOW, "threshold_quantile": THRESHOLD_Q,
                     "backbone": BACKBONE, "task": TASK, "steps": args.steps, "seeds": seeds,
                     "threads": args.threads, "label_rule": "any (window overlaps an anomaly window)"},
        "seconds": round(time.perf_counter() - t0, 1),
        "series": results,
        "mean": {m: {k: float(np.nanmean([r["metrics"][m][k] for r in results]))
                     for k in ("auroc", "auprc", "auroc_after_probation", "f1", "event_recall",
                               "f1_point_adjusted")} for m in methods},
        "table": report,
    }
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=float))
    print(f"wrote {out / 'results.json'} ({payload['seconds']:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
