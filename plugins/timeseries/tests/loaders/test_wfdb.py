"""WFDB loader on a record written here with ``wfdb.wrsamp`` and ``wfdb.wrann``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import wfdb
from ssl_domains_timeseries.loaders.wfdb import WFDBDataset

from ssl_domains.errors import DataError

BEATS = [100, 300, 500, 700, 900]
SYMBOLS = ["N", "V", "N", "+", "A"]  # "+" is a rhythm change, not a beat


@pytest.fixture
def record(tmp_path: Path) -> Path:
    t = np.arange(1000) / 250.0
    sig = np.stack([np.sin(2 * np.pi * t), 0.5 * np.cos(2 * np.pi * t)], axis=1)
    wfdb.wrsamp("rec1", fs=250, units=["mV", "mV"], sig_name=["MLII", "V5"], p_signal=sig,
                fmt=["16", "16"], write_dir=str(tmp_path))
    wfdb.wrann("rec1", "atr", np.array(BEATS), symbol=SYMBOLS, write_dir=str(tmp_path))
    return tmp_path / "rec1"


def test_point_labels(record: Path) -> None:
    ds = WFDBDataset(str(record), window=200, beat_before=20, beat_after=30)
    assert ds.channel_names == ["MLII", "V5"] and len(ds) == 5
    # abnormal beats at 300 (V) and 900 (A): windows [200, 400) and [800, 1000)
    assert ds.labels == [0, 1, 0, 0, 1]
    assert ds[0]["meta"]["fs"] == 250.0
    assert abs(float(ds[0]["signal"][0, 50]) - np.sin(2 * np.pi * 50 / 250)) < 1e-3


def test_beat_items(record: Path) -> None:
    ds = WFDBDataset(str(record) + ".hea", channels=["V5"], label_mode="beat",
                     beat_before=50, beat_after=50)
    assert len(ds) == 4 and ds.labels == [0, 1, 0, 1]
    assert ds[1]["signal"].shape == (1, 100) and ds[1]["meta"]["symbol"] == "V"
    assert ds[1]["meta"]["beat_sample"] == 300
    assert len(set(ds.groups)) == 1  # all beats of one record in one group


def test_beat_edges_padded(record: Path) -> None:
    ds = WFDBDataset(str(record), label_mode="beat", beat_before=150, beat_after=150,
                     label_map={"N": 0, "V": 1})
    assert ds.labels == [0, 1, 0]
    assert not ds[0]["mask"][:, :50].any() and ds[0]["mask"][:, 50:].all()


def test_unannotated_and_folder(record: Path) -> None:
    ds = WFDBDataset(str(record.parent), annotation=None, window=250)
    assert ds.labels is None and len(ds) == 4


def test_bad_input(record: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope.hea: WFDB header not found$"):
        WFDBDataset(str(tmp_path / "nope"))
    with pytest.raises(DataError, match=r"rec1.hea: unknown channel\(s\) \['II'\] \(available: MLII, V5\)$"):
        WFDBDataset(str(record), channels=["II"])
    with pytest.raises(DataError, match=r"rec1.qrs: annotation file not found"):
        WFDBDataset(str(record), annotation="qrs")
    with pytest.raises(DataError, match="label_mode must be one of"):
        WFDBDataset(str(record), label_mode="rhythm")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="folder has no WFDB .hea header files"):
        WFDBDataset(str(tmp_path / "empty"))
