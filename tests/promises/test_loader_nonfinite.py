"""Promise: non-finite voxels (NaN, inf) in medical volumes are treated as the time-series
loaders treat non-finite samples: reported per volume with counts, ``nonfinite: mask|refuse``,
and a volume with no finite voxel is skipped as unreadable (listed in ``skipped.json``); a
dataset of such volumes stops the run instead of training on nothing."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner

from ssl_domains.cli import cli

from .test_loader_skips import pretrain_config


def _volumes(folder: Path, n: int, nan: dict[int, str]) -> None:
    """``n`` 16^3 volumes; ``nan[i]`` = ``"all"`` (every voxel NaN) or ``"some"`` (2 NaN, 1 inf)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(0)
    for i in range(n):
        data = (rng.rand(16, 16, 16) * 400 - 100).astype(np.float32)
        if nan.get(i) == "all":
            data[:] = np.nan
        elif nan.get(i) == "some":
            data[3, 4, 5] = data[9, 9, 9] = np.nan
            data[10, 1, 2] = np.inf
        nib.save(nib.Nifti1Image(data, np.eye(4)), str(folder / f"DOE_JOHN_{i:02d}.nii.gz"))


def _pretrain(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command in its own process, as a user runs it (errors: one line on stderr)."""
    return subprocess.run([sys.executable, "-m", "ssl_domains.cli", "pretrain", str(cfg), *args],
                          capture_output=True, text=True, timeout=300)


def _loader(data: Path) -> dict:
    return {"name": "nifti", "args": {"path": str(data), "spatial_size": 16}}


def test_volumes_that_are_all_nan_stop_the_run_instead_of_training(tmp_path: Path) -> None:
    _volumes(tmp_path / "data", 8, {i: "all" for i in range(8)})
    res = _pretrain(pretrain_config(tmp_path, _loader(tmp_path / "data")))
    assert res.returncode == 1
    line = res.stderr.strip().splitlines()[-1]
    assert "all 4096 voxels are non-finite" in line and "Traceback" not in res.stderr
    assert not list((tmp_path / "runs").rglob("*.safetensors"))


def test_one_all_nan_volume_is_skipped_as_unreadable_and_listed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _volumes(tmp_path / "data", 32, {7: "all"})  # 1 of 24 training items: within the 5 % allowed
    cfg = pretrain_config(tmp_path, _loader(tmp_path / "data"))
    res = CliRunner().invoke(cli, ["pretrain", str(cfg), "--set", "pretrain.train.max_steps=6"])
    assert res.exit_code == 0, res.output
    items = json.loads((tmp_path / "runs" / "r" / "skipped.json").read_text())["items"]
    assert [(e["when"], e["reason"]) for e in items] == [
        ("reading", "unreadable: all 4096 voxels are non-finite (NaN, inf or -inf)")]
    assert "DOE" not in json.dumps(items) and "DOE" not in caplog.text


def test_some_nan_and_inf_voxels_are_reported_with_counts_and_masked_or_refused(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _volumes(tmp_path / "data", 8, {2: "some"})
    cfg = pretrain_config(tmp_path, _loader(tmp_path / "data"))
    caplog.set_level(logging.WARNING)
    res = CliRunner().invoke(cli, ["pretrain", str(cfg)])
    assert res.exit_code == 0, res.output
    (warning,) = {r.getMessage() for r in caplog.records if "non-finite" in r.getMessage()}
    assert ("3 non-finite voxel(s) (NaN, inf, -inf or beyond float32's range), first at voxel (3, 4, 5) "
            "of 4096; given the volume's lowest finite value") in warning
    assert "DOE" not in caplog.text

    from ssl_domains_medical.loaders.nifti import NiftiDataset

    ds = NiftiDataset(str(tmp_path / "data"), intensity="none")
    image = ds[2]["image"]
    assert bool(image.isfinite().all()) and float(image[0, 3, 4, 5]) == float(image.min())
    assert ds.nonfinite_found == [{"id": ds.records[2]["id"], "count": 3, "of": 4096, "first_voxel": [3, 4, 5]}]

    res = _pretrain(cfg, "--out", str(tmp_path / "refused"), "--set", "pretrain.data.train.args.nonfinite=refuse")
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == (
        f"Error: {tmp_path / 'data' / 'DOE_JOHN_02.nii.gz'}: 3 non-finite voxel(s) (NaN, inf, -inf or beyond "
        "float32's range), first at voxel (3, 4, 5); fix the data or pass nonfinite='mask' to give them "
        "the volume's lowest finite value")
