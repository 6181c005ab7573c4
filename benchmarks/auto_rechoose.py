"""Re-choose finished ``auto`` cells of a sweep with the current rule, without retraining.

An auto cell chose on selection data it keeps: the out-of-fold probabilities of every candidate
(``cv_oof.csv``) when it cross-validated, else the candidates' own validation predictions. This
script runs :func:`ssl_domains.sweep.selection.choose` (the current rule) on the same data. A
network or baseline candidate ships as trained in its own cell, so the test AUROC of choosing
it is that cell's; the ensemble as the auto cell refitted it is known only where the cell
chose it too, else the ensemble cell's number stands in for it. Prints, per data set and label
budget, the auto arm as it ran, as the current rule would choose, and the best single arm.

    python benchmarks/auto_rechoose.py runs/suite
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from ssl_domains.engine.assess import read_assessment, read_predictions
from ssl_domains.report.artifacts import read_selection
from ssl_domains.sweep.selection import choose


def _cell(cells: Path, arm: str, size: str, seed: str) -> Path:
    return cells / f"{arm.replace(':', '-')}_{size}_{seed}"


def _test_auroc(cells: Path, arm: str, size: str, seed: str) -> float:
    return float(read_assessment(_cell(cells, arm, size, seed)).test["auroc"])


def selection_data(cell: Path, names: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Labels and every candidate's class probabilities on the items ``cell`` chose on."""
    oof = cell / "cv_oof.csv"
    if oof.is_file():
        with oof.open(newline="") as f:
            rows = list(csv.reader(f))
        head, data = rows[0], np.asarray(rows[1:], dtype=np.float64)
        probs = {n: data[:, [i for i, h in enumerate(head) if h.rsplit("_", 1)[0] == n]]
                 for n in names}
        return data[:, 0].astype(int), {n: p for n, p in probs.items() if np.isfinite(p).all()}
    _, size, seed = cell.name.split("_")
    preds = {n: read_predictions(_cell(cell.parent, n, size, seed) / "predictions" / "val.csv")
             for n in names}
    first = next(iter(preds.values()))
    return np.asarray(first.labels, dtype=int), {n: p.probs for n, p in preds.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="a suite output folder (holds <dataset>/cells/)")
    args = ap.parse_args()
    rows: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for sel in sorted(args.out.glob("*/cells/auto_*/selection.json")):
        cell = sel.parent
        _, size, seed = cell.name.split("_")
        ran = read_selection(sel)
        if ran is None:
            continue
        y, probs = selection_data(cell, list(ran.scores))
        now = choose(y, probs, ran.method, seed=int(seed)).chosen
        r = rows[(cell.parent.parent.name, size)]
        as_run = float(read_assessment(cell).test["auroc"])
        r["as run"].append(as_run)
        r["current rule"].append(as_run if now == ran.chosen
                                 else _test_auroc(cell.parent, now, size, seed))
        for arm in ran.scores:
            r[arm].append(_test_auroc(cell.parent, arm, size, seed))
    print("| dataset | labels | seeds | auto as run | auto, current rule | best single arm |")
    print("|---|---|---|---|---|---|")
    for (ds, size), r in rows.items():
        arms = {a: float(np.mean(v)) for a, v in r.items() if a not in ("as run", "current rule")}
        best = max(arms, key=lambda a: arms[a])
        print(f"| {ds} | {size} | {len(r['as run'])} | {np.mean(r['as run']):.3f} | "
              f"{np.mean(r['current rule']):.3f} | {best} {arms[best]:.3f} |")


if __name__ == "__main__":
    main()
