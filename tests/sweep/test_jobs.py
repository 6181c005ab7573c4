"""``ssl-domains sweep --jobs N``: cells and auto's cross-validation folds as jobs in separate
processes, with the numbers of the sequential sweep, a lock per cell, and a killed sweep that
resumes. The cluster path (``--executor submitit-local``) is in test_cluster.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ssl_domains.autoselect.arms import Size
from ssl_domains.cli import cli
from ssl_domains.config import load_config
from ssl_domains.sweep.run import run_sweep
from tests.conftest import make_config, write_arrays, write_config

#: A small validation set (8 items at 40 labels): auto cross-validates (2 folds: fewer jobs).
ARGS = ["--counts", "40", "--seeds", "1", "--arms", "ssl,scratch,baseline,auto", "--cv-folds", "2"]
SAME = ["results.csv", "summary.csv", "stability.csv", "cv/40_0.json",
        "cells/auto_40_0/cv_oof.csv", "cells/auto_40_0/selection.json"]


def _config(folder: Path) -> Path:
    cfg = make_config(folder, write_arrays(folder), **{
        "pretrain.train.epochs": 1, "pretrain.train.max_steps": 3, "finetune.train.epochs": 2})
    return write_config(folder / "c.yaml", cfg)


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same sweep one cell after another (in this process) and with ``--jobs 2``."""
    folder = tmp_path_factory.mktemp("jobs")
    config = _config(folder)
    seq = folder / "seq"
    run_sweep(load_config(config), seq, sizes=[Size(count=40)], seeds=[0],
              arms=["ssl", "scratch", "baseline", "auto"], echo=lambda _: None, cv_folds=2)
    par = folder / "par"
    res = CliRunner().invoke(cli, ["sweep", str(config), *ARGS, "--out", str(par),
                                   "--jobs", "2", "--threads-per-job", "1"])
    assert res.exit_code == 0, (res.output, res.exception)
    return {"config": config, "seq": seq, "par": par, "lines": res.output.splitlines()}


def test_jobs_give_the_numbers_of_the_sequential_sweep(swept: dict[str, Any]) -> None:
    seq, par = swept["seq"], swept["par"]
    for name in SAME:
        assert (par / name).read_bytes() == (seq / name).read_bytes(), name
    lines = swept["lines"]
    assert "jobs: 2 job(s) on this machine, 1 thread(s) each; logs in " + str(par / "logs") in lines
    # the folds run beside the cells (a small validation set is known from the data)
    assert ("cross-validation: 6 fold job(s) (fold x arm) for 1 size(s) and seed(s), beside the "
            "cells") in lines
    progress = [line for line in lines if line.startswith("[")]
    assert sorted(line[:5] for line in progress) == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert progress[-1].startswith("[4/4] auto") and "(chose " in progress[-1]
    # every cell and every fold ran as a job: its log and outcome, in two processes
    outcomes = {p.stem: json.loads(p.read_text()) for p in (par / "logs").glob("*.json")}
    folds = sorted(n for n in outcomes if n.startswith("fold"))
    assert folds == sorted(f"fold{k}_{arm}_40_0" for k in range(2)
                           for arm in ("ssl", "scratch", "baseline-logistic"))
    assert {outcomes[n]["status"] for n in outcomes} == {"computed"}
    # on CPU the sweep's own process is one of the 2 jobs (it has the data loaded already)
    pids = {o["job"] for o in outcomes.values()}
    assert len(pids) == 2 and str(os.getpid()) in pids
    assert all((par / "logs" / f"{n}.log").is_file() for n in outcomes)
    # pre-trained once, by the sweep, before any cell: no job pre-trained
    assert (par / "pretrain" / "export" / "backbone.safetensors").is_file()
    assert not (par / "logs" / "pretrain.log").exists()
    assert not any((par / "locks").rglob(".lock"))  # every lock released
    assert not (par / "cv" / "folds_40_0").exists()  # the fold runs' scratch space is gone


def test_a_locked_cell_is_not_started_and_its_auto_cell_waits(
        swept: dict[str, Any], tmp_path: Path) -> None:
    """A cell whose lock another process holds is not started a second time; the auto cell of
    its size and seed waits for it (choosing without it would leave it out)."""
    out = tmp_path / "par"
    shutil.copytree(swept["par"], out)
    for cell in ("scratch_40_0", "auto_40_0"):
        (out / "cells" / cell / "eval.json").unlink()  # unfinished
    lock = out / "locks" / "scratch_40_0" / ".lock"
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", (  # the run folder lock's protocol
        "import fcntl, json, os, socket, time; "
        f"f = open({str(lock)!r}, 'w'); fcntl.flock(f, fcntl.LOCK_EX); "
        "f.write(json.dumps({'pid': os.getpid(), 'host': socket.gethostname()})); f.flush(); "
        "print('held', flush=True); time.sleep(120)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        res = CliRunner().invoke(cli, ["sweep", str(swept["config"]), *ARGS, "--out", str(out)])
    finally:
        holder.kill()
        holder.wait()
    assert res.exit_code == 1 and "2 cell(s) failed and stay unfinished" in str(res.exception)
    assert f"not started: {out / 'locks' / 'scratch_40_0'}: in use by another ssl-domains " \
           f"process (pid {holder.pid}" in res.output
    assert "auto_40_0: not started, waits for scratch_40_0" in res.output
    assert not (out / "cells" / "scratch_40_0" / "eval.json").exists()
    assert not (out / "cells" / "auto_40_0" / "eval.json").exists()


def test_a_killed_sweep_resumes_without_redoing_finished_cells(
        swept: dict[str, Any], tmp_path: Path) -> None:
    """``kill -9`` of the whole process group (the sweep and its workers) midway; running it
    again finishes the sweep, the finished cells kept, with the sequential numbers."""
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "ssl_domains.cli", "sweep", str(swept["config"]), *ARGS,
            "--out", str(out), "--jobs", "2", "--threads-per-job", "1"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        while not any((out / "cells").glob("*/eval.json")) and proc.poll() is None:
            assert time.monotonic() < deadline, "no cell finished in time"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finished = {p.parent.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*/eval.json")}
    assert finished and not (out / "results.csv").exists()
    # resumed one cell after another here (no worker to start: the test stays short); the
    # folder does not depend on how its cells are run
    res = CliRunner().invoke(cli, argv[3:-4])
    assert res.exit_code == 0, (res.output, res.exception)
    assert res.output.count("(finished earlier)") == len(finished)
    assert {n: (out / "cells" / n / "eval.json").stat().st_mtime_ns for n in finished} == finished
    for name in SAME:
        assert (out / name).read_bytes() == (swept["seq"] / name).read_bytes(), name


def test_select_auto_with_jobs_cross_validates_side_by_side_with_the_same_choice(
        tmp_path: Path) -> None:
    """``ssl-domains finetune --jobs 2`` with ``select: auto`` and a validation set too small
    to choose on: the candidates and the 5 x 2 fold jobs run side by side; the choice, the
    shipped numbers and the out-of-fold scores are those of the run one after another."""
    cfg = make_config(tmp_path, write_arrays(tmp_path), pretrain=None, **{
        "finetune.select": "auto", "finetune.label_count": 30, "finetune.train.epochs": 2})
    config = write_config(tmp_path / "c.yaml", cfg)
    runs = {}
    for tag, jobs in (("seq", []), ("par", ["--jobs", "2", "--threads-per-job", "1"])):
        runs[tag] = tmp_path / tag
        res = CliRunner().invoke(cli, ["finetune", str(config), "--out", str(runs[tag]), *jobs])
        assert res.exit_code == 0, (res.output, res.exception)
    seq, par = (json.loads((runs[t] / "eval.json").read_text()) for t in ("seq", "par"))
    assert par["selection"]["method"].startswith("5-fold cross-validation over the 30 labeled")
    for key in ("selection", "test", "val", "threshold", "refit"):
        assert par[key] == seq[key], key
    cells = Path("candidates") / "cells" / "auto_30_0" / "cv_oof.csv"
    assert (runs["par"] / cells).read_bytes() == (runs["seq"] / cells).read_bytes()
    folds = sorted(p.stem for p in (runs["par"] / "candidates" / "logs").glob("fold*.json"))
    assert folds == sorted(f"fold{k}_{arm}_30_0" for k in range(5)
                           for arm in ("scratch", "baseline-logistic"))


def test_three_jobs_run_every_cell_and_fold_in_at_most_three_processes(
        swept: dict[str, Any], tmp_path: Path) -> None:
    """``--jobs 3``: this process and two workers, each worker taking job after job (10 jobs:
    4 cells and 6 folds), with the numbers of the sequential sweep."""
    out = tmp_path / "par3"
    res = CliRunner().invoke(cli, ["sweep", str(swept["config"]), *ARGS, "--out", str(out),
                                   "--jobs", "3", "--threads-per-job", "1"])
    assert res.exit_code == 0, (res.output, res.exception)
    for name in SAME:
        assert (out / name).read_bytes() == (swept["seq"] / name).read_bytes(), name
    outcomes = [json.loads(p.read_text()) for p in (out / "logs").glob("*.json")]
    assert len(outcomes) == 10 and {o["status"] for o in outcomes} == {"computed"}
    pids = {o["job"] for o in outcomes}
    assert str(os.getpid()) in pids and 2 <= len(pids) <= 3


def _kill_a_worker_job(logs: Path, stop: threading.Event, killed: dict[str, int]) -> None:
    """Kill (SIGKILL) the first job seen running in a worker process (not this one): stopped
    first, and killed only if it has not finished meanwhile."""
    while not stop.is_set() and not killed:
        for log in logs.glob("*.log") if logs.is_dir() else []:
            lines = log.read_text().splitlines()
            pid = int(lines[0].split("pid ")[1].split(",")[0]) if lines else os.getpid()
            if pid == os.getpid() or log.with_suffix(".json").exists():
                continue
            os.kill(pid, signal.SIGSTOP)
            if log.with_suffix(".json").exists():
                os.kill(pid, signal.SIGCONT)
                continue
            os.kill(pid, signal.SIGKILL)
            killed[log.stem] = pid
            return
        time.sleep(0.01)


def test_a_worker_killed_during_a_cell_is_reported_the_others_finish_and_a_rerun_redoes_it(
        swept: dict[str, Any], tmp_path: Path) -> None:
    """A worker process that dies during a cell (killed, out of memory): that cell is
    reported as failed with how its process ended, the other cells finish (in this process
    and a new worker), and running the command again redoes only that cell."""
    out = tmp_path / "crash"
    stop, killed = threading.Event(), {}
    killer = threading.Thread(target=_kill_a_worker_job, args=(out / "logs", stop, killed))
    killer.start()
    try:
        res = CliRunner().invoke(cli, ["sweep", str(swept["config"]), *ARGS, "--out", str(out),
                                       "--jobs", "2", "--threads-per-job", "1"])
    finally:
        stop.set()
        killer.join()
    assert len(killed) == 1, res.output
    (cell, pid), = killed.items()
    why = f"its worker process (pid {pid}) ended during the job (killed by signal 9)"
    assert res.exit_code == 1
    assert f"1 job(s) stopped with an error (first: {cell}: {why}); see {out / 'logs'}" \
        in str(res.exception)
    plain = [f"{arm}_40_0" for arm in ("ssl", "scratch", "baseline-logistic")]
    assert cell in plain
    for other in set(plain) - {cell}:
        assert (out / "cells" / other / "eval.json").is_file(), other
    assert json.loads((out / "logs" / f"{cell}.json").read_text())["job"] == str(pid)
    res = CliRunner().invoke(cli, ["sweep", str(swept["config"]), *ARGS, "--out", str(out),
                                   "--jobs", "2", "--threads-per-job", "1"])
    assert res.exit_code == 0, (res.output, res.exception)
    assert f"{cell}: failed earlier ({why}); log {out / 'logs' / cell}.log; running it again" \
        in res.output.splitlines()
    assert res.output.count("(finished earlier)") == 2
    for name in SAME:
        assert (out / name).read_bytes() == (swept["seq"] / name).read_bytes(), name
