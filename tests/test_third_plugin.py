"""Writing a third plugin from the README alone, as a new user does: the README's example
plugin installed as a distribution (entry point and all) pre-trains with ``denoising`` and
fine-tunes; a run refuses a loader or backbone that breaks its contract in the conformance kit's
own words, naming the component, its plugin and the kit's property; ``--debug`` shows why a
plugin failed to import."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from ssl_domains.builtin.denoising import DenoisingAutoencoder
from ssl_domains.cli import cli
from ssl_domains.errors import IncompatibleError
from ssl_domains.testing import check_case, component_cases
from tests.conftest import REPO, make_config, write_config

#: A plugin of the kind the README's loader paragraph describes, with one fault per switch.
ACCEL = '''
import torch
from torch import nn
from torch.utils.data import Dataset

from ssl_domains import hookimpl
from ssl_domains.contracts import Example, InputSpec
from ssl_domains.registry import component


@component("accel", description="accelerometer windows", modalities=["signal"], dims=[1],
           examples=[Example({"n": 20, "flat": FLAT, "short_labels": SHORT})])
class Accel(Dataset):
    def __init__(self, n=40, flat=False, short_labels=False, time_first=False):
        g = torch.Generator().manual_seed(0)
        self.y = [i % 2 for i in range(n)]
        self.x = [torch.randn(1, 32, generator=g) + self.y[i] for i in range(n)]
        self.flat, self.time_first = flat, time_first
        self.labels = self.y[: n // 2] if short_labels else self.y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        x = self.x[i][0] if self.flat else self.x[i]
        x = x.T.contiguous() if self.time_first else x
        return {"signal": x, "label": self.y[i], "meta": {"index": i}}


@component("unpooled_cnn", description="forgets to pool", modalities=["signal"], dims=[1],
           examples=[Example({}, input_shape=(1, 32))])
class Unpooled(nn.Module):
    def __init__(self, in_channels=1, width=8):
        super().__init__()
        self.input_spec = InputSpec(modality="signal", dims=1, channels=in_channels)
        self.num_features = width
        self.net = nn.Conv1d(in_channels, width, 3, padding=1)

    def forward_features(self, x):
        return self.net(x)


@hookimpl
def register_loaders(registry):
    registry.add(Accel)


@hookimpl
def register_backbones(registry):
    registry.add(Unpooled)
'''


def readme_plugin() -> tuple[str, str]:
    """The Python and TOML blocks of the README's "Writing a plugin" section."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Writing a plugin"):text.index("## Benchmarks")]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, re.S)
    return next(b for lang, b in blocks if lang == "python"), next(b for lang, b in blocks if lang == "toml")


def install(site: Path, module: str, source: str, entry_point: str | None = None) -> None:
    """What ``pip install`` leaves in site-packages: the module and a dist-info whose entry point
    puts it in the ``ssl_domains`` group."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(source)
    info = site / f"{module}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[ssl_domains]\n{entry_point or module} = {module}\n")


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A site folder on sys.path for this test's plugins (and a private component catalog)."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("SSL_DOMAINS_CACHE", str(tmp_path / "cache"))
    return site


def test_the_readme_plugin_pretrains_with_denoising_and_finetunes(tmp_path: Path, installed: Path,
                                                                 arrays: Path) -> None:
    python, toml = readme_plugin()
    entry_point = re.search(r"\[project\.entry-points\.ssl_domains\]\n(\w+) = \"(\w+)\"", toml)
    assert entry_point is not None, "the README's pyproject.toml names no entry point"
    name, module = entry_point.groups()
    sys.modules.pop(module, None)
    install(installed, module, python, name)

    cases = component_cases(name)  # the README says it takes the entry-point name
    assert [str(c) for c in cases] == [f"backbone/tiny_cnn1d/{p}" for p in
                                       ("surface", "forward_shape", "gradients", "export_roundtrip")]
    for case in cases:
        check_case(case)

    cfg = make_config(tmp_path, arrays, **{"backbone": {"name": "tiny_cnn1d", "args": {"in_channels": 1}},
                                           "pretrain.train.epochs": 1, "finetune.train.epochs": 1})
    path = write_config(tmp_path / "c.yaml", cfg)
    for stage in ("pretrain", "finetune"):
        res = CliRunner().invoke(cli, [stage, str(path)])
        assert res.exit_code == 0, res.output + repr(res.exception)
    run = tmp_path / "runs" / "t"
    assert json.loads((run / "export" / "config.json").read_text())["backbone"]["name"] == "tiny_cnn1d"
    evaluation = json.loads((run / "eval.json").read_text())
    assert evaluation["init"] != "scratch" and 0.0 <= evaluation["test"]["auroc"] <= 1.0


def test_denoising_without_an_item_shape_says_so() -> None:
    from torch import nn

    from ssl_domains.contracts import InputSpec

    class Pooled(nn.Module):
        input_spec = InputSpec(modality="signal", dims=1, channels=1)
        num_features = 4

    with pytest.raises(IncompatibleError, match=r"Pooled has no input_shape; pass input_shape=\[C, \*spatial\]"):
        DenoisingAutoencoder(Pooled())


def kit_words(prop: str) -> str:
    """What the conformance kit says when ``prop`` (``kind/name/property``) fails, without the
    component's name in front."""
    (case,) = [c for c in component_cases("accel") if str(c) == prop]
    with pytest.raises(AssertionError) as failure:
        check_case(case)
    name = prop.split("/")[1]
    message = str(failure.value).splitlines()[0]
    assert message.startswith(f"{name}: ")
    return message.removeprefix(f"{name}: ")


@pytest.mark.parametrize("flat,short,backbone,prop", [
    (True, False, "mlp", "loader/accel/item"),          # a [T] item, no channel axis
    (False, True, "mlp", "loader/accel/labels"),        # labels shorter than the dataset
    (False, False, "unpooled_cnn", "backbone/unpooled_cnn/forward_shape"),  # [B, F, T] features
])
def test_a_run_refuses_a_broken_component_in_the_kits_words(tmp_path: Path, installed: Path, flat: bool,
                                                           short: bool, backbone: str, prop: str) -> None:
    sys.modules.pop("accel", None)
    install(installed, "accel", textwrap.dedent(ACCEL).replace("FLAT", str(flat)).replace("SHORT", str(short)))
    words = kit_words(prop)
    args = {"mlp": {"input_shape": [1, 32], "hidden": 8}, "unpooled_cnn": {}}[backbone]
    cfg = {"name": "acc", "output_dir": str(tmp_path / "runs"), "seed": 0,
           "backbone": {"name": backbone, "args": args},
           "finetune": {"data": {"train": {"name": "accel", "args": {"n": 20, "flat": flat, "short_labels": short}},
                                 "batch_size": 8},
                        "task": {"name": "classification"}, "from_scratch": True,
                        "train": {"epochs": 1, "progress": False}}}
    res = CliRunner().invoke(cli, ["finetune", str(write_config(tmp_path / "c.yaml", cfg))])
    assert res.exit_code != 0
    message = str(res.exception)
    kind, name, check = prop.split("/")
    assert message.startswith("fine-tuning data (accel): "), message
    assert words in message  # the same words as the kit
    assert f"{kind} {name!r} of plugin 'accel' breaks its contract; the conformance kit checks it as {prop}" in message
    assert "mat1 and mat2" not in message and "in_channels" not in message


def test_a_time_first_signal_is_not_told_to_set_in_channels_to_its_length(tmp_path: Path,
                                                                          installed: Path) -> None:
    sys.modules.pop("accel", None)
    install(installed, "accel", textwrap.dedent(ACCEL).replace("FLAT", "False").replace("SHORT", "False"))
    cfg = {"name": "acc", "output_dir": str(tmp_path / "runs"), "seed": 0,
           "backbone": {"name": "mlp", "args": {"input_shape": [1, 32]}},
           "finetune": {"data": {"train": {"name": "accel", "args": {"time_first": True}}, "batch_size": 8},
                        "task": {"name": "classification"}, "from_scratch": True,
                        "train": {"epochs": 1, "progress": False}}}
    res = CliRunner().invoke(cli, ["finetune", str(write_config(tmp_path / "c.yaml", cfg))])
    assert str(res.exception) == (
        "fine-tuning data (accel): items are (32, 1), read as 32 channel(s), but the backbone expects 1: "
        "items are channel-first [C, *spatial] (a signal [C, T]); move the loader's channel axis first "
        "(x.movedim(-1, 0)), or set in_channels=32 if the items do have 32 channels")


def test_debug_shows_the_traceback_of_a_plugin_that_fails_to_import(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install(site, "brokenplug", "import numpy\nvalue = numpy.no_such_attribute_here\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "SSL_DOMAINS_CACHE": str(tmp_path / "cache"), "SSL_DOMAINS_PLUGINS": "brokenplug",
           "PYTHONWARNINGS": "default"}  # the skip is a warning: CI's PYTHONWARNINGS=ignore would hide it
    cmd = [sys.executable, "-m", "ssl_domains.cli"]
    plain = subprocess.run([*cmd, "plugins"], capture_output=True, text=True, timeout=120, env=env)
    assert ('Error importing plugin "brokenplug": AttributeError: module \'numpy\' has no attribute '
            "'no_such_attribute_here'; skipped (--debug shows the traceback") in plain.stderr
    assert "Traceback" not in plain.stderr
    debug = subprocess.run([*cmd, "--debug", "plugins"], capture_output=True, text=True, timeout=120, env=env)
    assert debug.returncode == 0, debug.stderr
    assert 'plugin "brokenplug" failed to import:\nTraceback (most recent call last):' in debug.stderr
    assert f'File "{site / "brokenplug.py"}", line 2, in <module>' in debug.stderr
