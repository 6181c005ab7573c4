"""Promise of README "Your own data": `ssl-domains pretrain --resume runs/ct-ssl` "after a crash
or kill: continues exactly". A kill -9 during pre-training, then --resume, ends bitwise equal to
an uninterrupted run; a folder with nothing to resume says so in one line."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ssl_domains.testing.resume import CLI, assert_kill9_resume_equal, cli_env
from tests.conftest import make_config, write_config


def _cfg(tmp_path: Path, arrays: Path, name: str) -> Path:
    cfg = make_config(
        tmp_path, arrays, name=name, finetune=None,
        **{"backbone.args.hidden": 256, "backbone.args.depth": 3,
           "pretrain.train": {"epochs": 40, "checkpoint_every": 7, "progress": False, "log_every": 5,
                              "warmup_steps": 20}},
    )
    return write_config(tmp_path / f"{name}.yaml", cfg)


def test_resume_after_a_kill9_continues_exactly(tmp_path: Path, arrays: Path) -> None:
    run = tmp_path / "runs" / "killed"
    assert_kill9_resume_equal(_cfg(tmp_path, arrays, "full"), _cfg(tmp_path, arrays, "killed"),
                              tmp_path / "runs" / "full", run, "step_000000[2-9]*.pt")
    # the log of the resumed run has each step once
    steps = [line for line in (run / "metrics.jsonl").read_text().splitlines() if '"split": "train"' in line]
    full_steps = [line for line in (tmp_path / "runs" / "full" / "metrics.jsonl").read_text().splitlines()
                  if '"split": "train"' in line]
    assert len(steps) == len(full_steps)


def test_resume_without_a_checkpoint_is_one_clear_line(tmp_path: Path, arrays: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.yaml").write_text(_cfg(tmp_path, arrays, "x").read_text())
    res = subprocess.run([*CLI, "pretrain", "--resume", str(tmp_path / "empty")],
                         capture_output=True, text=True, env=cli_env(), timeout=120)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == (
        f"Error: {tmp_path / 'empty'}: nothing to resume (no checkpoints/pretrain/last.pt)")
