"""The ``dicom`` loader: every series under a folder tree as a (pre-training) volume dataset."""

from __future__ import annotations

import logging
from typing import Any

from monai.data import MetaTensor

from ssl_domains.contracts import Example
from ssl_domains.errors import DataError
from ssl_domains.registry import component
from ssl_domains_medical.loaders.dicom_series import DicomSeries, scan_dicom
from ssl_domains_medical.loaders.volumes import VolumeDataset, to_meta_tensor

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
    """Series found under ``root`` (split by SeriesInstanceUID, slices ordered along the
    normal, HU for CT), as items ``{"image": [C, *spatial] float32 in RAS, "meta": {...}}``.

    ``C`` is 1, or the number of time points of a 4-D series (``allow_4d=True``). Items carry
    no label (``labels is None``); ``groups`` holds the hashed series id of each item.
    ``meta`` has ``id``/``series_id`` (sha256 of the SeriesInstanceUID, 12 hex digits),
    ``modality``, ``spacing`` (after preprocessing), ``slices``, ``problems`` (one string,
    "" when none) and ``patch``. Unreadable files are in ``skipped`` with the reason.

    Args:
        root: Folder tree to scan (or a single file).
        allow_4d: Keep 4-D series (time points as channels); otherwise they are skipped.
        min_slices: Skip series with fewer slices (e.g. 1 to keep single images, 8 to drop
            localizers).
        modalities: Keep only these DICOM modalities (e.g. ``["CT"]``), or None for all.
        skip_problems: Skip series with any detected problem instead of using them.
        **kwargs: Item pipeline options of :class:`VolumeDataset`: ``dims``, ``spatial_size``,
            ``patch_size``, ``patches_per_volume``, ``resize_mode``, ``spacing``,
            ``intensity`` (default ``"auto"``: CT soft-tissue window, else percentiles),
            ``percentiles``, ``crop_foreground``, ``cache``, ``cache_dir``, ``seed``.

    Raises:
        DataError: ``root`` does not exist.
    """

    def __init__(
        self,
        root: str,
        allow_4d: bool = False,
        min_slices: int = 1,
        modalities: list[str] | None = None,
        skip_problems: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.root = root
        self.allow_4d = allow_4d
        self.min_slices = min_slices
        self.modalities = [m.upper() for m in modalities] if modalities else None
        self.skip_problems = skip_problems
        scan = scan_dicom(root)
        self.scan = scan
        self.skipped = list(scan.skipped)
        self.series: list[DicomSeries] = []
        self._by_id: dict[str, DicomSeries] = {}
        for s in scan.series.values():
            reason = self._refusal(s)
            if reason:
                log.warning("skipped series %s: %s", s.series_id, reason)
                self.skipped.append((f"series {s.series_id}", reason))
                continue
            self.series.append(s)
            self._by_id[s.series_id] = s
            self.records.append({
                "id": s.series_id, "modality": s.modality, "source": s.series_id,
                "meta": {"series_id": s.series_id, "slices": s.n_slices,
                         "problems": "; ".join(s.problems)},
            })

    def _refusal(self, s: DicomSeries) -> str:
        if self.modalities and s.modality.upper() not in self.modalities:
            return f"modality {s.modality} not in {self.modalities}"
        if s.n_slices < self.min_slices:
            return f"{s.n_slices} slices < min_slices={self.min_slices}"
        if s.is_4d and not self.allow_4d:
            return (f"4-D series ({s.n_timepoints} time points x {s.n_slices} slices); pass "
                    "allow_4d=True to keep it")
        if self.dims == 2 and s.n_slices > 1:
            return f"{s.n_slices} slices; dims=2 takes single-image series only"
        if self.skip_problems and s.problems:
            return "problems: " + "; ".join(s.problems)
        return ""

    def load_record(self, record: dict[str, Any]) -> dict[str, MetaTensor]:
        series = self._by_id[record["id"]]
        array, affine = series.load(allow_4d=self.allow_4d)
        if array.ndim == 4 and self.dims == 2:
            raise DataError(f"series {series.series_id}", "4-D series cannot be 2-D items")
        return {"image": to_meta_tensor(array, affine, self.dims, f"series {series.series_id}")}
