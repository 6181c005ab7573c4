"""Labelled patches from (image, mask) cases, for training a patch-level tumor detector."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ssl_domains.contracts import ID, IMAGE, LABEL, MASK, META, Example
from ssl_domains.errors import DataError
from ssl_domains.identifiers import opaque_id
from ssl_domains.registry import Registry, component

__all__ = ["TumorPatches"]

log = logging.getLogger(__name__)


def _case_id(item: dict[str, Any], index: int) -> str:
    meta = item.get(META) or {}
    for key in ("case_id", "case", "series_id", ID, "path"):
        if key in meta:
            return opaque_id("case", meta[key], length=12)
    return f"case{index}"


@component(
    "tumor_patches",
    description="Balanced tumor / background patches from image+mask cases (labels by overlap)",
    modalities=("image",),
    dims=(2, 3),
    examples=[Example({"loader": "image_manifest",
                       "loader_args": {"path": "sample_data/medical/nifti/labels.csv"},
                       "patch_size": 16, "patches_per_case": 8})],
)
class TumorPatches(Dataset):
    """Patches cut from cases with tumor masks; label 1 when the patch overlaps the tumor.

    A patch is positive when at least ``min_overlap`` of its voxels are tumor and negative
    when none are (patches in between are ambiguous and not sampled). Each case gives
    ``patches_per_case`` patches, ``positive_fraction`` of them positive when the case has a
    tumor, so the classes are balanced whatever the lesion size. Positions are drawn once,
    from ``seed``, so the dataset is the same every epoch.

    Args:
        cases: A dataset (or list) of items with ``"image"`` ``[C, *spatial]`` and ``"mask"``
            (``[*spatial]`` or ``[1, *spatial]``, non-zero = tumor).
        loader: Instead of ``cases``: a registered loader whose items have masks (e.g.
            ``"image_manifest"`` or ``"case_folders"``) ...
        loader_args: ... and its arguments.
        patch_size: Patch edge (int or one per spatial dim).
        patches_per_case: Patches drawn per case.
        positive_fraction: Share of positive patches in a case with tumor.
        min_overlap: Tumor fraction of a patch for it to be positive.
        max_tries: Random positions tried per patch before giving up on it.
        seed: Seed of the position sampling.
        registry: Where ``loader`` is registered (:meth:`Registry.create` passes itself).

    Raises:
        DataError: A case has no mask, a mask that does not match its image, or is smaller
            than the patch.
        ValueError: Neither or both of ``cases`` and ``loader``, or ``loader`` without
            ``registry``.
    """

    def __init__(
        self,
        cases: Dataset | Sequence[dict[str, Any]] | None = None,
        loader: str | None = None,
        loader_args: dict[str, Any] | None = None,
        patch_size: int | Sequence[int] = 32,
        patches_per_case: int = 16,
        positive_fraction: float = 0.5,
        min_overlap: float = 0.05,
        max_tries: int = 200,
        seed: int = 0,
        *,
        registry: Registry | None = None,
    ) -> None:
        if (cases is None) == (loader is None):
            raise ValueError("TumorPatches needs exactly one of cases=... or loader=...")
        if cases is None:
            if registry is None:
                raise ValueError("TumorPatches(loader=...) needs the registry the loader is in "
                                 "(registry.create('loader', 'tumor_patches', ...) passes it)")
            cases = registry.create("loader", str(loader), **(loader_args or {}))
        self.patch_size = patch_size
        self.patches_per_case = patches_per_case
        self.positive_fraction = positive_fraction
        self.min_overlap = min_overlap
        self.max_tries = max_tries
        self.seed = seed
        self.patches: list[torch.Tensor] = []
        self.masks: list[torch.Tensor] = []
        self.labels: list[int] = []
        self.groups: list[str] = []
        self.metas: list[dict[str, Any]] = []
        self.skipped: list[tuple[str, str]] = []
        rng = np.random.RandomState(seed)
        for index in range(len(cases)):  # type: ignore[arg-type]
            self._cut(cases[index], index, rng)

    def _cut(self, item: dict[str, Any], index: int, rng: np.random.RandomState) -> None:
        where = str((item.get(META) or {}).get("path", f"case {index}"))
        image = torch.as_tensor(item[IMAGE]).float()
        if item.get(MASK) is None:
            raise DataError(where, "no 'mask' in the case; tumor_patches needs a tumor mask")
        mask = torch.as_tensor(item[MASK])
        if mask.ndim == image.ndim:
            mask = mask[0]
        spatial = tuple(image.shape[1:])
        if tuple(mask.shape) != spatial:
            raise DataError(where, f"mask shape {tuple(mask.shape)} does not match image "
                                   f"spatial shape {spatial}")
        size = ([self.patch_size] * len(spatial) if isinstance(self.patch_size, int)
                else [int(p) for p in self.patch_size])
        if len(size) != len(spatial) or any(p > s for p, s in zip(size, spatial)):
            raise DataError(where, f"image {spatial} is smaller than patch_size {tuple(size)}")
        tumor = mask.numpy() > 0
        # tumor voxels inside each possible patch, via a summed-area table
        table = np.pad(tumor.astype(np.int64), [(1, 0)] * tumor.ndim)
        for ax in range(tumor.ndim):
            table = table.cumsum(axis=ax)
        n_vox = int(np.prod(size))
        n_pos = round(self.positive_fraction * self.patches_per_case) if tumor.any() else 0
        wanted = [1] * n_pos + [0] * (self.patches_per_case - n_pos)
        centres = np.argwhere(tumor)
        group = _case_id(item, index)
        for label in wanted:
            start = self._find(label, centres, spatial, size, table, n_vox, rng)
            if start is None:
                reason = f"no {'tumor' if label else 'background'} patch found"
                self.skipped.append((where, reason))  # logged once, by whoever builds the dataset
                continue
            idx = tuple(slice(a, a + p) for a, p in zip(start, size))
            self.patches.append(image[(slice(None), *idx)].clone())
            self.masks.append(mask[idx][None].clone())
            self.labels.append(label)
            self.groups.append(group)
            self.metas.append({"case": group, "start": [int(a) for a in start]})

    def _find(self, label: int, centres: np.ndarray, spatial: tuple[int, ...],
              size: list[int], table: np.ndarray, n_vox: int,
              rng: np.random.RandomState) -> list[int] | None:
        for _ in range(self.max_tries):
            if label:
                c = centres[rng.randint(len(centres))]
                jitter = [rng.randint(-(p // 4), p // 4 + 1) for p in size]
                start = [int(np.clip(ci + j - p // 2, 0, s - p))
                         for ci, j, p, s in zip(c, jitter, size, spatial)]
            else:
                start = [int(rng.randint(0, s - p + 1)) for s, p in zip(spatial, size)]
            inside = _box_sum(table, start, size)
            if (label and inside >= self.min_overlap * n_vox) or (not label and inside == 0):
                return start
        return None

    def __len__(self) -> int:
        return len(self.patches)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {IMAGE: self.patches[i], MASK: self.masks[i], LABEL: self.labels[i],
                META: dict(self.metas[i])}


def _box_sum(table: np.ndarray, start: Sequence[int], size: Sequence[int]) -> int:
    """Sum over a box from a summed-area table padded with one leading zero per axis."""
    total = 0
    dims = len(start)
    for corner in range(2**dims):
        idx, sign = [], 1
        for d in range(dims):
            if corner >> d & 1:
                idx.append(start[d] + size[d])
            else:
                idx.append(start[d])
                sign = -sign
        total += sign * int(table[tuple(idx)])
    return total
