"""Sliding-window inference time of one 240x240x155 volume (a BraTS-sized MR) on this CPU,
for the segmentation recipe's network (the ssl, scratch and frozen-encoder arms share it) and
for the classical voxel classifier (``voxel_statistics``, fitted on two synthetic cases)::

    python -m benchmarks.segmentation.inference_time [--threads 2] [--repeats 2]

Prints a markdown table: arm, seconds per volume (median of the repeats), voxels per second.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from ssl_domains.plugins import get_host

RECIPE = Path(__file__).resolve().parents[1] / "suite" / "recipes" / "segmentation.yaml"
SHAPE = (240, 240, 155)


def _time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    recipe = yaml.safe_load(RECIPE.read_text())
    registry = get_host().registry
    backbone = registry.create("backbone", recipe["backbone"]["name"], **recipe["backbone"]["args"])
    task_ref = recipe["finetune"]["task"]
    task = registry.create("finetune", task_ref["name"], backbone, **task_ref.get("args", {}))
    task.roi_size = [32, 32, 32]  # the recipe's training patch (benchmarks/segmentation/sarcoma.py)
    rng = np.random.default_rng(0)
    volume = torch.from_numpy(rng.normal(size=(1, *SHAPE)).astype(np.float32))
    rows = [("network (ssl / scratch / frozen encoder; 32^3 windows, overlap 0.5, Gaussian)",
             _time(lambda: task.segment(volume), args.repeats))]
    small = [rng.normal(size=(1, 40, 40, 20)).astype(np.float32) for _ in range(2)]
    masks = [(s[0] > 1.5) for s in small]
    baseline = registry.create("baseline", "voxel_statistics").fit(small, masks)
    rows.append(("voxel_statistics (classical)",
                 _time(lambda: baseline.predict_map(volume.numpy()), args.repeats)))
    voxels = float(np.prod(SHAPE))
    print(f"| arm | seconds per {SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]} volume ({args.threads} threads) "
          "| voxels/s |")
    print("|---|---|---|")
    for name, sec in rows:
        print(f"| {name} | {sec:.1f} | {voxels / sec:,.0f} |")


if __name__ == "__main__":
    main()
