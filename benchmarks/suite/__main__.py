"""python -m benchmarks.suite [--quick] [--budgets 10,20,50,10%,100%] [--seeds 3] [--out DIR]

Run from the repository root. See ``benchmarks/suite/__init__.py`` and ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _pct(value: object) -> str:
    """``value`` for an argparse help string (which formats with %)."""
    return str(value).replace("%", "%%")


def main(argv: list[str] | None = None) -> int:
    from benchmarks.suite import datasets, run

    ap = argparse.ArgumentParser(prog="python -m benchmarks.suite",
                                 description="Label-efficiency benchmark suite: every dataset "
                                             "with its data kind's default recipe.")
    ap.add_argument("--quick", action="store_true",
                    help=f"1 seed, budgets {_pct(run.QUICK_BUDGETS)}, the quick datasets only, "
                         "arms without auto")
    ap.add_argument("--budgets", help=f"labels (counts) and shares of the pool (with %%); "
                                      f"default {_pct(run.DEFAULT_BUDGETS)}")
    ap.add_argument("--seeds", type=int, help="seeds 0..S-1 (default 3; 1 with --quick)")
    ap.add_argument("--datasets", help="comma-separated names (default: all, or the quick ones)")
    ap.add_argument("--arms", help="sweep arms (default: every arm the sweep knows; without "
                                   "auto with --quick)")
    ap.add_argument("--data", type=Path, default=Path("..") / "shared" / "data",
                    help="data root (default ../shared/data)")
    ap.add_argument("--out", type=Path, help="output folder (default runs/suite or "
                                             "runs/suite-quick)")
    ap.add_argument("--recipes", type=Path,
                    help="a folder of recipes (signal.yaml, image.yaml, volume.yaml) to use "
                         "instead of benchmarks/suite/recipes, e.g. benchmarks/suite/variants/"
                         "tcn_mean; a kind missing there uses the default recipe")
    ap.add_argument("--reports", action="store_true", help="also build each sweep's HTML report")
    ap.add_argument("--table-only", action="store_true",
                    help="only rebuild the table and figure from the finished cells (of the "
                         "--arms and the first --seeds seeds, when given)")
    ap.add_argument("--list", action="store_true", help="list the datasets and exit")
    args = ap.parse_args(argv)

    try:
        chosen = datasets.by_name(args.datasets.split(",") if args.datasets else None,
                                  quick=args.quick)
        sizes = run.parse_budgets(args.budgets or (run.QUICK_BUDGETS if args.quick
                                                   else run.DEFAULT_BUDGETS))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.list:
        for ds in chosen:
            missing = ds.missing(args.data)
            state = f"missing {', '.join(missing)}" if missing else "ok"
            print(f"{ds.name:<16} {ds.kind:<7} {'quick' if ds.quick else '':<6} {state}; "
                  f"{ds.protocol}")
        return 0
    out = args.out or Path("runs") / ("suite-quick" if args.quick else "suite")
    if args.table_only:
        results = run.collect(out, chosen)
        if args.arms:  # e.g. the arms every seed has, or one arm against the others
            results = results[results["arm"].map(lambda a: run.arm_selected(a, args.arms))]
        if args.seeds:
            results = results[results["seed"] < args.seeds]
        paths = run.write_outputs(out, results)
        print(paths["table_md"].read_text())
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    seeds = list(range(args.seeds if args.seeds else (1 if args.quick else 3)))
    arms = args.arms.split(",") if args.arms else (run.quick_arms() if args.quick
                                                    else run.default_arms())
    record = run.run_suite(chosen, args.data, out, sizes, seeds, arms,
                           echo=lambda line: print(line, flush=True), reports=args.reports,
                           recipes=args.recipes,
                           command="python -m benchmarks.suite " + " ".join(
                               argv if argv is not None else sys.argv[1:]))
    failed = [n for n, r in record["datasets"].items() if r.get("status") == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
