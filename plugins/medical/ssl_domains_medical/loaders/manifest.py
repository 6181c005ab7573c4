"""The ``image_manifest`` loader: a CSV with one row per case (images, mask, label, case id)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ssl_domains.contracts import Example
from ssl_domains.errors import DataError
from ssl_domains.identifiers import opaque_id
from ssl_domains.registry import component
from ssl_domains_medical.loaders.cases import CaseDataset

__all__ = ["ImageManifestDataset"]


@component(
    "image_manifest",
    description="CSV manifest: one row per case with image path(s), optional mask, label, case id",
    modalities=("image",),
    dims=(2, 3),
    examples=[Example({"path": "sample_data/medical/nifti/labels.csv", "spatial_size": 32,
                       "modality": "CT"})],
)
class ImageManifestDataset(CaseDataset):
    """Cases listed in a CSV, as items ``{"image": [C, *spatial], "mask"?, "label"?, "meta"}``.

    Columns (header row required; paths relative to the CSV's folder, or absolute):

    - image column(s): ``image`` by default, or every column given in ``image_columns``
      (e.g. ``["t1", "t2", "flair"]``: several modalities become channels, in that order).
      A path is a NIfTI file or a folder holding one DICOM series.
    - ``mask`` (optional): lesion mask on the image grid; non-zero = lesion.
    - ``label`` (optional): integer class; the whole column empty or absent = unlabeled.
    - ``case_id`` (optional): case identifier, turned into an opaque id (keyed HMAC,
      :func:`~ssl_domains.identifiers.opaque_id`) in ``meta["id"]`` and ``groups`` so a case
      stays on one side of a split; the row number is used when absent.
    - ``group_column`` (optional, e.g. ``patient_id``): rows sharing a value (several nodules
      or lesions of one patient, each its own row and case) share one opaque group, so the
      patient stays on one side of a training/validation split.

    Args:
        path: The CSV file.
        image_columns: Image column names (channels), or None for ``["image"]``.
        mask_column: Mask column name (used when present in the header).
        label_column: Label column name (used when present and filled).
        case_column: Case id column name (used when present).
        group_column: Column of the group (patient) several cases share, or None: each case
            is its own group.
        modality: Written to ``meta``; ``"CT"`` makes ``intensity="auto"`` use the
            soft-tissue window.
        allow_4d: Time points of 4-D images become channels.
        **kwargs: Item pipeline options of :class:`~ssl_domains_medical.loaders.volumes.VolumeDataset`
            (``dims``, ``spatial_size``, ``patch_size``, ``patches_per_volume``, ``pos_fraction``,
            ``resize_mode``, ``spacing``, ``intensity``, ``crop_foreground``, ``cache``, ``seed``).

    Raises:
        DataError: Missing CSV or columns, a bad row (empty cell, missing file, non-integer
            label, repeated case id, empty group): the message names the file and the row.
    """

    def __init__(
        self,
        path: str,
        image_columns: list[str] | None = None,
        mask_column: str = "mask",
        label_column: str = "label",
        case_column: str = "case_id",
        group_column: str | None = None,
        modality: str = "unknown",
        allow_4d: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(allow_4d=allow_4d, **kwargs)
        self.path = Path(path)
        self.image_columns = list(image_columns) if image_columns else ["image"]
        self.mask_column = mask_column
        self.label_column = label_column
        self.case_column = case_column
        self.group_column = group_column
        self.modality = modality
        rows = self._read_rows()
        header = set(rows[0].keys()) if rows else set()
        missing = [c for c in [*self.image_columns, *([group_column] if group_column else [])]
                   if c not in header]
        if missing:
            raise DataError(self.path, f"no column(s) {missing} (header: {sorted(header)}); "
                            "set image_columns=[...] (and group_column)")
        labelled = label_column in header and any((r.get(label_column) or "").strip() for r in rows)
        seen: dict[str, int] = {}
        for n, row in enumerate(rows, start=2):  # row 1 is the header
            self.records.append(self._record(n, row, header, labelled, seen))

    def _read_rows(self) -> list[dict[str, str]]:
        if not self.path.is_file():
            raise DataError(self.path, "manifest not found")
        try:
            with open(self.path, newline="", encoding="utf-8-sig") as fh:
                rows = list(csv.DictReader(fh))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise DataError(self.path, f"unreadable CSV: {exc}") from None
        if not rows:
            raise DataError(self.path, "manifest has no rows")
        return rows

    def _resolve(self, n: int, column: str, value: str) -> str:
        p = Path(value.strip())
        if not p.is_absolute():
            p = self.path.parent / p
        if not p.exists():
            raise DataError(p, f"file not found (manifest {self.path.name} row {n}, column {column!r})")
        return str(p)

    def _record(self, n: int, row: dict[str, str], header: set[str], labelled: bool,
                seen: dict[str, int]) -> dict[str, Any]:
        images = []
        for col in self.image_columns:
            value = (row.get(col) or "").strip()
            if not value:
                raise DataError(self.path, f"row {n}: empty image column {col!r}")
            images.append(self._resolve(n, col, value))
        mask = None
        if self.mask_column in header and (row.get(self.mask_column) or "").strip():
            mask = self._resolve(n, self.mask_column, row[self.mask_column])
        label = None
        if labelled:
            raw = (row.get(self.label_column) or "").strip()
            try:
                label = int(float(raw)) if raw and float(raw).is_integer() else int(raw)
            except ValueError:
                raise DataError(self.path, f"row {n}: label {raw!r} is not an integer "
                                "(leave the whole label column empty for unlabeled data)") from None
        raw_case = (row.get(self.case_column) or "").strip() if self.case_column in header else ""
        case = raw_case or f"row{n}"
        if case in seen:
            raise DataError(self.path, f"row {n}: case id repeats row {seen[case]}; one row per case")
        seen[case] = n
        cid = opaque_id("case", case)
        record = {"id": cid, "images": images, "mask": mask, "label": label,
                  "modality": self.modality, "source": "|".join(images),
                  "meta": {"case_id": cid, "row": n}}
        if self.group_column:
            group = (row.get(self.group_column) or "").strip()
            if not group:
                raise DataError(self.path, f"row {n}: empty group column {self.group_column!r}")
            record["group"] = opaque_id("group", group)
        return record
