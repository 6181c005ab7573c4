from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from ssl_domains_medical.tasks.patches import TumorPatches

from ssl_domains.errors import DataError


def case(size: int = 24, lesion: bool = True, dims: int = 3) -> dict:
    img = torch.randn(1, *[size] * dims)
    mask = torch.zeros(*[size] * dims)
    if lesion:
        mask[(slice(4, 10),) * dims] = 1
    return {"image": img, "mask": mask, "meta": {"path": f"case_{lesion}.nii.gz"}}


def test_balanced_patches_labelled_by_overlap() -> None:
    ds = TumorPatches([case(), case(lesion=False)], patch_size=8, patches_per_case=6,
                      min_overlap=0.1)
    assert len(ds) == 12
    assert ds.labels == [1, 1, 1, 0, 0, 0] + [0] * 6
    assert len(set(ds.groups)) == 2 and ds.groups[0] == ds.groups[5]
    for i in range(len(ds)):
        item = ds[i]
        assert item["image"].shape == (1, 8, 8, 8) and item["mask"].shape == (1, 8, 8, 8)
        frac = item["mask"].float().mean().item()
        assert (frac >= 0.1) if item["label"] else (frac == 0)
    cases = [case(), case(lesion=False)]
    first = TumorPatches(cases, patch_size=8, patches_per_case=6, seed=3)
    second = TumorPatches(cases, patch_size=8, patches_per_case=6, seed=3)
    assert first.metas == second.metas  # positions come from the seed


def test_2d_cases_and_channel_first_masks() -> None:
    c = case(16, dims=2)
    c["mask"] = c["mask"][None]
    ds = TumorPatches([c], patch_size=(6, 6), patches_per_case=4, positive_fraction=0.25)
    assert ds.labels == [1, 0, 0, 0]
    assert ds[0]["image"].shape == (1, 6, 6)


def test_unfindable_patches_are_skipped_and_listed_not_logged_twice(caplog: pytest.LogCaptureFixture) -> None:
    c = case(8)
    c["mask"][:] = 1  # no background anywhere
    with caplog.at_level(logging.WARNING):
        ds = TumorPatches([c], patch_size=4, patches_per_case=2, max_tries=5)
    assert ds.labels == [1]
    assert ds.skipped == [("case_True.nii.gz", "no background patch found")]
    # listed in ``skipped``: the host's build_dataset logs it, once; the loader does not as well
    assert "no background patch found" not in caplog.text


def test_bad_cases_raise_data_errors() -> None:
    c = case()
    del c["mask"]
    with pytest.raises(DataError, match="case_True.nii.gz: no 'mask' in the case"):
        TumorPatches([c], patch_size=8)
    c = case()
    c["mask"] = torch.zeros(4, 4, 4)
    with pytest.raises(DataError, match=r"mask shape \(4, 4, 4\) does not match .* \(24, 24, 24\)"):
        TumorPatches([c], patch_size=8)
    with pytest.raises(DataError, match=r"smaller than patch_size \(32, 32, 32\)"):
        TumorPatches([case()], patch_size=32)
    with pytest.raises(ValueError, match="exactly one of cases=... or loader=..."):
        TumorPatches()


def test_cases_from_a_registered_loader(tmp_path: Path, ssl_host) -> None:
    """The registry that builds tumor_patches passes itself, and builds the wrapped loader."""
    path = tmp_path / "x.npz"
    np.savez(path, x=np.zeros((2, 1, 8, 8), dtype=np.float32), y=np.array([0, 1]))
    args = {"loader": "arrays", "loader_args": {"path": str(path), "key": "image", "spatial_dims": 2},
            "patch_size": 4}
    with pytest.raises(DataError, match="case 0: no 'mask' in the case"):
        ssl_host.registry.create("loader", "tumor_patches", **args)
    with pytest.raises(ValueError, match=r"needs the registry the loader is in"):
        TumorPatches(**args)  # built by hand, it has no registry to find 'arrays' in
