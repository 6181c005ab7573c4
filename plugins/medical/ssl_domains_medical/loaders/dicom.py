"""The ``dicom`` loader: every series under a folder tree as a (pre-training) volume dataset."""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
from monai.data import MetaTensor
from monai.data.utils import affine_to_spacing

from ssl_domains.contracts import Example
from ssl_domains.errors import ConfigError, DataError
from ssl_domains.identifiers import opaque_id
from ssl_domains.registry import component
from ssl_domains_medical.loaders.dicom_series import COLOUR_MODES, DicomSeries, scan_dicom
from ssl_domains_medical.loaders.volumes import VolumeDataset, to_meta_tensor, two_d_refusal

__all__ = ["DicomDataset"]

log = logging.getLogger(__name__)


@component(
    "dicom",
    description="DICOM series under a folder tree (any depth), as unlabeled volumes or patches",
    modalities=("image",),
    dims=(2, 3),
    examples=[Example({"root": "sample_data/medical/dicom", "patch_size": 32,
                       "patches_per_volume": 4})],
)
class DicomDataset(VolumeDataset):
    """Stacks found under ``root`` (split as dcm2niix splits series, slices ordered along the
    normal, HU for CT), as items ``{"image": [C, *spatial] float32 in RAS, "meta": {...}}``.

    ``C`` is 1, the number of time points of a 4-D stack (``allow_4d=True``), or 3 for colour
    images with ``colour="rgb"``. Colour images (ultrasound, endoscopy, secondary captures)
    default to one luminance channel (BT.601), like the grayscale MedMNIST benchmarks. With
    ``dims=2``, a stack of images without position (ultrasound stills) gives one item per image.
    Items carry no label (``labels is None``); ``groups`` holds the opaque series id, shared by
    the stacks (echoes, magnitude/phase, ...) of one series. ``meta`` has ``id``/``series_id``
    (opaque id of the stack), ``modality``, ``spacing`` (after preprocessing), ``slices``,
    ``problems`` (one string, "" when none) and ``patch``. Unreadable files and refused stacks
    are in ``skipped`` with the reason (the host logs them by opaque id); third-party warnings
    are logged once per file, by opaque id.

    A one-slice series given with ``dims=3`` is refused, naming its first file, as the NIfTI
    loader refuses a 2-D image: padding it into 3-D patches would train on something that is
    not a volume. Pass ``dims=2``, ``allow_2d=True`` to use it as a one-slice volume, or
    ``min_slices=2`` to leave single-image series out.

    Args:
        root: Folder tree to scan (or a single file).
        allow_4d: Keep 4-D stacks (time points as channels); otherwise they are skipped.
        allow_2d: With ``dims=3``, use one-slice series as one-slice volumes instead of
            refusing them.
        min_slices: Skip stacks with fewer slices (e.g. 1 to keep single images, 8 to drop
            localizers).
        modalities: Keep only these DICOM modalities (e.g. ``["CT"]``), or None for all.
        skip_problems: Skip stacks with any detected problem instead of using them.
        colour: Colour images as ``"luminance"`` (default) or ``"rgb"`` (3 channels).
        duplicates: Images repeating a position without making whole time points:
            ``"refuse"`` the stack (default) or keep the ``"first"``.
        gantry_tilt: Gantry-tilted CT: ``"refuse"`` (default) or keep the ``"shear"``-ed affine.
        **kwargs: Item pipeline options of :class:`VolumeDataset`: ``dims``, ``spatial_size``,
            ``patch_size``, ``patches_per_volume``, ``resize_mode``, ``spacing``,
            ``intensity`` (default ``"auto"``: CT soft-tissue window, else percentiles),
            ``percentiles``, ``crop_foreground``, ``cache``, ``cache_dir``, ``cache_bytes``, ``seed``.

    Raises:
        DataError: ``root`` does not exist; a one-slice series with ``dims=3`` (without
            ``allow_2d``).
        ConfigError: Unknown ``colour``, ``duplicates`` or ``gantry_tilt``.
    """

    def __init__(
        self,
        root: str,
        allow_4d: bool = False,
        allow_2d: bool = False,
        min_slices: int = 1,
        modalities: list[str] | None = None,
        skip_problems: bool = False,
        colour: str = "luminance",
        duplicates: str = "refuse",
        gantry_tilt: str = "refuse",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if colour not in COLOUR_MODES:
            raise ConfigError(f"unknown colour={colour!r}; use one of {', '.join(COLOUR_MODES)}")
        self.root = root
        self.allow_4d = allow_4d
        self.allow_2d = allow_2d
        self.min_slices = min_slices
        self.modalities = [m.upper() for m in modalities] if modalities else None
        self.skip_problems = skip_problems
        self.colour = colour
        scan = scan_dicom(root, duplicates=duplicates, gantry_tilt=gantry_tilt)
        self.scan = scan
        # the host logs each skipped input once, by opaque id; warnings likewise name no path
        self.skipped = [(f.path, f.reason) for f in scan.files if f.status in ("skipped", "dropped")]
        n_copies = sum(f.status == "duplicate" for f in scan.files)
        if n_copies:
            log.info("%d duplicate DICOM file(s) (same SOPInstanceUID, or same position and pixels) "
                     "counted once", n_copies)
        for f in scan.files:
            for message in f.messages:
                log.warning("DICOM input %s: %s", opaque_id(f.path), message)
        self.series: list[DicomSeries] = []
        self._by_id: dict[str, DicomSeries] = {}
        self._last: tuple[str, np.ndarray, np.ndarray] | None = None
        for s in scan.series.values():
            reason = self._refusal(s)
            if reason:
                self.skipped.append((f"series {s.series_id}", reason))
                continue
            if self.dims == 3 and s.n_slices == 1 and not allow_2d:
                raise DataError(s.files[0], two_d_refusal(s.shape)
                                + ", or min_slices=2 to leave single-image series out")
            self.series.append(s)
            self._by_id[s.series_id] = s
            stills = self.dims == 2 and s.n_slices > 1 and _unplaced(s)
            for k in range(s.n_slices if stills else 1):
                rid = f"{s.series_id}_{k + 1}" if stills else s.series_id
                self.records.append({
                    "id": rid, "series": s.series_id, "slice": k if stills else None, "group": s.group,
                    "modality": s.modality, "source": f"{rid}|{self.colour}",
                    "input": os.path.commonpath(s.files) + (f" (image {k + 1})" if stills else ""),
                    "meta": {"series_id": s.series_id, "slices": 1 if stills else s.n_slices,
                             "problems": "; ".join(s.problems)},
                })

    @property
    def groups(self) -> list[str]:
        """Opaque series id per item: the stacks and stills of one series stay together."""
        return [str(r["group"]) for r in self.records for _ in range(self.patches_per_volume)]

    def _refusal(self, s: DicomSeries) -> str:
        if s.refused:
            return s.refused
        if self.modalities and s.modality.upper() not in self.modalities:
            return f"modality {s.modality} not in {self.modalities}"
        if s.n_slices < self.min_slices:
            return f"{s.n_slices} slices < min_slices={self.min_slices}"
        if s.is_4d and not self.allow_4d:
            return (f"4-D series ({s.n_timepoints} time points x {s.n_slices} slices); pass "
                    "allow_4d=True to keep it")
        if self.dims == 2 and s.n_slices > 1 and not _unplaced(s):
            return f"{s.n_slices} slices; dims=2 takes single-image series only"
        if s.is_4d and s.samples == 3 and self.colour == "rgb":
            return "4-D colour series; use colour='luminance' to keep it"
        if self.skip_problems and s.problems:
            return "problems: " + "; ".join(s.problems)
        return ""

    def record_geometry(self, record: dict[str, Any]) -> tuple[list[float], list[int]]:
        """From the scanned headers (the series' native axes, as :meth:`load_record` gives
        them), without decoding pixels; a slice record or a 4-D series is loaded instead."""
        series = self._by_id[record["series"]]
        if record["slice"] is None and not series.is_4d and self.dims == 3:
            zooms = affine_to_spacing(np.asarray(series.affine, dtype=float), r=3)
            return [float(v) for v in zooms], [int(v) for v in series.shape[:3]]
        return super().record_geometry(record)

    def load_record(self, record: dict[str, Any]) -> dict[str, MetaTensor]:
        series = self._by_id[record["series"]]
        if self._last is not None and self._last[0] == series.series_id:
            array, affine = self._last[1], self._last[2]
        else:
            array, affine = series.load(allow_4d=self.allow_4d, colour=self.colour)
            for path, messages in series.decode_messages.items():
                for message in messages:
                    log.warning("DICOM input %s: %s", opaque_id(path), message)
            series.decode_messages.clear()
            self._last = (series.series_id, array, affine)
        if record["slice"] is not None:
            array = array[:, :, record["slice"]: record["slice"] + 1]
        if array.ndim == 4 and self.dims == 2 and series.samples != 3:
            raise DataError(f"series {series.series_id}", "4-D series cannot be 2-D items")
        return {"image": to_meta_tensor(array, affine, self.dims, f"series {series.series_id}")}


def _unplaced(s: DicomSeries) -> bool:
    """Images without position (stills, secondary captures): not slices of one volume."""
    return any(p.startswith("no ImagePositionPatient") for p in s.problems)
