"""NAB loader: anomaly windows from combined_windows.json become window labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ssl_domains_timeseries.loaders.nab import NABDataset

from ssl_domains.errors import DataError

ROOT = Path(__file__).resolve().parents[4]
SAMPLE = ROOT / "sample_data" / "timeseries" / "nab"
NAB = ROOT / ".." / "shared" / "data" / "nab"


@pytest.fixture
def nab(tmp_path: Path) -> Path:
    (tmp_path / "data" / "cat").mkdir(parents=True)
    rows = ["timestamp,value"] + [f"2020-01-01 00:{m:02d}:00,{m}" for m in range(20)]
    (tmp_path / "data" / "cat" / "s.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "labels").mkdir()
    windows = {"cat/s.csv": [["2020-01-01 00:05:00.000000", "2020-01-01 00:06:00.000000"]]}
    (tmp_path / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    return tmp_path


def test_windows_and_labels(nab: Path) -> None:
    ds = NABDataset(str(nab), series=["cat/s.csv"], window=4, normalize="none",
                    point_labels=True)
    assert len(ds) == 5 and ds.labels == [0, 1, 0, 0, 0]
    assert ds[1]["point_label"].tolist() == [0, 1, 1, 0]
    meta = ds[1]["meta"]
    assert meta["series"] == "cat/s.csv" and meta["start_time"] == "2020-01-01 00:04:00"
    assert meta["event"].endswith("#0")
    assert len(NABDataset(str(nab), series="cat", window=4)) == 5


def test_bad_input(nab: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"combined_windows.json: series 'cat/x.csv' has no entry \(same category: cat/s.csv\)$"):
        NABDataset(str(nab), series=["cat/x.csv"])
    with pytest.raises(DataError, match=r"no such series or category \(categories: cat\)$"):
        NABDataset(str(nab), series=["dog"])
    with pytest.raises(DataError, match="not a NAB folder: no data/ inside$"):
        NABDataset(str(nab / "labels"))
    (nab / "labels" / "combined_windows.json").write_text(
        json.dumps({"cat/s.csv": [["2021-01-01 00:00:00", "2021-01-02 00:00:00"]]}))
    with pytest.raises(DataError, match="window 0 .* lies outside the series$"):
        NABDataset(str(nab), series=["cat/s.csv"])
    (nab / "data" / "cat" / "s.csv").write_text("timestamp,value\n2020-01-01 00:00:00,x\n")
    with pytest.raises(DataError, match=r"s.csv: non-numeric value 'x' in column 'value', row 1 \(line 2\)$"):
        NABDataset(str(nab), series=["cat/s.csv"])


def test_sample_excerpt() -> None:
    if not SAMPLE.is_dir():
        pytest.skip("sample_data/timeseries/nab missing: run sample_data/make_timeseries.py")
    ds = NABDataset(str(SAMPLE), series=["realKnownCause"], window=64, stride=32)
    assert ds.summary()["events"] == 3 and 0 < sum(ds.labels) < len(ds)


@pytest.mark.skipif(not NAB.is_dir(), reason="NAB not in ../shared/data/nab")
def test_real_known_cause() -> None:
    ds = NABDataset(str(NAB), series=["realKnownCause/nyc_taxi.csv"], window=48, stride=48)
    assert len(ds) == 10320 // 48 and ds.summary()["events"] == 5
    assert 0 < sum(ds.labels) < len(ds)
