"""A kill -9 during pre-training, then --resume, ends bitwise equal to an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from tests.conftest import make_config, write_config

CLI = [sys.executable, "-m", "ssl_domains.cli"]


def _cfg(tmp_path: Path, arrays: Path, name: str) -> Path:
    cfg = make_config(
        tmp_path, arrays, name=name, finetune=None,
        **{"backbone.args.hidden": 256, "backbone.args.depth": 3,
           "pretrain.train": {"epochs": 40, "checkpoint_every": 7, "progress": False, "log_every": 5,
                              "warmup_steps": 20}},
    )
    return write_config(tmp_path / f"{name}.yaml", cfg)


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def test_kill9_then_resume_equals_uninterrupted(tmp_path: Path, arrays: Path) -> None:
    full = subprocess.run([*CLI, "pretrain", str(_cfg(tmp_path, arrays, "full"))],
                          capture_output=True, text=True, env=_env(), timeout=300)
    assert full.returncode == 0, full.stderr

    run = tmp_path / "runs" / "killed"
    proc = subprocess.Popen([*CLI, "pretrain", str(_cfg(tmp_path, arrays, "killed"))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
    ckpts = run / "checkpoints" / "pretrain"
    deadline = time.time() + 120
    while time.time() < deadline and not list(ckpts.glob("step_000000[2-9]*.pt")):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (run / "export" / "backbone.safetensors").exists()

    resumed = subprocess.run([*CLI, "pretrain", "--resume", str(run)],
                             capture_output=True, text=True, env=_env(), timeout=300)
    assert resumed.returncode == 0, resumed.stderr

    a = load_file(str(tmp_path / "runs" / "full" / "export" / "backbone.safetensors"))
    b = load_file(str(run / "export" / "backbone.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"
    # the log of the resumed run has each step once
    steps = [line for line in (run / "metrics.jsonl").read_text().splitlines() if '"split": "train"' in line]
    full_steps = [line for line in (tmp_path / "runs" / "full" / "metrics.jsonl").read_text().splitlines()
                  if '"split": "train"' in line]
    assert len(steps) == len(full_steps)


def test_resume_without_checkpoint_is_one_clear_line(tmp_path: Path, arrays: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.yaml").write_text(_cfg(tmp_path, arrays, "x").read_text())
    res = subprocess.run([*CLI, "pretrain", "--resume", str(tmp_path / "empty")],
                         capture_output=True, text=True, env=_env(), timeout=120)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == (
        f"Error: {tmp_path / 'empty'}: nothing to resume (no checkpoints/pretrain/last.pt)")
