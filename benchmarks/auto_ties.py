"""Re-choose finished ``auto`` cells of a sweep with the current tie rule, without retraining.

An auto cell's ``selection.json`` holds every candidate's selection score; a network or
baseline candidate ships as trained in its own cell, so the test AUROC of choosing it is that
cell's (the ensemble is refitted with the cross-validation's weight: only the cell's own number
is known for it). Prints, per
data set and label budget, the auto arm as it ran, as the current rule
(:func:`ssl_domains.sweep.selection.rank_by_score`) would choose, and the best single arm.

    python benchmarks/auto_ties.py runs/suite
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from ssl_domains.engine.assess import read_assessment
from ssl_domains.sweep.selection import rank_by_score


def _test_auroc(cells: Path, arm: str, size: str, seed: str) -> float:
    ev = read_assessment(cells / f"{arm.replace(':', '-')}_{size}_{seed}")
    return float(ev.test["auroc"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="a suite output folder (holds <dataset>/cells/)")
    args = ap.parse_args()
    rows: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for sel in sorted(args.out.glob("*/cells/auto_*/selection.json")):
        cell = sel.parent
        _, size, seed = cell.name.split("_")
        scores = json.loads(sel.read_text())
        candidates = scores["scores"]
        r = rows[(cell.parent.parent.name, size)]
        as_run = float(read_assessment(cell).test["auroc"])
        now = rank_by_score(candidates)[0]
        r["as run"].append(as_run)
        # another choice ships that candidate's own cell (the ensemble, refitted on the
        # cross-validation's weight, is only ever chosen by both rules: it ranks last on ties)
        r["current rule"].append(as_run if now == scores["chosen"]
                                 else _test_auroc(cell.parent, now, size, seed))
        for arm in candidates:
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
