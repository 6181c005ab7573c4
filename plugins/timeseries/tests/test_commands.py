"""``ssl-domains timeseries inspect``."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
from click.testing import CliRunner
from ssl_domains_timeseries.commands import timeseries
from ssl_domains_timeseries.plugin import register_commands


def test_inspect_csv(tmp_path: Path) -> None:
    f = tmp_path / "rec.csv"
    f.write_text("time,a,b,label\n1,1,,0\n2,2,3,1\n3,,4,1\n4,5,6,0\n")
    res = CliRunner().invoke(timeseries, ["inspect", str(f), "--time-column", "time",
                                          "--label-column", "label"])
    assert res.exit_code == 0, res.output
    assert "channels (2): a, b" in res.output
    assert "length: min 4, median 4, max 4 (total 4)" in res.output
    assert "NaN: a: 1, b: 1" in res.output
    assert "labels (per point): 0: 2, 1: 2; events: 1" in res.output


def test_inspect_npy_json(tmp_path: Path) -> None:
    arr = np.array([[1, 0.5, np.nan], [2, 0.1, 0.2], [2, 0.3, 0.4]], dtype=np.float32)
    np.save(tmp_path / "x.npy", arr)
    res = CliRunner().invoke(timeseries, ["inspect", str(tmp_path / "x.npy"), "--label-column",
                                          "0", "--arg", "positive_classes=[2]", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["loader"] == "numpy" and info["series"] == 3
    assert info["nan"] == {"ch0": 1} and info["series_labels"] == {"0": 1, "1": 2}


def test_inspect_errors(tmp_path: Path) -> None:
    f = tmp_path / "bad.csv"
    f.write_text("a,b\n1,x\n")
    res = CliRunner().invoke(timeseries, ["inspect", str(f)])
    assert res.exit_code == 1
    assert f"Error: {f}: non-numeric value 'x' in column 'b', row 1 (line 2)" in res.output
    odd = tmp_path / "data.xyz"
    odd.write_text("1")
    res = CliRunner().invoke(timeseries, ["inspect", str(odd)])
    assert res.exit_code == 2 and "pass --loader" in res.output


def test_registered_under_cli() -> None:
    @click.group()
    def cli() -> None:
        pass

    register_commands(cli)
    assert "timeseries" in cli.commands and "inspect" in cli.commands["timeseries"].commands
