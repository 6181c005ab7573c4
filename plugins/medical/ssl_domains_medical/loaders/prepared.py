"""The ``prepared`` loader: patches read from a prepared store, never from the source files."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ssl_domains.contracts import Example
from ssl_domains.errors import ConfigError
from ssl_domains.registry import Registry, component
from ssl_domains_medical.loaders.record_items import RecordItems, check_patch_args
from ssl_domains_medical.loaders.store import VolumeStore, preprocessing_spec

__all__ = ["PreparedDataset", "patch_box"]

log = logging.getLogger(__name__)

#: Background centres are drawn by rejection among all voxels this many times before the
#: mask is read to draw among background voxels directly (foreground filling the volume).
_BACKGROUND_TRIES = 64


def _size(value: int | list[int], dims: int) -> tuple[int, ...]:
    size = (int(value),) * dims if isinstance(value, int) else tuple(int(v) for v in value)
    if len(size) != dims or min(size) < 1:
        raise ConfigError(f"patch_size must be {dims} positive integers for {dims}-D volumes, got {value!r}")
    return size


def patch_box(rng: np.random.Generator, shape: tuple[int, ...], patch: tuple[int, ...], *,
              pos_fraction: float | None = None, foreground: Any = None,
              mask: Any = None) -> tuple[int, ...]:
    """Start of a ``patch`` in a volume of ``shape`` zero-padded (centred) to at least ``patch``.

    As MONAI's ``RandSpatialCropSamplesd`` (uniform start) and ``RandCropByPosNegLabeld``
    (``pos_fraction``: centred on a foreground voxel with that probability, else on a
    background voxel, each drawn uniformly; with no foreground, background; the centre moved
    so the patch fits), which :func:`~ssl_domains_medical.transforms.patch_sampler` builds,
    without the whole volume: the start is in padded coordinates (subtract
    ``(max(shape, patch) - shape) // 2`` for the volume's).

    Args:
        rng: The random state (a pure function of seed, epoch and item).
        shape: Spatial shape of the volume.
        patch: Patch size.
        pos_fraction: None for uniform starts.
        foreground: Sorted flat indices (in ``shape``) of the foreground voxels.
        mask: Callable returning the whole mask ``[*shape]``, used only when background
            voxels are rare.
    """
    padded = tuple(max(n, p) for n, p in zip(shape, patch))
    if pos_fraction is None or foreground is None:
        return tuple(int(rng.integers(0, q - p + 1)) for q, p in zip(padded, patch))
    total = int(np.prod(shape))
    n_fg = len(foreground)
    use_fg = n_fg > 0 and (n_fg == total or rng.random() < pos_fraction)
    if use_fg:
        flat = int(foreground[int(rng.integers(n_fg))])
    else:
        flat = -1
        for _ in range(_BACKGROUND_TRIES):
            cand = int(rng.integers(total))
            k = int(np.searchsorted(foreground, cand))
            if k >= n_fg or int(foreground[k]) != cand:
                flat = cand
                break
        if flat < 0:
            background = np.flatnonzero(np.asarray(mask()) == 0) if mask is not None else np.arange(total)
            flat = int(background[int(rng.integers(len(background)))])
    centre = np.unravel_index(flat, shape)
    starts = []
    for c, n, q, p in zip(centre, shape, padded, patch):
        c = int(c) + (q - n) // 2
        starts.append(min(max(c - p // 2, 0), q - p))
    return tuple(starts)


@component(
    "prepared",
    description="patches (or whole volumes) read from a store made by `ssl-domains medical prepare`",
    modalities=("image",),
    dims=(2, 3),
    examples=[Example({"store": "store", "source": {"name": "nifti", "args": {"path": "volumes", "modality": "CT"}},
                       "patch_size": 8, "patches_per_volume": 2})],
    example_data="ssl_domains_medical.loaders.examples:write_prepared_example",
)
class PreparedDataset(RecordItems, torch.utils.data.Dataset):
    """Items of a prepared store (``ssl-domains medical prepare CONFIG`` makes it from
    ``source``): ``{"image": [C, *patch] float32, "mask"?, "label"?, "meta"}``, as the source
    loader gives them, with patches read from the chunks they touch.

    The store records the preprocessing it was made with; a ``source`` that disagrees is
    refused with one line naming the store and the key. Building the dataset reads only the
    store's index (no volume): with DDP each rank then reads only the patches of its shard.
    Patch ``i`` of epoch ``e`` is a pure function of ``(seed, e, i)``.

    Args:
        store: The store's folder.
        source: ``{"name": loader, "args": {...}}``: the loader (and its preprocessing) the
            store is made from; ``prepare`` reads it, training only checks it.
        patch_size: Patch size, or None for whole volumes.
        patches_per_volume: Items per volume (each its own patch, drawn anew each epoch).
        pos_fraction: With masks: probability that a patch is centred on the mask foreground
            (as ``RandCropByPosNegLabeld``); None samples uniformly.
        seed: Seed of the patch positions.
        dtype: Storage dtype the store must have (``"float32"`` or ``"float16"``); ``prepare``
            uses it to write.
        registry: Supplied by the host: resolves the source loader's defaults.

    Raises:
        DataError: No store, or an unfinished one.
        ConfigError: The store was made with other preprocessing, or bad sizes.
    """

    image_key = "image"

    def __init__(
        self,
        store: str,
        source: dict[str, Any],
        patch_size: int | list[int] | None = None,
        patches_per_volume: int = 1,
        pos_fraction: float | None = None,
        seed: int = 0,
        dtype: str = "float32",
        registry: Registry | None = None,
    ) -> None:
        if not isinstance(source, dict) or "name" not in source:
            raise ConfigError("source must be {name: LOADER, args: {...}}: the loader the store "
                              "is prepared from")
        check_patch_args(patches_per_volume, patch_size, pos_fraction)
        self.store_path = Path(store)
        self.source = {"name": str(source["name"]), "args": dict(source.get("args") or {})}
        self.patch_size = patch_size
        self.patches_per_volume = patches_per_volume
        self.pos_fraction = pos_fraction
        self.seed = seed
        self.dtype = dtype
        self.epoch = 0
        self.store = VolumeStore(store)
        if registry is not None:
            factory = registry.get("loader", self.source["name"]).factory
            header = self.store.check(preprocessing_spec(self.source["name"], factory, self.source["args"]), dtype)
        else:
            header = self._check_given()
        index = self.store.index()
        self.records: list[dict[str, Any]] = index["records"]
        self.skipped = [(str(s["id"]), str(s["reason"])) for s in index.get("skipped", [])]
        self.dims = len(self.records[0]["spatial"]) if self.records else int(
            header["source"]["args"].get("dims", 3))
        self._patch = _size(patch_size, self.dims) if patch_size is not None else None

    def _check_given(self) -> dict[str, Any]:
        """Without a registry: check the keys the config gives (defaults cannot be resolved)."""
        given = preprocessing_spec(self.source["name"], None, self.source["args"])
        doc = self.store.header()
        made = doc["source"]["args"] if doc is not None else {}
        return self.store.check({"loader": given["loader"], "args": {**made, **given["args"]}}, self.dtype)

    # ------------------------------------------------------------------ dataset surface
    # (set_epoch, labels, groups and __len__ come from RecordItems)
    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        r_index, patch = divmod(index, self.patches_per_volume)
        record = self.records[r_index]
        key = record["key"]
        shape = tuple(int(n) for n in record["spatial"])
        affine = np.asarray(record["affine"], dtype=np.float64)
        has_mask = bool(record.get("has_mask"))
        if self._patch is None:
            image = self.store.read(key, "image")
            mask = self.store.read(key, "mask") if has_mask else None
        else:
            image, mask, affine = self._read_patch(index, key, shape, has_mask, affine)
        item: dict[str, Any] = {"image": torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))}
        if mask is not None:
            item["mask"] = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))
        if record.get("label") is not None:
            item["label"] = int(record["label"])
        meta = {"id": str(record["id"]), "modality": str(record.get("modality", "")),
                "spacing": list(record["spacing"]), "patch": patch,
                "affine": [[float(v) for v in row] for row in affine.tolist()]}
        meta.update(record.get("meta") or {})
        item["meta"] = meta
        return item

    def _read_patch(self, index: int, key: str, shape: tuple[int, ...], has_mask: bool,
                    affine: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        assert self._patch is not None
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, index]))
        guided = self.pos_fraction is not None and has_mask
        start = patch_box(rng, shape, self._patch, pos_fraction=self.pos_fraction if guided else None,
                          foreground=self.store.foreground(key) if guided else None,
                          mask=(lambda: self.store.read(key, "mask")[0]) if guided else None)
        before = [(max(n, p) - n) // 2 for n, p in zip(shape, self._patch)]
        origin = [s - b for s, b in zip(start, before)]  # patch origin in volume voxels
        lo = [max(o, 0) for o in origin]
        hi = [min(o + p, n) for o, p, n in zip(origin, self._patch, shape)]
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        dst = (slice(None), *(slice(a - o, b - o) for a, b, o in zip(lo, hi, origin)))
        read = self.store.read(key, "image", box)
        image = np.zeros((read.shape[0], *self._patch), dtype=np.float32)
        image[dst] = read
        mask = None
        if has_mask:
            mask = np.zeros((1, *self._patch), dtype=np.float32)
            mask[dst] = self.store.read(key, "mask", box)
        moved = affine.copy()
        moved[:-1, -1] = affine[:-1, :-1] @ np.asarray(origin, dtype=np.float64) + affine[:-1, -1]
        return image, mask, moved
