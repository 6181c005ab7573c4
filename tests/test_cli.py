"""Command line: one-line errors with non-zero exit, --debug tracebacks, listing commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_config, write_config

CLI = [sys.executable, "-m", "ssl_domains.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "PYTHONWARNINGS": "ignore"})


def last_line(res: subprocess.CompletedProcess[str]) -> str:
    return res.stderr.strip().splitlines()[-1]


def test_version_list_describe() -> None:
    assert run("--version").stdout.strip() == "ssl-domains, version 0.1.0"
    res = run("list", "backbone")
    assert res.returncode == 0 and "mlp" in res.stdout
    res = run("describe", "finetune", "classification")
    assert res.returncode == 0 and "num_classes" in res.stdout and "plugin ssl_domains" in res.stdout


@pytest.mark.parametrize("args,message", [
    (("describe", "backbone", "mpl"), "Error: unknown backbone 'mpl'; did you mean 'mlp'?"),
    (("pretrain",), "Error: give a CONFIG file (or --resume RUN_DIR)"),
    (("pretrain", "missing.yaml"), "Error: missing.yaml: config file not found"),
])
def test_errors_are_one_line(args: tuple[str, ...], message: str) -> None:
    res = run(*args)
    assert res.returncode == 1
    assert last_line(res).startswith(message)
    assert "Traceback" not in res.stderr


def test_bad_data_file_and_debug_traceback(tmp_path: Path, arrays: Path) -> None:
    cfg = make_config(tmp_path, tmp_path / "nope.npz", finetune=None)
    path = write_config(tmp_path / "c.yaml", cfg)
    res = run("pretrain", str(path))
    assert res.returncode == 1
    assert last_line(res) == f"Error: {tmp_path / 'nope.npz'}: file not found"
    assert "Traceback" not in res.stderr
    res = run("--debug", "pretrain", str(path))
    assert res.returncode == 1 and "Traceback" in res.stderr


def test_modality_mismatch_is_explained(tmp_path: Path, arrays: Path) -> None:
    cfg = make_config(tmp_path, arrays, finetune=None, **{"backbone.args.input_shape": [2, 32]})
    res = run("pretrain", str(write_config(tmp_path / "c.yaml", cfg)))
    assert res.returncode == 1
    assert last_line(res) == ("Error: pretrain data (arrays): items have 1 channel(s) but the backbone "
                              "expects 2; set in_channels=1")


def test_existing_run_is_not_overwritten(tmp_path: Path, arrays: Path) -> None:
    import json

    cfg = make_config(tmp_path, arrays, finetune=None)
    path = write_config(tmp_path / "c.yaml", cfg)
    res = run("pretrain", str(path))
    assert res.returncode == 0, res.stderr[-2000:]
    # the pre-training card, rendered from the run folder by the cli (the engine writes none)
    summary = json.loads(res.stdout)
    export = json.loads((tmp_path / "runs" / "t" / "export" / "config.json").read_text())
    card = (tmp_path / "runs" / "t" / "export" / "README.md").read_text()
    assert card.startswith("# t: pre-trained backbone") and "not written yet" not in card
    assert "- Backbone: `mlp` {'hidden': 32, 'input_shape': [1, 32]}" in card  # as in c.yaml
    assert "- Pretext task: `denoising` {}" in card and "- Continued from: random initialisation" in card
    assert f"- Data: loader `arrays`, {summary['n_train']} unlabeled training items" in card
    assert export["steps"] == summary["steps"] and export["best_val_loss"] == summary["best_val_loss"]
    assert f"- Steps: {summary['steps']}; best validation pretext loss: {summary['best_val_loss']}" in card
    res = run("pretrain", str(path))
    assert res.returncode == 1
    assert "already holds a pretrain run; continue it with --resume" in last_line(res)


def test_sweep_writes_the_card_of_its_pre_training(tmp_path: Path, arrays: Path) -> None:
    cfg = make_config(tmp_path, arrays, **{"pretrain.train.epochs": 1, "finetune.train.epochs": 1})
    path = write_config(tmp_path / "c.yaml", cfg)
    res = run("sweep", str(path), "--counts", "40", "--seeds", "1", "--arms", "ssl",
              "--out", str(tmp_path / "sw"))
    assert res.returncode == 0, res.stderr[-2000:]
    card = (tmp_path / "sw" / "pretrain" / "export" / "README.md").read_text()
    assert card.startswith("# t: pre-trained backbone") and "- Data: loader `arrays`, " in card


def test_init_from_foreign_and_resume_checkpoints(tmp_path: Path, arrays: Path) -> None:
    import torch

    from ssl_domains.engine.checkpoints import load_init
    from ssl_domains.errors import CheckpointError
    from ssl_domains.plugins import get_host

    reg = get_host().registry
    src = reg.create("backbone", "mlp", input_shape=[1, 32], hidden=32)
    # a foreign file: nested under state_dict with DataParallel prefixes
    torch.save({"state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}, "epoch": 3},
               tmp_path / "foreign.pth")
    dst = reg.create("backbone", "mlp", input_shape=[1, 32], hidden=32)
    report = load_init(tmp_path / "foreign.pth", dst)
    assert len(report.loaded) == 4 and not report.missing
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v)
    other = reg.create("backbone", "mlp", input_shape=[1, 16], hidden=8)
    with pytest.raises(CheckpointError, match="no plugin recognised these weights"):
        load_init(tmp_path / "foreign.pth", other)
    with pytest.raises(CheckpointError, match="--init path not found"):
        load_init(tmp_path / "none.pt", dst)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt: cannot read weights"):
        load_init(tmp_path / "junk.pt", dst)


def test_finetune_writes_the_model_card_and_dispatches_select_auto(tmp_path: Path, arrays: Path) -> None:
    import json

    cfg = make_config(tmp_path, arrays, pretrain=None, **{
        "finetune.from_scratch": True, "finetune.label_count": 60, "finetune.train.epochs": 1})
    path = write_config(tmp_path / "c.yaml", cfg)
    res = run("finetune", str(path), "--out", str(tmp_path / "single"))
    assert res.returncode == 0, res.stderr[-2000:]
    ev = json.loads((tmp_path / "single" / "eval.json").read_text())
    assert json.loads(res.stdout)["threshold"] == ev["threshold"]
    card = (tmp_path / "single" / "export" / "README.md").read_text()
    assert card.startswith("# Model card") and "Not written yet" not in card
    assert f"- items: train {ev['n_train']}, val {ev['n_val']}, test {ev['n_test']}" in card
    low, high = ev["test_intervals"]["auroc"]
    assert f"{low:.3f} to {high:.3f}" in card
    res = run("finetune", str(path), "--out", str(tmp_path / "auto"), "--set", "finetune.select=auto")
    assert res.returncode == 0, res.stderr[-2000:]
    chosen = json.loads((tmp_path / "auto" / "eval.json").read_text())["selection"]["chosen"]
    card = (tmp_path / "auto" / "export" / "README.md").read_text()
    assert f"- chosen by `select: auto`: **{chosen}**" in card
