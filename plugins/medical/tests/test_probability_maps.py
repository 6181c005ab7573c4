"""`ssl-domains medical probability-maps`: NIfTI maps aligned with the inputs, and case scores;
they and `predict` name cases by opaque id, and `--mapping FILE` joins ids back to the files
(a private file, refused inside or beside the shareable output)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner

from ssl_domains.cli import cli
from ssl_domains.config import parse_config
from ssl_domains.engine.finetune import finetune
from ssl_domains.errors import ConfigError
from ssl_domains.plugins import get_host

REPO = Path(__file__).resolve().parents[3]
NIFTI = REPO / "sample_data" / "medical" / "nifti"


@pytest.fixture(scope="module")
def detector_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tumor patch detector fine-tuned for 2 steps on the sample cases."""
    if not (NIFTI / "train.csv").is_file():
        pytest.skip("sample data not generated")
    tmp = tmp_path_factory.mktemp("detector")
    patches = {"loader": "image_manifest", "patch_size": 16, "patches_per_case": 4, "min_overlap": 0.01,
               "loader_args": {"path": str(NIFTI / "train.csv"), "modality": "CT"}}
    cfg = parse_config({
        "name": "pm", "output_dir": str(tmp),
        "backbone": {"name": "resnet_encoder", "args": {"spatial_dims": 3, "depth": 10, "width": 4}},
        "finetune": {"data": {"train": {"name": "tumor_patches", "args": patches}, "batch_size": 8,
                              "val_fraction": 0.25},
                     "task": {"name": "tumor_patch_detection"}, "from_scratch": True,
                     "train": {"epochs": 1, "max_steps": 2, "progress": False}},
    })
    finetune(cfg, tmp / "pm", registry=get_host().registry)
    return tmp / "pm"


def test_maps_are_aligned_with_inputs(detector_run: Path, tmp_path: Path) -> None:
    from ssl_domains_medical.commands import medical

    out = tmp_path / "maps"
    res = CliRunner().invoke(medical, ["probability-maps", str(detector_run), "--loader", "image_manifest",
                                       "--arg", f"path={NIFTI / 'test.csv'}", "--arg", "modality=CT",
                                       "--roi", "16", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((out / "scores.csv").open()))
    assert len(rows) == 4 and all(0.0 <= float(r["score"]) <= 1.0 for r in rows)
    for r in rows:
        assert "case_" not in r["id"]  # hashed ids, not file names
        prob = nib.load(out / r["map"])
        assert prob.shape == (32, 32, 32)
        assert nib.aff2axcodes(prob.affine) == ("R", "A", "S")
        data = np.asarray(prob.dataobj)
        assert data.min() >= 0.0 and data.max() <= 1.0
    # the map sits where the input volume sits (same RAS affine as the loaded case)

    ds = get_host().registry.create("loader", "image_manifest", path=str(NIFTI / "test.csv"), modality="CT")
    first = ds[0]
    saved = nib.load(out / f"{first['meta']['id']}_prob.nii.gz")
    assert np.allclose(saved.affine, np.asarray(first["meta"]["affine"]))


def _inputs(path: Path) -> dict[str, str]:
    return {e["id"]: e["input"] for e in json.loads(path.read_text())["items"]}


def test_predict_mapping_joins_opaque_ids_back_to_the_files(detector_run: Path, tmp_path: Path) -> None:
    share, private = tmp_path / "share", tmp_path / "private"
    args = ["predict", str(detector_run), "--loader", "image_manifest", "--arg", f"path={NIFTI / 'test.csv'}",
            "--arg", "modality=CT", "--out", str(share / "predictions.csv")]
    res = CliRunner().invoke(cli, [*args, "--mapping", str(private / "ids.json")])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((share / "predictions.csv").open()))
    assert len(rows) == 4 and not any("case_" in r["id"] for r in rows)  # shareable: opaque ids only
    inputs = _inputs(private / "ids.json")
    assert sorted(inputs) == sorted(r["id"] for r in rows)
    assert sorted(Path(v).name for v in inputs.values()) == [f"case_{i}.nii.gz" for i in (12, 13, 14, 15)]
    assert list(share.iterdir()) == [share / "predictions.csv"]  # nothing else beside the CSV

    res = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "again.csv"), "--mapping", str(tmp_path / "ids.json")])
    assert isinstance(res.exception, ConfigError)
    assert str(res.exception).startswith(f"--mapping {tmp_path / 'ids.json'}: beside {tmp_path / 'again.csv'}, "
                                         "which is meant for sharing")
    assert not (tmp_path / "again.csv").exists() and not (tmp_path / "ids.json").exists()


def test_probability_maps_mapping_names_each_case_and_is_refused_in_the_output(detector_run: Path, tmp_path: Path) -> None:
    from ssl_domains_medical.commands import medical

    args = ["probability-maps", str(detector_run), "--loader", "image_manifest", "--arg", f"path={NIFTI / 'test.csv'}",
            "--arg", "modality=CT", "--roi", "16", "--out", str(tmp_path / "maps")]
    res = CliRunner().invoke(medical, [*args, "--mapping", str(tmp_path / "maps" / "ids.json")])
    assert isinstance(res.exception, ConfigError) and "which is meant for sharing" in str(res.exception)
    assert not (tmp_path / "maps").exists()  # refused before anything is written

    res = CliRunner().invoke(medical, [*args, "--mapping", str(tmp_path / "ids.json")])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((tmp_path / "maps" / "scores.csv").open()))
    inputs = _inputs(tmp_path / "ids.json")
    assert sorted(inputs) == sorted(r["id"] for r in rows) and len(rows) == 4
    assert all(Path(inputs[r["id"]]).name.startswith("case_1") for r in rows)
