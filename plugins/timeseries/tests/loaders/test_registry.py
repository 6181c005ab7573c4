"""The plugin registers every loader under its shipped name, buildable through the host."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssl_domains.plugins import Host

SAMPLE = Path(__file__).resolve().parents[4] / "sample_data" / "timeseries"
NAMES = ["csv", "nab", "numpy", "parquet", "torch_dict", "ucr", "wfdb"]


def test_loaders_registered(ssl_host: Host) -> None:
    entries = {e.name: e for e in ssl_host.registry.entries("loader") if e.plugin == "timeseries"}
    assert sorted(entries) == NAMES
    for e in entries.values():
        assert e.modalities == ("signal",) and e.description and e.examples


@pytest.mark.skipif(not (SAMPLE / "pretrain_unlabeled.csv").is_file(), reason="no sample data")
def test_create_through_registry(ssl_host: Host) -> None:
    ds = ssl_host.registry.create("loader", "csv", path=str(SAMPLE / "pretrain_unlabeled.csv"),
                                  time_column="timestamp", window=256, normalize="global")
    assert ds[0]["signal"].shape == (3, 256) and ds.labels is None
    nab = ssl_host.registry.create("loader", "nab", data_root=str(SAMPLE / "nab"),
                                   series=["realKnownCause"], window=64)
    assert nab.labels is not None
