"""Re-choose finished ``auto`` cells of a sweep with the current rule, without retraining.

An auto cell chose on selection data it keeps: the out-of-fold probabilities of every candidate
(``cv_oof.csv``) when it cross-validated, else the candidates' own validation predictions. This
script runs :func:`ssl_domains.autoselect.choice.choose` (the current rule, or another order of
preference with ``--prefer``, another tolerance with ``--tolerance``) on the same data. A
network or baseline candidate chosen on validation ships as trained in its own cell, so the
test AUROC of choosing it is that cell's. The ensemble is rebuilt as the auto cell would ship
it: after cross-validation, the baseline and weight chosen on all out-of-fold probabilities,
applied to the ``ssl`` and baseline cells' test probabilities; after a validation choice, the
ensemble cell as it is. A baseline or network chosen by cross-validation ships fitted again on
every label: the auto cell holds that refit for the arm it chose; a rule that picks another
arm there is scored with that arm's cell (counted and printed). Prints, per data set and
label budget, the auto arm as it ran, as the rule would choose, and the best single arm; then
what always shipping one arm would have given instead, and an oracle that ships, per seed,
the arm best on the other seeds' test sets (:func:`leave_one_seed_out`).

``--prefer`` is an order of preference, or one read off the suite's own cells (every arm's
test AUROC, :func:`benchmarks.suite.table.preference_order`):

* ``kind``: per data set, the order of the cells of every data set of its kind (the data set
  itself included: in-sample, as the suite's recipes were set);
* ``plugin``: per data set, the order of the cells of every data set served by the same
  plugin (:data:`benchmarks.suite.datasets.DOMAIN`; in-sample: what the plugin's task ships);
* ``held-out``: per data set, the order of the cells of the *other* data sets served by the
  same plugin (:data:`benchmarks.suite.datasets.DOMAIN`): what a data set nobody looked at
  gets, so its score is a held-out measurement of the order.

    python benchmarks/auto_rechoose.py runs/suite
    python benchmarks/auto_rechoose.py runs/suite-tcn --prefer baseline:minirocket,ensemble,ssl
    python benchmarks/auto_rechoose.py runs/suite-tcn runs/suite-img runs/suite-vol --prefer held-out
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.suite import table
from benchmarks.suite.datasets import DOMAIN, by_name
from benchmarks.suite.run import collect
from ssl_domains.autoselect import choice as selection
from ssl_domains.autoselect.arms import Arm, Size, cell_name
from ssl_domains.autoselect.derived import chose_by_cross_validation
from ssl_domains.engine.assess import read_assessment, read_predictions
from ssl_domains.engine.exports import combine
from ssl_domains.layout.sweep import parse_cell_name
from ssl_domains.report.artifacts import read_selection


def _cell(cells: Path, arm: str, size: str, seed: str) -> Path:
    return cells / cell_name(Arm(arm), Size.from_tag(size), int(seed))


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


def ensemble_test_auroc(cell: Path, y: np.ndarray, probs: dict[str, np.ndarray]) -> float:
    """Test AUROC of the ensemble the auto ``cell`` ships when it chooses it."""
    _, size, seed = parse_cell_name(cell.name) or ("", "", "")
    bases = {a: p for a, p in probs.items() if a.startswith("baseline")}
    if not (cell / "cv_oof.csv").is_file() or "ssl" not in probs or not bases:
        return _test_auroc(cell.parent, "ensemble", size, seed)
    base, _ = selection.strongest_baseline(y, bases)
    weight, _ = selection.ensemble_weight(y, probs["ssl"], bases[base])
    deep = read_predictions(_cell(cell.parent, "ssl", size, seed) / "predictions" / "test.csv")
    other = read_predictions(_cell(cell.parent, base, size, seed) / "predictions" / "test.csv")
    return selection.auroc(np.asarray(deep.labels, dtype=int), combine(deep.probs, other.probs, weight))


def orders(outs: list[Path], how: str) -> dict[str, tuple[str, ...]]:
    """Data set -> order of preference, ``how`` being ``kind``, ``plugin`` or ``held-out`` (module
    docstring), read off the finished cells of every arm but ``auto`` under ``outs``."""
    frames = [collect(out, by_name()) for out in outs]
    results = pd.concat([f for f in frames if not f.empty], ignore_index=True)
    stats, _ = table.complete(table.cell_stats(results[results["arm"] != "auto"]))
    kinds = stats.groupby("dataset")["kind"].first()
    out = {}
    for ds, kind in kinds.items():
        if how == "kind":
            pool = stats[stats["kind"] == kind]
        elif how == "plugin":
            pool = stats[stats["kind"].map(DOMAIN).eq(DOMAIN[kind])]
        else:
            pool = stats[stats["kind"].map(DOMAIN).eq(DOMAIN[kind]) & (stats["dataset"] != ds)]
        out[str(ds)] = tuple(table.preference_order(pool))
    return out


def leave_one_seed_out(r: dict[str, list[float]], arms: dict[str, float]) -> float | None:
    """What an oracle that sees test sets would ship: for each seed, the arm with the best mean
    test AUROC over the *other* seeds of the same data set and budget, scored on that seed;
    averaged over seeds. The "best single arm" is the best of several means over the same few
    seeds, so it is biased upwards; this shows how near any rule can come to it. None with
    fewer than two seeds, or arms not run on every seed."""
    n = len(r["rule"])
    runs = {a: np.asarray(r[a]) for a in arms if len(r[a]) == n}
    if n < 2 or len(runs) < len(arms):
        return None
    picks = []
    for i in range(n):
        others = np.arange(n) != i
        pick = max(runs, key=lambda a: float(runs[a][others].mean()))
        picks.append(float(runs[pick][i]))
    return float(np.mean(picks))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, nargs="+",
                    help="suite output folder(s) (each holds <dataset>/cells/)")
    ap.add_argument("--prefer", default=",".join(selection.PREFERENCE),
                    help="order of preference for the rule: arm kinds or single baselines "
                         "(baseline:<name>) separated by commas, or "
                         "'kind', 'plugin' or 'held-out' (read off the suite's cells; see the module "
                         f"docstring); default: {','.join(selection.PREFERENCE)}")
    ap.add_argument("--tolerance", type=float, default=selection.TOLERANCE,
                    help="standard errors a candidate earlier in the order may fall short of the "
                         f"best by (default: {selection.TOLERANCE:g}, the current rule)")
    args = ap.parse_args()
    if args.prefer in ("kind", "plugin", "held-out"):
        per_dataset = orders(args.out, args.prefer)
        for ds, order in per_dataset.items():
            print(f"{ds}: {','.join(order)}")
        print()
    else:
        fixed = tuple(p.strip() for p in args.prefer.split(","))
        per_dataset = defaultdict(lambda: fixed)
    rows: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    unrefit = 0  # arms the rule picks by cross-validation with no refit in the cell
    for sel in sorted(s for out in args.out for s in out.glob("*/cells/auto_*/selection.json")):
        cell = sel.parent
        ran = read_selection(sel)
        parsed = parse_cell_name(cell.name)
        if ran is None or parsed is None:
            continue
        _, size, seed = parsed
        dataset = cell.parent.parent.name
        y, probs = selection_data(cell, list(ran.scores))
        test = {arm: _test_auroc(cell.parent, arm, size, seed) for arm in ran.scores}
        shipped = dict(test, ensemble=ensemble_test_auroc(cell, y, probs)) \
            if "ensemble" in test else test
        done = read_assessment(cell)
        if done.refit is not None:  # the arm it chose, fitted again on every label
            shipped = dict(shipped, **{ran.chosen: float(done.test["auroc"])})
        now = selection.choose(y, probs, ran.method, seed=int(seed),
                               preference=per_dataset[dataset], tolerance=args.tolerance).chosen
        if (now != ran.chosen or done.refit is None) and chose_by_cross_validation(ran):
            unrefit += 1
        r = rows[(dataset, size)]
        r["as run"].append(float(read_assessment(cell).test["auroc"]))
        r["rule"].append(shipped[now])
        for arm, value in test.items():
            r[arm].append(value)
    gaps = []
    fixed: dict[str, list[float]] = defaultdict(list)  # always shipping one arm, per cell
    oracle: list[float] = []  # the arm best on the other seeds' test sets, per cell
    print(f"rule: {args.tolerance:g} standard error(s), order of preference {args.prefer}\n")
    print("| dataset | labels | seeds | auto as run | auto, rule | best single arm | rule − best |")
    print("|---|---|---|---|---|---|---|")
    for (ds, size), r in rows.items():
        arms = {a: float(np.mean(v)) for a, v in r.items() if a not in ("as run", "rule")}
        best = max(arms, key=lambda a: arms[a])
        gaps.append(float(np.mean(r["rule"])) - arms[best])
        for arm, value in arms.items():
            fixed[arm].append(value - arms[best])
        loso = leave_one_seed_out(r, arms)
        if loso is not None:
            oracle.append(loso - arms[best])
        print(f"| {ds} | {size} | {len(r['as run'])} | {np.mean(r['as run']):.3f} | "
              f"{np.mean(r['rule']):.3f} | {best} {arms[best]:.3f} | {gaps[-1]:+.3f} |")
    if gaps:
        g = np.asarray(gaps)
        print(f"\nwithin 0.01 of the best single arm: {int((g >= -0.01).sum())} of {len(g)}; "
              f"mean difference {g.mean():+.4f}")
        if unrefit:
            print(f"({unrefit} choice(s) of an arm by cross-validation scored as its cell, "
                  "trained on the training part: the auto cell refitted another or none)")
        print("\nalways shipping one arm instead (in the cells where it ran):\n")
        print("| arm | cells within 0.01 of the best single arm | mean difference |")
        print("|---|---|---|")
        print(f"| auto, rule | {int((g >= -0.01).sum())} of {len(g)} | {g.mean():+.4f} |")
        for arm, diffs in sorted(fixed.items(), key=lambda kv: -float(np.mean(kv[1]))):
            d = np.asarray(diffs)
            print(f"| {arm} | {int((d >= -0.01).sum())} of {len(d)} | {d.mean():+.4f} |")
        if oracle:
            o = np.asarray(oracle)
            print(f"| oracle: the arm best on the other seeds' test sets | "
                  f"{int((o >= -0.01).sum())} of {len(o)} | {o.mean():+.4f} |")


if __name__ == "__main__":
    main()
