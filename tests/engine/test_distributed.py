"""`torchrun --nproc_per_node 2` pre-training on CPU (gloo) runs and shards the data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_config, write_config


@pytest.mark.skipif(shutil.which("torchrun") is None and not Path(sys.executable).with_name("torchrun").exists(),
                    reason="torchrun not installed")
def test_torchrun_two_process_pretraining(tmp_path: Path, arrays: Path) -> None:
    cfg = make_config(tmp_path, arrays, name="ddp", finetune=None,
                      **{"pretrain.train": {"epochs": 2, "progress": False, "log_every": 1,
                                            "checkpoint_every": 5}})
    path = write_config(tmp_path / "ddp.yaml", cfg)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    res = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "ssl_domains.cli", "pretrain", str(path)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    run = tmp_path / "runs" / "ddp"
    assert (run / "export" / "backbone.safetensors").is_file()
    train = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
             if '"train"' in line]
    # 320 training items, batch 16, 2 ranks -> 10 steps per epoch (not 20), 2 epochs
    assert max(r["step"] for r in train) == 20
    # only rank 0 writes: one line per logged step
    assert len(train) == len({r["step"] for r in train})
