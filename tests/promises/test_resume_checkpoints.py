"""Promises of README "Safe with untrusted files and shared folders" -> "Resume checkpoints
that do not fit": `--resume` with a checkpoint of another backbone or task (an edited config, a
checkpoint copied from another run) is one line naming the file, the run it belongs to and what
the config builds, and leaves the run folder as it was; a damaged `last.pt` names the last
intact periodic checkpoint, from which the run then resumes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.promises.cli import ssl_domains, tiny_config


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(config, run folder) of a tiny pre-training with periodic checkpoints at steps 30, 40."""
    folder = tmp_path_factory.mktemp("resume")
    cfg = tiny_config(folder, finetune=None)
    res = ssl_domains("pretrain", str(cfg))
    assert res.code == 0, res.err
    return cfg, folder / "runs" / "t"


def test_resume_checkpoint_of_another_backbone_is_one_line_and_changes_nothing(
        pretrained: tuple[Path, Path], tmp_path: Path) -> None:
    _, run = pretrained
    copy = tmp_path / "t"
    shutil.copytree(run, copy)
    before = (copy / "config.yaml").read_text()
    last = copy / "checkpoints" / "pretrain" / "last.pt"
    res = ssl_domains("pretrain", "--resume", str(copy), "--set", "backbone.args.hidden=64")
    assert res.code == 1
    assert res.error == (
        f"Error: {last}: resume checkpoint of run 't' (pretrain, step 40; backbone mlp {{'hidden': 32, "
        "'input_shape': [1, 32]}, task denoising {}) does not fit what the config builds (backbone mlp "
        "{'hidden': 64, 'input_shape': [1, 32]}, task denoising {}); resume with the config the run "
        "was started with, or start a new run in another folder")
    assert "Traceback" not in res.err and len(res.err.strip().splitlines()) == 1
    assert (copy / "config.yaml").read_text() == before  # the run can still be resumed as it was
    res = ssl_domains("pretrain", "--resume", str(copy), "--set", "pretrain.train.epochs=3")
    assert res.code == 0, res.err  # training settings may change on resume


def test_resume_damaged_last_checkpoint_names_the_last_intact_periodic_one(
        pretrained: tuple[Path, Path], tmp_path: Path) -> None:
    _, run = pretrained
    copy = tmp_path / "t"
    shutil.copytree(run, copy)
    ckpts = copy / "checkpoints" / "pretrain"
    last, newest, older = ckpts / "last.pt", ckpts / "step_00000040.pt", ckpts / "step_00000030.pt"
    last.unlink()
    newest.unlink()
    shutil.copyfile(older, newest)  # damage both names of the newest state, as a cut-short copy
    with newest.open("r+b") as f:
        f.truncate(3000)
    last.hardlink_to(newest)
    res = ssl_domains("pretrain", "--resume", str(copy))
    assert res.code == 1
    assert res.error.startswith(f"Error: {last}: cannot read checkpoint (RuntimeError: ")
    assert res.error.endswith(
        f": the file is damaged or cut short. The last intact periodic checkpoint is {older} (step 30): "
        f"copy it over {last} and resume again (the steps after it are redone)")
    shutil.copyfile(older, last.with_suffix(".tmp"))  # what the message says, atomically
    last.with_suffix(".tmp").replace(last)
    res = ssl_domains("pretrain", "--resume", str(copy))
    assert res.code == 0, res.err
