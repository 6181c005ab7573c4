"""Files a user points the tool at are never unpickled: a pickled payload next to real weights
is refused at every entry point (--init, --resume, evaluate, predict) and never runs."""

from __future__ import annotations

import builtins
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from ssl_domains.config import ComponentRef, parse_config
from ssl_domains.engine.checkpoints import load_checkpoint, load_init
from ssl_domains.engine.evaluate import evaluate, predict_data
from ssl_domains.engine.finetune import finetune
from ssl_domains.engine.pretrain import pretrain
from ssl_domains.errors import CheckpointError
from ssl_domains.plugins import get_host
from tests.conftest import make_config, write_config


class Payload:
    """Unpickling this creates ``marker``: the stand-in for arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (builtins.open, (str(self.marker), "w"))


def _backbone() -> torch.nn.Module:
    return get_host().registry.create("backbone", "mlp", input_shape=[1, 32], hidden=32)


def _payload_file(path: Path, marker: Path, tensors: dict[str, Any]) -> Path:
    torch.save({**tensors, "extra": Payload(marker)}, path)
    return path


def test_payload_unpickles_under_plain_torch_load(tmp_path: Path) -> None:
    """The payload is real: a full unpickle creates the marker (so the tests below can fail)."""
    marker = tmp_path / "ran"
    path = _payload_file(tmp_path / "w.pt", marker, {"state_dict": _backbone().state_dict()})
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_init_with_payload_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = _payload_file(tmp_path / "weights.pt", marker, {"state_dict": _backbone().state_dict()})
    with pytest.raises(CheckpointError) as err:
        load_init(path, _backbone())
    assert str(err.value).startswith(f"{path}: refused to load this weights file")
    assert "io.open" in str(err.value) and ".safetensors" in str(err.value)
    assert not marker.exists()


def test_init_reads_foreign_weights_with_numpy_values_but_not_a_payload_among_them(tmp_path: Path) -> None:
    import numpy as np

    src = _backbone()
    extras = {"best_acc": np.float64(0.91), "epoch": np.int64(40), "lrs": np.array([0.1, 0.01])}
    torch.save({"state_dict": src.state_dict(), **extras}, tmp_path / "genesis.pt")
    dst = _backbone()
    assert not load_init(tmp_path / "genesis.pt", dst).missing
    assert all(torch.equal(v, dst.state_dict()[k]) for k, v in src.state_dict().items())
    marker = tmp_path / "ran"
    path = _payload_file(tmp_path / "mixed.pt", marker, {"state_dict": src.state_dict(), **extras})
    with pytest.raises(CheckpointError, match="refused to load this weights file"):
        load_init(path, _backbone())
    assert not marker.exists()


def test_cli_init_with_payload_exits_1_without_running_it(tmp_path: Path, arrays: Path) -> None:
    marker = tmp_path / "ran"
    path = _payload_file(tmp_path / "weights.pt", marker, {"state_dict": _backbone().state_dict()})
    cfg = write_config(tmp_path / "c.yaml", make_config(tmp_path, arrays, finetune=None))
    res = subprocess.run([sys.executable, "-m", "ssl_domains.cli", "pretrain", str(cfg), "--init", str(path)],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"})
    assert res.returncode == 1, res.stdout
    assert res.stderr.strip().splitlines()[-1].startswith(f"Error: {path}: refused to load this weights file")
    assert not marker.exists()


def test_resume_checkpoint_is_weights_only_and_a_replaced_one_is_refused(tmp_path: Path, arrays: Path) -> None:
    cfg = parse_config(make_config(tmp_path, arrays, finetune=None, **{"pretrain.train.epochs": 1}))
    run = tmp_path / "runs" / "t"
    pretrain(cfg, run, registry=get_host().registry)
    last = run / "checkpoints" / "pretrain" / "last.pt"
    state = torch.load(last, weights_only=True)  # what we write needs no unpickling of objects
    assert state["step"] == 20 and isinstance(state["rng"]["numpy"]["keys"], torch.Tensor)
    # an --init from our own resume checkpoint takes the weights-only path too
    report = load_init(last, _backbone())
    assert report.kind == "resume checkpoint" and not report.missing

    marker = tmp_path / "ran"
    last.unlink()  # a replaced file, not a write through the hard link to step_*.pt
    _payload_file(last, marker, state)
    with pytest.raises(CheckpointError, match=f"^{last}: refused to load this checkpoint"):
        pretrain(cfg, run, resume=True, registry=get_host().registry)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(last)
    assert not marker.exists()


def _finetuned(tmp_path: Path, arrays: Path) -> Path:
    cfg = parse_config(make_config(tmp_path, arrays, pretrain=None,
                                   **{"finetune.from_scratch": True, "finetune.train.epochs": 1}))
    run = tmp_path / "runs" / "ft"
    finetune(cfg, run, registry=get_host().registry)
    return run


def test_evaluate_and_predict_refuse_a_pickled_model_file(tmp_path: Path, arrays: Path) -> None:
    run = _finetuned(tmp_path, arrays)
    weights = run / "export" / "model.safetensors"
    marker = tmp_path / "ran"
    weights.unlink()
    _payload_file(weights, marker, {"state_dict": _backbone().state_dict()})
    with pytest.raises(CheckpointError, match=f"^{weights}: not a readable safetensors file"):
        evaluate(run, registry=get_host().registry)
    with pytest.raises(CheckpointError, match=f"^{weights}: not a readable safetensors file"):
        predict_data(run, ComponentRef(name="arrays", args={"path": str(arrays)}), tmp_path / "p.csv", registry=get_host().registry)
    assert not marker.exists()
    (run / "export" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json: not a readable export config"):
        evaluate(run, registry=get_host().registry)
