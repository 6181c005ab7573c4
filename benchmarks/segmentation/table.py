"""Markdown tables of the sarcoma segmentation sweeps (``benchmarks/segmentation/sarcoma.py``)::

    python -m benchmarks.segmentation.table runs/seg-sarcoma/sweep \\
        [--variant genesis=runs/seg-sarcoma-genesis/sweep ...]

Read from every finished cell's ``eval.json``. Per labeled-case budget and arm: mean ± sd over seeds of the test metrics; then the paired
differences to ``scratch`` (same cases per seed) with a Student-t 95 % interval over seeds. A
``--variant NAME=SWEEP`` adds that sweep's ``ssl`` arm as ``ssl-NAME`` (another pretext task on
the same cases).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

METRICS = ("dice", "lesion_wise_dice", "lesion_sensitivity", "fp_per_case", "sensitivity_at_1fp")


def cells(sweep: Path, rename: dict[str, str] | None = None) -> pd.DataFrame:
    """Tidy rows (arm, n_labels, seed, metric, value) of every finished cell of ``sweep``
    (read from each cell's ``eval.json``, so an unfinished sweep can be tabulated too)."""
    from ssl_domains.layout.sweep import parse_cell_name

    rows = []
    for cell in sorted((sweep / "cells").iterdir()):
        parsed = parse_cell_name(cell.name)
        if parsed is None or not (cell / "eval.json").is_file():
            continue
        arm, size, seed = parsed
        if rename is not None:
            if arm not in rename:
                continue
            arm = rename[arm]
        test = json.loads((cell / "eval.json").read_text()).get("test") or {}
        rows += [{"arm": arm, "n_labels": int(size), "seed": int(seed), "metric": m, "value": v}
                 for m, v in test.items() if v is not None]
    return pd.DataFrame(rows)


def load(sweep: Path, variants: dict[str, Path]) -> pd.DataFrame:
    """The cells of ``sweep`` plus each variant's ``ssl`` arm renamed ``ssl-<variant>``."""
    frames = [cells(sweep)] + [cells(path, {"ssl": f"ssl-{name}"}) for name, path in variants.items()]
    return pd.concat(frames, ignore_index=True)


def arm_table(results: pd.DataFrame) -> str:
    """Mean ± sd (seeds) per budget and arm."""
    lines = ["| cases | arm | seeds | " + " | ".join(METRICS) + " |",
             "|---|---|---|" + "---|" * len(METRICS)]
    for n in sorted(results["n_labels"].unique()):
        at = results[results["n_labels"] == n]
        for arm in dict.fromkeys(at["arm"]):
            rows = at[at["arm"] == arm]
            cells = []
            for m in METRICS:
                v = rows[rows["metric"] == m]["value"].astype(float)
                cells.append(f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if len(v) > 1 else
                             f"{v.mean():.3f}" if len(v) else "n/a")
            seeds = rows["seed"].nunique()
            lines.append(f"| {n} | {arm} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_table(results: pd.DataFrame, metric: str = "dice", base: str = "scratch") -> str:
    """Each arm minus ``base`` on ``metric``, paired by seed, with a t-interval."""
    lines = [f"| cases | arm − {base} ({metric}) | mean | 95 % t-interval | seeds |",
             "|---|---|---|---|---|"]
    rows = results[results["metric"] == metric]
    for n in sorted(rows["n_labels"].unique()):
        at = rows[rows["n_labels"] == n].pivot_table(index="seed", columns="arm", values="value")
        if base not in at:
            continue
        for arm in at.columns:
            if arm == base:
                continue
            d = (at[arm] - at[base]).dropna().to_numpy(dtype=float)
            if len(d) == 0:
                continue
            if len(d) > 1:
                half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
                ci = f"[{d.mean() - half:+.3f}, {d.mean() + half:+.3f}]"
            else:
                ci = "n/a"
            lines.append(f"| {n} | {arm} | {d.mean():+.3f} | {ci} | {len(d)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep", type=Path)
    ap.add_argument("--variant", action="append", default=[], help="NAME=SWEEP_FOLDER")
    args = ap.parse_args()
    variants = dict(v.split("=", 1) for v in args.variant)
    results = load(args.sweep, {k: Path(v) for k, v in variants.items()})
    print(arm_table(results))
    print()
    print(paired_table(results))


if __name__ == "__main__":
    main()
