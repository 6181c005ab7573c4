"""Promise (the demo's first impression): the README's first command warns only about what is
wrong on purpose in the sample data, and says so; a real broken file never reads as expected."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from ssl_domains_medical.loaders.dicom import DicomDataset

from ssl_domains.config import ComponentRef
from ssl_domains.data.datasets import build_dataset
from ssl_domains.plugins import get_host
from tests.conftest import REPO

SAMPLE = REPO / "sample_data" / "medical"
EXPECTED = " (expected: a sample file broken on purpose, to show skipping)"


def test_the_medical_demo_loaders_skip_only_the_deliberately_broken_file(monkeypatch) -> None:
    monkeypatch.chdir(REPO)  # the demo config names sample_data/ relative to the repository
    cfg = yaml.safe_load((SAMPLE / "demo.yaml").read_text())
    refs = [cfg["pretrain"]["data"]["train"], cfg["pretrain"]["data"]["val"],
            cfg["finetune"]["data"]["train"], cfg["finetune"]["data"]["test"]]
    skipped = []
    for ref in refs:
        ds = build_dataset(get_host().registry, ComponentRef(**ref), "demo")
        skipped += [(Path(p).name, r) for p, r in ds.skipped]
    # no "no background patch found": every lesion case has a patch without lesion
    assert skipped == [("corrupt.dcm", "truncated or incomplete image header (no SeriesInstanceUID, Rows, "
                                       "Columns)" + EXPECTED)]


def test_a_real_truncated_dicom_is_not_reported_as_expected(tmp_path: Path) -> None:
    shutil.copytree(SAMPLE / "dicom" / "study_a" / "series_1", tmp_path / "s")
    marked = (SAMPLE / "dicom" / "study_b" / "corrupt.dcm").read_bytes()
    (tmp_path / "broken.dcm").write_bytes(bytes(128) + marked[128:])  # the same damage, no mark
    ds = DicomDataset(str(tmp_path))
    ((path, reason),) = ds.skipped
    assert Path(path).name == "broken.dcm" and not reason.endswith(EXPECTED) and "truncated" in reason
