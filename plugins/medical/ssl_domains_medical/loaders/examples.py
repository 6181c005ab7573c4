"""Files the loaders' ``examples`` name, written for the host's conformance kit
(``@component(..., example_data="module:function")``): small, synthetic, deterministic."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["write_case_folders_example", "write_prepared_example"]


def write_case_folders_example(folder: Path) -> None:
    """``cases/``: four case folders with a 3-D CT-like ``image.nii.gz`` and a ``labels.csv``."""
    import nibabel as nib

    root = folder / "cases"
    rng = np.random.RandomState(0)
    rows = ["case_id,label"]
    for i in range(4):
        case = root / f"case{i:03d}"
        case.mkdir(parents=True)
        data = (rng.rand(24, 24, 20) * 600 - 200).astype(np.float32)
        nib.save(nib.Nifti1Image(data, np.diag([1.5, 1.5, 2.0, 1.0])), str(case / "image.nii.gz"))
        rows.append(f"case{i:03d},{i % 2}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")


def write_prepared_example(folder: Path) -> None:
    """``volumes/``: three CT-like NIfTI volumes; ``store/``: them prepared (``nifti`` source)."""
    import nibabel as nib

    from ssl_domains_medical.loaders.nifti import NiftiDataset
    from ssl_domains_medical.loaders.prepare import prepare_store
    from ssl_domains_medical.loaders.store import preprocessing_spec

    root = folder / "volumes"
    root.mkdir()
    rng = np.random.RandomState(0)
    for i in range(3):
        data = (rng.rand(20, 18, 16) * 600 - 200).astype(np.float32)
        nib.save(nib.Nifti1Image(data, np.diag([1.5, 1.5, 2.0, 1.0])), str(root / f"vol{i}.nii.gz"))
    args = {"path": "volumes", "modality": "CT"}
    ds = NiftiDataset(str(root), modality="CT")
    prepare_store(ds, folder / "store", preprocessing_spec("nifti", NiftiDataset, args))
