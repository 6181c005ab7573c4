"""The ``image_manifest`` loader: channels, masks, labels, case ids and row errors."""

from __future__ import annotations

import hashlib

import nibabel as nib
import numpy as np
import pytest
import torch
from ssl_domains_medical.loaders.manifest import ImageManifestDataset

from ssl_domains.errors import DataError
from ssl_domains.identifiers import opaque_id

from .conftest import SAMPLE


def _vol(path, value, shape=(6, 6, 6)):
    nib.save(nib.Nifti1Image(np.full(shape, value, np.float32), np.eye(4)), str(path))


def test_sample_manifest_masks_mark_bright_lesions():
    ds = ImageManifestDataset(str(SAMPLE / "nifti" / "labels.csv"), modality="CT", intensity="none")
    assert len(ds) == 16 and ds.labels == [i % 2 for i in range(16)]
    # a keyed opaque id of the case id: not the unsalted sha256 that enumeration reverses
    assert ds.groups[0] == opaque_id("case", "case_00") and len(ds.groups[0]) == 16
    assert ds.groups[0] != hashlib.sha256(b"case_00").hexdigest()[: len(ds.groups[0])]
    for i in (1, 3):  # case_03 is stored in LPS order: mask and image must stay aligned
        item = ds[i]
        image, mask = item["image"][0], item["mask"][0]
        assert item["label"] == 1 and mask.sum() > 20
        tissue = (mask == 0) & (image > -50) & (image < 300)  # soft tissue, not air/fat/bone
        assert image[mask > 0].mean() > image[tissue].mean() + 40


def test_several_image_columns_become_channels(tmp_path):
    _vol(tmp_path / "t1.nii.gz", 1.0)
    _vol(tmp_path / "t2.nii.gz", 2.0)
    (tmp_path / "m.csv").write_text("case_id,t1,t2,label\nP1,t1.nii.gz,t2.nii.gz,1\n")
    ds = ImageManifestDataset(str(tmp_path / "m.csv"), image_columns=["t2", "t1"], intensity="none")
    item = ds[0]
    assert item["image"].shape == (2, 6, 6, 6) and "mask" not in item
    assert torch.equal(item["image"][:, 0, 0, 0], torch.tensor([2.0, 1.0]))
    assert item["label"] == 1 and "P1" not in str(item["meta"])


def test_unlabeled_when_label_column_empty(tmp_path):
    _vol(tmp_path / "a.nii.gz", 1.0)
    (tmp_path / "m.csv").write_text("image,label\na.nii.gz,\n")
    ds = ImageManifestDataset(str(tmp_path / "m.csv"), intensity="none")
    assert ds.labels is None and "label" not in ds[0]


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        ("image,label\nmissing.nii.gz,1\n", r"missing.nii.gz: file not found \(manifest m.csv row 2, column 'image'\)"),
        ("image,label\na.nii.gz,1\na.nii.gz,yes\n", r"m.csv: row 3: label 'yes' is not an integer"),
        ("image,label\n,1\n", r"m.csv: row 2: empty image column 'image'"),
        ("scan,label\na.nii.gz,1\n", r"m.csv: no column\(s\) \['image'\]"),
        ("case_id,image\nX,a.nii.gz\nX,a.nii.gz\n", r"m.csv: row 3: case id repeats row 2"),
        ("image,mask\na.nii.gz,nomask.nii.gz\n", r"nomask.nii.gz: file not found \(manifest m.csv row 2, column 'mask'\)"),
    ],
)
def test_bad_rows_name_file_and_row(tmp_path, csv, message):
    _vol(tmp_path / "a.nii.gz", 1.0)
    (tmp_path / "m.csv").write_text(csv)
    with pytest.raises(DataError, match=message):
        ImageManifestDataset(str(tmp_path / "m.csv"))


def test_group_column_keeps_a_patients_cases_on_one_side(tmp_path):
    """Several nodules of one patient, one row each: one opaque group per patient, so a
    training/validation split never puts a patient on both sides."""
    from ssl_domains.data.splits import split_off

    _vol(tmp_path / "a.nii.gz", 1.0)
    rows = [f"P{p}_{k},P{p},a.nii.gz,{(p + k) % 2}" for p in range(8) for k in range(p % 3 + 1)]
    (tmp_path / "m.csv").write_text("case_id,patient,image,label\n" + "\n".join(rows) + "\n")
    ds = ImageManifestDataset(str(tmp_path / "m.csv"), group_column="patient", intensity="none")
    patients = [r.split(",")[1] for r in rows]
    assert len(ds) == len(rows) == 15 and len(set(ds.groups)) == 8
    assert ds.groups[0] == opaque_id("group", "P0") and "P0" not in ds.groups
    assert [g == ds.groups[0] for g in ds.groups] == [p == "P0" for p in patients]
    keep, held = split_off(len(ds), 0.25, seed=0, labels=ds.labels, groups=ds.groups)
    assert len(held) and not {patients[i] for i in keep} & {patients[i] for i in held}
    # without group_column each case (row) is its own group
    assert len(set(ImageManifestDataset(str(tmp_path / "m.csv"), intensity="none").groups)) == 15
    (tmp_path / "m.csv").write_text("case_id,patient,image\nA,P1,a.nii.gz\nB,,a.nii.gz\n")
    with pytest.raises(DataError, match=r"m.csv: row 3: empty group column 'patient'"):
        ImageManifestDataset(str(tmp_path / "m.csv"), group_column="patient")
    with pytest.raises(DataError, match=r"m.csv: no column\(s\) \['subject'\]"):
        ImageManifestDataset(str(tmp_path / "m.csv"), group_column="subject")


def test_mask_on_another_grid_is_refused_when_loaded(tmp_path):
    _vol(tmp_path / "a.nii.gz", 1.0)
    _vol(tmp_path / "m.nii.gz", 1.0, shape=(5, 6, 6))
    (tmp_path / "m.csv").write_text("image,mask\na.nii.gz,m.nii.gz\n")
    ds = ImageManifestDataset(str(tmp_path / "m.csv"))
    with pytest.raises(DataError, match=r"m.nii.gz: mask size \(5, 6, 6\) differs from image size \(6, 6, 6\)"):
        ds[0]


def test_missing_manifest(tmp_path):
    with pytest.raises(DataError, match="manifest not found"):
        ImageManifestDataset(str(tmp_path / "none.csv"))


def test_label_guided_patches(tmp_path):
    img = np.zeros((20, 20, 20), np.float32)
    mask = np.zeros((20, 20, 20), np.uint8)
    mask[15:18, 15:18, 15:18] = 1
    nib.save(nib.Nifti1Image(img, np.eye(4)), str(tmp_path / "i.nii.gz"))
    nib.save(nib.Nifti1Image(mask, np.eye(4)), str(tmp_path / "m.nii.gz"))
    (tmp_path / "m.csv").write_text("image,mask,label\ni.nii.gz,m.nii.gz,1\n")
    ds = ImageManifestDataset(str(tmp_path / "m.csv"), patch_size=6, patches_per_volume=6,
                              pos_fraction=1.0, intensity="none")
    assert len(ds) == 6 and ds.labels == [1] * 6
    assert all(ds[i]["mask"].sum() > 0 for i in range(6))
