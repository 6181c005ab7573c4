"""Promise: every input a loader skips, at start-up or while reading, is listed in the run
folder's ``skipped.json`` (stage, role, opaque id, reason), never by its path or file name."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import yaml
from click.testing import CliRunner

from ssl_domains.cli import cli


def _volumes(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(0)
    for i in range(n):
        data = (rng.rand(16, 16, 16) * 400 - 100).astype(np.float32)
        nib.save(nib.Nifti1Image(data, np.eye(4)), str(folder / f"vol_{i:02d}.nii.gz"))


def pretrain_config(tmp_path: Path, loader: dict, name: str = "r") -> Path:
    """A tiny 3-D pre-training config over ``loader`` (2 steps)."""
    cfg = {
        "name": name,
        "output_dir": str(tmp_path / "runs"),
        "backbone": {"name": "resnet_encoder", "args": {"spatial_dims": 3, "depth": 10, "width": 4}},
        "pretrain": {
            "data": {"train": loader, "batch_size": 4, "val_fraction": 0.25},
            "task": {"name": "masked_inpainting",
                     "args": {"mask_ratio": 0.5, "block_size": 4, "decoder_width": 8}},
            "train": {"epochs": 1, "max_steps": 2, "progress": False, "warmup_steps": 0},
        },
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_zero_byte_nifti_and_dicom_junk_skipped_at_start_up_are_listed_in_skipped_json(tmp_path: Path) -> None:
    data = tmp_path / "SMITH_JANE"
    _volumes(data, 8)
    (data / "SMITH_JANE_MRN67890.nii.gz").write_bytes(b"")  # zero bytes: skipped at start-up
    cfg = pretrain_config(tmp_path, {"name": "nifti", "args": {"path": str(data), "spatial_size": 16}})
    res = CliRunner().invoke(cli, ["pretrain", str(cfg)])
    assert res.exit_code == 0, res.output
    listed = json.loads((tmp_path / "runs" / "r" / "skipped.json").read_text())["items"]
    assert len(listed) == 1  # the training and validation parts of the one loader share it
    (entry,) = listed
    assert entry["stage"] == "pretrain" and entry["when"] == "start-up"
    assert entry["reason"].startswith("file 1 of 9: unreadable NIfTI")
    assert len(entry["file"]) == 16 and "SMITH" not in json.dumps(listed)

    dicom = tmp_path / "dicom"
    from ssl_domains_medical.loaders.synthetic import ct_phantom, write_ct_series

    for k in range(4):
        write_ct_series(dicom / f"s{k}", ct_phantom((8, 16, 16), [], seed=k), spacing=(2.0, 1.0, 1.0),
                        seed=30 + k)
    (dicom / "junk.dcm").write_bytes(bytes(128) + b"DICM" + bytes(200))  # DICOM preamble, no header
    cfg = pretrain_config(tmp_path, {"name": "dicom", "args": {"root": str(dicom), "spatial_size": 16,
                                                               "patch_size": 8, "patches_per_volume": 4}},
                          name="d")
    res = CliRunner().invoke(cli, ["pretrain", str(cfg)])
    assert res.exit_code == 0, res.output
    listed = json.loads((tmp_path / "runs" / "d" / "skipped.json").read_text())["items"]
    assert [(e["stage"], e["when"]) for e in listed] == [("pretrain", "start-up")]
    assert "junk" not in json.dumps(listed)
