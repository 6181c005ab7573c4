"""Pre-training throughput of ``masked_inpainting`` on 3-D volumes vs the decoder's target stride.

One optimiser step = forward + backward + Adam update on a batch; the first step of each setting
is a warm-up and is not timed. Example (the numbers in the lead's report)::

    OMP_NUM_THREADS=1 python benchmarks/decoder_stride.py --strides 1,2,4 --steps 3

Data: the first ``--batch`` AdrenalMNIST3D 64^3 training volumes when the shared data set is
present, else uniform noise of the same shape (throughput does not depend on the values).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from ssl_domains_medical.backbones import ResNetEncoder
from ssl_domains_medical.pretext.masked import MaskedInpainting

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "adrenalmnist3d"


def batch_of(n: int) -> torch.Tensor:
    """``[n, 1, 64, 64, 64]`` AdrenalMNIST3D volumes, or noise when the data set is absent."""
    path = DATA / "adrenalmnist3d_64.npz"
    if not path.is_file():
        return torch.rand(n, 1, 64, 64, 64)
    from ssl_domains_medical.loaders.medmnist import MedMNISTDataset

    ds = MedMNISTDataset(str(path), split="train", unlabeled=True, max_items=n)
    return torch.stack([ds[i]["image"] for i in range(n)])


def volumes_per_second(stride: int, x: torch.Tensor, steps: int) -> float:
    """Mean training throughput over ``steps`` timed steps (after one warm-up step)."""
    torch.manual_seed(0)
    backbone = ResNetEncoder(spatial_dims=3, depth=10, width=16, stem_stride=2)
    kw = {} if stride == 1 else {"target_stride": stride}
    task = MaskedInpainting(backbone, **kw)
    opt = torch.optim.Adam(task.parameters(), lr=1e-3)
    elapsed = 0.0
    for step in range(steps + 1):
        start = time.perf_counter()
        loss = task({"image": x})["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step > 0:
            elapsed += time.perf_counter() - start
    return steps * len(x) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strides", default="1,2,4", help="comma-separated target strides")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per stride")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = batch_of(args.batch)
    print(f"batch {tuple(x.shape)}, {args.threads} thread(s), {args.steps} timed steps")
    for s in (int(v) for v in args.strides.split(",")):
        print(f"target_stride={s}: {volumes_per_second(s, x, args.steps):.2f} volumes/s")


if __name__ == "__main__":
    main()
