"""The worker processes of ``--jobs`` (:mod:`ssl_domains.sweep.workers`): forked warm from the
fork server, each taking job after job from one queue; a worker that dies during a job makes
that job's result an :class:`Ended` while the other jobs finish; the caller's environment and
folder reach the workers; closing stops running jobs. The jobs here are plain functions of
this module (what a sweep's jobs are is in test_jobs.py)."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ssl_domains.sweep.workers import Ended, Workers, context, start_server

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _setup(slot: int) -> None:
    os.environ["TEST_WORKER_SLOT"] = str(slot)


def _job(item: Any) -> dict[str, Any]:
    """What the worker that ran ``item`` is: its pid, its slot, its folder and an env var;
    ``"die"`` kills the worker's process (as the kernel's out-of-memory killer would)."""
    if item == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    if str(item).startswith("sleep"):  # says so in TEST_WORKER_VALUE's folder, then sleeps
        (Path(os.environ["TEST_WORKER_VALUE"]) / str(os.getpid())).touch()
        time.sleep(60)
    maps = Path(f"/proc/{os.getppid()}/maps")
    return {"item": item, "pid": os.getpid(), "slot": os.environ.get("TEST_WORKER_SLOT"),
            "cwd": os.getcwd(), "env": os.environ.get("TEST_WORKER_VALUE"),
            "parent": os.getppid(),
            "parent_torch": "libtorch" in maps.read_text() if maps.is_file() else None}


@pytest.fixture
def workers() -> Iterator[Workers]:
    pool = Workers(2, _setup)
    yield pool
    pool.close()


def _run(pool: Workers, items: list[Any], here: Any = None) -> dict[Any, Any]:
    got: dict[Any, Any] = {}
    pool.map(_job, items, lambda item, result: got.__setitem__(item, result), here=here)
    assert sorted(got, key=str) == sorted(items, key=str)
    return got


def test_jobs_run_in_at_most_count_warm_processes_that_take_job_after_job(
        workers: Workers) -> None:
    got = _run(workers, list(range(10)))
    assert [got[i]["item"] for i in range(10)] == list(range(10))
    pids = {r["pid"] for r in got.values()}
    assert len(pids) <= 2 and os.getpid() not in pids  # 10 jobs, 2 processes
    assert {r["slot"] for r in got.values()} <= {"0", "1"}  # each ran setup(its slot)
    if context().get_start_method() == "forkserver":  # forked from a server with torch loaded
        assert {r["parent"] for r in got.values()} != {os.getpid()}
        assert all(r["parent_torch"] in (True, None) for r in got.values())
    # the next map reuses the same processes
    assert {r["pid"] for r in _run(workers, [10, 11, 12]).values()} <= pids


def test_the_caller_runs_jobs_too_while_each_worker_takes_at_least_one(
        workers: Workers) -> None:
    here = {"pid": os.getpid(), "slot": None}
    got = _run(workers, list(range(6)), here=lambda item: {**here, "item": item})
    pids = [r["pid"] for r in got.values()]
    assert len(set(pids)) <= 3
    assert len({p for p in pids if p != os.getpid()}) == 2  # both workers got a job


def test_a_worker_that_dies_during_a_job_is_reported_and_the_others_finish() -> None:
    pool = Workers(1, _setup)
    try:
        got = _run(pool, ["a", "die", "b", "c"])
    finally:
        pool.close()
    ended = got["die"]
    assert isinstance(ended, Ended) and ended.exitcode == -signal.SIGKILL
    assert ended.message == (f"its worker process (pid {ended.pid}) ended during the job "
                             "(killed by signal 9)")
    assert all(not isinstance(got[i], Ended) for i in "abc")
    # a new process took the dead one's place for the jobs after it
    assert ended.pid not in {got["b"]["pid"], got["c"]["pid"]}
    assert got["b"]["slot"] == got["c"]["slot"] == "0"


def test_a_worker_killed_between_jobs_is_replaced_without_losing_a_job(
        workers: Workers) -> None:
    first = _run(workers, ["a", "b"])
    for pid in {r["pid"] for r in first.values()}:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(_alive(r["pid"]) for r in first.values()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    again = _run(workers, ["c", "d", "e"])
    assert not any(isinstance(r, Ended) for r in again.values())
    assert not {r["pid"] for r in again.values()} & {r["pid"] for r in first.values()}


def test_workers_get_the_callers_environment_and_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fork server started earlier, elsewhere: its workers still see what a spawned
    process would (the caller's environment and working folder when they start)."""
    start_server()  # before the changes below
    pool = Workers(1, _setup)
    monkeypatch.setenv("TEST_WORKER_VALUE", "set after the server started")
    monkeypatch.chdir(tmp_path)
    try:
        got = _run(pool, ["a"])["a"]
    finally:
        pool.close()
    assert got["env"] == "set after the server started"
    assert got["cwd"] == str(tmp_path)


def test_closing_stops_the_running_jobs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An interrupt here (Ctrl-C) leaves :meth:`Workers.map`; closing ends the workers'
    running jobs at once instead of waiting for them."""
    monkeypatch.setenv("TEST_WORKER_VALUE", str(tmp_path))
    pool = Workers(2, _setup)

    def here(item: Any) -> Any:  # once both workers run a job: the interrupt
        deadline = time.monotonic() + 60
        while len(list(tmp_path.iterdir())) < 2:
            assert time.monotonic() < deadline, "the workers did not start their jobs"
            time.sleep(0.05)
        raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            _run(pool, ["sleep0", "sleep1", "sleep2"], here=here)
        running = [int(p.name) for p in tmp_path.iterdir()]
        assert len(running) == 2 and all(_alive(pid) for pid in running)
        start = time.monotonic()
    finally:
        pool.close()
    assert time.monotonic() - start < 10
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in running):
        assert time.monotonic() < deadline, "a worker outlived close()"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
