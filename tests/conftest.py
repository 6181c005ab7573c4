"""Shared fixtures for host tests: tiny array data and config writers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from ssl_domains.plugins import reset_host

# opaque ids are keyed per site: tests use a fixed key and never touch ~/.config
os.environ.setdefault("SSL_DOMAINS_ID_KEY", "ssl-domains-test-key-0123456789")

# tiny test models run faster on one thread (and do not fight parallel test processes)
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _fresh_host() -> Iterator[None]:
    reset_host()
    yield
    reset_host()


def write_arrays(folder: Path) -> Path:
    """``folder/data.npz``: 400 signals [1, 32] whose label is the sign of the mean of the
    first 8 points."""
    rng = np.random.RandomState(0)
    x = rng.randn(400, 1, 32).astype("float32")
    y = (x[:, 0, :8].mean(1) > 0).astype(int)
    path = folder / "data.npz"
    np.savez(path, x=x, y=y)
    return path


@pytest.fixture
def arrays(tmp_path: Path) -> Path:
    """:func:`write_arrays` in the test's folder."""
    return write_arrays(tmp_path)


def make_config(tmp_path: Path, data: Path, **overrides: Any) -> dict[str, Any]:
    """A pretrain + finetune config on the built-in mlp/denoising/classification components."""
    src = {"name": "arrays", "args": {"path": str(data)}}
    cfg: dict[str, Any] = {
        "name": "t",
        "output_dir": str(tmp_path / "runs"),
        "seed": 0,
        "backbone": {"name": "mlp", "args": {"input_shape": [1, 32], "hidden": 32}},
        "pretrain": {
            "data": {"train": {"name": "arrays", "args": {"path": str(data), "y_key": None}}, "batch_size": 16},
            "task": {"name": "denoising"},
            "train": {"epochs": 2, "checkpoint_every": 10, "progress": False},
        },
        "finetune": {
            "data": {"train": src, "test": src, "batch_size": 16},
            "task": {"name": "classification"},
            "train": {"epochs": 3, "lr": 3e-3, "progress": False,
                      "early_stopping": {"metric": "auroc", "patience": 3}},
        },
    }
    for key, value in overrides.items():
        node = cfg
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return cfg


def write_config(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path
