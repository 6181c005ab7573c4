"""The ``case_folders`` loader: one folder per case holding its images, mask and label.

Layout::

    root/
      labels.csv              optional: columns case_id,label (case_id = folder name)
      case001/
        image.nii.gz          one image, or several image_<name>.nii.gz (channels, sorted by
                              name), or the files named by `modalities` (t1.nii.gz, t2.nii.gz)
        mask.nii.gz           optional lesion mask (non-zero = lesion)
        label.txt             optional: one integer (used when labels.csv has no row for it)
      case002/
        <DICOM files>         no NIfTI image: the folder (any depth) must hold one DICOM series
        mask.nii.gz           (a mask must then be on the RAS grid of the converted series)

Folders starting with ``.`` or ``_`` are ignored. Either every case has a label or none has.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ssl_domains.contracts import Example
from ssl_domains.errors import DataError
from ssl_domains.identifiers import opaque_id
from ssl_domains.registry import component
from ssl_domains_medical.loaders.cases import NIFTI_SUFFIXES, CaseDataset

__all__ = ["CaseFoldersDataset"]


def _nifti(folder: Path, stem: str) -> Path | None:
    for suffix in NIFTI_SUFFIXES[::-1]:
        p = folder / f"{stem}{suffix}"
        if p.is_file():
            return p
    return None


@component(
    "case_folders",
    description="One folder per case: image(s) (NIfTI or DICOM), optional mask and label",
    modalities=("image",),
    dims=(2, 3),
    examples=[Example({"root": "cases/", "spatial_size": 32})],
    example_data="ssl_domains_medical.loaders.examples:write_case_folders_example",
)
class CaseFoldersDataset(CaseDataset):
    """Cases laid out one per folder (see the module docstring), as volume items.

    ``meta["id"]`` and ``groups`` hold the opaque id (:func:`~ssl_domains.identifiers.opaque_id`,
    keyed per site) of the folder name: folder names often contain patient ids.

    Args:
        root: Folder holding one sub-folder per case.
        modalities: Image file stems to use as channels, in order (``["t1", "t2"]`` reads
            ``t1.nii.gz`` and ``t2.nii.gz``), or None for ``image*.nii[.gz]``.
        mask_name: Mask file stem (``mask`` -> ``mask.nii.gz``).
        labels_csv: Name of the label table in ``root``.
        modality: Written to ``meta``; ``"CT"`` makes ``intensity="auto"`` use the HU window.
        allow_4d: Time points of 4-D images become channels.
        **kwargs: Item pipeline options of :class:`~ssl_domains_medical.loaders.volumes.VolumeDataset`.

    Raises:
        DataError: Missing root, unreadable/malformed labels, labels on only some cases, or
            no usable case. Case folders without images are skipped (``skipped``).
    """

    def __init__(
        self,
        root: str,
        modalities: list[str] | None = None,
        mask_name: str = "mask",
        labels_csv: str = "labels.csv",
        modality: str = "unknown",
        allow_4d: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(allow_4d=allow_4d, **kwargs)
        self.root = Path(root)
        self.modalities = list(modalities) if modalities else None
        self.mask_name = mask_name
        self.labels_csv = labels_csv
        self.modality = modality
        if not self.root.is_dir():
            raise DataError(self.root, "case folder root not found")
        table = self._label_table()
        cases = sorted(p for p in self.root.iterdir() if p.is_dir() and p.name[0] not in "._")
        for k, case in enumerate(cases, start=1):
            images, reason = self._images(case)
            if reason:  # logged once, by whoever builds the dataset (never here as well)
                self.skipped.append((str(case), f"case folder {k} of {len(cases)}: {reason}"))
                continue
            mask = _nifti(case, mask_name)
            label = table.get(case.name, self._label_txt(case))
            cid = opaque_id("case", case.name)
            self.records.append({"id": cid, "images": images, "mask": str(mask) if mask else None,
                                 "label": label, "modality": modality, "source": str(case),
                                 "meta": {"case_id": cid}})
        labelled = [r["label"] is not None for r in self.records]
        if any(labelled) and not all(labelled):
            missing = [Path(r["source"]).name for r in self.records if r["label"] is None]
            raise DataError(self.root, f"labels for only some cases; no label for {missing[:5]} "
                            f"(add them to {labels_csv} or a label.txt)")
        if not self.records:
            raise DataError(self.root, "no case folder with images found (see the layout in "
                            "`ssl-domains describe loader case_folders`)")

    def _label_table(self) -> dict[str, int]:
        path = self.root / self.labels_csv
        if not path.is_file():
            return {}
        out: dict[str, int] = {}
        with open(path, newline="", encoding="utf-8-sig") as fh:
            for n, row in enumerate(csv.DictReader(fh), start=2):
                case, raw = (row.get("case_id") or "").strip(), (row.get("label") or "").strip()
                if not case:
                    raise DataError(path, f"row {n}: empty case_id (columns must be case_id,label)")
                try:
                    out[case] = int(raw)
                except ValueError:
                    raise DataError(path, f"row {n}: label {raw!r} is not an integer") from None
        return out

    @staticmethod
    def _label_txt(case: Path) -> int | None:
        path = case / "label.txt"
        if not path.is_file():
            return None
        raw = path.read_text().strip()
        try:
            return int(raw)
        except ValueError:
            raise DataError(path, f"label {raw!r} is not an integer") from None

    def _images(self, case: Path) -> tuple[list[str], str]:
        if self.modalities:
            found = [_nifti(case, m) for m in self.modalities]
            missing = [m for m, f in zip(self.modalities, found) if f is None]
            if missing:
                return [], f"missing image file(s) {missing} (.nii/.nii.gz)"
            return [str(f) for f in found], ""
        images = sorted(str(p) for p in case.iterdir() if p.is_file() and p.name.startswith("image")
                        and p.name.endswith(NIFTI_SUFFIXES))
        if images:
            return images, ""
        has_files = any(p.is_file() and not p.name.endswith(NIFTI_SUFFIXES) and p.name != "label.txt"
                        for p in case.rglob("*"))
        if has_files:
            return [str(case)], ""  # a DICOM series; checked when loaded
        return [], "no image*.nii[.gz] and no DICOM files"
