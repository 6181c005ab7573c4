"""Scanning, ordering, geometry, problems and decoding of DICOM series."""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.uid import RLELossless
from ssl_domains_medical.loaders.dicom_series import scan_dicom
from ssl_domains_medical.loaders.synthetic import write_ct_series, write_enhanced_ct

from ssl_domains.errors import DataError
from ssl_domains.identifiers import opaque_id

from .conftest import shared_data

OBLIQUE = (0.9553, 0.2955, 0.0, -0.2685, 0.8677, -0.4184)  # rotation about z then x, orthonormal


def only(scan):
    assert len(scan.series) == 1, scan.series
    return next(iter(scan.series.values()))


def test_orders_by_position_not_instance_number_and_applies_rescale(tmp_path, ct_volume):
    paths = write_ct_series(tmp_path / "a" / "b", ct_volume, spacing=(2.0, 0.5, 0.75),
                            origin=(10.0, 20.0, -30.0), shuffle=True, seed=1)
    instances = [int(pydicom.dcmread(p).InstanceNumber) for p in paths]
    assert instances != sorted(instances)  # file order and InstanceNumber are both shuffled
    series = only(scan_dicom(tmp_path))
    array, affine = series.load()
    assert array.shape == (20, 16, 10) and array.dtype == np.float32
    np.testing.assert_array_equal(array.transpose(2, 1, 0), ct_volume.astype(np.float32))
    assert array.min() == -1024  # stored 0 + RescaleIntercept -1024 -> air in HU
    assert series.spacing == (0.75, 0.5, 2.0)
    expected = np.array([[-0.75, 0, 0, -10.0], [0, -0.5, 0, -20.0], [0, 0, 2.0, -30.0], [0, 0, 0, 1]])
    np.testing.assert_allclose(affine, expected, atol=1e-6)
    assert series.problems == []


def test_series_ids_are_keyed_hashes_of_uids(tmp_path, ct_volume):
    write_ct_series(tmp_path, ct_volume, series_uid="1.2.3.4.5", seed=2)
    series = only(scan_dicom(tmp_path))
    key = os.environ["SSL_DOMAINS_ID_KEY"].encode()  # the conftest's fixed test key
    expected = hmac.new(key, b"1.2.3.4.5", hashlib.sha256).hexdigest()[:16]
    assert series.series_id == series.group == expected == opaque_id("1.2.3.4.5")
    assert expected != hashlib.sha256(b"1.2.3.4.5").hexdigest()[:16]  # not an unkeyed hash


def test_non_dicom_ignored_corrupt_skipped_with_reason(tmp_path, ct_volume):
    paths = write_ct_series(tmp_path / "s", ct_volume, suffix="", seed=3)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "garbage.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x08\x00\x05\x11SQ\x00\x00"
                                             + b"\xff\xff\xff\x7f\xfe\xff\x00\xe0\xff")
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "bad.dcm").write_bytes(paths[0].read_bytes()[:300])
    scan = scan_dicom(tmp_path)
    status = {p.path.split("/")[-1]: (p.status, p.reason) for p in scan.files}
    assert status["notes.txt"] == ("ignored", "not a DICOM file (no DICM preamble)")
    assert status["bad.dcm"] == ("skipped", "truncated or incomplete image header (no "
                                 "SeriesInstanceUID, Rows, Columns)")
    assert status["garbage.dcm"][0] == "skipped"
    assert status["garbage.dcm"][1].startswith("unreadable DICOM")
    assert sorted(p for p, _ in scan.skipped) == [str(tmp_path / "deep" / "er" / "bad.dcm"),
                                                  str(tmp_path / "garbage.dcm")]
    assert only(scan).n_slices == 10


def test_missing_root_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="folder not found"):
        scan_dicom(tmp_path / "nope")


def test_enhanced_multiframe_matches_classic(tmp_path, ct_volume):
    write_enhanced_ct(tmp_path / "mf" / "e.dcm", ct_volume, spacing=(2.0, 0.5, 0.75), seed=4)
    write_ct_series(tmp_path / "classic", ct_volume, spacing=(2.0, 0.5, 0.75), seed=5)
    mf = only(scan_dicom(tmp_path / "mf"))
    classic = only(scan_dicom(tmp_path / "classic"))
    a_mf, aff_mf = mf.load()
    a_cl, aff_cl = classic.load()
    np.testing.assert_array_equal(a_mf, a_cl)  # frames stored in reverse: sorted by position
    np.testing.assert_allclose(aff_mf, aff_cl)
    assert mf.n_slices == 10 and mf.problems == []


def test_rle_compressed_series_decodes(tmp_path, ct_volume):
    write_ct_series(tmp_path, ct_volume, transfer_syntax=RLELossless, seed=6)
    assert pydicom.dcmread(next(tmp_path.iterdir())).file_meta.TransferSyntaxUID == RLELossless
    array, _ = only(scan_dicom(tmp_path)).load()
    np.testing.assert_array_equal(array.transpose(2, 1, 0), ct_volume.astype(np.float32))


@pytest.mark.parametrize("number", range(1, 10))
def test_transfer_syntaxes_match_uncompressed_and_dcm2niix(tmp_path, number):
    """The same Siemens mosaic under 9 transfer syntaxes: decoded, unpacked, placed like dcm2niix."""
    root = shared_data("dicom_transfer_syntaxes")
    ref_dir, test_dir = tmp_path / "ref", tmp_path / "test"
    ref_dir.mkdir()
    test_dir.mkdir()
    shutil.copy(root / "In" / "1.dcm", ref_dir)
    shutil.copy(root / "In" / f"{number}.dcm", test_dir)
    ref, ref_aff = only(scan_dicom(ref_dir)).load()
    series = only(scan_dicom(test_dir))
    got, got_aff = series.load()
    assert got.shape == (64, 64, 35) and series.spacing == pytest.approx((3.25, 3.25, 3.6), abs=1e-3)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_allclose(got_aff, ref_aff)
    dcm2niix = nib.as_closest_canonical(nib.load(str(root / "Ref" / f"{number}.nii")))
    mine = nib.as_closest_canonical(nib.Nifti1Image(got, got_aff))
    np.testing.assert_allclose(mine.affine, dcm2niix.affine, atol=1e-3)
    np.testing.assert_array_equal(np.asarray(mine.dataobj), np.asarray(dcm2niix.dataobj, np.float32))


def test_4d_series_refused_or_kept(tmp_path, ct_volume):
    vol = np.concatenate([ct_volume, ct_volume + 5])
    positions = [(0.0, 0.0, 2.0 * (k % 10)) for k in range(20)]
    per_slice = [{"TemporalPositionIdentifier": 1 + k // 10} for k in range(20)]
    write_ct_series(tmp_path, vol, positions=positions, per_slice=per_slice, seed=7)
    series = only(scan_dicom(tmp_path))
    assert series.is_4d and series.n_timepoints == 2 and series.n_slices == 10
    with pytest.raises(DataError, match=r"4-D series \(2 time points x 10 slices\); pass allow_4d=True"):
        series.load()
    array, _ = series.load(allow_4d=True)
    assert array.shape == (20, 16, 10, 2)
    np.testing.assert_array_equal(array[..., 1] - array[..., 0], 5.0)


def test_problems_missing_uneven_duplicate(tmp_path, ct_volume):
    z = [0, 2, 4, 6, 8, 10, 12, 18, 20.5, 22.5]  # gap after slice 6, uneven after
    write_ct_series(tmp_path / "gap", ct_volume, positions=[(0, 0, v) for v in z], seed=8)
    problems = only(scan_dicom(tmp_path / "gap")).problems
    assert any(p.startswith("missing slices: gap of 6.00 mm after slice 6") for p in problems), problems
    assert any(p.startswith("uneven slice spacing (2.000 to 2.500 mm)") for p in problems), problems

    zdup = [0, 2, 4, 4, 6, 8, 10, 12, 14, 16]
    write_ct_series(tmp_path / "dup", ct_volume, positions=[(0, 0, v) for v in zdup], seed=9)
    scan = scan_dicom(tmp_path / "dup")
    series = only(scan)
    assert series.refused == (
        "10 images at 9 positions do not make whole time points (8 position(s) with 1, 1 position(s) "
        "with 2; no time, echo or image-type key tells the 1 extra images apart); refused: pass "
        "duplicates='first' (convert --duplicates first) to keep the first 1 image(s) at each position")
    assert {f.status for f in scan.files} == {"refused"}  # report.json tells the truth
    with pytest.raises(DataError, match="do not make whole time points"):
        series.load()
    kept = scan_dicom(tmp_path / "dup", duplicates="first")
    series = only(kept)
    assert series.n_slices == 9 and not series.is_4d and not series.refused
    assert series.problems[0].endswith("kept the first 1 image(s) at each position")
    dropped = [f for f in kept.files if f.status == "dropped"]
    assert len(dropped) == 1 and sum(f.status == "read" for f in kept.files) == 9
    # the later InstanceNumber at the repeated position is the one left out
    at_4 = [f.path for f in kept.files if pydicom.dcmread(f.path).ImagePositionPatient[2] == 4]
    assert dropped[0].path == max(at_4, key=lambda p: int(pydicom.dcmread(p).InstanceNumber))


def test_mixed_orientations_split_into_stacks(tmp_path, ct_volume):
    write_ct_series(tmp_path / "ax", ct_volume, series_uid="9.9.9", seed=10)
    write_ct_series(tmp_path / "ob", ct_volume[:3], series_uid="9.9.9", orientation=OBLIQUE, seed=11)
    scan = scan_dicom(tmp_path)
    group = opaque_id("9.9.9")
    assert list(scan.series) == [f"{group}_o1", f"{group}_o2"]
    axial, oblique = scan.series.values()
    assert (axial.n_slices, oblique.n_slices) == (10, 3)
    assert axial.group == oblique.group == group and axial.problems == oblique.problems == []
    assert {f.status for f in scan.files} == {"read"}  # no slice dropped


def test_geometry_matches_dcm2niix(tmp_path, ct_volume):
    exe = shutil.which("dcm2niix")
    if exe is None:
        pytest.skip("dcm2niix not installed (pip install dcm2niix)")
    write_ct_series(tmp_path / "dcm", ct_volume, spacing=(2.5, 0.8, 0.7), origin=(10, -20, 30),
                    orientation=OBLIQUE, seed=12)
    out = tmp_path / "nii"
    out.mkdir()
    subprocess.run([exe, "-o", str(out), "-f", "x", "-z", "n", str(tmp_path / "dcm")],
                   check=True, capture_output=True)
    ref = nib.as_closest_canonical(nib.load(str(out / "x.nii")))
    array, affine = only(scan_dicom(tmp_path / "dcm")).load()
    mine = nib.as_closest_canonical(nib.Nifti1Image(array, affine))
    assert mine.shape == ref.shape
    np.testing.assert_allclose(mine.affine, ref.affine, atol=1e-3)
    np.testing.assert_array_equal(np.asarray(mine.dataobj), np.asarray(ref.dataobj, dtype=np.float32))


def test_undecodable_pixel_data_names_the_file(tmp_path, ct_volume):
    paths = write_ct_series(tmp_path, ct_volume, seed=13)
    ds = pydicom.dcmread(paths[4])
    ds.PixelData = ds.PixelData[:10]
    ds.save_as(paths[4])
    series = only(scan_dicom(tmp_path))
    with pytest.raises(DataError, match=rf"{paths[4].name}: cannot decode pixel data"):
        series.load()


def test_single_frame_enhanced_file_loads(tmp_path, ct_volume):
    write_enhanced_ct(tmp_path / "one.dcm", ct_volume[:1], seed=14)
    series = only(scan_dicom(tmp_path))
    array, _ = series.load()
    assert array.shape == (20, 16, 1)
    np.testing.assert_array_equal(array[:, :, 0].T, ct_volume[0].astype(np.float32))
