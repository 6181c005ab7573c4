"""UCR/UEA loader: .tsv, .txt, .ts (missing values, variable lengths, timestamps), ECG5000."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from ssl_domains_timeseries.loaders.ucr import UCRDataset

from ssl_domains.errors import DataError

ECG = Path(__file__).resolve().parents[4] / ".." / "shared" / "data" / "ecg5000"

TS = """# comment
@problemName Toy
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel true normal abnormal
@data
1,2,3:4,5,6:normal
1,?,3,4:5,6:abnormal
"""


def test_tsv_variable_length(tmp_path: Path) -> None:
    (tmp_path / "a_TRAIN.tsv").write_text("1\t0.5\t0.6\t0.7\n2\t1.0\t2.0\tNaN\n")
    ds = UCRDataset(str(tmp_path / "a_TRAIN.tsv"))
    assert ds.labels == [1, 2] and ds[1]["mask"].tolist() == [[True, True, False]]
    assert ds.summary()["length"]["min"] == 2


def test_txt_whitespace_and_comma(tmp_path: Path) -> None:
    (tmp_path / "w.txt").write_text("  1.0000000e+00  -1.5  2.5\n  2.0000000e+00  0.5  0.25\n")
    (tmp_path / "c.txt").write_text("1,3,4\n")
    assert UCRDataset(str(tmp_path / "w.txt"), positive_classes=[2]).labels == [0, 1]
    ds = UCRDataset([str(tmp_path / "w.txt"), str(tmp_path / "c.txt")])
    assert len(ds) == 3 and ds[2]["signal"].tolist() == [[3.0, 4.0]]


def test_ts_multivariate_missing_unequal(tmp_path: Path) -> None:
    (tmp_path / "toy.ts").write_text(TS)
    ds = UCRDataset(str(tmp_path / "toy.ts"), label_map={"normal": 0, "abnormal": 1})
    assert ds.labels == [0, 1] and ds.num_channels == 2
    x = ds[1]["signal"]
    assert x.shape == (2, 4) and torch.isnan(x[0, 1]) and torch.isnan(x[1, 2:]).all()
    assert ds[1]["mask"].sum() == 5


def test_ts_timestamps_and_unlabeled(tmp_path: Path) -> None:
    (tmp_path / "s.ts").write_text(
        "@timeStamps true\n@classLabel false\n@data\n"
        "(2007-01-01 00:00:00,1.0),(2007-01-01 00:01:00,2.0)\n"
    )
    ds = UCRDataset(str(tmp_path / "s.ts"))
    assert ds.labels is None and ds[0]["signal"].tolist() == [[1.0, 2.0]]


@pytest.mark.parametrize(
    ("name", "text", "kwargs", "message"),
    [
        ("e.tsv", "", {}, "e.tsv: file is empty$"),
        ("b.tsv", "1\t0.5\tabc\n", {}, r"b.tsv: non-numeric value 'abc' at line 1, column 2$"),
        ("s.tsv", "1\n", {}, "line 1: a label and at least one value are needed$"),
        ("n.ts", "@classLabel true a\n1,2:a\n", {}, "n.ts: no @data line: not a .ts file$"),
        ("d.ts", "@dimensions 2\n@classLabel true a\n@data\n1,2:a\n", {},
         "d.ts: line 4: 1 dimensions, header says 2$"),
        ("v.ts", "@classLabel false\n@data\n1,x\n", {},
         r"non-numeric value 'x' at line 3, dimension 1, column 2$"),
        ("l.tsv", "normal\t1\t2\n", {}, "label 'normal' .* is not an integer; pass label_map"),
        ("f.tsv", "1\t2\n", {"format": "arff"}, "format must be one of"),
    ],
)
def test_bad_files(tmp_path: Path, name: str, text: str, kwargs: dict, message: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(DataError, match=message):
        UCRDataset(str(tmp_path / name), **kwargs)


def test_mixed_labeled_and_unlabeled(tmp_path: Path) -> None:
    (tmp_path / "a.tsv").write_text("1\t2\t3\n")
    (tmp_path / "b.ts").write_text("@classLabel false\n@data\n1,2\n")
    with pytest.raises(DataError, match="some files have class labels and others do not"):
        UCRDataset(str(tmp_path))


@pytest.mark.skipif(not (ECG / "ECG5000_TRAIN.txt").is_file(),
                    reason="ECG5000 not in ../shared/data/ecg5000")
def test_ecg5000_both_files() -> None:
    ds = UCRDataset([str(ECG / "ECG5000_TRAIN.txt"), str(ECG / "ECG5000_TEST_4499.npy")],
                    positive_classes=[2, 3, 4, 5])
    assert len(ds) == 4999 and ds[0]["signal"].shape == (1, 140)
    assert sum(ds.labels) == 4999 - 292 - 2626
    assert len(set(ds.groups)) == 4999
    train = UCRDataset(str(ECG / "ECG5000_TRAIN.txt"))
    assert np.bincount(train.labels).tolist() == [0, 292, 177, 10, 19, 2]
