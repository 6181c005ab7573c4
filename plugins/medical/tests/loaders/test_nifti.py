"""The ``nifti`` loader: affine honoured (RAS), NIfTI-2, big-endian, 4-D, skipping."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from ssl_domains_medical.loaders.nifti import NiftiDataset

from ssl_domains.errors import DataError
from ssl_domains.identifiers import opaque_id

from .conftest import SAMPLE, shared_data


def test_reorients_to_ras_from_any_storage(tmp_path):
    data = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    ras = np.diag([2.0, 3.0, 4.0, 1.0])
    nib.save(nib.Nifti1Image(data, ras), str(tmp_path / "ras.nii.gz"))
    # same voxels stored with x and z reversed, axes permuted (y, x, z) -> must load identically
    flipped = data[::-1, :, ::-1].transpose(1, 0, 2)
    aff = np.array([[0, -2.0, 0, 6.0], [3.0, 0, 0, 0], [0, 0, -4.0, 20.0], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(flipped, aff), str(tmp_path / "other.nii"))
    ds = NiftiDataset(str(tmp_path), intensity="none")
    # ids are keyed opaque ids of the file's path below the folder, never the file names
    assert [r["id"] for r in ds.records] == [opaque_id("nifti", "other.nii"), opaque_id("nifti", "ras.nii.gz")]
    a, b = ds[0], ds[1]
    assert torch.equal(a["image"], b["image"]) and a["image"].shape == (1, 4, 5, 6)
    assert a["meta"]["spacing"] == [2.0, 3.0, 4.0]


def test_nibabel_samples_big_endian_and_nifti2():
    folder = shared_data("nifti_nibabel_samples")
    ds = NiftiDataset(str(folder / "anatomical.nii"), intensity="none")
    ref = nib.as_closest_canonical(nib.load(str(folder / "anatomical.nii")))
    np.testing.assert_array_equal(ds[0]["image"][0].numpy(), ref.get_fdata(dtype=np.float32))
    n2 = NiftiDataset(str(folder / "example_nifti2.nii.gz"), allow_4d=True, intensity="none")
    assert n2[0]["image"].shape == (2, 32, 20, 12)


def test_4d_files_skipped_with_reason(tmp_path):
    folder = shared_data("nifti_nibabel_samples")
    ds = NiftiDataset(str(folder / "*.nii*"), spatial_size=16)
    skipped = {p.split("/")[-1]: r for p, r in ds.skipped}
    assert set(skipped) == {"example4d.nii.gz", "example_nifti2.nii.gz", "functional.nii"}
    assert "4-D image (17, 21, 3, 20); pass allow_4d=True" in skipped["functional.nii"]
    assert len(ds) == 3 and all(ds[i]["image"].shape == (1, 16, 16, 16) for i in range(3))


def test_unreadable_skipped_and_nothing_found_is_an_error(tmp_path):
    (tmp_path / "bad.nii.gz").write_bytes(b"not gzip at all")
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), str(tmp_path / "ok.nii.gz"))
    ds = NiftiDataset(str(tmp_path))
    assert len(ds) == 1 and ds.skipped[0][1].startswith("file 1 of 2: unreadable NIfTI")
    with pytest.raises(DataError, match="no NIfTI files"):
        NiftiDataset(str(tmp_path / "empty*"))


def test_sample_unlabeled_volumes():
    ds = NiftiDataset(str(SAMPLE / "unlabeled"), modality="CT", patch_size=16, patches_per_volume=2)
    assert len(ds) == 16 and ds.labels is None
    item = ds[3]
    assert item["image"].shape == (1, 16, 16, 16) and 0.0 <= float(item["image"].min())


def test_2d_images(tmp_path):
    nib.save(nib.Nifti1Image(np.ones((8, 6, 1), np.float32), np.eye(4)), str(tmp_path / "a.nii"))
    ds = NiftiDataset(str(tmp_path), dims=2, spatial_size=[8, 8], intensity="none")
    assert ds[0]["image"].shape == (1, 8, 8)


def test_2d_image_with_dims_3_is_refused_naming_the_file(tmp_path):
    nib.save(nib.Nifti1Image(np.ones((8, 6), np.float32), np.eye(4)), str(tmp_path / "flat.nii.gz"))
    with pytest.raises(DataError) as info:
        NiftiDataset(str(tmp_path), spatial_size=8)
    msg = str(info.value)
    assert msg.startswith(str(tmp_path / "flat.nii.gz")) and "\n" not in msg
    assert "2-D image (8, 6) given to a 3-D pipeline (dims=3); set dims=2" in msg


def test_single_slice_with_dims_3_is_refused_or_a_one_slice_volume_when_allowed(tmp_path):
    nib.save(nib.Nifti1Image(np.ones((8, 6, 1), np.float32), np.eye(4)), str(tmp_path / "one.nii"))
    with pytest.raises(DataError, match="2-D image .8, 6, 1. given to a 3-D pipeline"):
        NiftiDataset(str(tmp_path / "one.nii"), spatial_size=8)
    ds = NiftiDataset(str(tmp_path / "one.nii"), allow_2d=True, intensity="none")
    assert ds[0]["image"].shape == (1, 8, 6, 1)


def test_2d_image_in_a_manifest_is_refused_when_read(tmp_path):
    from ssl_domains_medical.loaders.manifest import ImageManifestDataset

    nib.save(nib.Nifti1Image(np.ones((8, 6), np.float32), np.eye(4)), str(tmp_path / "flat.nii.gz"))
    (tmp_path / "m.csv").write_text("image,label\nflat.nii.gz,1\n")
    ds = ImageManifestDataset(str(tmp_path / "m.csv"), spatial_size=8)
    with pytest.raises(DataError, match="flat.nii.gz: 2-D image .8, 6. given to a 3-D pipeline"):
        ds[0]
