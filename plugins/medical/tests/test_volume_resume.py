"""Random 3-D patches survive a kill -9: a resumed pre-training run on a patch-sampling volume
loader draws the patches an uninterrupted run draws and ends bitwise equal to it."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
import yaml
from ssl_domains_medical.loaders.nifti import NiftiDataset
from torch.utils.data import DataLoader

from ssl_domains.data.collate import collate_items
from ssl_domains.testing.resume import assert_kill9_resume_equal


@pytest.fixture()
def volumes(tmp_path: Path) -> Path:
    """Four small CT-like volumes with structure (a patch's position changes what it sees)."""
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.RandomState(0)
    grid = np.indices((12, 12, 12)).sum(0).astype(np.float32)
    for i in range(4):
        data = grid * 20 - 200 + rng.randn(12, 12, 12).astype(np.float32) * 30
        nib.save(nib.Nifti1Image(data, np.eye(4)), str(folder / f"vol_{i}.nii.gz"))
    return folder


def _config(tmp_path: Path, data: Path, name: str) -> Path:
    cfg = {
        "name": name,
        "output_dir": str(tmp_path / "runs"),
        "seed": 0,
        "backbone": {"name": "resnet_encoder", "args": {"spatial_dims": 3, "depth": 10, "width": 4}},
        "pretrain": {
            "data": {"train": {"name": "nifti", "args": {"path": str(data), "modality": "CT",
                                                         "patch_size": 8, "patches_per_volume": 2}},
                     "batch_size": 2, "val_fraction": 0.25, "num_workers": 0},
            "task": {"name": "masked_inpainting", "args": {"mask_ratio": 0.5, "block_size": 4,
                                                           "decoder_width": 4}},
            # 3 volumes x 2 patches for training: 3 steps an epoch, 90 steps
            "train": {"epochs": 30, "checkpoint_every": 6, "progress": False, "log_every": 3,
                      "warmup_steps": 0},
        },
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_patches_are_a_function_of_seed_epoch_and_item(volumes: Path) -> None:
    def epoch_items(ds: NiftiDataset, epoch: int) -> list[torch.Tensor]:
        ds.set_epoch(epoch)
        return [ds[i]["image"] for i in range(len(ds))]

    a = NiftiDataset(str(volumes), patch_size=8, patches_per_volume=2, seed=3)
    first = epoch_items(a, 0)
    assert all(torch.equal(x, y) for x, y in zip(first, epoch_items(a, 0)))  # no hidden counter
    later = epoch_items(a, 5)
    assert not all(torch.equal(x, y) for x, y in zip(first, later))  # new patches each epoch
    # a fresh dataset (as after a restart) told the epoch draws the same patches
    b = NiftiDataset(str(volumes), patch_size=8, patches_per_volume=2, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(later, epoch_items(b, 5)))
    c = NiftiDataset(str(volumes), patch_size=8, patches_per_volume=2, seed=4)
    assert not all(torch.equal(x, y) for x, y in zip(later, epoch_items(c, 5)))


def test_a_worker_process_draws_what_the_main_process_draws(volumes: Path) -> None:
    ds = NiftiDataset(str(volumes), patch_size=8, patches_per_volume=2, seed=3)
    ds.set_epoch(2)

    def patches(workers: int) -> torch.Tensor:
        loader = DataLoader(ds, batch_size=4, num_workers=workers, collate_fn=collate_items)
        return torch.cat([batch["image"] for batch in loader])

    assert torch.equal(patches(0), patches(1))


def test_kill9_then_resume_draws_the_same_patches(tmp_path: Path, volumes: Path) -> None:
    # kill after epoch 4 at the earliest: a draw counter restarting at 0 would show by then
    assert_kill9_resume_equal(_config(tmp_path, volumes, "full"),
                              _config(tmp_path, volumes, "killed"), tmp_path / "runs" / "full",
                              tmp_path / "runs" / "killed", "step_000000[1-8][0-9].pt")
