"""The item pipeline shared by the volume loaders (DICOM, NIfTI, manifest, case folders).

Each loader lists *records* (one per volume or case: an id, a modality, optional label) and
knows how to load one as channel-first MetaTensors. :class:`VolumeDataset` does the rest:
deterministic MONAI preprocessing (cached on disk: decoded once across runs; in memory: once
per process up to a byte budget, least recently used out first
(:class:`~ssl_domains_medical.loaders.volume_cache.VolumeCache`), which is once across epochs
without DataLoader workers when the volumes fit, while with ``num_workers`` > 0 each worker's
cache lasts one epoch, as the engine starts new workers every epoch), then either the whole
volume at a fixed ``spatial_size`` or ``patches_per_volume`` random patches of
``patch_size``. Each patch is a pure function of ``(seed, epoch, item index)`` (no hidden
draw counter): the engine tells the dataset the
epoch (:meth:`VolumeDataset.set_epoch`, before each epoch's batches), so a resumed run draws
exactly the patches an uninterrupted run draws, with or without DataLoader workers.

Non-finite voxels (NaN, ``inf``, ``-inf``) are found when a volume is loaded, as the
time-series loaders find non-finite samples (:mod:`ssl_domains.data.nonfinite`): with
``nonfinite="mask"`` (default) they take the volume's lowest finite value (its background),
with one warning per volume (opaque id, count, first voxel); ``"refuse"`` stops the run naming
the file. A volume with no finite voxel at all is unreadable: skipped like a file cut short.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.data.utils import affine_to_spacing
from torch.utils.data import Dataset

from ssl_domains.data.nonfinite import (
    check_nonfinite_mode,
    nonfinite_reason,
    nonfinite_refusal,
    nonfinite_values,
)
from ssl_domains.data.skipping import scrub
from ssl_domains.errors import ConfigError, DataError, RefusedInput
from ssl_domains_medical import fingerprint
from ssl_domains_medical.fingerprint import MAX_VOXELS, PATCH_VOXELS
from ssl_domains_medical.loaders.record_items import RecordItems, check_patch_args
from ssl_domains_medical.loaders.volume_cache import VolumeCache, parse_bytes
from ssl_domains_medical.transforms import patch_sampler, preprocessing, resolve_intensity

__all__ = ["VolumeDataset", "to_meta_tensor", "nifti_to_meta_tensor", "two_d_refusal"]

log = logging.getLogger(__name__)


def to_meta_tensor(array: np.ndarray, affine: np.ndarray, dims: int, path: str | Path = "") -> MetaTensor:
    """Channel-first MetaTensor from an array ``[*spatial]`` or ``[*spatial, channels]``.

    A 3-D array with ``dims=2`` must have a single slice (squeezed). The affine is 4x4 in RAS
    mm; for 2-D it is cut to 3x3.

    Raises:
        DataError: The array cannot be seen as ``dims``-D.
    """
    arr = np.asarray(array, dtype=np.float32)
    aff = np.asarray(affine, dtype=np.float64)
    if dims == 2:
        if arr.ndim >= 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0] if arr.ndim == 3 else arr[:, :, 0, ...]
        if arr.ndim not in (2, 3):
            raise DataError(path, f"image of shape {array.shape} is not 2-D (dims=2 needs one slice)")
        aff = aff[np.ix_([0, 1, 3], [0, 1, 3])]
        channels_last = arr.ndim == 3
    else:
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim not in (3, 4):
            raise DataError(path, f"image of shape {array.shape} is not 3-D")
        channels_last = arr.ndim == 4
    arr = np.moveaxis(arr, -1, 0) if channels_last else arr[None]
    return MetaTensor(torch.from_numpy(np.ascontiguousarray(arr)), affine=torch.as_tensor(aff))


def two_d_refusal(shape: Any) -> str:
    """Why a 2-D image (or a single slice) is refused by a 3-D pipeline, and what to do."""
    return (f"2-D image {tuple(int(s) for s in shape)} given to a 3-D pipeline (dims=3); set dims=2 "
            "for 2-D images, or allow_2d=True to use it as a one-slice volume")


def nifti_to_meta_tensor(path: str | Path, dims: int, allow_4d: bool = False,
                         allow_2d: bool = False) -> MetaTensor:
    """Load a NIfTI file (any orientation, NIfTI-1/2, either endianness) as a RAS MetaTensor.

    The voxel axes are permuted/flipped to the closest RAS orientation (nibabel's
    ``as_closest_canonical``; no resampling), so images of one case stack as channels.

    The 4th axis (time) becomes channels when ``allow_4d``; otherwise a 4-D file is refused.
    A 2-D image (or one slice) with ``dims=3`` is refused unless ``allow_2d`` (then it is a
    one-slice volume).

    Raises:
        DataError: Missing, unreadable, 4-D without ``allow_4d``, or 2-D with ``dims=3``
            without ``allow_2d``.
    """
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        img: Any = nib.load(str(path))
        arr = np.asarray(img.dataobj, dtype=np.float32)
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types on bad files
        raise DataError(path, f"unreadable NIfTI: {type(exc).__name__}: {scrub(str(exc), path)[:160]}") from None
    if dims == 3 and not allow_2d and (arr.ndim == 2 or arr.shape[2] == 1):
        raise DataError(path, two_d_refusal(arr.shape))
    if arr.ndim == 2:
        arr = arr[:, :, None]
    while arr.ndim > 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 4 and arr.shape[3] == 1:
        arr = arr[..., 0]
    if arr.ndim == 4 and not allow_4d:
        raise DataError(path, f"4-D image {arr.shape} (time points); pass allow_4d=True to use "
                        "time points as channels")
    if arr.ndim > 4:
        raise DataError(path, f"{arr.ndim}-D image {arr.shape} is not supported")
    ornt = nib.orientations.io_orientation(img.affine)
    affine = img.affine @ nib.orientations.inv_ornt_aff(ornt, arr.shape[:3])
    arr = nib.orientations.apply_orientation(arr, ornt) if arr.ndim == 3 else np.stack(
        [nib.orientations.apply_orientation(arr[..., t], ornt) for t in range(arr.shape[3])], -1)
    return to_meta_tensor(arr, affine, dims, path)


def nifti_geometry(path: str | Path) -> tuple[list[float], list[int]] | None:
    """Voxel size (mm) and shape of a 3-D NIfTI file's volume on the RAS axes that
    :func:`nifti_to_meta_tensor` gives it, from the header alone (no voxel data read); None
    where the header is not of a plain 3-D volume (the caller loads the file instead, which
    also reports what is wrong with it)."""
    import nibabel as nib

    try:
        img: Any = nib.load(str(path))
        shape = tuple(int(v) for v in img.shape)
        affine = np.asarray(img.affine, dtype=float)
    except Exception:  # noqa: BLE001 - nibabel raises many types on bad files
        return None
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != 3 or min(shape) < 2:
        return None
    return ras_geometry(shape, affine)


def ras_geometry(shape: Any, affine: Any) -> tuple[list[float], list[int]]:
    """Voxel size (mm) and shape of a 3-D array of ``shape`` with this voxel-to-RAS
    ``affine`` once its axes are turned to the closest RAS orientation (nibabel's
    ``as_closest_canonical``), without touching voxels."""
    import nibabel as nib

    affine = np.asarray(affine, dtype=float)
    zooms = affine_to_spacing(affine, r=3)
    spacing, size = [0.0] * 3, [0] * 3
    for axis, (to, _flip) in enumerate(nib.orientations.io_orientation(affine)):
        spacing[int(to)], size[int(to)] = float(zooms[axis]), int(shape[axis])
    return spacing, size


class VolumeDataset(RecordItems, Dataset):
    """Base of the volume loaders: records -> cached preprocessing -> fixed size or patches.

    Subclasses fill ``self.records`` (dicts with ``"id"``, ``"modality"`` and optionally
    ``"label"``, ``"has_mask"``) and implement :meth:`load_record`.

    Args:
        dims: Spatial dimensions of the items (2 or 3).
        spatial_size: Fixed size of every item (whole volume, crop-or-pad or resize), or None.
        patch_size: Random patches of this size instead of whole volumes, None, or
            ``"auto"``: the median case's shape on the grid, cut to at most ``patch_voxels``.
        patches_per_volume: Items per volume when sampling patches (each item its own
            patch, drawn anew each epoch).
        resize_mode: ``"crop_or_pad"`` or ``"resize"`` for ``spatial_size``.
        spacing: Resample to this voxel size (mm) first, None, or ``"auto"``: the grid
            planned from the data (:mod:`ssl_domains_medical.fingerprint`: median spacing,
            nnU-Net's anisotropy rule, coarsened until the median case has at most
            ``max_voxels``), or the training data's plan given in ``stats``.
        intensity: ``"auto"`` (CT soft-tissue window, else percentiles), a CT window name, a
            ``[low, high]`` window, ``"percentile"`` or ``"none"``.
        percentiles: Percentiles for ``"percentile"``.
        crop_foreground: Crop to the non-background bounding box (after intensity scaling).
        pos_fraction: With masks and patches: probability that a patch is centred on the
            mask foreground (RandCropByPosNegLabeld); None samples uniformly.
        cache: ``"memory"`` (decode each volume once per process, kept within
            ``cache_bytes``), ``"disk"`` (torch files in ``cache_dir``, shared across runs, read
            whole; recently used ones kept in memory within ``cache_bytes``) or ``"none"``.
            For archives of many full-size volumes, prepare a store once
            (``ssl-domains medical prepare``) and train with the ``prepared`` loader.
        cache_dir: Folder for ``cache="disk"``.
        cache_bytes: In-memory budget of each process's cache (``"4GB"``, ``"512MiB"``, a
            number of bytes, 0 for none, or ``"auto"``: a quarter of the available memory
            divided among the DataLoader workers).
        seed: Seed of the patch sampler: item ``i`` in epoch ``e`` is the patch drawn from
            ``(seed, e, i)``; within one epoch the same item gives the same patch.
        nonfinite: NaN / ``inf`` voxels: ``"mask"`` (default) gives them the volume's lowest
            finite value, with a warning per volume (opaque id, count, first voxel);
            ``"refuse"`` stops the run, naming the file. A volume without any finite voxel
            is skipped as unreadable either way.
        max_voxels: Budget of ``spacing="auto"``: voxels of the median case on the grid.
        patch_voxels: Budget of ``patch_size="auto"``: voxels of a patch.
        stats: The training data's plan (``{"spacing", "patch_size"}``, passed on by the host to
            validation, test and prediction data), used for the values set to ``"auto"``.

    Attributes:
        nonfinite_found: One dict per volume read with non-finite voxels: ``id`` (opaque),
            ``count``, ``of`` (voxels), ``first_voxel``.
    """

    image_key = "image"

    def __init__(
        self,
        *,
        dims: int = 3,
        spatial_size: int | list[int] | None = None,
        patch_size: int | list[int] | None = None,
        patches_per_volume: int = 1,
        resize_mode: str = "crop_or_pad",
        spacing: float | list[float] | None = None,
        intensity: Any = "auto",
        percentiles: tuple[float, float] | list[float] = (1.0, 99.0),
        crop_foreground: bool = False,
        pos_fraction: float | None = None,
        cache: str = "memory",
        cache_dir: str | None = None,
        cache_bytes: int | str | None = "auto",
        seed: int = 0,
        nonfinite: str = "mask",
        max_voxels: int = MAX_VOXELS,
        patch_voxels: int = PATCH_VOXELS,
        stats: dict[str, Any] | None = None,
    ) -> None:
        check_nonfinite_mode(type(self).__name__, nonfinite)
        if cache not in ("memory", "disk", "none"):
            raise ConfigError(f"cache must be 'memory', 'disk' or 'none', got {cache!r}")
        if cache == "disk" and not cache_dir:
            raise ConfigError("cache='disk' needs cache_dir (a folder for the decoded volumes)")
        check_patch_args(patches_per_volume, patch_size, pos_fraction)
        for key, value in (("spacing", spacing), ("patch_size", patch_size)):
            if isinstance(value, str) and value != "auto":
                raise ConfigError(f"{key} must be a size, None or 'auto', got {value!r}")
        self.dims = dims
        self.spatial_size = spatial_size
        # "auto" values are planned from the records (filled by the subclass) on first use
        self._auto = {k for k, v in (("spacing", spacing), ("patch_size", patch_size)) if v == "auto"}
        self._plan: dict[str, Any] | None = None
        self._given_plan = {k: v for k, v in (stats or {}).items() if k in self._auto}
        self.max_voxels, self.patch_voxels = int(max_voxels), int(patch_voxels)
        self._patch_size = None if patch_size == "auto" else patch_size
        self._spacing = None if spacing == "auto" else spacing
        self.patches_per_volume = patches_per_volume
        self.resize_mode = resize_mode
        self.intensity = intensity
        self.percentiles = tuple(percentiles)
        self.crop_foreground = crop_foreground
        self.pos_fraction = pos_fraction
        self.cache = cache
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.seed = seed
        self.nonfinite = nonfinite
        self.nonfinite_found: list[dict[str, Any]] = []
        self.records: list[dict[str, Any]] = []
        self.skipped: list[tuple[str, str]] = []
        self.cache_bytes = cache_bytes
        self._memory = VolumeCache(0 if cache == "none" else parse_bytes(cache_bytes))
        self._pipelines: dict[str, Any] = {}
        self.epoch = 0
        self._sampler_cache: dict[bool, Any] = {}
        # validate sizes/modes now rather than at the first item
        preprocessing(mask_key="mask", dims=dims, spacing=self._spacing, spatial_size=spatial_size,
                      resize_mode=resize_mode, intensity=resolve_intensity(intensity, "CT"))
        if self._patch_size is not None:
            patch_sampler(patch_size=self._patch_size, dims=dims)

    # ------------------------------------------------------------------ planned grid and patch
    #: The host passes the training data's ``stats`` (the plan) to validation/test loaders.
    accepts_stats = True

    @property
    def spacing(self) -> Any:
        """Voxel size the volumes are resampled to (the plan's when ``"auto"``)."""
        if "spacing" in self._auto:
            return self.plan()["spacing"]
        return self._spacing

    @property
    def patch_size(self) -> Any:
        """Patch size of the training items (the plan's when ``"auto"``), or None."""
        if "patch_size" in self._auto:
            return self.plan()["patch_size"]
        return self._patch_size

    @property
    def stats(self) -> dict[str, Any] | None:
        """The plan of the values given as ``"auto"`` (None without any): what validation,
        test and prediction data of the same run use."""
        return dict(self.plan()) if self._auto else None

    def plan(self) -> dict[str, Any]:
        """``{"spacing", "patch_size", "cases"}`` planned from up to 50 readable records
        (evenly spread) by :mod:`~ssl_domains_medical.fingerprint`, or taken from ``stats``;
        computed once.

        Raises:
            DataError: No record could be read to plan from.
        """
        if self._plan is not None:
            return self._plan
        plan: dict[str, Any] = {"spacing": self._spacing, "patch_size": self._patch_size,
                                **self._given_plan}
        todo = [k for k in self._auto if k not in self._given_plan]
        if todo:
            spacings: list[list[float]] = []
            shapes: list[list[int]] = []
            n = len(self.records)
            for r in sorted({int(v) for v in np.linspace(0, n - 1, min(50, n))} if n else ()):
                try:
                    spacing, shape = self.record_geometry(self.records[r])
                except DataError:
                    continue  # reported when the item itself is read
                spacings.append(spacing[: self.dims])
                shapes.append(shape[: self.dims])
            if not spacings:
                raise DataError(type(self).__name__, "spacing/patch_size 'auto': no readable "
                                "volume to plan the grid from")
            if "spacing" in todo:
                plan["spacing"] = fingerprint.plan_spacing(spacings, shapes, max_voxels=self.max_voxels)
            grid = plan["spacing"] or np.median(np.asarray(spacings, dtype=float), axis=0)
            if "patch_size" in todo:
                plan["patch_size"] = fingerprint.plan_patch(
                    fingerprint.median_shape(spacings, shapes, grid), patch_voxels=self.patch_voxels)
            plan["cases"] = len(spacings)
            log.info("planned from the data: %s", fingerprint.describe(plan))
        self._plan = plan
        return plan

    # ------------------------------------------------------------------ subclass interface
    def load_record(self, record: dict[str, Any]) -> dict[str, MetaTensor]:
        """``{"image": MetaTensor [C, *spatial]}`` (plus ``"mask"``) of one record."""
        raise NotImplementedError

    def record_geometry(self, record: dict[str, Any]) -> tuple[list[float], list[int]]:
        """Voxel size (mm) and shape of one record's image as :meth:`load_record` gives it (RAS
        axes), for planning. Here by loading it; a subclass reads headers where it can."""
        image = self.load_record(record)["image"]
        return [float(v) for v in image.pixdim], [int(v) for v in image.shape[1:]]

    # ------------------------------------------------------------------ dataset surface
    # (set_epoch, labels, groups and __len__ come from RecordItems)
    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        r_index, patch = divmod(index, self.patches_per_volume)
        record = self.records[r_index]
        data = self.prepared(r_index)
        if self.patch_size is not None:
            data = self._sample(index, data, record)
        item: dict[str, Any] = {"image": data["image"].as_tensor().float().contiguous()}
        if "mask" in data:
            item["mask"] = data["mask"].as_tensor().float().contiguous()
        if record.get("label") is not None:
            item["label"] = int(record["label"])
        pixdim = data["image"].pixdim
        meta = {
            "id": str(record["id"]),
            "modality": str(record.get("modality", "")),
            "spacing": [round(float(v), 4) for v in pixdim],
            "patch": patch,
            # voxel -> RAS mm of this (preprocessed) item: probability maps are saved with it
            "affine": [[float(v) for v in row] for row in data["image"].affine.tolist()],
        }
        meta.update({k: v for k, v in record.get("meta", {}).items()})
        item["meta"] = meta
        return item

    @property
    def inputs_by_id(self) -> dict[str, str]:
        """Opaque id -> the input as given (file, case folder, DICOM series folder), for
        ``--mapping`` only: never written into a run folder or shareable output."""
        return {str(r["id"]): str(r.get("input") or r.get("source", "")) for r in self.records}

    # ------------------------------------------------------------------ internals
    def _pipeline(self, modality: str, has_mask: bool) -> Any:
        intensity = resolve_intensity(self.intensity, modality)
        key = json.dumps([str(intensity), has_mask])
        if key not in self._pipelines:
            self._pipelines[key] = preprocessing(
                mask_key="mask" if has_mask else None, dims=self.dims, spacing=self.spacing,
                intensity=intensity, percentiles=self.percentiles,  # type: ignore[arg-type]
                crop_foreground=self.crop_foreground, spatial_size=self.spatial_size,
                resize_mode=self.resize_mode)
        return self._pipelines[key]

    def _disk_key(self, record: dict[str, Any]) -> str:
        spec = json.dumps([type(self).__name__, str(record.get("source", record["id"])),
                           self.dims, self.spatial_size, self.resize_mode, self.spacing,
                           str(self.intensity), self.percentiles, self.crop_foreground,
                           bool(record.get("has_mask")), str(record.get("modality")),
                           # volumes cached under "mask" must not pass a "refuse" run unchecked
                           *([self.nonfinite] if self.nonfinite != "mask" else [])],
                          default=str)
        return hashlib.sha256(spec.encode()).hexdigest()[:24]

    def preprocess(self, r_index: int) -> dict[str, Any]:
        """Record ``r_index`` loaded and deterministically preprocessed (no cache):
        ``{"image": MetaTensor, "mask"?: MetaTensor}``.

        Raises:
            DataError: The record cannot be read or preprocessed.
        """
        record = self.records[r_index]
        loaded = self.load_record(record)
        loaded["image"] = self._finite(loaded["image"], record)
        pipe = self._pipeline(str(record.get("modality", "")), "mask" in loaded)
        try:
            data = pipe(loaded)
        except Exception as exc:  # noqa: BLE001 - MONAI wraps errors in RuntimeError
            raise DataError(str(record.get("source", record["id"])),
                            f"preprocessing failed: {str(exc).splitlines()[-1][:200]}") from None
        return {k: data[k] for k in ("image", "mask") if k in data}

    def _finite(self, image: MetaTensor, record: dict[str, Any]) -> MetaTensor:
        """``image`` with its non-finite voxels handled per ``nonfinite``.

        Raises:
            DataError: No voxel is finite (the item is skipped as unreadable).
            RefusedInput: Some voxels are not finite and ``nonfinite="refuse"``.
        """
        arr = image.as_tensor().numpy()
        bad = nonfinite_values(arr, nan=True)
        if not bad.any():
            return image
        source = str(record.get("source", record["id"]))
        count, first = int(bad.sum()), tuple(int(i) for i in np.argwhere(bad)[0][1:])
        if count == bad.size:
            raise DataError(source, f"unreadable: all {count} voxels are non-finite (NaN, inf or -inf)")
        where = f"voxel {first}"
        if self.nonfinite == "refuse":
            raise RefusedInput(source, nonfinite_refusal(count, "voxel", where, nan=True,
                                                         masked="give them the volume's lowest finite value"))
        self.nonfinite_found.append({"id": str(record["id"]), "count": count, "of": int(bad.size),
                                     "first_voxel": list(first)})
        log.warning("volume %s: %s of %d; given the volume's lowest finite value (nonfinite='refuse' "
                    "stops instead)", record["id"], nonfinite_reason(count, "voxel", where, nan=True), bad.size)
        fixed = np.where(bad, arr[~bad].min(), arr).astype(arr.dtype, copy=False)
        return MetaTensor(torch.from_numpy(fixed), affine=image.affine)

    def prepared(self, r_index: int) -> dict[str, Any]:
        """Deterministically preprocessed tensors of record ``r_index`` (cached)."""
        hit = self._memory.get(r_index)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        record = self.records[r_index]
        data: dict[str, Any] | None = None
        path = None
        if self.cache == "disk":
            assert self.cache_dir is not None
            path = self.cache_dir / f"{self._disk_key(record)}.pt"
            if path.is_file():
                raw = torch.load(path, weights_only=True)
                data = {k: MetaTensor(v["array"], affine=v["affine"]) for k, v in raw.items()}
        if data is None:
            data = self.preprocess(r_index)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                torch.save({k: {"array": v.as_tensor(), "affine": v.affine} for k, v in data.items()}, tmp)
                tmp.replace(path)
        self._memory.put(r_index, data)
        return data

    def _sample(self, index: int, data: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
        guided = self.pos_fraction is not None and "mask" in data
        if guided not in self._sampler_cache:
            pos = float(self.pos_fraction) if guided and self.pos_fraction is not None else 1.0
            self._sampler_cache[guided] = patch_sampler(
                keys=[k for k in ("image", "mask") if k in data], patch_size=self.patch_size,  # type: ignore[arg-type]
                dims=self.dims, label_key="mask" if guided else None,
                pos=float(pos), neg=1.0 - float(pos) if guided else 1.0)
        sampler = self._sampler_cache[guided]
        # the random state is a pure function of (seed, epoch, item): nothing to checkpoint,
        # and the same in a worker process as in the main one
        state = np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1)[0]
        sampler.set_random_state(seed=int(state))
        with warnings.catch_warnings():
            # a mask without foreground: RandCropByPosNegLabeld falls back to background patches
            warnings.filterwarnings("ignore", message="Num foregrounds 0")
            out = sampler({k: v for k, v in data.items()})
        return out[0] if isinstance(out, list) else out

    # ------------------------------------------------------------------ dense tasks
    def whole_cases(self) -> VolumeDataset:
        """The same cases, one item per case: the whole preprocessed volume (and mask), for
        evaluating a dense task with a sliding window. Shares records and cache."""
        import copy

        if self._auto:
            self.plan()  # planned once, shared with the view
        view = copy.copy(self)
        view._patch_size = None  # whole cases: no patches, planned or given
        view._auto = self._auto - {"patch_size"}
        view.patches_per_volume = 1
        view._sampler_cache = {}
        return view

    def write_prediction(self, index: int, prob: np.ndarray, folder: str | Path, name: str,
                         threshold: float = 0.5) -> dict[str, str]:
        """Write a lesion-probability map of case ``index`` (on the preprocessed grid of
        :meth:`whole_cases`) as ``<name>_prob.nii.gz`` (float32) and ``<name>_label.nii.gz``
        (uint8, ``prob >= threshold``), resampled back onto the case's own voxel grid (the
        input as loaded: RAS-reoriented, same voxels and world geometry).

        Returns:
            ``{"prob": path, "label": path}`` (file names relative to ``folder``).
        """
        import nibabel as nib
        from monai.transforms import SpatialResample

        r_index = index // self.patches_per_volume
        record = self.records[r_index]
        grid = self.prepared(r_index)["image"]
        original = self.load_record(record)["image"]
        moved = SpatialResample(mode="bilinear", padding_mode="zeros")(
            MetaTensor(torch.as_tensor(np.asarray(prob, dtype=np.float32))[None], affine=grid.affine),
            dst_affine=original.affine, spatial_size=tuple(original.shape[1:]))
        out = np.clip(torch.as_tensor(moved).numpy()[0], 0.0, 1.0).astype(np.float32)
        affine = np.asarray(original.affine, dtype=np.float64)
        if affine.shape == (3, 3):  # 2-D: NIfTI wants a 4x4 affine
            affine = np.array([[affine[0, 0], affine[0, 1], 0, affine[0, 2]],
                               [affine[1, 0], affine[1, 1], 0, affine[1, 2]],
                               [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float64)
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = {}
        for kind, arr in (("prob", out), ("label", (out >= threshold).astype(np.uint8))):
            img = nib.Nifti1Image(arr, affine)
            img.set_qform(affine, code=1)
            img.set_sform(affine, code=1)
            path = folder / f"{name}_{kind}.nii.gz"
            tmp = path.with_name(path.name + ".tmp.nii.gz")
            nib.save(img, str(tmp))
            tmp.replace(path)
            written[kind] = path.name
        return written
