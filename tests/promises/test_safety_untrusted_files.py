"""Promises of README "Safe with untrusted files and shared folders" about files someone else
may have put in reach: weights that carry pickled code ("No pickled code runs"), a run folder's
YAML with a Python tag ("Untrusted YAML"), and symbolic links planted in a run folder ("Links
in run folders")."""

from __future__ import annotations

import builtins
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.promises.cli import ssl_domains, tiny_config


class Payload:
    """Unpickling this creates ``marker``: the stand-in for arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (builtins.open, (str(self.marker), "w"))


@contextmanager
def replaced(path: Path, write: Callable[[Path], object]) -> Iterator[None]:
    """``path`` as ``write(path)`` makes it (someone replaced the file), restored afterwards."""
    kept = path.read_bytes()
    path.unlink()
    try:
        write(path)
        yield
    finally:
        path.write_bytes(kept)


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A pre-trained and fine-tuned tiny run: (its config, its folder)."""
    folder = tmp_path_factory.mktemp("untrusted")
    cfg = tiny_config(folder, **{"pretrain.train.epochs": 1, "finetune.train.epochs": 1})
    for stage in ("pretrain", "finetune"):
        res = ssl_domains(stage, str(cfg))
        assert res.code == 0, res.err
    return cfg, folder / "runs" / "t"


def test_safety_no_pickled_code_runs_from_init_resume_evaluate_or_predict(finetuned: tuple[Path, Path],
                                                                          tmp_path: Path) -> None:
    cfg, run = finetuned
    marker = tmp_path / "ran"
    weights = tmp_path / "weights.pt"
    state = torch.load(run / "checkpoints" / "pretrain" / "last.pt", weights_only=True)
    torch.save({"state_dict": state["model"], "extra": Payload(marker)}, weights)
    torch.load(weights, weights_only=False)  # the payload is real: a plain unpickle runs it
    assert marker.exists()
    marker.unlink()

    res = ssl_domains("pretrain", str(cfg), "--init", str(weights), "--out", str(tmp_path / "new"))
    assert res.code == 1
    assert res.error.startswith(f"Error: {weights}: refused to load this weights file: it holds "
                                "Python objects besides tensors (io.open)")

    copy = tmp_path / "copy"  # a resume checkpoint replaced by one that carries the payload
    ssl_domains("pretrain", str(cfg), "--out", str(copy))
    last = copy / "checkpoints" / "pretrain" / "last.pt"
    last.unlink()
    torch.save({**state, "extra": Payload(marker)}, last)
    res = ssl_domains("pretrain", "--resume", str(copy))
    assert res.code == 1 and res.error.startswith(f"Error: {last}: refused to load this checkpoint")

    model = run / "export" / "model.safetensors"  # evaluate and predict read safetensors only
    with replaced(model, lambda p: torch.save({"state_dict": state["model"], "extra": Payload(marker)}, p)):
        for args in (["evaluate", str(run)],
                     ["predict", str(run), "--loader", "arrays", "--arg", f"path={run.parents[1] / 'data.npz'}",
                      "--out", str(tmp_path / "p.csv")]):
            res = ssl_domains(*args)
            assert res.code == 1 and res.error == f"Error: {model}: not a readable safetensors file " \
                "(Error while deserializing header: header too large)", res.err
    assert not marker.exists()


def test_safety_a_python_tag_in_a_run_folders_yaml_is_one_line_naming_the_file(finetuned: tuple[Path, Path],
                                                                               tmp_path: Path) -> None:
    _, run = finetuned
    marker = tmp_path / "ran"
    config = run / "config.yaml"
    with replaced(config, lambda p: p.write_text(f'!!python/object/apply:builtins.open ["{marker}", "w"]\n')):
        for args in (["evaluate", str(run)], ["finetune", "--resume", str(run)]):
            res = ssl_domains(*args)
            assert res.code == 1, res.err
            assert res.error == (f"Error: {config}: line 1 refused: a Python tag "
                                 "('tag:yaml.org,2002:python/object/apply:builtins.open'), which could "
                                 "run code when loaded; ssl-domains writes plain YAML only")
            assert len(res.err.strip().splitlines()) == 1
        res = ssl_domains("report", str(run))  # the report leaves the config section out, saying why
        assert res.code == 0
        assert "refused: a Python tag" in (run / "report" / "report.html").read_text()
    assert not marker.exists()


def test_safety_run_folder_files_are_never_read_or_written_through_a_link(finetuned: tuple[Path, Path],
                                                                           tmp_path: Path) -> None:
    cfg, run = finetuned
    outside = tmp_path / "outside.jsonl"
    outside.write_text('{"someone": "else\'s file"}\n')
    copy = tmp_path / "run"
    res = ssl_domains("pretrain", str(cfg), "--out", str(copy), "--set", "pretrain.train.epochs=1")
    assert res.code == 0, res.err
    metrics = copy / "metrics.jsonl"
    metrics.unlink()
    os.symlink(outside, metrics)
    res = ssl_domains("finetune", str(cfg), "--out", str(copy))
    assert res.code == 1
    assert res.error == (f"Error: {metrics}: cannot write (it is a symbolic link; files of a run folder "
                         "are never read or written through links, remove it)")
    assert outside.read_text() == '{"someone": "else\'s file"}\n'  # nothing appended

    res = ssl_domains("report", str(copy))  # nor shown in a shared report
    assert res.code == 0
    html = (copy / "report" / "report.html").read_text()
    assert "someone" not in html and "metrics.jsonl: cannot read (it is a symbolic link" in html

    # a link planted under the temporary name of an atomic write is replaced, not written through
    os.symlink(outside, copy / ".eval.json.tmp")
    metrics.unlink()
    res = ssl_domains("finetune", str(cfg), "--out", str(copy))
    assert res.code == 0, res.err
    assert outside.read_text() == '{"someone": "else\'s file"}\n'
    assert json.loads((copy / "eval.json").read_text())["n_test"] == 400

    os.symlink(outside, copy / ".lock")  # nor is the lock taken through a link
    res = ssl_domains("finetune", "--resume", str(copy))
    assert res.code == 1
    assert res.error == f"Error: {copy / '.lock'}: cannot write (it is a symbolic link; files of a run " \
        "folder are never read or written through links, remove it)"
    assert outside.read_text() == '{"someone": "else\'s file"}\n'
