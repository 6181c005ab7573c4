"""Kill -9 resume check for plugin authors: pre-train a config to the end, pre-train a copy,
kill it with SIGKILL after some checkpoints, ``--resume`` it, and require the two exported
backbones to be bitwise equal (the run folder layout of :mod:`ssl_domains.engine.run_dir`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from ssl_domains.layout.export import ExportFolder
from ssl_domains.layout.run import RunFolder

__all__ = ["CLI", "cli_env", "assert_kill9_resume_equal"]

#: The command line, run in a fresh interpreter.
CLI = [sys.executable, "-m", "ssl_domains.cli"]


def cli_env() -> dict[str, str]:
    """The environment for CLI subprocesses: one thread (deterministic, polite), quiet."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def assert_kill9_resume_equal(full_config: Path, killed_config: Path, full_run: Path,
                              killed_run: Path, checkpoint_glob: str, timeout: float = 300) -> None:
    """Pre-train ``full_config`` uninterrupted; pre-train ``killed_config`` (the same but its
    name), SIGKILL it once a checkpoint matching ``checkpoint_glob`` exists in
    ``<killed_run>/checkpoints/pretrain``, resume it; assert both exports equal bit for bit.

    Raises:
        AssertionError: A run failed, the killed run finished before the kill, or a weight
            differs after the resume (named).
    """
    full = subprocess.run([*CLI, "pretrain", str(full_config)], capture_output=True, text=True,
                          env=cli_env(), timeout=timeout)
    assert full.returncode == 0, full.stderr

    proc = subprocess.Popen([*CLI, "pretrain", str(killed_config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cli_env())
    killed_folder, full_folder = RunFolder(killed_run), RunFolder(full_run)
    ckpts = killed_folder.checkpoints / "pretrain"
    deadline = time.time() + timeout / 2
    while time.time() < deadline and not list(ckpts.glob(checkpoint_glob)):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not ExportFolder(killed_folder.export).backbone.exists()

    resumed = subprocess.run([*CLI, "pretrain", "--resume", str(killed_run)],
                             capture_output=True, text=True, env=cli_env(), timeout=timeout)
    assert resumed.returncode == 0, resumed.stderr

    a = load_file(str(ExportFolder(full_folder.export).backbone))
    b = load_file(str(ExportFolder(killed_folder.export).backbone))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"
