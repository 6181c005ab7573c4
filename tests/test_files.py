"""Writing run artifacts: a full disk gives one line naming the file and leaves no partial file;
JSON outputs are strict (no NaN/Infinity)."""

from __future__ import annotations

import errno
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ssl_domains import files
from ssl_domains.config import parse_config
from ssl_domains.engine.checkpoints import save_checkpoint
from ssl_domains.engine.pretrain import pretrain
from ssl_domains.engine.run_dir import RunDir
from ssl_domains.errors import WriteError
from ssl_domains.layout.export import ExportConfig, write_export
from ssl_domains.plugins import get_host
from tests.conftest import make_config

DISK_FULL = os.strerror(errno.ENOSPC)


def _disk_full(fd: int) -> None:
    raise OSError(errno.ENOSPC, DISK_FULL)


def _strict(text: str) -> Any:
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EDQUOT])
def test_checkpoint_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    folder = tmp_path / "ck"
    save_checkpoint({"step": 1, "w": torch.ones(3)}, folder, step=1)

    def fail(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(files.os, "fsync", fail)
    with pytest.raises(WriteError) as err:
        save_checkpoint({"step": 2, "w": torch.zeros(3)}, folder, step=2)
    assert str(err.value) == f"{folder / 'step_00000002.pt'}: cannot write ({os.strerror(code)})"
    assert sorted(p.name for p in folder.iterdir()) == ["last.pt", "step_00000001.pt"]  # no .tmp
    assert torch.load(folder / "last.pt", weights_only=True)["step"] == 1  # the old one is intact


def test_export_and_json_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files.os, "fsync", _disk_full)
    with pytest.raises(WriteError, match=r"backbone\.safetensors: cannot write \(No space left on device\)$"):
        write_export(tmp_path / "export", ExportConfig(stage="pretrain", backbone={"name": "mlp"}), card="",
                     backbone=torch.nn.Linear(2, 2).state_dict())
    with pytest.raises(WriteError, match=r"eval\.json: cannot write \(No space left on device\)$"):
        files.write_json(tmp_path / "eval.json", {"auroc": 0.5})
    assert [p.name for p in tmp_path.rglob("*")] == ["export"]


def test_a_run_on_a_full_disk_stops_with_one_line(tmp_path: Path, arrays: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = parse_config(make_config(tmp_path, arrays, finetune=None))
    monkeypatch.setattr(files.os, "fsync", _disk_full)
    run = tmp_path / "runs" / "t"
    with pytest.raises(WriteError) as err:
        pretrain(cfg, run, registry=get_host().registry)
    assert str(err.value).endswith(": cannot write (No space left on device)")
    assert "\n" not in str(err.value)
    assert not list(run.rglob("*.tmp")) and not (run / ".lock").exists()


def test_strict_json_has_no_nan_or_infinity(tmp_path: Path) -> None:
    value = {"auroc": math.nan, "x": [math.inf, -math.inf, 1.5], "n": np.int64(3),
             "f": np.float32(0.25), "a": np.array([1.0, np.nan]), "t": torch.tensor(2.0), "p": Path("a/b")}
    files.write_json(tmp_path / "s.json", value)
    assert _strict((tmp_path / "s.json").read_text()) == {
        "auroc": None, "x": [None, None, 1.5], "n": 3, "f": 0.25, "a": [1.0, None], "t": 2.0, "p": "a/b"}
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.log({"stage": "pretrain", "step": 1, "loss": math.nan, "lr": math.inf})
    assert _strict(run.layout.metrics.read_text()) == {"stage": "pretrain", "step": 1, "loss": None, "lr": None}


def test_figure_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from ssl_domains.report import plots

    def savefig(self: Figure, out: Path, **kw: Any) -> None:
        Path(out).write_bytes(b"\x89PNG partial")
        raise OSError(errno.ENOSPC, DISK_FULL)

    monkeypatch.setattr(Figure, "savefig", savefig)
    open_before = plt.get_fignums()
    fig, _ = plots.subplots(figsize=(2, 2))
    with pytest.raises(WriteError, match=r"roc\.png: cannot write \(No space left on device\)$"):
        plots.save(fig, tmp_path / "report" / "roc.png")
    assert not (tmp_path / "report" / "roc.png").exists()
    assert plt.get_fignums() == open_before  # report figures never enter pyplot: nothing leaks


def test_disk_full_inside_torch_save_is_reported_as_disk_full(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.save turns a failed write into `RuntimeError: [enforce fail at inline_container.cc]`;
    the checkpoint writer reports the cause instead."""
    import io

    folder = tmp_path / "ck"

    class FillsUp(io.FileIO):
        def write(self, data: Any) -> int:
            if self.tell() > 1000:
                raise OSError(errno.ENOSPC, DISK_FULL)
            return super().write(data)

    monkeypatch.setattr(files, "open", lambda path, mode: FillsUp(path, "w"), raising=False)
    with pytest.raises(WriteError) as err:
        save_checkpoint({"step": 1, "w": torch.randn(100, 100)}, folder, step=1)
    assert str(err.value) == f"{folder / 'step_00000001.pt'}: cannot write (No space left on device)"
    assert not list(folder.iterdir())
