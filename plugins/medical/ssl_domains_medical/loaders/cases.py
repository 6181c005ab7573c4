"""Cases made of image files (NIfTI files or DICOM folders), an optional mask and label.

The base of the ``nifti``, ``image_manifest`` and ``case_folders`` loaders: a record lists the
image paths of one case (several paths become channels), an optional mask path and an optional
integer label; :class:`CaseDataset` loads them as RAS MetaTensors for :class:`VolumeDataset`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
from monai.data import MetaTensor

from ssl_domains.errors import DataError
from ssl_domains_medical.loaders.dicom_series import scan_dicom
from ssl_domains_medical.loaders.volumes import (
    VolumeDataset,
    nifti_geometry,
    nifti_to_meta_tensor,
    ras_geometry,
    to_meta_tensor,
    two_d_refusal,
)

__all__ = ["CaseDataset", "load_image", "NIFTI_SUFFIXES"]

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def load_image(path: str | Path, dims: int, allow_4d: bool = False, allow_2d: bool = False) -> MetaTensor:
    """One image as a channel-first RAS MetaTensor: a NIfTI file or a folder with one DICOM series.

    A 2-D image or a one-slice DICOM series with ``dims=3`` is refused unless ``allow_2d``
    (then it is a one-slice volume), as every volume loader does.

    Raises:
        DataError: Missing, unreadable, unsupported, a folder without exactly one series, or
            2-D with ``dims=3`` without ``allow_2d``.
    """
    path = Path(path)
    if path.is_dir():
        scan = scan_dicom(path)
        if len(scan.series) != 1:
            raise DataError(path, f"expected one DICOM series in the folder, found {len(scan.series)}")
        series = next(iter(scan.series.values()))
        if dims == 3 and series.n_slices == 1 and not allow_2d:
            raise DataError(path, two_d_refusal(series.shape))
        array, affine = series.load(allow_4d=allow_4d)
        img = nib.as_closest_canonical(nib.Nifti1Image(array, affine))
        return to_meta_tensor(np.asarray(img.dataobj), img.affine, dims, path)
    if not path.exists():
        raise DataError(path, "file not found")
    if not str(path).endswith(NIFTI_SUFFIXES):
        raise DataError(path, "unsupported image file; use .nii/.nii.gz or a DICOM folder")
    return nifti_to_meta_tensor(path, dims, allow_4d, allow_2d)


class CaseDataset(VolumeDataset):
    """Volume dataset whose records are ``{"id", "images": [paths], "mask": path|None,
    "label": int|None, "modality"}``.

    Args:
        allow_4d: Use time points of 4-D images as channels instead of refusing them.
        allow_2d: With ``dims=3``, use 2-D images (NIfTI, or a one-slice DICOM series) as
            one-slice volumes instead of refusing them.
        **kwargs: Item pipeline options of :class:`VolumeDataset`.
    """

    def __init__(self, allow_4d: bool = False, allow_2d: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.allow_4d = allow_4d
        self.allow_2d = allow_2d

    def record_geometry(self, record: dict[str, Any]) -> tuple[list[float], list[int]]:
        """From the first image's headers (a NIfTI header, or the DICOM headers of a
        one-series folder) where it is a plain 3-D volume: a hospital archive is planned
        without reading its voxels. Otherwise by loading it (which reports what is wrong)."""
        first = Path(record["images"][0])
        geometry = None
        if self.dims == 3 and first.is_dir():
            scan = scan_dicom(first)
            if len(scan.series) == 1:
                series = next(iter(scan.series.values()))
                if not series.is_4d and not series.refused and series.n_slices > 1:
                    geometry = ras_geometry(series.shape, series.affine)
        elif self.dims == 3 and str(first).endswith(NIFTI_SUFFIXES):
            geometry = nifti_geometry(first)
        return geometry if geometry is not None else super().record_geometry(record)

    def load_record(self, record: dict[str, Any]) -> dict[str, MetaTensor]:
        images = [load_image(p, self.dims, self.allow_4d, self.allow_2d) for p in record["images"]]
        shapes = {tuple(im.shape[1:]) for im in images}
        if len(shapes) > 1:
            raise DataError(record["images"][0], f"case {record['id']}: images of one case have "
                            f"different sizes {sorted(shapes)}; resample them to one grid first")
        image = images[0] if len(images) == 1 else MetaTensor(
            torch.cat([im.as_tensor() for im in images]), affine=images[0].affine)
        out = {"image": image}
        if record.get("mask"):
            mask = load_image(record["mask"], self.dims, allow_2d=self.allow_2d)
            if tuple(mask.shape[1:]) != tuple(image.shape[1:]):
                raise DataError(record["mask"], f"mask size {tuple(mask.shape[1:])} differs from "
                                f"image size {tuple(image.shape[1:])}")
            out["mask"] = MetaTensor((mask.as_tensor()[:1] > 0).float(), affine=image.affine)
        return out
