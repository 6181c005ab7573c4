"""``ssl-domains medical convert`` / ``scan`` through click's CliRunner."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import nibabel as nib
import numpy as np
import pydicom
import pytest
from click.testing import CliRunner
from pydicom.dataelem import RawDataElement
from pydicom.encaps import encapsulate, generate_frames
from pydicom.tag import Tag
from pydicom.uid import JPEGBaseline8Bit
from ssl_domains_medical import plugin
from ssl_domains_medical.loaders.synthetic import ct_phantom, write_colour_image, write_ct_series

from ssl_domains.errors import ConfigError, DataError

SAMPLE_DICOM = Path(__file__).resolve().parents[3] / "sample_data" / "medical" / "dicom"


@pytest.fixture(scope="module")
def cli() -> click.Group:
    group = click.Group()
    plugin.register_commands(group)
    return group


def test_convert_sample_series(cli, tmp_path):
    result = CliRunner().invoke(cli, ["medical", "convert", str(SAMPLE_DICOM), str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "wrote 4 of 4 series" in result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["files"] == {"read": 96, "ignored": 1, "skipped": 1}
    problems = {f["status"]: f for f in report["problem_files"]}
    assert sorted(problems) == ["ignored", "skipped"]
    assert problems["skipped"]["reason"].startswith("truncated or incomplete image header")
    assert all(len(f["file_id"]) == 13 for f in report["problem_files"])  # opaque ids, no paths
    assert "corrupt" not in json.dumps(report) and "study_b" not in json.dumps(report)
    # the console names each file not read once, by its path
    assert result.output.count("study_b/corrupt.dcm: skipped: truncated") == 1
    assert result.output.count("NOTES.txt: ignored: not a DICOM file") == 1
    outputs = sorted(s["output"] for s in report["series"])
    assert outputs == sorted(f"{s['series_id']}.nii.gz" for s in report["series"])
    assert sorted(p.name for p in tmp_path.glob("*.nii.gz")) == outputs
    img = nib.load(str(tmp_path / outputs[0]))
    assert img.shape in {(48, 48, 24)} and img.get_data_dtype() == np.float32
    assert float(img.get_fdata().min()) == -1024.0  # HU


def test_no_header_identifiers_in_outputs(cli, tmp_path):
    runner = CliRunner()
    converted = runner.invoke(cli, ["medical", "convert", str(SAMPLE_DICOM), str(tmp_path)])
    scanned = runner.invoke(cli, ["medical", "scan", str(SAMPLE_DICOM)])
    scanned_json = runner.invoke(cli, ["medical", "scan", "--json", str(SAMPLE_DICOM)])
    blobs = [converted.output, scanned.output, scanned_json.output]
    blobs += [p.read_bytes().decode("latin-1") for p in tmp_path.iterdir()]
    blobs += [nib.load(str(p)).header.binaryblock.decode("latin-1") for p in tmp_path.glob("*.nii.gz")]
    for text in blobs:
        for secret in ("DEMO^PATIENT", "DEMO", "DEMO-0001", "19700101", "DEMO-ACC-1"):
            assert secret not in text.upper()


def test_scan_table(cli):
    result = CliRunner().invoke(cli, ["medical", "scan", str(SAMPLE_DICOM)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["series_id", "modality", "type", "shape", "spacing_mm", "slices", "problems"]
    assert sum(" CT " in line for line in lines) == 4
    assert "48x48x24" in result.output and "0.8x0.8x2.5" in result.output
    assert any(line.startswith("skipped study_b/corrupt.dcm: truncated") for line in lines)
    assert sum(" magnitude " in line for line in lines) == 4
    assert "1 non-DICOM file(s) ignored" in result.output


def test_problems_and_4d_refusal_reported(cli, tmp_path):
    vol = ct_phantom((6, 8, 8))
    positions = [(0.0, 0.0, z) for z in (0, 2, 4, 10, 12, 14)]
    write_ct_series(tmp_path / "in" / "gap", vol, positions=positions, seed=41)
    vol4 = np.concatenate([vol, vol])
    write_ct_series(tmp_path / "in" / "4d", vol4, positions=[(0.0, 0.0, 2.0 * (k % 6)) for k in range(12)],
                    per_slice=[{"TemporalPositionIdentifier": 1 + k // 6} for k in range(12)], seed=42)
    runner = CliRunner()
    scan = runner.invoke(cli, ["medical", "scan", str(tmp_path / "in")])
    assert "missing slices: gap of 6.00 mm after slice 2" in scan.output
    assert "6x2t" in scan.output
    result = runner.invoke(cli, ["medical", "convert", str(tmp_path / "in"), str(tmp_path / "out")])
    assert result.exit_code == 0 and "wrote 1 of 2 series" in result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    errors = [s["error"] for s in report["series"] if s["error"]]
    assert errors == ["4-D series (2 time points x 6 slices); rerun with --allow-4d to write it as 4-D NIfTI"]
    assert "not written: 4-D series (2 time points x 6 slices); rerun with --allow-4d" in result.output
    ok = runner.invoke(cli, ["medical", "convert", "--allow-4d", str(tmp_path / "in"), str(tmp_path / "o2")])
    assert "wrote 2 of 2 series" in ok.output
    shapes = sorted(nib.load(str(p)).shape for p in (tmp_path / "o2").glob("*.nii.gz"))
    assert shapes == [(8, 8, 6), (8, 8, 6, 2)]


def test_errors_are_one_line(cli, tmp_path):
    (tmp_path / "a.txt").write_text("x")
    result = CliRunner().invoke(cli, ["medical", "scan", str(tmp_path)])
    assert isinstance(result.exception, DataError)
    assert str(result.exception) == (f"{tmp_path}: no DICOM image series found (1 files looked at; "
                                     "not a DICOM file (no DICM preamble))")
    missing = CliRunner().invoke(cli, ["medical", "convert", str(tmp_path / "nope"), str(tmp_path / "o")])
    assert isinstance(missing.exception, DataError) and str(missing.exception).endswith("folder not found")


def _raw(ds: pydicom.Dataset, tag: int, vr: str, value: bytes) -> None:
    """Put a value in a header as stored bytes (pydicom would refuse to set it)."""
    ds._dict[Tag(tag)] = RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)


def odd_folder(root: Path) -> tuple[str, str]:
    """A folder of broken and odd files beside one good series; returns the names of the file
    with an invalid UID and of the file with cut pixel data."""
    good = write_ct_series(root / "good", ct_phantom((3, 8, 8)), seed=51)
    ds = pydicom.dcmread(good[0])
    _raw(ds, 0x00080018, "UI", b"1.2.03.4\x00")  # invalid UID: pydicom logs *and* warns
    ds.save_as(good[0])
    bad = write_ct_series(root / "badpix", ct_phantom((3, 8, 8)), seed=52)
    ds = pydicom.dcmread(bad[1])
    ds.PixelData = ds.PixelData[:10]
    ds.save_as(bad[1])
    (root / "garbage.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x08\x00\x05\x11SQ\x00\x00"
                                       + b"\xff\xff\xff\x7f\xfe\xff\x00\xe0\xff")
    (root / "trunc.dcm").write_bytes(good[1].read_bytes()[:300])
    (root / "notes.txt").write_text("x")
    jpeg = write_colour_image(root / "us" / "still.dcm", np.full((64, 64, 3), 90, np.uint8),
                              transfer_syntax=JPEGBaseline8Bit, seed=53)
    ds = pydicom.dcmread(jpeg)
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame[: len(frame) // 2]])  # a JPEG stream cut in half
    ds.save_as(jpeg)
    shutil.copy(good[2], root / "good" / "copy.dcm")
    return f"good/{good[0].name}", f"badpix/{bad[1].name}"


def test_convert_odd_folder_quiet_console(tmp_path):
    """The real command line: no traceback, each problem file named once, a summary line last."""
    warned, cut = odd_folder(tmp_path / "in")
    run = subprocess.run([sys.executable, "-m", "ssl_domains.cli", "medical", "convert",
                          str(tmp_path / "in"), str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": ""})
    console = run.stdout + run.stderr
    assert run.returncode == 0, console
    assert "Traceback" not in console and "WARNING" not in console and "UserWarning" not in console
    lines = console.strip().splitlines()
    expected = {
        cut: "undecodable: cannot decode pixel data (Explicit VR Little Endian)",
        "garbage.dcm": "skipped: unreadable DICOM header",
        warned: "read with warnings [Invalid value for VR UI: '…'.]",
        "good/copy.dcm": "duplicate: same SOPInstanceUID as another file (counted once)",
        "notes.txt": "ignored: not a DICOM file",
        "trunc.dcm": "skipped: truncated or incomplete image header",
        "us/still.dcm": "undecodable: cannot decode pixel data (JPEG Baseline (Process 1))",
    }
    for name, text in expected.items():
        named = [ln for ln in lines if ln.startswith(f"{name}: ")]
        assert len(named) == 1 and named[0].startswith(f"{name}: {text}"), (name, lines)
    assert len(lines) == len(expected) + 1
    assert lines[-1].startswith("wrote 1 of 3 series to ") and "2 not written" in lines[-1]
    assert "1 duplicate, 1 ignored, 2 skipped, 2 undecodable" in lines[-1]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["files"] == {"read": 5, "duplicate": 1, "ignored": 1, "skipped": 2, "undecodable": 2}
    statuses = sorted(f["status"] for f in report["problem_files"])
    assert statuses == ["duplicate", "ignored", "read", "skipped", "skipped", "undecodable", "undecodable"]
    warned = [f for f in report["problem_files"] if f["status"] == "read"]
    assert warned[0]["messages"] == ["Invalid value for VR UI: '…'."]  # once, value redacted


IDENTIFIERS = ("DOE", "JOHN", "MRN4711", "19591231", "20240229", "ACC998877")


def test_convert_outputs_carry_no_identifiers_from_paths_or_headers(cli, tmp_path):
    src = tmp_path / "in" / "DOE^JOHN_MRN4711" / "20240229_CT"
    headers = {"PatientID": "MRN4711", "PatientBirthDate": "19591231", "StudyDate": "20240229",
               "AccessionNumber": "ACC998877", "SeriesDescription": "DOE JOHN chest"}
    paths = write_ct_series(src, ct_phantom((4, 8, 8)), seed=54, patient_name="DOE^JOHN",
                            per_slice=[headers] * 4)
    for k, p in enumerate(paths):
        p.rename(p.with_name(f"DOE_JOHN_MRN4711_{k}.dcm"))
    write_colour_image(tmp_path / "in" / "DOE^JOHN_MRN4711" / "us_19591231.dcm",
                       np.full((64, 64, 3), 120, np.uint8), seed=55)
    out, mapping = tmp_path / "share", tmp_path / "private" / "map.json"
    inside = CliRunner().invoke(cli, ["medical", "convert", str(tmp_path / "in"), str(out),
                                      "--mapping", str(out / "map.json")])
    assert isinstance(inside.exception, ConfigError) and "meant for sharing" in str(inside.exception)
    result = CliRunner().invoke(cli, ["medical", "convert", str(tmp_path / "in"), str(out), "--mapping",
                                      str(mapping)])
    assert result.exit_code == 0, result.output
    assert "wrote 2 of 2 series" in result.output
    outputs = sorted(out.iterdir())
    assert [p.suffix for p in outputs] == [".gz", ".gz", ".json"]
    blobs = {"console": result.output}
    for p in outputs:
        blobs[p.name] = p.read_bytes().decode("latin-1")
        if p.name.endswith(".nii.gz"):
            img = nib.load(str(p))
            blobs[p.name + " header"] = img.header.binaryblock.decode("latin-1")
            blobs[p.name + " voxels"] = gzip.decompress(p.read_bytes()).decode("latin-1")
            assert img.header["descrip"].item() == b"" and img.header["intent_name"].item() == b""
    for where, text in blobs.items():
        for secret in IDENTIFIERS:
            assert secret not in text.upper(), (secret, where)
    # the local mapping, written only on request, leads back from paths to ids
    rows = json.loads(mapping.read_text())["files"]
    assert len(rows) == 5 and all("DOE^JOHN_MRN4711" in r["path"] for r in rows)
    report = json.loads((out / "report.json").read_text())
    assert {r["series_id"] for r in rows} == {s["series_id"] for s in report["series"]}


def test_scan_lists_stacks_with_types_time_points_and_refusals(cli, tmp_path):
    vol = ct_phantom((3, 8, 8))
    types = [["ORIGINAL", "PRIMARY", "M" if k < 3 else "P"] for k in range(6)]
    write_ct_series(tmp_path / "mp", np.concatenate([vol, vol]), modality="MR", seed=61,
                    positions=[(0.0, 0.0, 2.0 * (k % 3)) for k in range(6)],
                    per_slice=[{"ImageType": t} for t in types])
    write_ct_series(tmp_path / "ge", np.concatenate([vol, vol + 1]), modality="MR", seed=62, shuffle=False,
                    positions=[(0.0, 0.0, 2.0 * (k % 3)) for k in range(6)])
    write_ct_series(tmp_path / "dup", vol, positions=[(0.0, 0.0, z) for z in (0, 0, 2)], seed=63)
    result = CliRunner().invoke(cli, ["medical", "scan", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines()[1:]}
    phase = [r for sid, r in rows.items() if sid.endswith("_ph")]
    assert len(phase) == 1 and "  phase  " in phase[0] and "8x8x3 " in phase[0]
    assert sum("8x8x3x2" in r and " 3x2t " in r for r in rows.values()) == 1  # the GE-style 4-D
    refused = [r for r in rows.values() if "REFUSED: 3 images at 2 positions" in r]
    assert len(refused) == 1
    as_json = json.loads(CliRunner().invoke(cli, ["medical", "scan", "--json", str(tmp_path)]).output)
    kinds = sorted((s["image_type"], s["timepoints"], bool(s["refused"])) for s in as_json["series"])
    assert kinds == [("magnitude", 0, True), ("magnitude", 1, False), ("magnitude", 2, False), ("phase", 1, False)]


def test_convert_debug_adds_the_decoders_traceback(cli, tmp_path):
    odd_folder(tmp_path / "in")
    quiet = CliRunner().invoke(cli, ["medical", "convert", str(tmp_path / "in"), str(tmp_path / "a")])
    loud = CliRunner().invoke(cli, ["medical", "convert", "--debug", str(tmp_path / "in"), str(tmp_path / "b")])
    assert quiet.exit_code == loud.exit_code == 0
    assert "Traceback" not in quiet.output
    assert loud.output.count("Traceback (most recent call last)") == 2  # the two undecodable files
    assert "RuntimeError: Unable to decode" in loud.output
