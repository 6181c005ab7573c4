"""Engine overhead: the engine's pre-training steps/s against a bare hand-written PyTorch loop.

Same model (built-in ``mlp`` backbone + ``denoising`` pretext task), same data, same batch size,
same optimiser and schedule, measured side by side, alternating, in one process. The engine run
is the real ``pretrain()`` stage (dict collate, resumable sampler, logging, tqdm, periodic
atomic checkpoints, per-epoch validation); its loop time is ``FitResult.seconds``.

    python benchmarks/engine_overhead.py [--repeats 5] [--epochs 2] [--threads 1]

Reports the ratio of wall-clock steps/s and of CPU-time steps/s (engine / bare); on a busy
machine the CPU-time ratio is the fair one.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ssl_domains.config import parse_config
from ssl_domains.engine.loop import make_scheduler
from ssl_domains.plugins import get_host

N, LENGTH, HIDDEN, DEPTH, BATCH = 8192, 256, 512, 3, 64


def data(tmp: Path) -> Path:
    rng = np.random.RandomState(0)
    path = tmp / "x.npz"
    np.savez(path, x=rng.randn(N, 1, LENGTH).astype("float32"))
    return path


def config(tmp: Path, path: Path, epochs: int, name: str) -> dict:
    return {
        "name": name, "output_dir": str(tmp / "runs"), "seed": 0,
        "backbone": {"name": "mlp", "args": {"input_shape": [1, LENGTH], "hidden": HIDDEN, "depth": DEPTH}},
        "pretrain": {
            "data": {"train": {"name": "arrays", "args": {"path": str(path), "y_key": None}},
                     "batch_size": BATCH, "val_fraction": 0.02},
            "task": {"name": "denoising"},
            "train": {"epochs": epochs, "lr": 1e-3, "warmup_steps": 10, "checkpoint_every": 200},
        },
    }


def engine_run(tmp: Path, path: Path, epochs: int, i: int) -> float:
    from ssl_domains.engine.pretrain import pretrain

    cfg = parse_config(config(tmp, path, epochs, f"engine{i}"))
    import ssl_domains.engine.stage as pre  # the stage skeleton's Trainer

    captured = {}
    orig_fit = pre.Trainer.fit

    def fit(self):  # capture loop time (wall and CPU) and step count of the real stage
        cpu = time.process_time()
        res = orig_fit(self)
        captured["cpu"] = time.process_time() - cpu
        captured["steps"], captured["seconds"] = res.step, res.seconds
        return res

    pre.Trainer.fit = fit
    try:
        pretrain(cfg, tmp / "runs" / f"engine{i}", registry=get_host().registry)
    finally:
        pre.Trainer.fit = orig_fit
    return captured["steps"] / captured["seconds"], captured["steps"] / captured["cpu"]


def bare_run(path: Path, epochs: int) -> float:
    torch.manual_seed(0)
    reg = get_host().registry
    x = torch.as_tensor(np.load(path)["x"])
    n_train = N - max(1, round(N * 0.02))
    ds = torch.utils.data.TensorDataset(x[:n_train])
    loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=True)
    backbone = reg.create("backbone", "mlp", input_shape=[1, LENGTH], hidden=HIDDEN, depth=DEPTH)
    task = reg.create("pretext", "denoising", backbone)
    opt = torch.optim.AdamW(task.parameters(), lr=1e-3, weight_decay=0.01)
    cfg = parse_config(config(Path("."), path, epochs, "bare")).pretrain.train
    sched = make_scheduler(opt, cfg, epochs * len(loader))
    steps = 0
    cpu = time.process_time()
    start = time.perf_counter()
    for _ in range(epochs):
        for (xb,) in loader:
            loss = task({"signal": xb})["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(task.parameters(), 1.0)
            opt.step()
            sched.step()
            steps += 1
    return steps / (time.perf_counter() - start), steps / (time.process_time() - cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 makes CPU time a fair measure on a shared machine)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        path = data(tmp)
        bare_run(path, 1)  # warm-up
        bare, engine = [], []
        for i in range(args.repeats):
            bare.append(bare_run(path, args.epochs))
            engine.append(engine_run(tmp, path, args.epochs, i))
            print(f"repeat {i}: wall steps/s bare {bare[-1][0]:.1f} engine {engine[-1][0]:.1f}; "
                  f"CPU steps/s bare {bare[-1][1]:.1f} engine {engine[-1][1]:.1f}", file=sys.stderr)
    wall = [e[0] / b[0] for e, b in zip(engine, bare)]
    cpu = [e[1] / b[1] for e, b in zip(engine, bare)]
    result = {
        "model": f"mlp {HIDDEN}x{DEPTH} + denoising, input [1,{LENGTH}], batch {BATCH}",
        "threads": torch.get_num_threads(),
        "bare_steps_per_s": statistics.median(b[0] for b in bare),
        "engine_steps_per_s": statistics.median(e[0] for e in engine),
        "ratio_wall": statistics.median(wall),
        "ratio_cpu": statistics.median(cpu),
        "ratio_wall_per_repeat": wall,
        "ratio_cpu_per_repeat": cpu,
    }
    assert all(math.isfinite(v) for v in wall + cpu)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
