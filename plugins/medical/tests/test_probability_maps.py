"""`ssl-domains medical probability-maps`: NIfTI maps aligned with the inputs, and case scores."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner

from ssl_domains.config import parse_config
from ssl_domains.engine.finetune import finetune

REPO = Path(__file__).resolve().parents[3]
NIFTI = REPO / "sample_data" / "medical" / "nifti"


@pytest.mark.skipif(not (NIFTI / "train.csv").is_file(), reason="sample data not generated")
def test_maps_are_aligned_with_inputs(tmp_path: Path) -> None:
    patches = {"loader": "image_manifest", "patch_size": 16, "patches_per_case": 4, "min_overlap": 0.01,
               "loader_args": {"path": str(NIFTI / "train.csv"), "modality": "CT"}}
    cfg = parse_config({
        "name": "pm", "output_dir": str(tmp_path),
        "backbone": {"name": "resnet_encoder", "args": {"spatial_dims": 3, "depth": 10, "width": 4}},
        "finetune": {"data": {"train": {"name": "tumor_patches", "args": patches}, "batch_size": 8,
                              "val_fraction": 0.25},
                     "task": {"name": "tumor_patch_detection"}, "from_scratch": True,
                     "train": {"epochs": 1, "max_steps": 2, "progress": False}},
    })
    finetune(cfg, tmp_path / "pm")
    from ssl_domains_medical.commands import medical

    out = tmp_path / "maps"
    res = CliRunner().invoke(medical, ["probability-maps", str(tmp_path / "pm"), "--loader", "image_manifest",
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
    from ssl_domains.plugins import get_host

    ds = get_host().registry.create("loader", "image_manifest", path=str(NIFTI / "test.csv"), modality="CT")
    first = ds[0]
    saved = nib.load(out / f"{first['meta']['id']}_prob.nii.gz")
    assert np.allclose(saved.affine, np.asarray(first["meta"]["affine"]))
