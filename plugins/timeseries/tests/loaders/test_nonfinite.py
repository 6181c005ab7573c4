"""Non-finite input (inf, -inf, 1e308) is reported per file and channel and masked as missing or
refused; normalisation statistics stay finite; ``timeseries inspect`` counts it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from ssl_domains_timeseries.commands import timeseries
from ssl_domains_timeseries.loaders.numpy import NumpyDataset
from ssl_domains_timeseries.loaders.tabular import CSVDataset

from ssl_domains.errors import DataError
from ssl_domains.plugins import get_host


def _csv(path: Path, bad: dict[int, str]) -> Path:
    """Two channels a, b of 40 rows; row r (1-based) of channel b holds ``bad[r]`` when given."""
    rng = np.random.RandomState(0)
    lines = ["a,b"]
    for r in range(1, 41):
        lines.append(f"{rng.randn():.4f},{bad.get(r, f'{rng.randn() + 10:.4f}')}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("cell", ["1e308", "inf", "-inf", "-1E+300"])
def test_one_huge_or_infinite_cell_is_masked_and_stats_stay_finite(tmp_path: Path, cell: str, caplog) -> None:
    f = _csv(tmp_path / "rec.csv", {7: cell})
    caplog.set_level(logging.WARNING)
    ds = CSVDataset(str(f), window=10, normalize="global")
    # the statistics of channel b come from its 39 observed values: finite and close to N(10, 1)
    assert all(np.isfinite(ds.stats["mean"])) and all(np.isfinite(ds.stats["std"]))
    assert 9.0 < ds.stats["mean"][1] < 11.0 and 0.5 < ds.stats["std"][1] < 2.0
    item = ds[0]  # rows 1-10
    assert bool(item["mask"][1, 6]) is False and torch.isnan(item["signal"][1, 6])
    assert int(item["mask"].sum()) == 19 and torch.isfinite(item["signal"][item["mask"]]).all()
    assert ds.nonfinite_found == [{"file": "1 of 1", "series": ds.recordings[0].series_id,
                                   "channel": "b", "count": 1, "first_row": 7}]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "channel 'b': 1 non-finite value(s)" in warnings[0] and "first at row 7" in warnings[0]
    assert str(tmp_path) not in warnings[0] and "rec.csv" not in warnings[0]


def test_refuse_names_file_channel_count_and_row(tmp_path: Path) -> None:
    f = _csv(tmp_path / "rec.csv", {12: "inf", 30: "1e308"})
    with pytest.raises(DataError) as info:
        CSVDataset(str(f), window=10, normalize="global", nonfinite="refuse")
    assert str(info.value) == (
        f"{f}: channel 'b' has 2 non-finite value(s) (inf, -inf or beyond float32's range), first "
        "at row 12; fix the data or pass nonfinite='mask' to treat them as missing")
    with pytest.raises(DataError, match="nonfinite must be one of"):
        CSVDataset(str(f), nonfinite="zero")


def test_reported_per_file_and_channel_across_files(tmp_path: Path) -> None:
    folder = tmp_path / "recs"
    folder.mkdir()
    _csv(folder / "a.csv", {})
    _csv(folder / "b.csv", {3: "inf", 5: "-inf"})
    (folder / "c.csv").write_text("a,b\n1,2\ninf,3\n4,5\n")
    ds = CSVDataset(str(folder), normalize="per_series")
    found = {(e["file"], e["channel"]): (e["count"], e["first_row"]) for e in ds.nonfinite_found}
    assert found == {("2 of 3", "b"): (2, 3), ("3 of 3", "a"): (1, 2)}
    for rec in ds.recordings:
        assert np.isfinite(rec.signal[~np.isnan(rec.signal)]).all()


def test_numpy_float64_beyond_float32_is_masked(tmp_path: Path) -> None:
    x = np.random.RandomState(1).randn(3, 2, 50)
    x[1, 0, 9] = 1e300
    np.save(tmp_path / "x.npy", x)
    ds = NumpyDataset(str(tmp_path / "x.npy"), normalize="global")
    assert np.isfinite(ds.stats["mean"]).all() and np.isfinite(ds.stats["std"]).all()
    assert abs(ds.stats["mean"][0]) < 1.0
    assert [(e["channel"], e["count"], e["first_row"]) for e in ds.nonfinite_found] == [("ch0", 1, 10)]


def test_given_stats_that_are_not_finite_are_refused(tmp_path: Path) -> None:
    f = _csv(tmp_path / "rec.csv", {})
    with pytest.raises(DataError, match="stats are not finite"):
        CSVDataset(str(f), normalize="global", stats={"mean": [0.0, float("inf")], "std": [1.0, 1.0]})


def test_inspect_reports_nonfinite_counts(tmp_path: Path) -> None:
    f = _csv(tmp_path / "rec.csv", {4: "1e308", 9: "inf"})
    res = CliRunner().invoke(timeseries, ["inspect", str(f)])
    assert res.exit_code == 0, res.output
    assert "non-finite (inf, -inf, beyond float32; masked as missing): b: 2" in res.output
    assert "  file 1 of 1, channel b: 2, first at row 4" in res.output
    res = CliRunner().invoke(timeseries, ["inspect", str(f), "--json"])
    info = json.loads(res.output)
    assert info["nonfinite"] == {"a": 0, "b": 2} and info["nan"] == {"a": 0, "b": 2}
    clean = CliRunner().invoke(timeseries, ["inspect", str(_csv(tmp_path / "ok.csv", {}))])
    assert "non-finite (inf, -inf, beyond float32): none" in clean.output


def test_a_skipped_file_is_logged_once_without_its_path(tmp_path: Path, caplog) -> None:
    from ssl_domains import console
    from ssl_domains.config import ComponentRef
    from ssl_domains.data.datasets import build_dataset

    folder = tmp_path / "PATIENT_X"
    folder.mkdir()
    _csv(folder / "a.csv", {})
    (folder / "b_PATIENT_X.csv").write_text("a,b\n1,zz\n")
    console.reset()
    caplog.set_level(logging.INFO)
    ds = build_dataset(get_host().registry, ComponentRef(name="csv", args={"path": str(folder)}), "pre-training")
    assert len(ds.skipped) == 1
    lines = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(lines) == 1 and "non-numeric value 'zz' in column 'b'" in lines[0]
    assert "PATIENT_X" not in lines[0] and str(tmp_path) not in lines[0]
    assert len(console.skipped()) == 1  # and once in the end-of-run summary


def test_pretraining_on_a_csv_with_one_1e308_cell_exports_finite_stats(tmp_path: Path) -> None:
    from ssl_domains.config import parse_config
    from ssl_domains.engine.pretrain import pretrain

    rng = np.random.RandomState(0)
    rows = ["a,b"] + [f"{rng.randn():.4f},{rng.randn() * 3 + 50:.4f}" for _ in range(400)]
    rows[123] = rows[123].split(",")[0] + ",1e308"
    (tmp_path / "sig.csv").write_text("\n".join(rows) + "\n")
    cfg = parse_config({
        "name": "ts", "output_dir": str(tmp_path / "runs"),
        "backbone": {"name": "tcn", "args": {"in_channels": 2, "width": 8, "depth": 2, "kernel_size": 3}},
        "pretrain": {
            "data": {"train": {"name": "csv", "args": {"path": str(tmp_path / "sig.csv"), "window": 32,
                                                       "normalize": "global"}}, "batch_size": 4},
            "task": {"name": "masked_patches", "args": {"mask_ratio": 0.4, "segment_len": 4}},
            "train": {"epochs": 1, "progress": False, "warmup_steps": 0},
        },
    })
    summary = pretrain(cfg, tmp_path / "runs" / "ts", registry=get_host().registry)
    stats = json.loads((tmp_path / "runs" / "ts" / "export" / "config.json").read_text())["data_stats"]
    assert all(np.isfinite(stats["mean"])) and all(np.isfinite(stats["std"]))
    assert 45 < stats["mean"][1] < 55 and 2 < stats["std"][1] < 4  # channel b is still usable
    assert np.isfinite(summary["best_val_loss"])
