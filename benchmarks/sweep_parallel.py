"""Sweep cells and ``select: auto``'s cross-validation folds side by side (``--jobs``).

Measures, back to back on the same machine, on the bundled time-series sample data
(``sample_data/sweep_demo.yaml``, the patch Transformer, pre-trained once beforehand and given
to every arm as ``--init`` so that each arm times the cells only):

* a 12-cell sweep (``--fractions 0.5,1 --seeds 2 --arms ssl,scratch,linear_probe``) one cell
  after another on one thread (``OMP_NUM_THREADS=1``, no ``--jobs``) and with
  ``--jobs 2 --threads-per-job 1``; their ``results.csv`` must be byte-identical;
* ``ssl-domains finetune --set finetune.select=auto`` at ``label_fraction 0.25`` (a validation
  set too small to choose on: 5-fold cross-validation of every candidate, then the refit), the
  same two ways; the chosen candidate and the run's ``eval.json`` numbers must be equal.

Targets (issue 27): ``--jobs 2`` in <= 0.6x the wall time of the sequential run, both.

    python benchmarks/sweep_parallel.py [--out /tmp/sweep_parallel] [--repeat 1] [--epochs 30]
    python benchmarks/sweep_parallel.py --probe   # cores 1 and 2 busy processes get (10 s each)

``--epochs E`` (default 30) trains every network E epochs without early stopping, so that a
cell takes seconds rather than the 1-3 s of the demo's recipe (``--epochs 0`` keeps it: 8
epochs, early stopping): a job's process start (importing torch and the plugins, ~5 s of CPU)
is then small beside the work, as in the sweeps the issue measured (40-500 s a cell).

Wall times include each command's start (imports) and its workers' start; the CPU time (user +
system of the command and all its descendants: the fork server and its workers too, adopted
as orphans and reaped after the command) shows what running side by side costs beyond the work,
and the load average before each run how much of the 2 cores other processes took. Prints a
Markdown table and writes ``<out>/sweep_parallel.json``.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "sample_data" / "sweep_demo.yaml"
SWEEP = ["--fractions", "0.5,1", "--seeds", "2", "--arms", "ssl,scratch,linear_probe"]
AUTO = ["--set", "finetune.select=auto", "--set", "finetune.label_fraction=0.25"]
PARALLEL = ["--jobs", "2", "--threads-per-job", "1"]


def _adopt_orphans() -> None:
    """Make this process the reaper of its orphaned descendants (Linux): the fork server of
    ``--jobs`` and the workers it forked outlive the command by a moment and are no children
    of it, so without this their CPU time would be missing from RUSAGE_CHILDREN."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _reap() -> None:
    """Wait for every descendant adopted by :func:`_adopt_orphans` (their CPU time counts)."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _cli(*args: str, one_thread: bool = True) -> dict[str, float]:
    """Run ``ssl-domains ARGS`` from the repository root: its wall time, the CPU time of it
    and its workers (user + system, seconds) and the load average before it started."""
    env = dict(os.environ, OMP_NUM_THREADS="1") if one_thread else dict(os.environ)
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ssl_domains.cli", *args], cwd=REPO, env=env,
                   check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    _reap()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "load": load}


def cores_used(processes: int, seconds: float = 10.0) -> float:
    """Cores that ``processes`` busy loops started from this session got on average (CPU time
    over wall time): on a kernel that schedules by session (autogroup), other sessions' load
    caps a session's share however many processes it runs."""
    loop = f"import time\nt = time.time()\nwhile time.time() - t < {seconds}: pass"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(processes)]
    for proc in procs:
        proc.wait()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) / wall


def _eval(run: Path) -> dict:
    ev = json.loads((run / "eval.json").read_text())
    return {"chosen": ev["selection"]["chosen"], "test": ev["test"], "val": ev["val"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/sweep_parallel"))
    ap.add_argument("--repeat", type=int, default=1, help="pairs of runs per measurement")
    ap.add_argument("--epochs", type=int, default=30,
                    help="fine-tuning epochs without early stopping (0: the demo's recipe)")
    ap.add_argument("--probe", action="store_true",
                    help="only measure the cores 1 and 2 busy processes of this session get")
    args = ap.parse_args()
    _adopt_orphans()
    if args.probe:
        print(f"load average {os.getloadavg()[0]:.1f}; cores used by 1 busy process: "
              f"{cores_used(1):.2f}, by 2: {cores_used(2):.2f}, by 1 again: {cores_used(1):.2f}")
        return
    recipe = ["--set", f"finetune.train.epochs={args.epochs}",
              "--set", "finetune.train.early_stopping=null"] if args.epochs else []
    out = args.out.resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    pre = out / "pretrain"
    t_pre = _cli("pretrain", str(CONFIG), "--out", str(pre), one_thread=False)["wall"]
    init = ["--init", str(pre / "export")]
    rows: dict[str, list[dict[str, dict[str, float]]]] = {"sweep": [], "auto": []}
    identical = {"sweep": True, "auto": True}
    for r in range(args.repeat):
        order = [(False, "seq"), (True, "par")] if r % 2 == 0 else [(True, "par"), (False, "seq")]
        times: dict[str, dict[str, dict[str, float]]] = {"sweep": {}, "auto": {}}
        for parallel, tag in order:
            folder = out / f"sweep_{tag}_{r}"
            times["sweep"][tag] = _cli("sweep", str(CONFIG), *SWEEP, *recipe, *init,
                                       "--out", str(folder),
                                       *(PARALLEL if parallel else []))
        for parallel, tag in order:
            times["auto"][tag] = _cli("finetune", str(CONFIG), *AUTO, *recipe, *init,
                                      "--out", str(out / f"auto_{tag}_{r}"),
                                      *(PARALLEL if parallel else []))
        identical["sweep"] &= filecmp.cmp(out / f"sweep_seq_{r}" / "results.csv",
                                          out / f"sweep_par_{r}" / "results.csv", shallow=False)
        identical["auto"] &= _eval(out / f"auto_seq_{r}") == _eval(out / f"auto_par_{r}")
        for what in rows:
            rows[what].append(times[what])
    report = {"pretrain_s": t_pre, "rows": rows, "identical": identical, "epochs": args.epochs,
              "load_before": os.getloadavg(), "cpus": os.cpu_count()}
    (out / "sweep_parallel.json").write_text(json.dumps(report, indent=2))
    names = {"sweep": "12-cell sweep (ssl, scratch, linear_probe x 2 sizes x 2 seeds)",
             "auto": "select: auto, 5-fold CV (67 labels, 6 candidates)"}
    print(f"fine-tuning: {f'{args.epochs} epochs, no early stopping' if args.epochs else 'the demo recipe'}; "
          f"pre-training (once, not timed below): {t_pre:.0f} s; "
          f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| run | --jobs 1 (1 thread): wall, CPU, load before | --jobs 2 (1 thread each): wall, "
          "CPU, load before | wall ratio | target | same numbers |")
    print("|---|---|---|---|---|---|")
    for what, pairs in rows.items():
        for got in pairs:
            seq, par = got["seq"], got["par"]
            ratio = par["wall"] / seq["wall"]
            print(f"| {names[what]} | {seq['wall']:.0f} s, {seq['cpu']:.0f} s, {seq['load']:.1f} | "
                  f"{par['wall']:.0f} s, {par['cpu']:.0f} s, {par['load']:.1f} | {ratio:.2f} | "
                  f"<= 0.60 ({'met' if ratio <= 0.6 else 'not met'}) | "
                  f"{'yes' if identical[what] else 'NO'} |")


if __name__ == "__main__":
    main()
