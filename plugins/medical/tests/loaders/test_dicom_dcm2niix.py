"""Every kind of series converts to what dcm2niix writes (shape, voxels, affine after canonical
reorientation), or is refused with a reason: generated GE-style 4-D without temporal tags,
magnitude + phase (classic and enhanced multi-frame), multi-echo, colour (RGB, planar, YBR_FULL,
JPEG YBR_FULL_422, RLE, JPEG 2000 YBR_RCT, clips), oblique, mixed image sizes, missing slices,
gantry tilt and duplicate files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000, JPEG2000Lossless, JPEGBaseline8Bit, RLELossless
from ssl_domains_medical.loaders.dicom_series import DicomSeries, scan_dicom
from ssl_domains_medical.loaders.synthetic import (
    ct_phantom,
    write_colour_image,
    write_ct_series,
    write_enhanced_mr,
)

from ssl_domains.errors import DataError

OBLIQUE = (0.9553, 0.2955, 0.0, -0.2685, 0.8677, -0.4184)
DCM2NIIX = shutil.which("dcm2niix")
needs_dcm2niix = pytest.mark.skipif(
    DCM2NIIX is None, reason="dcm2niix not installed: pip install -e './plugins/medical[test]'")


def dcm2niix(folder: Path, out: Path) -> tuple[list[nib.Nifti1Image], str]:
    """dcm2niix's outputs for ``folder`` (canonical, RGB24 as a last axis of 3) and its stdout."""
    out.mkdir(parents=True)
    run = subprocess.run([DCM2NIIX, "-o", str(out), "-f", "x", "-z", "n", str(folder)],
                         check=True, capture_output=True, text=True)
    images = []
    for path in sorted(out.glob("*.nii")):
        img = nib.load(str(path))
        data = np.asarray(img.dataobj)
        if data.dtype.names:  # RGB24
            data = np.stack([data["R"], data["G"], data["B"]], axis=-1)
        images.append(nib.as_closest_canonical(nib.Nifti1Image(data.astype(np.float32), img.affine)))
    return images, run.stdout


def canonical(series: DicomSeries, colour: str = "rgb") -> nib.Nifti1Image:
    array, affine = series.load(allow_4d=True, colour=colour)
    return nib.as_closest_canonical(nib.Nifti1Image(array, affine))


def same_voxels(a: np.ndarray, b: np.ndarray, lossy: bool) -> bool:
    """Equal voxels; for lossy JPEG, decoders differ at chroma edges (libjpeg's fancy upsampling
    vs dcm2niix's): mean difference under 1 grey level."""
    return bool(np.abs(a - b).mean() < 1.0) if lossy else bool(np.array_equal(a, b))


def assert_same_as_dcm2niix(folder: Path, tmp: Path, lossy: bool = False, **scan_kw) -> dict[str, DicomSeries]:
    """Each of our stacks equals exactly one dcm2niix output, and there are as many of each."""
    ref, _ = dcm2niix(folder, tmp / "dcm2niix")
    scan = scan_dicom(folder, **scan_kw)
    mine = {sid: canonical(s) for sid, s in scan.series.items()}
    assert len(mine) == len(ref), (sorted(mine), [r.shape for r in ref])
    unmatched = list(range(len(ref)))
    for sid, img in mine.items():
        hits = [i for i in unmatched if ref[i].shape == img.shape
                and np.allclose(ref[i].affine, img.affine, atol=1e-3)
                and same_voxels(np.asarray(ref[i].dataobj), np.asarray(img.dataobj), lossy)]
        assert hits, f"{sid} {img.shape}: no dcm2niix output with the same shape, affine and voxels"
        unmatched.remove(hits[0])
    return scan.series


def ge_4d(folder: Path, n_slices: int = 5, n_times: int = 4, slice_major: bool = False) -> np.ndarray:
    """GE-style fMRI: positions repeat once per time point; no TemporalPositionIdentifier, one
    AcquisitionNumber; only InstanceNumber orders the time points. Returns ``[t, k, j, i]``."""
    vol = ct_phantom((n_slices, 8, 10), seed=1)
    data = np.stack([vol + 7 * t for t in range(n_times)])  # [t, k, rows, cols]
    order = ([(k, t) for k in range(n_slices) for t in range(n_times)] if slice_major
             else [(k, t) for t in range(n_times) for k in range(n_slices)])
    write_ct_series(folder, np.stack([data[t, k] for k, t in order]), modality="MR",
                    positions=[(0.0, 0.0, 3.0 * k) for k, _ in order], shuffle=False, seed=31,
                    per_slice=[{"AcquisitionNumber": 1} for _ in order])
    return data


@needs_dcm2niix
@pytest.mark.parametrize(("slice_major", "n_slices", "n_times"), [(False, 15, 10), (True, 5, 4)],
                         ids=["150-files-time-major", "slice-major"])
def test_ge_4d_without_temporal_tags_keeps_every_slice(tmp_path, slice_major, n_slices, n_times):
    """The issue's GE series: 150 files, 15 positions x 10 time points, no temporal tags."""
    data = ge_4d(tmp_path / "dcm", n_slices, n_times, slice_major=slice_major)
    (series,) = assert_same_as_dcm2niix(tmp_path / "dcm", tmp_path).values()
    assert series.is_4d and series.shape == (10, 8, n_slices, n_times) and series.problems == []
    assert len(series.files) == n_slices * n_times
    array, _ = series.load(allow_4d=True)
    np.testing.assert_array_equal(array.transpose(3, 2, 1, 0), data.astype(np.float32))


@needs_dcm2niix
def test_magnitude_and_phase_become_two_outputs(tmp_path):
    vol = ct_phantom((4, 8, 10), seed=2)
    types = [["ORIGINAL", "PRIMARY", "M" if k < 4 else "P", "ND"] for k in range(8)]
    write_ct_series(tmp_path / "dcm", np.concatenate([vol, vol + 100]), modality="MR",
                    positions=[(0.0, 0.0, 2.0 * (k % 4)) for k in range(8)],
                    per_slice=[{"ImageType": t} for t in types], seed=32)
    stacks = assert_same_as_dcm2niix(tmp_path / "dcm", tmp_path)
    assert [s.image_type for s in stacks.values()] == ["magnitude", "phase"]
    assert list(stacks)[1].endswith("_ph") and all(not s.is_4d for s in stacks.values())


@needs_dcm2niix
def test_enhanced_multiframe_magnitude_and_phase(tmp_path):
    """Philips-style field map: magnitude and phase frames at the same positions in one file.

    dcm2niix splits real Philips files with the help of private tags this generator does not
    write, so the reference here is the same frames as a classic series, which matches
    dcm2niix (checked in this test)."""
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 4000, (12, 8, 10)).astype(np.uint16)
    positions = [(0.0, 0.0, 2.5 * (k % 6)) for k in range(12)]
    write_enhanced_mr(tmp_path / "mf" / "fieldmap.dcm", frames, positions,
                      ["MAGNITUDE"] * 6 + ["PHASE"] * 6, seed=33)
    types = [["ORIGINAL", "PRIMARY", "M" if k < 6 else "P", "ND"] for k in range(12)]
    write_ct_series(tmp_path / "classic", frames.astype(np.int32), positions=positions,
                    spacing=(2.5, 1.0, 1.0), modality="MR", per_slice=[{"ImageType": t} for t in types],
                    seed=33)
    classic = assert_same_as_dcm2niix(tmp_path / "classic", tmp_path / "c")
    stacks = scan_dicom(tmp_path / "mf").series
    assert [(s.image_type, s.shape) for s in stacks.values()] == [("magnitude", (10, 8, 6)),
                                                                   ("phase", (10, 8, 6))]
    for mine, ref in zip(stacks.values(), classic.values()):
        a, b = canonical(mine), canonical(ref)
        np.testing.assert_allclose(a.affine, b.affine, atol=1e-3)
        np.testing.assert_array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj))


@needs_dcm2niix
def test_multi_echo_becomes_one_output_per_echo(tmp_path):
    vol = ct_phantom((4, 8, 10), seed=4)
    write_ct_series(tmp_path / "dcm", np.concatenate([vol, vol + 50, vol + 90]), modality="MR",
                    positions=[(0.0, 0.0, 2.0 * (k % 4)) for k in range(12)],
                    per_slice=[{"EchoNumbers": 1 + k // 4, "EchoTime": 4.0 + 6 * (k // 4)} for k in range(12)],
                    seed=34)
    stacks = assert_same_as_dcm2niix(tmp_path / "dcm", tmp_path)
    assert [sid.rsplit("_", 1)[1] for sid in stacks] == ["e1", "e2", "e3"]
    assert [s.echo for s in stacks.values()] == [1, 2, 3]


@needs_dcm2niix
def test_original_and_derived_are_split(tmp_path):
    vol = ct_phantom((4, 8, 10), seed=5)
    types = [["ORIGINAL" if k < 4 else "DERIVED", "PRIMARY", "M", "ND"] for k in range(8)]
    write_ct_series(tmp_path / "dcm", np.concatenate([vol, vol - 30]), modality="MR",
                    positions=[(0.0, 0.0, 2.0 * (k % 4)) for k in range(8)],
                    per_slice=[{"ImageType": t} for t in types], seed=35)
    stacks = assert_same_as_dcm2niix(tmp_path / "dcm", tmp_path)
    assert [s.image_type for s in stacks.values()] == ["magnitude", "magnitude (derived)"]


@needs_dcm2niix
def test_two_image_sizes_in_one_series_become_two_outputs(tmp_path):
    write_ct_series(tmp_path / "dcm" / "a", ct_phantom((4, 8, 10), seed=6), series_uid="1.2.3.77", seed=36)
    write_ct_series(tmp_path / "dcm" / "b", ct_phantom((3, 6, 6), seed=7), series_uid="1.2.3.77", seed=37,
                    origin=(0.0, 0.0, 50.0))
    stacks = assert_same_as_dcm2niix(tmp_path / "dcm", tmp_path)
    assert sorted(s.shape for s in stacks.values()) == [(6, 6, 3), (10, 8, 4)]
    scan = scan_dicom(tmp_path / "dcm")
    assert {f.status for f in scan.files} == {"read"} and len({f.series_id for f in scan.files}) == 2


@needs_dcm2niix
def test_oblique_and_missing_slices_match_dcm2niix(tmp_path):
    vol = ct_phantom((5, 8, 10), seed=8)
    write_ct_series(tmp_path / "oblique", vol, spacing=(2.5, 0.8, 0.7), origin=(10, -20, 30),
                    orientation=OBLIQUE, seed=38)
    assert_same_as_dcm2niix(tmp_path / "oblique", tmp_path / "o")
    write_ct_series(tmp_path / "gap", vol, positions=[(0.0, 0.0, z) for z in (0, 2, 4, 8, 10)], seed=39)
    ref, stdout = dcm2niix(tmp_path / "gap", tmp_path / "g")
    assert "Interslice distance varies" in stdout
    (series,) = scan_dicom(tmp_path / "gap").series.values()
    assert series.problems == ["missing slices: gap of 4.00 mm after slice 2 (median spacing 2.00 mm; "
                               "about 1 missing)"]
    mine = canonical(series)
    plain = ref[0]  # x.nii: the stack as stored (x_Eq_1.nii is dcm2niix's resampled copy)
    assert mine.shape == plain.shape
    np.testing.assert_allclose(mine.affine, plain.affine, atol=1e-3)
    np.testing.assert_array_equal(np.asarray(mine.dataobj), np.asarray(plain.dataobj))


COLOUR_KINDS = {
    "rgb": {},
    "rgb-planar": {"planar": 1},
    "ybr-full": {"photometric": "YBR_FULL"},
    "jpeg-ybr-full-422": {"transfer_syntax": JPEGBaseline8Bit},
    "rle": {"transfer_syntax": RLELossless},
    "jpeg2000-ybr-rct": {"transfer_syntax": JPEG2000Lossless},
    "jpeg2000-ybr-ict": {"transfer_syntax": JPEG2000},
}


def colour_picture(frames: int = 0) -> np.ndarray:
    rgb = np.zeros((64, 72, 3), np.uint8)
    rgb[..., 0] = np.arange(72, dtype=np.uint8) * 3
    rgb[..., 1] = np.arange(64, dtype=np.uint8)[:, None] * 4
    rgb[..., 2] = 128
    rgb[20:40, 10:30] = (250, 30, 60)
    return np.stack([np.roll(rgb, 5 * t, axis=1) for t in range(frames)]) if frames else rgb


@needs_dcm2niix
@pytest.mark.parametrize("kind", list(COLOUR_KINDS))
def test_colour_still_matches_dcm2niix(tmp_path, kind):
    rgb = colour_picture()
    path = write_colour_image(tmp_path / "dcm" / "us.dcm", rgb, seed=40, **COLOUR_KINDS[kind])
    stored = pydicom.dcmread(path)
    assert stored.SamplesPerPixel == 3
    assert stored.PhotometricInterpretation == {
        "ybr-full": "YBR_FULL", "jpeg-ybr-full-422": "YBR_FULL_422", "jpeg2000-ybr-rct": "YBR_RCT",
        "jpeg2000-ybr-ict": "YBR_ICT"}.get(kind, "RGB")
    lossy = kind in ("jpeg-ybr-full-422", "jpeg2000-ybr-ict")
    (series,) = assert_same_as_dcm2niix(tmp_path / "dcm", tmp_path, lossy=lossy).values()
    array, _ = series.load(colour="rgb")
    assert array.shape == (72, 64, 1, 3)
    picture = array[:, :, 0].transpose(1, 0, 2)  # back to [rows, cols, rgb]
    if lossy:
        assert np.abs(picture - rgb).mean() < 3.0
    else:
        tol = 1.0 if kind == "ybr-full" else 0.0  # YBR_FULL round trip rounds
        np.testing.assert_allclose(picture, rgb, atol=tol)
    luma, _ = series.load()  # default: luminance
    assert luma.shape == (72, 64, 1)
    np.testing.assert_allclose(luma, array @ np.array([0.299, 0.587, 0.114], np.float32), rtol=1e-6)


@needs_dcm2niix
def test_colour_clip_and_stills_series(tmp_path):
    write_colour_image(tmp_path / "clip" / "cine.dcm", colour_picture(frames=5), seed=41)
    (clip,) = assert_same_as_dcm2niix(tmp_path / "clip", tmp_path / "c").values()
    assert clip.shape == (72, 64, 5) and clip.samples == 3
    for k in range(3):  # three stills of one ultrasound series, no positions
        write_colour_image(tmp_path / "stills" / f"s{k}.dcm", np.roll(colour_picture(), 7 * k, axis=0),
                           seed=42, instance=k + 1)
    (stills,) = assert_same_as_dcm2niix(tmp_path / "stills", tmp_path / "s").values()
    assert stills.shape == (72, 64, 3)
    assert "orientation unknown (assumed axial, centred)" in stills.problems[0]


@needs_dcm2niix
def test_gantry_tilt_refused_or_sheared(tmp_path):
    vol = ct_phantom((5, 8, 10), seed=9)
    shift = np.tan(np.radians(14.0)) * 2.0  # each 2 mm step moves 0.4987 mm along y
    positions = [(0.0, shift * k, 2.0 * k) for k in range(5)]
    write_ct_series(tmp_path / "dcm", vol, positions=positions, seed=43,
                    per_slice=[{"GantryDetectorTilt": 14.0}] * 5)
    _, stdout = dcm2niix(tmp_path / "dcm", tmp_path / "ref")
    assert "gantry tilt of -14.0" in stdout  # dcm2niix sees the same tilt
    (series,) = scan_dicom(tmp_path / "dcm").series.values()
    assert series.refused.startswith("gantry tilt: slices sheared by 14.00 degrees; GantryDetectorTilt 14; "
                                     "refused")
    with pytest.raises(DataError, match="gantry tilt"):
        series.load()
    (sheared,) = scan_dicom(tmp_path / "dcm", gantry_tilt="shear").series.values()
    array, affine = sheared.load()
    np.testing.assert_array_equal(array.transpose(2, 1, 0), vol.astype(np.float32))
    for k, pos in enumerate(positions):  # voxel (0, 0, k) sits at slice k's true position
        np.testing.assert_allclose(affine @ [0, 0, k, 1], [-pos[0], -pos[1], pos[2], 1], atol=1e-3)


def test_duplicate_files_counted_once(tmp_path):
    vol = ct_phantom((5, 8, 10), seed=10)
    paths = write_ct_series(tmp_path / "dcm", vol, seed=44)
    shutil.copy(paths[2], tmp_path / "dcm" / "copy_same_uid.dcm")
    ds = pydicom.dcmread(paths[3])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.6.7"
    ds.InstanceNumber = 99
    ds.save_as(tmp_path / "dcm" / "copy_new_uid.dcm")
    scan = scan_dicom(tmp_path / "dcm")
    (series,) = scan.series.values()
    assert series.shape == (10, 8, 5) and not series.is_4d and not series.refused
    status = {Path(f.path).name: (f.status, f.reason) for f in scan.files}
    assert status["copy_same_uid.dcm"] == ("duplicate", "same SOPInstanceUID as another file (counted once)")
    assert status["copy_new_uid.dcm"] == ("duplicate", "same position and pixel data as another file "
                                          "(counted once)")
    assert sum(s == "read" for s, _ in status.values()) == 5
    array, _ = series.load()
    np.testing.assert_array_equal(array.transpose(2, 1, 0), vol.astype(np.float32))


def test_time_points_with_identical_pixels_are_not_duplicates(tmp_path):
    """Equal images at different TemporalPositionIdentifiers stay time points."""
    vol = ct_phantom((3, 8, 10), seed=11)
    write_ct_series(tmp_path, np.concatenate([vol, vol]), positions=[(0.0, 0.0, 2.0 * (k % 3)) for k in range(6)],
                    per_slice=[{"TemporalPositionIdentifier": 1 + k // 3} for k in range(6)], seed=45)
    (series,) = scan_dicom(tmp_path).series.values()
    assert series.is_4d and series.n_timepoints == 2


@needs_dcm2niix
def test_convert_command_writes_what_dcm2niix_writes(tmp_path):
    """``medical convert --allow-4d``: GE-style 4-D as 4-D, colour as RGB24, each equal to dcm2niix."""
    from click.testing import CliRunner
    from ssl_domains_medical.commands import medical

    ge_4d(tmp_path / "in" / "fmri")
    write_colour_image(tmp_path / "in" / "us" / "still.dcm", colour_picture(), seed=46,
                       transfer_syntax=RLELossless)
    result = CliRunner().invoke(medical, ["convert", "--allow-4d", "--uncompressed", str(tmp_path / "in"),
                                          str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith("wrote 2 of 2 series")
    written = sorted(tmp_path.joinpath("out").glob("*.nii"))
    assert {nib.load(str(p)).get_data_dtype().names is not None for p in written} == {True, False}
    for folder in ("fmri", "us"):
        (ref,), _ = dcm2niix(tmp_path / "in" / folder, tmp_path / f"ref_{folder}")
        hits = []
        for path in written:
            img = nib.load(str(path))
            data = np.asarray(img.dataobj)
            if data.dtype.names:
                data = np.stack([data["R"], data["G"], data["B"]], axis=-1)
            mine = nib.as_closest_canonical(nib.Nifti1Image(data.astype(np.float32), img.affine))
            if mine.shape == ref.shape and np.allclose(mine.affine, ref.affine, atol=1e-3):
                hits.append(np.array_equal(np.asarray(mine.dataobj), np.asarray(ref.dataobj)))
        assert hits == [True], folder


def test_copied_still_without_position_counted_once(tmp_path):
    """An ultrasound still copied under a new SOPInstanceUID (same InstanceNumber and pixels)."""
    picture = colour_picture()
    write_colour_image(tmp_path / "a.dcm", picture, seed=47, instance=1)
    write_colour_image(tmp_path / "b.dcm", np.roll(picture, 3, axis=0), seed=47, instance=2)
    ds = pydicom.dcmread(tmp_path / "a.dcm")
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.6.8"
    ds.save_as(tmp_path / "c.dcm")
    scan = scan_dicom(tmp_path)
    (series,) = scan.series.values()
    assert series.shape == (72, 64, 2)
    assert {Path(f.path).name: f.status for f in scan.files} == {"a.dcm": "read", "b.dcm": "read",
                                                                "c.dcm": "duplicate"}
