"""The ``prepared`` loader: patches read from the store are crops of the prepared volume, a
pure function of (seed, epoch, index), mask-guided as RandCropByPosNegLabeld."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from ssl_domains_medical.loaders.nifti import NiftiDataset
from ssl_domains_medical.loaders.prepare import prepare_store
from ssl_domains_medical.loaders.prepared import PreparedDataset, patch_box
from ssl_domains_medical.loaders.store import VolumeStore, preprocessing_spec
from ssl_domains_medical.loaders.synthetic import write_noise_nifti

ARGS = {"modality": "CT"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("prepared")
    data = root / "data"
    data.mkdir()
    rng = np.random.RandomState(0)
    for i, shape in enumerate([(20, 18, 16), (12, 22, 9), (16, 16, 16)]):
        write_noise_nifti(data / f"v{i}.nii.gz", shape, rng, (1.0, 1.2, 2.0), low=-300)
    source = {"name": "nifti", "args": {"path": str(data), **ARGS}}
    prepare_store(NiftiDataset(str(data), **ARGS), root / "store",  # type: ignore[arg-type]
                  preprocessing_spec("nifti", NiftiDataset, source["args"]))
    return root / "store", source


def _crop(volume: np.ndarray, item: dict, affine: np.ndarray, patch: int) -> np.ndarray:
    """The crop of ``volume`` at the item's patch origin (zero outside the volume)."""
    moved = np.asarray(item["meta"]["affine"])
    origin = np.rint(np.linalg.solve(affine[:3, :3], moved[:3, 3] - affine[:3, 3])).astype(int)
    out = np.zeros((volume.shape[0], patch, patch, patch), np.float32)
    for idx in np.ndindex(patch, patch, patch):
        v = origin + np.array(idx)
        if all(0 <= v[d] < volume.shape[1 + d] for d in range(3)):
            out[(slice(None), *idx)] = volume[(slice(None), *v)]
    return out


def test_patches_are_crops_of_the_prepared_volume(store: tuple[Path, dict]) -> None:
    path, source = store
    ds = PreparedDataset(str(path), source, patch_size=14, patches_per_volume=3, seed=1)
    vs = VolumeStore(path)
    for i in range(len(ds)):
        item = ds[i]
        record = ds.records[i // 3]
        volume = vs.read(record["key"], "image")
        assert item["image"].shape == (1, 14, 14, 14) and item["image"].dtype == torch.float32
        expected = _crop(volume, item, np.asarray(record["affine"]), 14)  # 9 < 14 slices: padded
        np.testing.assert_array_equal(item["image"].numpy(), expected)
        assert item["meta"]["id"] == record["id"] and item["meta"]["patch"] == i % 3


def test_patches_are_a_function_of_seed_epoch_and_index(store: tuple[Path, dict]) -> None:
    path, source = store

    def epoch(ds: PreparedDataset, e: int) -> list[torch.Tensor]:
        ds.set_epoch(e)
        return [ds[i]["image"] for i in range(len(ds))]

    a = PreparedDataset(str(path), source, patch_size=6, patches_per_volume=2, seed=3)
    first = epoch(a, 0)
    assert all(torch.equal(x, y) for x, y in zip(first, epoch(a, 0)))
    later = epoch(a, 4)
    assert not all(torch.equal(x, y) for x, y in zip(first, later))
    b = PreparedDataset(str(path), source, patch_size=6, patches_per_volume=2, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(later, epoch(b, 4)))
    c = PreparedDataset(str(path), source, patch_size=6, patches_per_volume=2, seed=4)
    assert not all(torch.equal(x, y) for x, y in zip(later, epoch(c, 4)))
    whole = PreparedDataset(str(path), source)
    assert whole[1]["image"].shape == (1, 12, 22, 9)


def test_mask_guided_starts_mean_what_pos_neg_sampling_means() -> None:
    shape, patch = (30, 30, 30), (6, 6, 6)
    mask = np.zeros(shape, np.uint8)
    mask[20:23, 4:6, 10:12] = 1
    fg = np.flatnonzero(mask)

    def hits(pos: float) -> float:
        n = 0
        for i in range(200):
            rng = np.random.default_rng(np.random.SeedSequence([0, 0, i]))
            s = patch_box(rng, shape, patch, pos_fraction=pos, foreground=fg, mask=lambda: mask)
            n += mask[tuple(slice(a, a + p) for a, p in zip(s, patch))].any()
        return n / 200

    assert hits(1.0) == 1.0  # always centred on foreground
    assert hits(0.0) < 0.1  # background centres (a few touch the small lesion)
    assert 0.35 < hits(0.5) < 0.65
    # no foreground: background only, as RandCropByPosNegLabeld falls back
    rng = np.random.default_rng(0)
    s = patch_box(rng, shape, patch, pos_fraction=1.0, foreground=np.array([], np.int64), mask=lambda: mask * 0)
    assert all(0 <= a <= n - p for a, n, p in zip(s, shape, patch))
    # foreground everywhere but one voxel: background drawn from the mask
    full = np.ones(shape, np.uint8)
    full[3, 4, 5] = 0
    s = patch_box(np.random.default_rng(1), shape, patch, pos_fraction=0.0,
                  foreground=np.flatnonzero(full), mask=lambda: full)
    assert s == (0, 1, 2)
