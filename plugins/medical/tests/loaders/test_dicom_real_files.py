"""Real files from other tools (the test images that ship inside the pydicom wheel: RGB, YBR_FULL,
YBR_FULL_422, YBR_RCT, JPEG, JPEG-LS, JPEG 2000, RLE, big endian, multi-frame, RT dose, and
broken files): converted like dcm2niix converts them, and a folder of them is converted quietly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from ssl_domains_medical.loaders.dicom_series import scan_dicom

PYDICOM_FILES = Path(os.path.dirname(pydicom.__file__)) / "data" / "test_files"
DCM2NIIX = shutil.which("dcm2niix")

# tolerance: "exact"; "round" (colour-space conversion rounds differently: at most 1 grey level);
# "lossy" (JPEG decoders differ in chroma upsampling: mean difference under 1 level)
KNOWN = {
    "CT_small.dcm": "exact", "MR_small.dcm": "exact", "MR_small_RLE.dcm": "exact",
    "MR_small_bigendian.dcm": "exact", "MR_small_jp2klossless.dcm": "exact",
    "MR_small_jpeg_ls_lossless.dcm": "exact", "693_J2KI.dcm": "exact", "JPEG2000.dcm": "exact",
    "liver_1frame.dcm": "exact", "rtdose_1frame.dcm": "exact",
    "ExplVR_BigEnd.dcm": "exact", "GDCMJ2K_TextGBR.dcm": "exact", "SC_rgb_gdcm_KY.dcm": "exact",
    "SC_rgb_jpeg_dcmd.dcm": "exact", "SC_rgb_jpeg_gdcm.dcm": "exact", "SC_rgb_rle.dcm": "exact",
    "SC_rgb_rle_2frame.dcm": "exact", "SC_rgb_small_odd.dcm": "exact",
    "SC_rgb_small_odd_jpeg.dcm": "exact", "examples_jpeg2k.dcm": "exact",
    "examples_rgb_color.dcm": "exact", "examples_palette.dcm": "exact",
    "SC_jpeg_no_color_transform.dcm": "round", "SC_jpeg_no_color_transform_2.dcm": "round",
    "SC_rgb_dcmtk_+eb+cr.dcm": "round",
    "SC_rgb_dcmtk_+eb+cy+n2.dcm": "round", "SC_rgb_dcmtk_+eb+cy+s2.dcm": "round",
    "SC_rgb_dcmtk_+eb+cy+s4.dcm": "round", "SC_rgb_jpeg.dcm": "round",
    "SC_rgb_jpeg_dcmtk.dcm": "round",
    "SC_rgb_dcmtk_+eb+cy+n1.dcm": "lossy", "SC_rgb_dcmtk_+eb+cy+np.dcm": "lossy",
    "SC_rgb_jpeg_lossy_gdcm.dcm": "lossy", "examples_ybr_color.dcm": "lossy",
}


def _needs_files() -> None:
    if not PYDICOM_FILES.is_dir():
        pytest.skip(f"pydicom's bundled test files not found at {PYDICOM_FILES}")


def _canonical(data: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    if data.dtype.names:  # RGB24
        data = np.stack([data["R"], data["G"], data["B"]], axis=-1)
    return nib.as_closest_canonical(nib.Nifti1Image(data.astype(np.float32), affine))



def _dcm2niix_canonical(tmp_path):
    """dcm2niix's conversion of ``tmp_path/in`` (one output), reoriented to canonical."""
    (tmp_path / "out").mkdir()
    subprocess.run([DCM2NIIX, "-o", str(tmp_path / "out"), "-f", "x", "-z", "n", str(tmp_path / "in")],
                   check=True, capture_output=True)
    ref_img = nib.load(str(tmp_path / "out" / "x.nii"))
    return _canonical(np.asarray(ref_img.dataobj), ref_img.affine)

@pytest.mark.skipif(DCM2NIIX is None, reason="dcm2niix not installed: pip install -e './plugins/medical[test]'")
@pytest.mark.parametrize("name", sorted(KNOWN))
def test_real_file_matches_dcm2niix(tmp_path, name):
    _needs_files()
    (tmp_path / "in").mkdir()
    shutil.copy(PYDICOM_FILES / name, tmp_path / "in" / name)
    ref = _dcm2niix_canonical(tmp_path)
    (series,) = scan_dicom(tmp_path / "in").series.values()
    mine = _canonical(*series.load(colour="rgb"))
    assert mine.shape == ref.shape
    np.testing.assert_allclose(mine.affine, ref.affine, atol=1e-3)
    diff = np.abs(np.asarray(mine.dataobj) - np.asarray(ref.dataobj))
    if KNOWN[name] == "exact":
        assert diff.max() == 0
    elif KNOWN[name] == "round":
        assert diff.max() <= 1
    else:
        assert diff.mean() < 1.0


def test_big_endian_rgb_reads_like_its_little_endian_twin():
    """dcm2niix byte-swaps 8-bit big-endian RGB (its output differs by up to 158 levels); the
    file holds the same picture as the little-endian one."""
    _needs_files()
    (le,) = scan_dicom(PYDICOM_FILES / "SC_rgb_small_odd.dcm").series.values()
    (be,) = scan_dicom(PYDICOM_FILES / "SC_rgb_small_odd_big_endian.dcm").series.values()
    np.testing.assert_array_equal(le.load(colour="rgb")[0], be.load(colour="rgb")[0])


def test_rt_dose_frames_placed_by_grid_frame_offsets():
    """RT dose: one position, frames along GridFrameOffsetVector (0, 5, ..., 70 mm): a 3-D volume
    with 5 mm slices (dcm2niix writes the same voxels with a 1 mm slice step)."""
    _needs_files()
    (series,) = scan_dicom(PYDICOM_FILES / "rtdose.dcm").series.values()
    assert series.shape == (10, 10, 15) and not series.is_4d and series.problems == []
    assert series.spacing == pytest.approx((10.0, 10.0, 5.0))
    ref = pydicom.dcmread(PYDICOM_FILES / "rtdose.dcm").pixel_array  # [frames, rows, cols]
    np.testing.assert_array_equal(series.load()[0].transpose(2, 1, 0), ref.astype(np.float32))


def test_convert_on_a_folder_of_real_odd_files_is_quiet_and_names_every_file(tmp_path):
    """Every file pydicom tests itself with (broken, truncated, DICOMDIRs, SR, waveforms, copies
    under one SOPInstanceUID ...): no traceback, each file not read named on one line, once."""
    _needs_files()
    shutil.copytree(PYDICOM_FILES, tmp_path / "in")
    mapping = tmp_path / "private" / "map.json"
    run = subprocess.run([sys.executable, "-m", "ssl_domains.cli", "medical", "convert", "--allow-4d",
                          str(tmp_path / "in"), str(tmp_path / "out"), "--mapping", str(mapping)],
                         capture_output=True, text=True, timeout=300)
    console = run.stdout + run.stderr
    assert run.returncode == 0, console
    assert "Traceback" not in console and "WARNING" not in console and "UserWarning" not in console
    lines = console.strip().splitlines()
    files = json.loads(mapping.read_text())["files"]
    root = tmp_path / "in"
    for f in files:
        rel = str(Path(f["path"]).relative_to(root))
        named = [ln for ln in lines if ln.startswith(f"{rel}: ")]
        if f["status"] == "read":
            assert len(named) <= 1  # "read with warnings" at most
        else:
            assert len(named) == 1 and named[0].startswith(f"{rel}: {f['status']}"), (rel, named)
    assert len(lines) == len(set(lines))
    assert lines[-1].startswith("wrote ") and "see report.json" in lines[-1]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert sum(report["files"].values()) == len(files) == sum(1 for p in root.rglob("*") if p.is_file())
    assert report["files"]["read"] > 30 and report["files"]["duplicate"] > 10


NIBABEL_DICOM = Path(os.path.dirname(nib.__file__)) / "nicom" / "tests" / "data"


@pytest.mark.skipif(DCM2NIIX is None, reason="dcm2niix not installed: pip install -e './plugins/medical[test]'")
@pytest.mark.parametrize("names", [("philips_mprage",), ("siemens_dwi_0", "siemens_dwi_1000")],
                         ids=["philips-enhanced-mprage", "siemens-mosaic-dwi-4d"])
def test_real_scanner_files_from_nibabel_match_dcm2niix(tmp_path, names):
    """A Philips enhanced multi-frame MPRAGE, and two Siemens mosaic DWI volumes (b=0, b=1000)
    of one series that make a 4-D stack, as shipped in nibabel's test data."""
    import gzip

    sources = [NIBABEL_DICOM / f"{n}.dcm.gz" for n in names]
    if not all(p.is_file() for p in sources):
        pytest.skip(f"nibabel's DICOM test data not found at {NIBABEL_DICOM}")
    (tmp_path / "in").mkdir()
    for src, name in zip(sources, names):
        (tmp_path / "in" / f"{name}.dcm").write_bytes(gzip.decompress(src.read_bytes()))
    ref = _dcm2niix_canonical(tmp_path)
    (series,) = scan_dicom(tmp_path / "in").series.values()
    mine = _canonical(*series.load(allow_4d=True))
    assert mine.shape == ref.shape == ((176, 256, 256) if len(names) == 1 else (128, 128, 48, 2))
    np.testing.assert_allclose(mine.affine, ref.affine, atol=1e-3)
    np.testing.assert_array_equal(np.asarray(mine.dataobj), np.asarray(ref.dataobj))


def test_16_bit_colour_is_written_as_a_vector_image_not_clipped(tmp_path):
    """dcm2niix refuses 16-bit RGB; convert writes it as float32 [x, y, z, 1, 3] (intent vector)."""
    from click.testing import CliRunner
    from ssl_domains_medical.commands import medical

    _needs_files()
    (tmp_path / "in").mkdir()
    shutil.copy(PYDICOM_FILES / "SC_rgb_rle_16bit.dcm", tmp_path / "in")
    result = CliRunner().invoke(medical, ["convert", str(tmp_path / "in"), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (path,) = (tmp_path / "out").glob("*.nii.gz")
    img = nib.load(str(path))
    assert img.shape == (100, 100, 1, 1, 3) and img.header.get_intent()[0] == "vector"
    rgb = pydicom.dcmread(PYDICOM_FILES / "SC_rgb_rle_16bit.dcm").pixel_array  # [rows, cols, 3]
    assert rgb.max() > 255
    np.testing.assert_array_equal(np.asarray(img.dataobj)[:, :, 0, 0].transpose(1, 0, 2), rgb.astype(np.float32))


def test_a_reused_sop_uid_with_another_image_is_not_a_duplicate(tmp_path):
    """pydicom's 8- and 16-bit RLE colour images share SOPInstanceUID and position: two stacks
    (split by bit depth), neither counted as a copy of the other."""
    _needs_files()
    (tmp_path / "in").mkdir()
    for name in ("SC_rgb_rle.dcm", "SC_rgb_rle_16bit.dcm"):
        shutil.copy(PYDICOM_FILES / name, tmp_path / "in")
    shutil.copy(PYDICOM_FILES / "SC_rgb_rle.dcm", tmp_path / "in" / "copy.dcm")
    scan = scan_dicom(tmp_path / "in")
    status = {Path(f.path).name: f.status for f in scan.files}
    assert status == {"SC_rgb_rle.dcm": "read", "SC_rgb_rle_16bit.dcm": "read", "copy.dcm": "duplicate"}
    assert sorted(sid.rsplit("_", 1)[1] for sid in scan.series) == ["16bit", "8bit"]
    assert all(s.shape == (100, 100, 1) and not s.is_4d for s in scan.series.values())
