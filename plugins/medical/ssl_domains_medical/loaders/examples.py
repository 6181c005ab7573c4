"""Files the loaders' ``examples`` name, written for the host's conformance kit
(``@component(..., example_data="module:function")``): small, synthetic, deterministic."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["write_case_folders_example"]


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
