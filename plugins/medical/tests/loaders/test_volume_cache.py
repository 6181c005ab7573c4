"""The in-RAM volume cache keeps within its byte budget, least recently used out first."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from ssl_domains_medical.loaders.nifti import NiftiDataset
from ssl_domains_medical.loaders.volume_cache import VolumeCache, parse_bytes

from ssl_domains.errors import ConfigError


def test_evicts_least_recently_used_within_budget() -> None:
    cache = VolumeCache(budget=3_500_000)
    for i in range(10):
        cache.put(i, {"image": torch.zeros(250_000)})  # 1 MB each
        if i == 5:
            assert cache.get(3) is not None  # used: kept over 4 and 5
        assert cache.nbytes <= 3_500_000
    assert len(cache) == 3 and cache.evictions == 7
    assert 9 in cache and 3 not in cache
    cache.put("huge", {"image": np.zeros(1_000_000, np.float32)})  # larger than the budget: not kept
    assert "huge" not in cache and cache.nbytes <= 3_500_000


def test_budget_zero_keeps_nothing_and_auto_is_a_share_of_memory() -> None:
    cache = VolumeCache(budget=0)
    cache.put(1, {"image": torch.zeros(4)})
    assert len(cache) == 0
    assert 0 < VolumeCache().limit() < 10**15


def test_sizes_parse() -> None:
    assert parse_bytes("4GB") == 4 * 10**9
    assert parse_bytes("512 MiB") == 512 * 2**20
    assert parse_bytes(1000) == 1000
    assert parse_bytes("auto") is None and parse_bytes(None) is None
    with pytest.raises(ConfigError, match="cache_bytes"):
        parse_bytes("lots")


def test_a_volume_dataset_stays_within_its_cache_budget(tmp_path: Path) -> None:
    rng = np.random.RandomState(0)
    for i in range(6):
        data = (rng.rand(16, 16, 16) * 400 - 200).astype(np.float32)
        nib.save(nib.Nifti1Image(data, np.eye(4)), str(tmp_path / f"v{i}.nii.gz"))
    budget = 2 * 16**3 * 4 + 100  # two preprocessed volumes
    ds = NiftiDataset(str(tmp_path), modality="CT", patch_size=8, cache_bytes=budget)
    for _ in range(2):
        for i in range(len(ds)):
            ds[i]
            assert ds._memory.nbytes <= budget
    assert len(ds._memory) == 2 and ds._memory.evictions >= 4
    none = NiftiDataset(str(tmp_path), modality="CT", patch_size=8, cache="none")
    none[0]
    assert len(none._memory) == 0
