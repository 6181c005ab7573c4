"""The ``case_folders`` loader: layout, labels from labels.csv / label.txt, DICOM cases."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from ssl_domains_medical.loaders.folders import CaseFoldersDataset
from ssl_domains_medical.loaders.synthetic import write_ct_series

from ssl_domains.errors import DataError


def _vol(path, value=1.0, shape=(6, 6, 6)):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.full(shape, value, np.float32), np.eye(4)), str(path))


def test_layout_with_labels_masks_channels_and_dicom(tmp_path, ct_volume):
    _vol(tmp_path / "c1" / "image.nii.gz")
    _vol(tmp_path / "c1" / "mask.nii.gz", 1.0)
    _vol(tmp_path / "c2" / "image_a.nii.gz", 1.0)
    _vol(tmp_path / "c2" / "image_b.nii", 2.0)
    write_ct_series(tmp_path / "c3" / "dicom", ct_volume[:6, :6, :6], seed=31)
    (tmp_path / "c3" / "label.txt").write_text("1\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "labels.csv").write_text("case_id,label\nc1,0\nc2,1\n")
    ds = CaseFoldersDataset(str(tmp_path), spatial_size=6, intensity="none")
    assert len(ds) == 3 and ds.labels == [0, 1, 1]
    assert ds.skipped == [(str(tmp_path / "empty"), "case folder 4 of 4: no image*.nii[.gz] and no DICOM files")]
    assert ds[0]["mask"].shape == (1, 6, 6, 6)
    assert ds[1]["image"].shape == (2, 6, 6, 6)
    assert ds[2]["image"].shape == (1, 6, 6, 6) and float(ds[2]["image"].min()) < -500  # HU
    assert "c1" not in ds[0]["meta"]["id"]


def test_named_modalities_and_errors(tmp_path):
    _vol(tmp_path / "a" / "t1.nii.gz", 1.0)
    _vol(tmp_path / "a" / "t2.nii.gz", 2.0)
    _vol(tmp_path / "b" / "t1.nii.gz", 1.0)
    ds = CaseFoldersDataset(str(tmp_path), modalities=["t2", "t1"], intensity="none")
    assert len(ds) == 1 and ds.skipped[0][1] == "case folder 2 of 2: missing image file(s) ['t2'] (.nii/.nii.gz)"
    assert float(ds[0]["image"][0, 0, 0, 0]) == 2.0
    (tmp_path / "a" / "label.txt").write_text("x")
    with pytest.raises(DataError, match=r"label.txt: label 'x' is not an integer"):
        CaseFoldersDataset(str(tmp_path), modalities=["t1"])


def test_partial_labels_and_missing_root(tmp_path):
    _vol(tmp_path / "a" / "image.nii.gz")
    _vol(tmp_path / "b" / "image.nii.gz")
    (tmp_path / "a" / "label.txt").write_text("1")
    with pytest.raises(DataError, match=r"labels for only some cases; no label for \['b'\]"):
        CaseFoldersDataset(str(tmp_path))
    with pytest.raises(DataError, match="case folder root not found"):
        CaseFoldersDataset(str(tmp_path / "nope"))
