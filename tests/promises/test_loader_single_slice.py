"""Promise: a 2-D image or a one-slice series in a 3-D pipeline (``dims: 3``) is refused by
every volume loader with one line naming the file (NIfTI, DICOM, a DICOM case folder);
``allow_2d: true`` uses it as a one-slice volume."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ssl_domains_medical.loaders.dicom import DicomDataset
from ssl_domains_medical.loaders.folders import CaseFoldersDataset

from ssl_domains.errors import DataError

from .test_loader_skips import pretrain_config

pydicom = pytest.importorskip("pydicom")
#: The DICOM files bundled inside the pydicom package (read from disk; nothing is fetched).
PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def _ct_small(folder: Path) -> Path:
    """pydicom's ``CT_small.dcm``: one 128 x 128 CT slice."""
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(PYDICOM_FILES / "CT_small.dcm", folder / "CT_small.dcm"))


def test_dicom_one_slice_series_with_dims_3_is_refused_like_nifti_through_the_cli(tmp_path: Path) -> None:
    path = _ct_small(tmp_path / "scans")
    cfg = pretrain_config(tmp_path, {"name": "dicom", "args": {"root": str(tmp_path / "scans"),
                                                               "spatial_size": 16}})
    res = subprocess.run([sys.executable, "-m", "ssl_domains.cli", "pretrain", str(cfg)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 1
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith(f"Error: {path}: 2-D image (128, 128, 1) given to a 3-D pipeline (dims=3); set dims=2 "
                           "for 2-D images, or allow_2d=True to use it as a one-slice volume"), line
    assert "Traceback" not in res.stderr
    assert not list((tmp_path / "runs").rglob("*.pt"))  # refused before any training


def test_dicom_one_slice_series_is_a_one_slice_volume_with_allow_2d_or_an_image_with_dims_2(tmp_path: Path) -> None:
    _ct_small(tmp_path / "scans")
    ds = DicomDataset(str(tmp_path / "scans"), allow_2d=True, intensity="none")
    assert ds[0]["image"].shape == (1, 128, 128, 1)
    assert DicomDataset(str(tmp_path / "scans"), dims=2, intensity="none")[0]["image"].shape == (1, 128, 128)
    assert len(DicomDataset(str(tmp_path / "scans"), min_slices=2)) == 0  # or left out on purpose


def test_a_case_folder_holding_a_one_slice_dicom_series_is_refused_when_read(tmp_path: Path) -> None:
    _ct_small(tmp_path / "cases" / "case1")
    ds = CaseFoldersDataset(str(tmp_path / "cases"), spatial_size=16)
    with pytest.raises(DataError, match=r"case1: 2-D image \(128, 128, 1\) given to a 3-D pipeline"):
        ds[0]
    ok = CaseFoldersDataset(str(tmp_path / "cases"), allow_2d=True, intensity="none")
    assert ok[0]["image"].shape == (1, 128, 128, 1)
