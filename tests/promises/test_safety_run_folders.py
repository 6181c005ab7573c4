"""Promises of README "Safe with untrusted files and shared folders" about the folders the
engine writes: "One writer per run folder", "Your folders are not overwritten", "No silent
random start" and "Disk full, read-only, quota"."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ssl_domains import files
from tests.promises.cli import ssl_domains, tiny_config

# holds <folder>/.lock as a live ssl-domains process does (flock + record), until killed
HOLDER = r"""
import fcntl, json, os, socket, sys, time
path = os.path.join(sys.argv[1], ".lock")
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                          "started": "2026-12-03 08:15:02 UTC"}).encode(), 0)
print("locked", flush=True)
time.sleep(600)
"""


def test_safety_one_writer_per_run_folder(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, finetune=None)
    run = tmp_path / "runs" / "t"
    run.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        res = ssl_domains("pretrain", str(cfg))
        assert res.code == 1
        assert res.error.startswith(f"Error: {run}: in use by another ssl-domains process (pid "
                                    f"{holder.pid}, started 2026-12-03 08:15:02 UTC); wait for it to "
                                    "finish or write into another folder")
        assert sorted(p.name for p in run.iterdir()) == [".lock"]  # nothing written beside it
    finally:
        holder.kill()
        holder.wait()
    res = ssl_domains("pretrain", str(cfg))  # the lock of a killed process is taken over
    assert res.code == 0, res.err
    assert "taking over the lock left by pid" in res.err and not (run / ".lock").exists()


def test_safety_out_never_overwrites_a_users_folder(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, **{"pretrain.train.epochs": 1, "finetune.train.epochs": 1})
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("my: own file\n")
    for stage in ("pretrain", "finetune"):
        res = ssl_domains(stage, str(cfg), "--out", str(mine))
        assert res.code == 1
        assert res.error == (f"Error: {mine}: not empty and not an ssl-domains run folder (it holds "
                             "config.yaml); refusing to write there and replace your files; choose a "
                             "new or empty folder")
    res = ssl_domains("sweep", str(cfg), "--counts", "40", "--seeds", "1", "--arms", "scratch",
                      "--out", str(mine))
    assert res.code == 1 and "not an ssl-domains sweep folder (it holds config.yaml)" in res.error
    assert sorted(p.name for p in mine.iterdir()) == ["config.yaml"]
    assert (mine / "config.yaml").read_text() == "my: own file\n"

    run = tmp_path / "run"  # a run folder: fine-tuning continues into it; its stages are kept
    assert ssl_domains("pretrain", str(cfg), "--out", str(run)).code == 0
    res = ssl_domains("pretrain", str(cfg), "--out", str(run))
    assert res.code == 1 and res.error.startswith(f"Error: {run} already holds a pretrain run; "
                                                  f"continue it with --resume {run}")
    assert ssl_domains("finetune", str(cfg), "--out", str(run)).code == 0
    (run / "checkpoints" / "pretrain" / "last.pt").unlink()
    res = ssl_domains("pretrain", str(cfg), "--out", str(run))
    assert res.code == 1 and res.error.startswith(f"Error: {run} holds a fine-tuned run; pre-training "
                                                  "there would replace its export")


def test_safety_no_silent_random_start(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, pretrain=None, **{"finetune.train.epochs": 1})
    res = ssl_domains("finetune", str(cfg))
    assert res.code == 1
    assert res.error.startswith("Error: t: fine-tuning has no pre-trained weights to start from (no "
                                "--init, no 'init' in the config")
    assert not (tmp_path / "runs" / "t" / "checkpoints" / "finetune").exists()
    res = ssl_domains("finetune", str(cfg), "--set", "finetune.from_scratch=true")
    assert res.code == 0, res.err
    assert json.loads((tmp_path / "runs" / "t" / "eval.json").read_text())["init"] == "scratch"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EDQUOT], ids=errno.errorcode.get)
def test_safety_disk_full_read_only_or_quota_stops_with_one_line_and_leaves_no_partial_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    cfg = tiny_config(tmp_path, finetune=None)
    calls = {"n": 0}
    fsync = os.fsync

    def fails_after_a_few(fd: int) -> None:  # the disk fills up (...) during the run
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(code, os.strerror(code))
        fsync(fd)

    monkeypatch.setattr(files.os, "fsync", fails_after_a_few)
    res = ssl_domains("pretrain", str(cfg))
    assert res.code == 1
    assert res.error.startswith("Error: ") and res.error.endswith(f": cannot write ({os.strerror(code)})")
    assert len(res.err.strip().splitlines()) == 1
    run = tmp_path / "runs" / "t"
    assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]
    assert not (run / ".lock").exists()
