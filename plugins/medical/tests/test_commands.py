"""``ssl-domains medical convert`` / ``scan`` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import click
import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner
from ssl_domains_medical import plugin
from ssl_domains_medical.loaders.synthetic import ct_phantom, write_ct_series

from ssl_domains.errors import DataError

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
    assert errors == ["4-D series (2 time points x 6 slices); pass allow_4d=True to keep it as 4-D, "
                      "or select one time point"]
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
