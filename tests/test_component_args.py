"""A bad component argument is one line naming the component and the key, never a raw error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ssl_domains.errors import ConfigError
from ssl_domains.plugins import get_host
from tests.conftest import make_config, write_config


def test_wrong_types_are_refused_naming_the_key() -> None:
    reg = get_host().registry
    with pytest.raises(ConfigError) as err:
        reg.create("backbone", "mlp", input_shape=[1, 32], hidden="abc")
    assert str(err.value) == "backbone 'mlp' (plugin ssl_domains): hidden='abc': expected an integer"
    with pytest.raises(ConfigError, match=r"^loader 'arrays' \(plugin ssl_domains\): y_key=\[1\]: expected a string or null$"):
        reg.create("loader", "arrays", path="x.npz", y_key=[1])
    with pytest.raises(ConfigError, match=r"depth=True: expected an integer$"):
        reg.create("backbone", "mlp", input_shape=[1, 32], depth=True)
    # numbers written as text (e.g. from --arg) are converted
    assert reg.create("backbone", "mlp", input_shape=[1, 32], hidden="16").num_features == 16


def test_values_the_component_refuses_name_the_key() -> None:
    reg = get_host().registry
    with pytest.raises(ConfigError) as err:
        reg.create("backbone", "mlp", input_shape=[1, 32], hidden=-4)
    assert str(err.value).startswith("backbone 'mlp' (plugin ssl_domains): hidden=-4: ")
    backbone = reg.create("backbone", "mlp", input_shape=[1, 32])
    with pytest.raises(ConfigError) as err:
        reg.create("finetune", "classification", backbone, num_classes=1)
    assert str(err.value) == ("finetune 'classification' (plugin ssl_domains): num_classes=1: "
                              "num_classes must be >= 2, got 1")


def test_cli_reports_the_key(tmp_path: Path, arrays: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", make_config(tmp_path, arrays, finetune=None))
    res = subprocess.run([sys.executable, "-m", "ssl_domains.cli", "pretrain", str(cfg),
                          "--set", "backbone.args.hidden=abc"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == (
        "Error: backbone 'mlp' (plugin ssl_domains): hidden='abc': expected an integer")


def test_the_reported_cases_on_the_time_series_plugin() -> None:
    reg = get_host().registry
    if "patch_transformer" not in reg.names("backbone"):
        pytest.skip("ssl-domains-timeseries not installed")
    with pytest.raises(ConfigError) as err:
        reg.create("backbone", "patch_transformer", d_model=-4)
    assert str(err.value).startswith("backbone 'patch_transformer' (plugin timeseries): d_model=-4: ")
    with pytest.raises(ConfigError) as err:
        reg.create("loader", "numpy", path="signals.npy", window="abc")
    assert str(err.value) == "loader 'numpy' (plugin timeseries): window='abc': expected an integer or null"
