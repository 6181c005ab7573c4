"""Files the loaders' ``examples`` name, written for the host's conformance kit
(``@component(..., example_data="module:function")``): small, synthetic, deterministic."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["write_case_folders_example", "write_prepared_example"]


def write_case_folders_example(folder: Path) -> None:
    """``cases/``: four case folders with a 3-D CT-like ``image.nii.gz`` and a ``labels.csv``."""
    from ssl_domains_medical.loaders.synthetic import write_noise_nifti

    root = folder / "cases"
    rng = np.random.RandomState(0)
    rows = ["case_id,label"]
    for i in range(4):
        case = root / f"case{i:03d}"
        case.mkdir(parents=True)
        write_noise_nifti(case / "image.nii.gz", (24, 24, 20), rng, (1.5, 1.5, 2.0))
        rows.append(f"case{i:03d},{i % 2}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")


def write_prepared_example(folder: Path) -> None:
    """``volumes/``: three CT-like NIfTI volumes; ``store/``: them prepared (``nifti`` source)."""
    from ssl_domains_medical.loaders.nifti import NiftiDataset
    from ssl_domains_medical.loaders.prepare import prepare_store
    from ssl_domains_medical.loaders.store import preprocessing_spec
    from ssl_domains_medical.loaders.synthetic import write_noise_nifti

    root = folder / "volumes"
    root.mkdir()
    rng = np.random.RandomState(0)
    for i in range(3):
        write_noise_nifti(root / f"vol{i}.nii.gz", (20, 18, 16), rng, (1.5, 1.5, 2.0))
    args = {"path": "volumes", "modality": "CT"}
    ds = NiftiDataset(str(root), modality="CT")
    prepare_store(ds, folder / "store", preprocessing_spec("nifti", NiftiDataset, args))
