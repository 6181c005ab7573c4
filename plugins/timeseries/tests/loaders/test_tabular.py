"""CSV and Parquet loaders: wide and long form, labels, and every bad-input message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from ssl_domains_timeseries.loaders.tabular import CSVDataset, ParquetDataset

from ssl_domains.errors import DataError

SAMPLE = Path(__file__).resolve().parents[4] / "sample_data" / "timeseries"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def wide(tmp_path: Path) -> Path:
    rows = ["time,a,b,label"] + [f"{t},{t},{10 * t},{int(t in (5, 6))}" for t in range(10)]
    rows[3] = "2,,20,0"  # a missing cell
    return _write(tmp_path / "wide.csv", "\n".join(rows) + "\n")


def test_wide_csv(wide: Path) -> None:
    ds = CSVDataset(str(wide), time_column="time", label_column="label", window=4, stride=2)
    assert ds.channel_names == ["a", "b"]
    assert len(ds) == 4 and ds.labels == [0, 1, 1, 1]
    item = ds[0]
    assert torch.isnan(item["signal"][0, 2]) and not item["mask"][0, 2]
    assert item["signal"][1].tolist() == [0, 10, 20, 30]
    assert item["meta"]["start_time"] == "0"


def test_channels_choose_and_order(wide: Path) -> None:
    ds = CSVDataset(str(wide), channels=["b"], window=None)
    assert ds.num_channels == 1 and ds[0]["signal"][0, 1] == 10 and ds.labels is None


def test_id_column_and_labels_file(tmp_path: Path) -> None:
    f = _write(tmp_path / "multi.csv", "unit,v\nu1,1\nu1,2\nu2,3\nu2,4\nu2,5\n")
    lab = _write(tmp_path / "labels.csv", "unit,label\nu2,abnormal\nu1,normal\n")
    ds = CSVDataset(str(f), id_column="unit", labels_file=str(lab),
                    label_map={"normal": 0, "abnormal": 1})
    assert ds.labels == [0, 1] and len(set(ds.groups)) == 2
    assert ds[0]["mask"].sum() == 2 and ds[1]["mask"].sum() == 3
    assert "u1" not in ds.groups[0]  # ids are hashed


def test_long_form(tmp_path: Path) -> None:
    f = _write(tmp_path / "long.csv",
               "id,time,channel,value,label\n"
               "s1,2,ecg,3,1\ns1,1,ecg,1,0\ns1,1,resp,2,0\ns1,2,resp,4,0\ns2,1,ecg,5,0\n")
    ds = CSVDataset(str(f), format="long", id_column="id", time_column="time",
                    label_column="label")
    assert ds.channel_names == ["ecg", "resp"]
    first = ds[0]["signal"]
    assert first.tolist() == [[1, 3], [2, 4]]  # sorted by time
    assert ds.labels == [1, 0]
    assert torch.isnan(ds[1]["signal"][1, 0])  # s2 has no resp values
    only = CSVDataset(str(f), format="long", id_column="id", time_column="time",
                      channels=["resp"])
    assert only.num_channels == 1


def test_folder_skips_bad_files(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _write(tmp_path / "a.csv", "x\n1\n2\n")
    _write(tmp_path / "b.csv", "")
    _write(tmp_path / "c.csv", "x\n3\n4\n5\n")
    ds = CSVDataset(str(tmp_path))
    assert len(ds) == 2
    assert ds.skipped == [(str(tmp_path / "b.csv"), "file is empty")]
    assert "file is empty" not in caplog.text  # listed; the host's build_dataset logs it once


def test_parquet_wide_and_sample(tmp_path: Path) -> None:
    df = pd.DataFrame({"t": range(6), "x": np.arange(6, dtype=np.float32), "y": [0] * 5 + [1]})
    df.to_parquet(tmp_path / "s.parquet", index=False)
    ds = ParquetDataset(str(tmp_path / "s.parquet"), time_column="t", label_column="y",
                        window=3)
    assert ds.labels == [0, 1] and ds[1]["signal"].tolist() == [[3, 4, 5]]


def test_parquet_non_numeric(tmp_path: Path) -> None:
    pd.DataFrame({"x": ["1", "2", "oops"]}).to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(DataError, match=r"bad.parquet: non-numeric value 'oops' in column 'x', row 3$"):
        ParquetDataset(str(tmp_path / "bad.parquet"))


@pytest.mark.skipif(not (SAMPLE / "finetune_labeled.parquet").is_file(), reason="sample data not generated")
def test_sample_files() -> None:
    pre = CSVDataset(str(SAMPLE / "pretrain_unlabeled.csv"), time_column="timestamp",
                     window=256, stride=128, normalize="global")
    assert pre.labels is None and pre.num_channels == 3 and len(pre) == 92
    ft = ParquetDataset(str(SAMPLE / "finetune_labeled.parquet"), id_column="series",
                        time_column="t", label_column="label", window=128, stride=64,
                        normalize="global", stats=pre.stats)
    assert len(ft) == 360 and 0 < sum(ft.labels) < 360 and len(set(ft.groups)) == 24


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("a,b\n1,2\n3,x\n", {}, r"non-numeric value 'x' in column 'b', row 2 \(line 3\)$"),
        ("a,b\n1,2\n", {"channels": ["a", "zz"]},
         r"unknown column\(s\) \['zz'\] \(available: a, b\)$"),
        ("a,b\n1,2\n", {"time_column": "when"},
         r"unknown column\(s\) \['when'\] \(available: a, b\)$"),
        ("", {}, "file is empty$"),
        ("a,b\n", {}, "file has a header but no data rows$"),
        ("a,lab\n1,0\n2,\n", {"label_column": "lab"}, r"missing label in column 'lab', row 2$"),
        ("t,a\n1,1\n", {"time_column": "t", "channels": []},
         "no channel columns left after time/label/id columns$"),
        ("id,channel,value\ns,a,1\ns,b,x\n", {"format": "long", "id_column": "id"},
         r"non-numeric value 'x' in column 'value', row 2 \(line 3\)$"),
        ("id,t,channel,value\ns,1,a,1\ns,1,a,2\n",
         {"format": "long", "id_column": "id", "time_column": "t"},
         r"duplicate \(id, time, channel\) at row 2 \(line 3\)$"),
        ("channel,value\na,1\n", {"format": "long", "channels": ["b"]},
         r"unknown channel\(s\) \['b'\] \(available: a\)$"),
        ("a\n1\n", {"format": "tall"}, "format must be 'wide' or 'long', got 'tall'$"),
    ],
)
def test_bad_csv_messages(tmp_path: Path, text: str, kwargs: dict, message: str) -> None:
    f = _write(tmp_path / "in.csv", text)
    with pytest.raises(DataError, match=message) as err:
        CSVDataset(str(f), **kwargs)
    assert "\n" not in str(err.value)
    assert str(err.value).startswith(str(tmp_path))


def test_missing_file_and_label_file_mismatch(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.csv: file not found$"):
        CSVDataset(str(tmp_path / "nope.csv"))
    f = _write(tmp_path / "m.csv", "unit,v\nu1,1\nu2,2\nu3,3\n")
    lab = _write(tmp_path / "lab.csv", "unit,label\nu1,0\n")
    with pytest.raises(DataError, match=r"lab.csv: no label for 2 of 3 series, e.g. \['u2', 'u3'\]"):
        CSVDataset(str(f), id_column="unit", labels_file=str(lab))
    one = _write(tmp_path / "one.csv", "unit\nu1\n")
    with pytest.raises(DataError, match="label file needs two columns"):
        CSVDataset(str(f), id_column="unit", labels_file=str(one))
    with pytest.raises(DataError, match="missing.csv: label file not found"):
        CSVDataset(str(f), id_column="unit", labels_file=str(tmp_path / "missing.csv"))
    (tmp_path / "sub").mkdir()
    with pytest.raises(DataError, match=r"sub: folder has no \.csv/"):
        CSVDataset(str(tmp_path / "sub"))


def test_ids_select_series(tmp_path: Path) -> None:
    f = _write(tmp_path / "multi.csv", "unit,v\nu1,1\nu2,2\nu3,3\n")
    ds = CSVDataset(str(f), id_column="unit", ids=["u3", "u1"])
    assert len(ds) == 2 and [float(ds[i]["signal"][0, 0]) for i in range(2)] == [1.0, 3.0]
    with pytest.raises(DataError, match=r"unknown series id\(s\) \['u9'\] \(available: u1, u2, u3\)$"):
        CSVDataset(str(f), id_column="unit", ids=["u9"])
