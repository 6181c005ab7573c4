"""One writer per run folder: a second one is refused with the holder's pid and start time, a
lock left by a killed process is taken over, and the lock goes away on exit and on error."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ssl_domains.config import parse_config
from ssl_domains.engine.pretrain import pretrain
from ssl_domains.engine.run_dir import LOCK_FILE, RunFolderBusy, RunLock
from ssl_domains.errors import ConfigError
from ssl_domains.plugins import get_host
from tests.conftest import make_config, write_config

HOLD = ("import sys, time; from ssl_domains.engine.run_dir import RunLock; "
        "RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(120)")


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """Another process holding the lock of ``tmp_path / 'runs' / 't'``."""
    run = tmp_path / "runs" / "t"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield proc, run
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_second_writer_is_refused_with_holder_pid(holder: tuple[subprocess.Popen[str], Path],
                                                  tmp_path: Path, arrays: Path) -> None:
    proc, run = holder
    cfg = parse_config(make_config(tmp_path, arrays, finetune=None))
    with pytest.raises(RunFolderBusy) as err:
        pretrain(cfg, run, registry=get_host().registry)
    msg = str(err.value)
    assert msg.startswith(f"{run}: in use by another ssl-domains process (pid {proc.pid}, started 20")
    assert str(run / LOCK_FILE) in msg
    assert not (run / "config.yaml").exists() and not (run / "metrics.jsonl").exists()
    # the holder's record is untouched
    assert json.loads((run / LOCK_FILE).read_text())["pid"] == proc.pid


def test_cli_second_pretrain_exits_1(holder: tuple[subprocess.Popen[str], Path], tmp_path: Path,
                                     arrays: Path) -> None:
    proc, run = holder
    cfg = write_config(tmp_path / "c.yaml", make_config(tmp_path, arrays, finetune=None))
    res = subprocess.run([sys.executable, "-m", "ssl_domains.cli", "pretrain", str(cfg)], capture_output=True,
                         text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1].startswith(
        f"Error: {run}: in use by another ssl-domains process (pid {proc.pid}")


def test_stale_lock_of_a_killed_process_is_taken_over(holder: tuple[subprocess.Popen[str], Path],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    proc, run = holder
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (run / LOCK_FILE).is_file()  # left behind by the kill
    with caplog.at_level(logging.WARNING), RunLock(run):
        assert json.loads((run / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert f"taking over the lock left by pid {proc.pid}" in caplog.text
    assert not (run / LOCK_FILE).exists()


def test_lock_is_released_after_success_and_after_an_error(tmp_path: Path, arrays: Path) -> None:
    run = tmp_path / "runs" / "t"
    cfg = parse_config(make_config(tmp_path, arrays, finetune=None, **{"pretrain.train.epochs": 1}))
    pretrain(cfg, run, registry=get_host().registry)
    assert not (run / LOCK_FILE).exists()
    bad = parse_config(make_config(tmp_path, arrays, finetune=None, **{"pretrain.task.args": {"noise": "abc"}}))
    with pytest.raises(ConfigError):
        pretrain(bad, tmp_path / "runs" / "bad", registry=get_host().registry)
    assert not (tmp_path / "runs" / "bad" / LOCK_FILE).exists()
    # and another process can take it at once
    res = subprocess.run([sys.executable, "-c", HOLD.replace("time.sleep(120)", "pass"), str(run)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "held", res.stderr


def test_without_file_locks_the_pid_decides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    import errno
    import fcntl
    import socket

    def no_locks(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    run = tmp_path / "run"
    run.mkdir()
    record = {"pid": os.getppid(), "host": socket.gethostname(), "started": "2026-12-03 08:00:00 UTC"}
    (run / LOCK_FILE).write_text(json.dumps(record))
    with pytest.raises(RunFolderBusy, match=rf"\(pid {os.getppid()}, started 2026-12-03 08:00:00 UTC\)"):
        RunLock(run).acquire()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    (run / LOCK_FILE).write_text(json.dumps({**record, "pid": int(dead.stdout)}))
    with caplog.at_level(logging.WARNING), RunLock(run):
        assert json.loads((run / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert f"taking over the lock left by pid {int(dead.stdout)}" in caplog.text
    (run / LOCK_FILE).write_text(json.dumps({**record, "host": "elsewhere"}))
    with pytest.raises(RunFolderBusy, match=r"on elsewhere, .*\(delete it if that process is gone\)$"):
        RunLock(run).acquire()
