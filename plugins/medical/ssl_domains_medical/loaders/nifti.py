"""The ``nifti`` loader: NIfTI volumes (.nii/.nii.gz) from a folder, a glob or a file."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import nibabel as nib

from ssl_domains.contracts import Example
from ssl_domains.data.skipping import scrub
from ssl_domains.errors import DataError
from ssl_domains.identifiers import opaque_id
from ssl_domains.registry import component
from ssl_domains_medical.loaders.cases import NIFTI_SUFFIXES, CaseDataset
from ssl_domains_medical.loaders.volumes import two_d_refusal

__all__ = ["NiftiDataset"]


@component(
    "nifti",
    description="NIfTI volumes (.nii/.nii.gz, NIfTI-1/2, any orientation) as unlabeled items",
    modalities=("image",),
    dims=(2, 3),
    examples=[Example({"path": "sample_data/medical/unlabeled", "spatial_size": 32})],
)
class NiftiDataset(CaseDataset):
    """NIfTI files as unlabeled items ``{"image": [C, *spatial] float32 in RAS, "meta"}``.

    The affine is honoured: voxels are reoriented to RAS (no resampling unless ``spacing``);
    files of any endianness and NIfTI-2 load through nibabel. ``meta["id"]`` is the opaque id
    (:func:`~ssl_domains.identifiers.opaque_id`) of the file's path below ``path`` (file names
    often hold patient names or MRNs: they never reach items, logs or prediction files);
    ``groups`` are those ids. Files that cannot be used are listed in ``skipped`` with their
    position ("file 3 of 12", in sorted order) and the reason.

    A 2-D image (or a single slice) given with ``dims=3`` is refused, naming the file: padding
    it into 3-D patches would train on something that is not a volume. Pass ``dims=2``, or
    ``allow_2d=True`` to use it as a one-slice volume.

    Args:
        path: A folder (searched recursively), a glob (``"scans/*.nii.gz"``) or one file.
        exclude: Glob on file names to leave out (masks by default).
        modality: Modality written to ``meta`` and used by ``intensity="auto"`` (``"CT"``
            -> soft-tissue window, else percentiles).
        allow_4d: Time points of 4-D files become channels; otherwise 4-D files are skipped.
        allow_2d: With ``dims=3``, use 2-D images as one-slice volumes instead of refusing them.
        **kwargs: Item pipeline options of :class:`~ssl_domains_medical.loaders.volumes.VolumeDataset`
            (``dims``, ``spatial_size``, ``patch_size``, ``patches_per_volume``, ``resize_mode``,
            ``spacing``, ``intensity``, ``percentiles``, ``crop_foreground``, ``cache``,
            ``cache_dir``, ``cache_bytes``, ``seed``).

    Raises:
        DataError: Nothing matches ``path``; a 2-D image with ``dims=3`` (without ``allow_2d``).
    """

    def __init__(
        self,
        path: str,
        exclude: str | None = "*_mask.nii*",
        modality: str = "unknown",
        allow_4d: bool = False,
        allow_2d: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(allow_4d=allow_4d, allow_2d=allow_2d, **kwargs)
        self.path = path
        self.exclude = exclude
        self.modality = modality
        root = Path(path)
        files = self._files(root)
        for k, f in enumerate(files, start=1):
            reason = self._check(f)
            if reason:  # logged once, by whoever builds the dataset (never here as well)
                self.skipped.append((str(f), f"file {k} of {len(files)}: {reason}"))
                continue
            rel = f.relative_to(root).as_posix() if root.is_dir() else f.name
            self.records.append({"id": opaque_id("nifti", rel), "images": [str(f)], "mask": None,
                                 "label": None, "modality": modality, "source": str(f)})

    def _files(self, p: Path) -> list[Path]:
        if p.is_file():
            return [p]
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith(NIFTI_SUFFIXES))
        else:
            found = sorted(f for f in p.parent.glob(p.name) if f.is_file()) if p.parent.is_dir() else []
        if self.exclude:
            found = [f for f in found if not fnmatch.fnmatch(f.name, self.exclude)]
        if not found:
            raise DataError(p, "no NIfTI files (.nii/.nii.gz) found")
        return found

    def _check(self, f: Path) -> str:
        try:
            img: Any = nib.load(str(f))
            shape = img.shape
        except Exception as exc:  # noqa: BLE001 - nibabel raises many types
            return f"unreadable NIfTI: {type(exc).__name__}: {scrub(str(exc), f)[:160]}"
        spatial = [s for s in shape[:3]]
        if len(shape) > 3 and any(s > 1 for s in shape[3:]) and not self.allow_4d:
            return f"4-D image {tuple(shape)}; pass allow_4d=True to use time points as channels"
        if self.dims == 2 and len(spatial) == 3 and spatial[2] > 1:
            return f"3-D image {tuple(shape)} with dims=2"
        if self.dims == 3 and not self.allow_2d and (len(spatial) < 3 or spatial[2] == 1):
            raise DataError(f, two_d_refusal(shape))
        return ""
