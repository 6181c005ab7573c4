"""Windowing core: windows, labels, padding, masks, normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ssl_domains_timeseries.loaders.windows import (
    Recording,
    SignalDataset,
    WindowSpec,
    intervals_to_points,
    map_labels,
    parse_label_rule,
)

from ssl_domains.errors import DataError
from ssl_domains.identifiers import opaque_id


def _rec(length: int, channels: int = 2, sid: str = "a", **kw) -> Recording:
    x = np.arange(channels * length, dtype=np.float32).reshape(channels, length)
    return Recording(signal=x, series_id=sid, **kw)


def test_windows_stride_and_meta() -> None:
    ds = SignalDataset([_rec(10)], WindowSpec(window=4, stride=3))
    assert len(ds) == 3  # starts 0, 3, 6
    item = ds[1]
    assert item["signal"].shape == (2, 4) and item["signal"].dtype == torch.float32
    assert item["signal"][0].tolist() == [3, 4, 5, 6]
    assert item["mask"].all()
    assert item["meta"] == {"series_id": "a", "start": 3, "length": 4}
    assert ds.labels is None and ds.groups == ["a"] * 3


def test_cover_end_adds_tail_window() -> None:
    ds = SignalDataset([_rec(10)], WindowSpec(window=4, stride=4, cover_end=True))
    assert [ds[i]["meta"]["start"] for i in range(len(ds))] == [0, 4, 6]


def test_whole_series_padded_with_mask() -> None:
    ds = SignalDataset([_rec(5, sid="a", label=0), _rec(3, sid="b", label=1)])
    assert len(ds) == 2 and ds.labels == [0, 1]
    item = ds[1]
    assert item["signal"].shape == (2, 5)
    assert torch.isnan(item["signal"][:, 3:]).all()
    assert item["mask"][:, :3].all() and not item["mask"][:, 3:].any()
    assert item["meta"]["length"] == 3 and item["label"] == 1


def test_short_series_gives_one_padded_window() -> None:
    ds = SignalDataset([_rec(3)], WindowSpec(window=8))
    assert len(ds) == 1 and ds[0]["mask"].sum() == 6


def test_nan_kept_and_masked() -> None:
    rec = _rec(6)
    rec.signal[0, 2] = np.nan
    item = SignalDataset([rec], WindowSpec(window=6, normalize="per_series"))[0]
    assert torch.isnan(item["signal"][0, 2]) and not item["mask"][0, 2]
    assert item["mask"].sum() == 11
    obs = item["signal"][0][item["mask"][0]]
    assert abs(float(obs.mean())) < 1e-5


def test_label_rules_from_points() -> None:
    pts = np.zeros(12, dtype=np.int64)
    pts[3] = 1  # one positive point in window 0
    pts[4:8] = 1  # window 1 fully positive
    rec = _rec(12, point_labels=pts)
    assert SignalDataset([rec], WindowSpec(window=4, label_rule="any")).labels == [1, 1, 0]
    spec = WindowSpec(window=4, label_rule="fraction>=0.5")
    assert SignalDataset([_rec(12, point_labels=pts)], spec).labels == [0, 1, 0]


def test_intervals_give_labels_and_events() -> None:
    rec = _rec(12, intervals=[(5, 7)])
    ds = SignalDataset([rec], WindowSpec(window=4, point_labels=True))
    assert ds.labels == [0, 1, 0]
    assert ds[1]["meta"]["event"] == "a#0" and ds[0]["meta"]["event"] == ""
    assert ds[1]["point_label"].tolist() == [0, 1, 1, 0]


def test_point_labels_padding_is_minus_one() -> None:
    ds = SignalDataset([_rec(3, point_labels=np.array([0, 1, 0]))], WindowSpec(window=5, point_labels=True))
    assert ds[0]["point_label"].tolist() == [0, 1, 0, -1, -1]


def test_global_stats_computed_and_reused() -> None:
    train = SignalDataset([_rec(10)], WindowSpec(window=5, normalize="global"))
    assert train.stats is not None
    assert train.stats["mean"] == pytest.approx([4.5, 14.5])
    test = SignalDataset([_rec(10)], WindowSpec(window=5, normalize="global", stats=train.stats))
    assert torch.allclose(test[0]["signal"], train[0]["signal"])
    shifted = _rec(10)
    shifted.signal += 100
    other = SignalDataset([shifted], WindowSpec(window=5, normalize="global", stats=train.stats))
    assert float(other[0]["signal"][0, 0]) > 30  # training stats, not its own


def test_stats_ignore_nan() -> None:
    rec = _rec(4, channels=1)
    rec.signal[0, 3] = np.nan
    ds = SignalDataset([rec], WindowSpec(normalize="global"))
    assert ds.stats["mean"] == pytest.approx([1.0])
    assert torch.isnan(ds[0]["signal"][0, 3])


def test_per_window_normalisation() -> None:
    ds = SignalDataset([_rec(8)], WindowSpec(window=4, normalize="per_window"))
    x = ds[1]["signal"]
    assert torch.allclose(x.mean(dim=1), torch.zeros(2), atol=1e-5)


def test_arrays_and_summary() -> None:
    ds = SignalDataset([_rec(8, label=1), _rec(8, sid="b", label=0)], WindowSpec(window=4))
    x, y = ds.arrays()
    assert x.shape == (4, 2, 4) and y.tolist() == [1, 1, 0, 0]
    s = ds.summary()
    assert s["series"] == 2 and s["series_labels"] == {"0": 1, "1": 1} and s["items"] == 4


def test_dataloader_batches() -> None:
    ds = SignalDataset([_rec(20, intervals=[(2, 4)])], WindowSpec(window=5, normalize="per_series"))
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["signal"].shape == (4, 2, 5) and batch["label"].tolist() == [1, 0, 0, 0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"normalize": "zscore"}, "normalize must be one of"),
        ({"window": 0}, "window must be >= 1"),
        ({"label_rule": "most"}, "label_rule must be 'any' or 'fraction>=x'"),
        ({"normalize": "global", "stats": {"mean": [0.0], "std": [1.0]}},
         "stats have 1 channels, data has 2"),
    ],
)
def test_bad_options(kwargs: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        SignalDataset([_rec(8)], WindowSpec(**kwargs), source="x.csv")


def test_bad_recordings() -> None:
    with pytest.raises(DataError, match="no series found"):
        SignalDataset([], source="x")
    with pytest.raises(DataError, match=r"different channel counts \[1, 2\]"):
        SignalDataset([_rec(4), _rec(4, channels=1)], source="x")
    with pytest.raises(DataError, match="some series have labels and others do not"):
        SignalDataset([_rec(4, label=1), _rec(4)], source="x")


def test_map_labels() -> None:
    assert map_labels([1.0, 2, "3"], "f", positive_classes=[2, 3]) == [0, 1, 1]
    assert map_labels(["a", "b"], "f", label_map={"a": 0, "b": 1}) == [0, 1]
    assert map_labels([1.0, 4.0], "f") == [1, 4]
    with pytest.raises(DataError, match=r"f: labels \['c'\] are not in label_map"):
        map_labels(["a", "c"], "f", label_map={"a": 0})
    with pytest.raises(DataError, match="label 'x' .* is not an integer; pass label_map"):
        map_labels(["x"], "f")


def test_helpers() -> None:
    assert parse_label_rule("any") is None and parse_label_rule("fraction>=0.25") == 0.25
    assert intervals_to_points([(1, 3)], 5).tolist() == [0, 1, 1, 0, 0]
    assert opaque_id("series", "patient 7") == opaque_id("series", "patient 7") != opaque_id("series", "patient 8")
    assert "patient" not in opaque_id("series", "patient 7")


def test_series_ids_are_keyed_not_plain_sha256(monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    sid = opaque_id("series", "MRN0012345.csv", "MRN0012345")
    # the unsalted hash an attacker would compute by enumerating MRNs does not match
    for raw in ("MRN0012345.csv\x1fMRN0012345", "series|MRN0012345.csv|MRN0012345"):
        assert sid != hashlib.sha256(raw.encode()).hexdigest()[: len(sid)]
    monkeypatch.setenv("SSL_DOMAINS_ID_KEY", "another-site-key-0123456789")
    assert opaque_id("series", "MRN0012345.csv", "MRN0012345") != sid  # another site, other ids


def test_group_length_blocks() -> None:
    ds = SignalDataset([_rec(40)], WindowSpec(window=5, stride=5, group_length=20))
    assert ds.groups == ["a/0"] * 4 + ["a/1"] * 4
    with pytest.raises(DataError, match="group_length must be >= 1"):
        SignalDataset([_rec(40)], WindowSpec(window=5, group_length=0), source="x")
