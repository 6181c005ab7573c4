"""Markdown table of a sweep's summary (mean ± sd over seeds per arm and size, and the paired
SSL-minus-scratch difference with its 95 % interval), and a copy of its label-efficiency plot.

    python benchmarks/sweep_table.py SWEEP_DIR [--metric auroc] [--figure benchmarks/figures/NAME.png]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pandas as pd


def table(sweep: Path, metric: str) -> str:
    s = pd.read_csv(sweep / "summary.csv", float_precision="round_trip")
    s = s[s["metric"] == metric]
    arms = [a for a in ("ssl", "scratch", "linear_probe") if a in set(s["arm"])]
    arms += sorted(a for a in set(s["arm"]) if a.startswith("baseline:"))
    sizes = sorted(set(zip(s["n_labels"], s["fraction"])))
    head = ["labels (fraction)", *arms, "ssl − scratch [95 % CI]"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n, f in sizes:
        row = [f"{int(n)} ({f:g})"]
        for arm in arms:
            r = s[(s["arm"] == arm) & (s["n_labels"] == n) & (s["kind"] == "arm")]
            row.append(f"{r['mean'].iloc[0]:.3f} ± {r['std'].iloc[0]:.3f} (n={int(r['n'].iloc[0])})"
                       if len(r) else "–")
        d = s[(s["kind"] == "difference") & (s["n_labels"] == n)]
        row.append(f"{d['mean'].iloc[0]:+.3f} [{d['ci_low'].iloc[0]:+.3f}, {d['ci_high'].iloc[0]:+.3f}]"
                   if len(d) else "–")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep", type=Path)
    ap.add_argument("--metric", default="auroc")
    ap.add_argument("--figure", type=Path, help="copy the label-efficiency PNG here")
    args = ap.parse_args()
    print(table(args.sweep, args.metric))
    if args.figure:
        src = args.sweep / "report" / f"label_efficiency_{args.metric}.png"
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, args.figure)


if __name__ == "__main__":
    main()
