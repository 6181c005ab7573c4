"""The run folder: resolved config, environment, metrics log, checkpoints, export, report."""

from __future__ import annotations

import errno
import functools
import json
import logging
import os
import platform
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import torch

from ssl_domains import __version__
from ssl_domains.config import RunConfig, dump_config
from ssl_domains.engine.checkpoints import latest_checkpoint, load_resume_checkpoint
from ssl_domains.errors import SSLDomainsError
from ssl_domains.files import (
    O_NOFOLLOW,
    append_line,
    atomic_write_text,
    read_text,
    to_json,
    write_guard,
    write_json,
)
from ssl_domains.layout.names import LOCK_FILE
from ssl_domains.layout.run import RUN_MARKERS, RunFolder
from ssl_domains.plugins import get_host

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the pid check alone guards the folder
    fcntl = None  # type: ignore[assignment]

__all__ = ["RunDir", "RunLock", "RunFolderBusy", "holding_run_lock", "environment_info", "atomic_write_text",
           "RUN_MARKERS"]

log = logging.getLogger(__name__)



class RunFolderBusy(SSLDomainsError):
    """Another process is writing into the same run folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


class RunLock:
    """One writer per run folder: ``<folder>/.lock`` holds the writer's pid, host and start
    time under an exclusive ``flock`` (released by the kernel when the process dies).

    A second writer is refused with the holder's pid and start time; a lock left behind by a
    process that is gone is taken over with a warning; :meth:`release` removes the file.
    """

    #: locks this process holds, by folder: a stage that failed earlier in the same process
    #: (its lock not yet released) does not block the next one
    _held: dict[Path, RunLock] = {}

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None
        self._made_folder = False

    def _holder(self) -> dict[str, Any]:
        try:
            info = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}

    def _busy(self, holder: dict[str, Any]) -> RunFolderBusy:
        who = f"pid {holder.get('pid', '?')}"
        other_host = bool(holder.get("host")) and holder.get("host") != socket.gethostname()
        if other_host:
            who += f" on {holder['host']}"
        return RunFolderBusy(
            f"{self.folder}: in use by another ssl-domains process ({who}, started "
            f"{holder.get('started', 'at an unknown time')}); wait for it to finish or write into "
            f"another folder (--out, or --set name=...). Lock file: {self.path}"
            + (" (delete it if that process is gone)" if other_host else "")
        )

    def acquire(self) -> RunLock:
        """Take the lock.

        Raises:
            RunFolderBusy: Another live process holds it.
            WriteError: The folder cannot be written.
        """
        key = self.folder.resolve()
        mine = RunLock._held.pop(key, None)
        if mine is not None:
            mine.release()
        with write_guard(self.path):
            self._made_folder = not self.folder.exists()
            self.folder.mkdir(parents=True, exist_ok=True)
            locked = fcntl is not None
            for _ in range(20):
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | O_NOFOLLOW, 0o644)
                if locked:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        os.close(fd)
                        time.sleep(0.05)  # the holder may be writing its record just now
                        raise self._busy(self._holder()) from None
                    except OSError as exc:
                        if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                            os.close(fd)
                            raise
                        locked = False  # a file system without locks: the pid check below guards
                try:
                    same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
                except FileNotFoundError:
                    same = False
                if not same:  # the previous holder removed the file meanwhile: lock the new one
                    os.close(fd)
                    continue
                break
            else:  # pragma: no cover
                raise RunFolderBusy(f"{self.folder}: could not take the run folder lock {self.path}")
            holder = self._holder()
            pid = holder.get("pid")
            if isinstance(pid, int) and pid != os.getpid():
                same_host = holder.get("host") == socket.gethostname()
                if not locked and (not same_host or _alive(pid)):
                    os.close(fd)
                    raise self._busy(holder)
                log.warning("%s: taking over the lock left by pid %s (started %s), which is gone; "
                            "that run did not finish cleanly", self.folder, pid,
                            holder.get("started", "at an unknown time"))
            record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}).encode()
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, record, 0)
            except OSError:
                self.path.unlink(missing_ok=True)
                os.close(fd)
                raise
        self._fd = fd
        RunLock._held[key] = self
        return self

    def release(self) -> None:
        """Remove the lock file (and the folder, when the lock made it and nothing else was
        written there) and drop the lock (idempotent)."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
            if self._made_folder and not any(self.folder.iterdir()):
                self.folder.rmdir()
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None
        RunLock._held.pop(self.folder.resolve(), None)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


F = TypeVar("F", bound=Callable[..., Any])


def holding_run_lock(fn: F) -> F:
    """Run a stage ``fn(cfg, run_path, ...)`` holding the run folder's :class:`RunLock`
    (on the main process only: other ranks of a distributed run write nothing)."""

    @functools.wraps(fn)
    def wrapper(cfg: Any, run_path: str | Path, *args: Any, **kwargs: Any) -> Any:
        if int(os.environ.get("RANK", "0")) != 0:
            return fn(cfg, run_path, *args, **kwargs)
        with RunLock(run_path):
            return fn(cfg, run_path, *args, **kwargs)

    return cast(F, wrapper)


def environment_info() -> dict[str, Any]:
    """Versions of the host, plugins, torch and Python, and the device."""
    host = get_host()
    return {
        "host": __version__,
        "plugins": {p.name: {"distribution": p.distribution, "version": p.version}
                    for p in host.plugins.values()},
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "threads": torch.get_num_threads(),
    }


class RunDir:
    """The writers of one run folder (only rank 0 writes); its paths are :attr:`layout`'s.

    Args:
        path: The run folder.
        enabled: False on non-main ranks: every write is skipped.
    """

    def __init__(self, path: str | Path, enabled: bool = True) -> None:
        #: where each file of the folder lives
        self.layout = RunFolder(path)
        self.enabled = enabled
        self._tb: Any = None
        #: the checkpoint :meth:`resume_state` read (named by errors of a resume)
        self.resume_file: Path | None = None

    @property
    def path(self) -> Path:
        """The run folder."""
        return self.layout.path

    def create(self, cfg: RunConfig) -> None:
        """Make the folder and write ``config.yaml`` and ``environment.json``."""
        if not self.enabled:
            return
        for p in (self.path, self.layout.checkpoints, self.layout.figures):
            with write_guard(p):
                p.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.layout.config, dump_config(cfg))
        write_json(self.layout.environment, environment_info())

    def log(self, record: dict[str, Any]) -> None:
        """Append one JSON line to ``metrics.jsonl`` (and TensorBoard when installed)."""
        if not self.enabled:
            return
        append_line(self.layout.metrics, to_json(record, indent=None))
        tb = self._tensorboard()
        if tb is not None:
            step = int(record.get("step", 0))
            prefix = f"{record.get('stage', 'run')}/{record.get('split', 'train')}"
            for k, v in record.items():
                if isinstance(v, int | float) and k not in ("step", "epoch"):
                    tb.add_scalar(f"{prefix}/{k}", v, step)

    def _tensorboard(self) -> Any:
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self._tb = False
                return None
            self._tb = SummaryWriter(str(self.path / "tensorboard"))
        return self._tb or None

    def resume_state(self, stage: str) -> dict[str, Any]:
        """The last resume checkpoint of ``stage``.

        Raises:
            SSLDomainsError: The folder has no checkpoint of that stage.
        """
        ckpt = latest_checkpoint(self.layout.checkpoints / stage)
        if ckpt is None:
            missing = self.layout.last_checkpoint(stage).relative_to(self.path)
            raise SSLDomainsError(f"{self.path}: nothing to resume (no {missing})")
        self.resume_file = ckpt
        return load_resume_checkpoint(ckpt)

    def truncate_log_after(self, stage: str, step: int) -> None:
        """On resume, drop log lines of ``stage`` written after ``step`` (they will be redone)."""
        if not self.enabled or not self.layout.metrics.exists():
            return
        keep = []
        for line in read_text(self.layout.metrics).splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill
            if rec.get("stage") == stage and int(rec.get("step", 0)) > step:
                continue
            keep.append(line)
        atomic_write_text(self.layout.metrics, "".join(k + "\n" for k in keep))

    def close(self) -> None:
        if self._tb:
            self._tb.close()
            self._tb = None
