"""Worker processes that run jobs on this machine, started warm and fed from one queue.

Starting a Python process that can run a sweep's job costs seconds of CPU (torch, MONAI, the
plugins): as much as a short cell. So the workers are forked from a fork server (the standard
library's ``forkserver`` start method) that has imported all of it once (:data:`PRELOAD`): a
worker starts in milliseconds, however many there are, and takes job after job. The server is
a fresh interpreter that imported torch but never ran it, so forking it is safe (forking a
process whose torch has started its OpenMP or CUDA threads is not: the child can hang or lose
its GPU), and each worker sets its GPU and thread count before either starts.
:func:`start_server` starts the server early (the command line does, while it imports torch
itself); where there is no fork server (Windows) the workers are spawned and import
everything themselves.

:class:`Workers` hands out jobs from one queue: a thread per worker sends it the next job as
soon as it is free, while the calling process may take jobs from the same queue and run them
itself (:meth:`Workers.map`). A worker acknowledges each job it takes, so a worker whose
process ends during a job (killed, out of memory, a crash in native code) makes that job's
result an :class:`Ended`, while one that ended between jobs loses none; either way a new
process takes its place for the next job. This module imports only the standard library, so that the command
line can start the server before it imports torch.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.context import ForkServerContext, SpawnContext

__all__ = ["PRELOAD", "Ended", "Workers", "context", "start_server"]

#: The module the fork server imports: torch, the job code and every plugin's components.
PRELOAD = "ssl_domains.sweep.preload"
#: A worker's exit code after an interrupt (Ctrl-C reaches the workers too).
_INTERRUPTED = 130
#: Seconds that running jobs get to end by themselves when the workers close.
_GRACE_S = 3.0


def context() -> ForkServerContext | SpawnContext:
    """The start method of the workers: the fork server preloading :data:`PRELOAD` where
    the platform has one, else spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([PRELOAD])
        return ctx
    return multiprocessing.get_context("spawn")


def start_server() -> None:
    """Start the fork server now: it imports torch and the plugins while this process goes
    on (a no-op where it runs already or where there is none)."""
    if context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


@dataclass(frozen=True)
class Ended:
    """A job that returned nothing: its worker process ended during it (``started``), or
    twice before it (e.g. a worker that cannot start), or never started (``why``)."""

    pid: int
    exitcode: int | None
    started: bool = True
    why: str = ""

    @property
    def message(self) -> str:
        """How the process ended, in words."""
        if self.why:
            return self.why
        code = self.exitcode
        how = (f"killed by signal {-code}" if code is not None and code < 0 else
               "interrupted" if code == _INTERRUPTED else f"exit code {code}")
        return (f"its worker process (pid {self.pid}) ended "
                f"{'during' if self.started else 'before'} the job ({how})")


def _serve(conn: Connection, slot: int, setup: Callable[[int], None],
           environ: dict[str, str]) -> None:
    """A worker: the caller's environment, ``setup(slot)``, then for each ``(fn, item)``
    received: ``True`` back (taken), ``fn(item)``, its result back; until ``None`` or the
    caller is gone."""
    os.environ.clear()  # forked from the server: the caller's environment, as spawn gives
    os.environ.update(environ)
    __import__(PRELOAD)  # loaded already unless spawned
    setup(slot)
    while True:
        try:
            message = conn.recv()
            if message is None:
                return
            conn.send(True)
        except (EOFError, OSError, KeyboardInterrupt):
            return
        fn, item = message
        try:
            result = fn(item)
        except KeyboardInterrupt:
            sys.exit(_INTERRUPTED)
        try:
            conn.send(result)
        except (OSError, KeyboardInterrupt):
            return


class Workers:
    """``count`` worker processes; worker ``i`` runs ``setup(i)`` first (e.g. takes GPU ``i``).

    Start them with :meth:`start`, run jobs with :meth:`map` (as often as needed), and end
    them with :meth:`close`.
    """

    def __init__(self, count: int, setup: Callable[[int], None]) -> None:
        self.count = count
        self.setup = setup
        self._ctx = context()
        self._todo: deque[tuple[int, Callable[[Any], Any], Any]] = deque()
        self._done: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._waiting: set[int] = set()  # workers without a job of this map yet
        self._busy: set[int] = set()
        self._procs: dict[int, BaseProcess] = {}
        self._threads: list[threading.Thread] = []
        self._stopping = False

    def start(self) -> None:
        """Start the workers (each thread starts its process, so this does not wait for the
        fork server: it may still be importing)."""
        if self._threads:
            return
        atexit.register(self.close)  # before multiprocessing's own, which would wait for them
        environ = dict(os.environ)
        for slot in range(self.count):
            thread = threading.Thread(target=self._feed, args=(slot, environ), daemon=True,
                                      name=f"ssl-domains-worker-{slot}")
            thread.start()
            self._threads.append(thread)

    def _launch(self, slot: int, environ: dict[str, str]) -> tuple[BaseProcess, Connection]:
        here, there = self._ctx.Pipe()
        proc = self._ctx.Process(target=_serve, args=(there, slot, self.setup, environ),
                                 name=f"ssl-domains-worker-{slot}")
        if self._stopping:
            raise _Stop
        proc.start()  # waits while the fork server still imports
        with self._cond:
            self._procs[slot] = proc
        there.close()
        return proc, here

    def _take(self, slot: int) -> tuple[int, Callable[[Any], Any], Any] | None:
        """The next job for worker ``slot`` (None: closing)."""
        with self._cond:
            while not self._todo and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return None
            self._waiting.discard(slot)
            self._busy.add(slot)
            return self._todo.popleft()

    def _feed(self, slot: int, environ: dict[str, str]) -> None:
        """Worker ``slot``'s thread: the next job to its process, its result to the caller; a
        new process when the last one ended."""
        try:
            self._serve_jobs(slot, environ)
        finally:  # a worker gone: this process may take the jobs kept for it
            with self._cond:
                self._waiting.discard(slot)

    def _serve_jobs(self, slot: int, environ: dict[str, str]) -> None:
        proc: BaseProcess | None = None
        conn: Connection | None = None
        try:
            proc, conn = self._launch(slot, environ)  # now: it starts while the caller works
        except _Stop:
            return
        except Exception:  # noqa: BLE001, S110 - tried again for the first job, which says why
            pass
        while (entry := self._take(slot)) is not None:
            key, fn, item = entry
            result: Any = None
            for _ in range(2):  # a process that ended before taking the job: once more
                try:
                    if proc is None or conn is None or not proc.is_alive():
                        if proc is not None:
                            proc.join()
                        proc = conn = None
                        proc, conn = self._launch(slot, environ)
                except _Stop:
                    return
                except Exception as err:  # noqa: BLE001 - no process: this job says why
                    result = Ended(0, None, why="its worker process did not start: "
                                                f"{type(err).__name__}: {err}")
                    break
                started = False
                try:
                    conn.send((fn, item))
                    started = conn.recv()
                    result = conn.recv()
                    break
                except (EOFError, OSError):
                    proc.join()
                    result = Ended(proc.pid or 0, proc.exitcode, started)
                    if started:
                        break
            with self._cond:
                self._busy.discard(slot)
            self._done.put((key, result))
        if conn is not None:
            try:
                conn.send(None)
            except OSError:
                pass

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any],
            done: Callable[[Any, Any], None], here: Callable[[Any], Any] | None = None) -> None:
        """``fn(item)`` for every item in the workers; ``done(item, result)`` in this thread
        as each ends, the result an :class:`Ended` when its process ended. With ``here``,
        this thread runs ``here(item)`` meanwhile for items that no worker has taken, each
        worker taking one first (so that every worker works, even if it starts late)."""
        items = list(items)
        self.start()
        with self._cond:
            self._waiting = set(range(self.count))
            self._todo.extend((key, fn, item) for key, item in enumerate(items))
            self._cond.notify_all()
        left = len(items)
        while left:
            try:  # the workers' results first (shown as they came), then a job here
                key, result = self._done.get(block=here is None)
            except queue.Empty:
                with self._cond:
                    mine = len(self._todo) > len(self._waiting)
                    key = self._todo.popleft()[0] if mine else -1
                if not mine:
                    key, result = self._done.get()
                else:
                    assert here is not None
                    result = here(items[key])
            done(items[key], result)
            left -= 1

    def close(self) -> None:
        """End the workers: jobs not started are dropped, running ones stopped."""
        atexit.unregister(self.close)
        with self._cond:
            self._stopping = True
            self._todo.clear()
            self._cond.notify_all()
            busy = [self._procs[slot] for slot in self._busy if slot in self._procs]
        # an interrupt or an error here: their jobs are left unfinished. After Ctrl-C (which
        # reaches them too) they end by themselves, releasing their cells' locks; else stopped
        deadline = time.monotonic() + _GRACE_S
        for proc in busy:
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.terminate()
        for thread in self._threads:
            thread.join(timeout=10)
        with self._cond:
            procs = list(self._procs.values())
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join()
        self._threads.clear()


class _Stop(Exception):
    """The workers are closing: no new process."""
