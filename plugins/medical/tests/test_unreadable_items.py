"""A ``.nii.gz`` that breaks only when read (cut short) is skipped during a run, listed in the
run's ``skipped.json`` by position and opaque id, and too many of them stop the run."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ssl_domains.config import RunConfig, parse_config
from ssl_domains.engine.pretrain import pretrain
from ssl_domains.errors import DataError
from ssl_domains.plugins import get_host


def _volumes(folder: Path, n: int, bad: list[int]) -> list[Path]:
    """``n`` small CT-like volumes; those in ``bad`` are written whole, then cut short (the
    header still reads, so the loader accepts them when built and they fail when read)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(0)
    broken = []
    for i in range(n):
        path = folder / f"vol_{i:02d}.nii.gz"
        data = (rng.rand(16, 16, 16) * 400 - 100).astype(np.float32)
        nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
        if i in bad:
            raw = path.read_bytes()
            path.write_bytes(raw[: len(raw) // 2])
            broken.append(path)
    return broken


def _config(tmp_path: Path, data: Path, name: str, epochs: int = 2, max_steps: int | None = None) -> RunConfig:
    return parse_config({
        "name": name,
        "output_dir": str(tmp_path / "runs"),
        "backbone": {"name": "resnet_encoder", "args": {"spatial_dims": 3, "depth": 10, "width": 4}},
        "pretrain": {
            "data": {"train": {"name": "nifti", "args": {"path": str(data), "modality": "CT",
                                                         "spatial_size": 16}},
                     "batch_size": 4, "val_fraction": 0.25},
            "task": {"name": "masked_inpainting", "args": {"mask_ratio": 0.5, "block_size": 4,
                                                           "decoder_width": 8}},
            "train": {"epochs": epochs, "max_steps": max_steps, "checkpoint_every": 2,
                      "progress": False, "warmup_steps": 0},
        },
    })


def test_a_truncated_nifti_is_checked_at_read_time_not_at_start(tmp_path: Path) -> None:
    broken = _volumes(tmp_path / "data", 3, bad=[1])
    from ssl_domains_medical.loaders.nifti import NiftiDataset

    ds = NiftiDataset(str(tmp_path / "data"), spatial_size=16)
    assert len(ds) == 3 and not ds.skipped  # the header reads: only the voxels are missing
    with pytest.raises(DataError, match="unreadable NIfTI"):
        ds[1]
    assert broken[0].name.startswith("vol_01")


def test_truncated_nifti_skipped_during_pretraining_and_listed(tmp_path: Path, caplog) -> None:
    broken = _volumes(tmp_path / "data", 32, bad=[5])
    caplog.set_level(logging.WARNING)
    summary = pretrain(_config(tmp_path, tmp_path / "data", "one-bad"), tmp_path / "runs" / "one-bad", registry=get_host().registry)
    run = tmp_path / "runs" / "one-bad"
    assert summary["steps"] > 0 and (run / "export" / "backbone.safetensors").is_file()

    listed = json.loads((run / "skipped.json").read_text())["items"]
    assert len(listed) == 1
    entry = listed[0]
    assert entry["stage"] == "pretrain" and entry["when"] == "reading"
    assert entry["role"] in ("training", "validation") and 1 <= entry["item"] <= entry["of"]
    assert entry["reason"].startswith("unreadable NIfTI") and len(entry["id"]) == 16
    # logged once, by position and opaque id; the file's name appears nowhere
    warnings = [r.getMessage() for r in caplog.records if "unreadable, skipped" in r.getMessage()]
    assert len(warnings) == 1 and entry["id"] in warnings[0]
    text = (run / "skipped.json").read_text() + "\n".join(r.getMessage() for r in caplog.records)
    assert broken[0].stem.split(".")[0] not in text and str(tmp_path) not in text


def test_resume_after_a_skipped_item_does_not_die_on_it(tmp_path: Path) -> None:
    _volumes(tmp_path / "data", 32, bad=[5])
    run = tmp_path / "runs" / "resumed"
    # stopped part-way through the first epoch (as a kill would), then resumed to the end:
    # the damaged file comes round again in the second epoch
    pretrain(_config(tmp_path, tmp_path / "data", "resumed", max_steps=3), run, registry=get_host().registry)
    summary = pretrain(_config(tmp_path, tmp_path / "data", "resumed", epochs=2), run, resume=True, registry=get_host().registry)
    assert summary["steps"] == 12  # two full epochs of 6 batches
    listed = json.loads((run / "skipped.json").read_text())["items"]
    assert [e["when"] for e in listed] == ["reading"]  # listed once, whichever part met it


def test_more_than_five_percent_unreadable_stops_the_run(tmp_path: Path) -> None:
    _volumes(tmp_path / "data", 12, bad=[2, 4, 7, 9])
    with pytest.raises(DataError, match=r"items unreadable, more than the 5% allowed") as info:
        pretrain(_config(tmp_path, tmp_path / "data", "many-bad"), tmp_path / "runs" / "many-bad", registry=get_host().registry)
    assert "\n" not in str(info.value) and "vol_" not in str(info.value)
    listed = json.loads((tmp_path / "runs" / "many-bad" / "skipped.json").read_text())["items"]
    assert len(listed) >= 1


def test_a_file_refused_at_start_is_logged_once_without_its_name(tmp_path: Path, caplog) -> None:
    from ssl_domains.config import ComponentRef
    from ssl_domains.data.datasets import build_dataset

    _volumes(tmp_path / "data", 2, bad=[])
    (tmp_path / "data" / "SMITH_ANN_scan.nii.gz").write_bytes(b"not a NIfTI file")
    caplog.set_level(logging.INFO)
    ds = build_dataset(get_host().registry, ComponentRef(name="nifti", args={"path": str(tmp_path / "data")}),
                       "pre-training")
    assert len(ds) == 2
    lines = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(lines) == 1 and "file 1 of 3: unreadable NIfTI: ImageFileError" in lines[0]
    assert "SMITH" not in lines[0] and str(tmp_path) not in lines[0]
