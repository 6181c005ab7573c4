"""NumPy loader: shapes, label column, npz keys, label files, ECG5000."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ssl_domains_timeseries.loaders.numpy import NumpyDataset

from ssl_domains.errors import DataError

ECG = Path(__file__).resolve().parents[4] / ".." / "shared" / "data" / "ecg5000"


def test_shapes(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros((4, 20), dtype=np.float32))
    ds = NumpyDataset(str(tmp_path / "a.npy"), window=10)
    assert len(ds) == 8 and ds[0]["signal"].shape == (1, 10) and ds.labels is None
    np.save(tmp_path / "b.npy", np.zeros((3, 20, 2), dtype=np.float32))
    ds = NumpyDataset(str(tmp_path / "b.npy"), channels_last=True)
    assert ds[0]["signal"].shape == (2, 20)
    np.save(tmp_path / "c.npy", np.arange(30, dtype=np.float32))
    assert len(NumpyDataset(str(tmp_path / "c.npy"), window=10)) == 3


def test_npz_with_labels_and_points(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(3, 2, 8)).astype(np.float32)
    pts = np.zeros((3, 8), dtype=np.int64)
    pts[1, 5] = 1
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0, 1, 0]), p=pts)
    assert NumpyDataset(str(tmp_path / "d.npz")).labels == [0, 1, 0]
    ds = NumpyDataset(str(tmp_path / "d.npz"), y_key=None, point_key="p", window=4)
    assert ds.labels == [0, 0, 0, 1, 0, 0]


def test_label_column_and_label_file(tmp_path: Path) -> None:
    arr = np.array([[1, 0.1, 0.2], [3, 0.3, 0.4]], dtype=np.float32)
    np.save(tmp_path / "rows.npy", arr)
    ds = NumpyDataset(str(tmp_path / "rows.npy"), label_column=0, positive_classes=[3])
    assert ds.labels == [0, 1] and ds[1]["signal"].shape == (1, 2)
    (tmp_path / "y.txt").write_text("a\nb\n")
    ds = NumpyDataset(str(tmp_path / "rows.npy"), labels_path=str(tmp_path / "y.txt"),
                      label_map={"a": 0, "b": 1})
    assert ds.labels == [0, 1] and ds[0]["signal"].shape == (1, 3)


@pytest.mark.parametrize(
    ("setup", "kwargs", "message"),
    [
        (lambda d: (d / "in.npy").write_bytes(b""), {}, "in.npy: cannot read"),
        (lambda d: np.save(d / "in.npy", np.zeros((0, 5))), {}, "array 'x' is empty$"),
        (lambda d: np.save(d / "in.npy", np.zeros((2, 2, 2, 2))), {},
         r"has shape \(2, 2, 2, 2\); expected \[T\], \[N, T\] or \[N, C, T\]$"),
        (lambda d: np.savez(d / "in.npz", a=np.zeros(3)), {}, r"no array 'x' \(has: \['a'\]\)$"),
        (lambda d: np.savez(d / "in.npz", x=np.zeros((3, 4)), y=np.zeros(2)), {},
         r"2 labels \('y'\) for 3 series$"),
        (lambda d: np.save(d / "in.npy", np.zeros((2, 3))), {"label_column": 5},
         "label_column 5 out of range for 3 columns$"),
        (lambda d: np.save(d / "in.npy", np.array([[np.nan, 1.0]])), {"label_column": 0},
         "missing label in column 0, row 1$"),
        (lambda d: np.save(d / "in.npy", np.array([[1.0, np.inf]])), {"nonfinite": "refuse"},
         r"channel 'ch0' has 1 non-finite value\(s\) .*first at row 2 of the series; .*as missing$"),
    ],
)
def test_bad_input(tmp_path: Path, setup, kwargs: dict, message: str) -> None:
    setup(tmp_path)
    path = next(tmp_path.iterdir())
    with pytest.raises(DataError, match=message) as err:
        NumpyDataset(str(path), **kwargs)
    assert str(err.value).startswith(str(path))


def test_label_file_mismatch(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((3, 4)))
    np.save(tmp_path / "y.npy", np.zeros(2))
    with pytest.raises(DataError, match=r"y.npy: 2 labels for 3 series in x.npy$"):
        NumpyDataset(str(tmp_path / "x.npy"), labels_path=str(tmp_path / "y.npy"))


@pytest.mark.skipif(not (ECG / "ECG5000_TEST_4499.npy").is_file(),
                    reason="ECG5000 not in ../shared/data/ecg5000")
def test_ecg5000_npy() -> None:
    ds = NumpyDataset(str(ECG / "ECG5000_TEST_4499.npy"), label_column=0,
                      positive_classes=[2, 3, 4, 5])
    assert len(ds) == 4499 and sum(ds.labels) == 1590 + 86 + 175 + 22
    assert ds[0]["signal"].shape == (1, 140)
