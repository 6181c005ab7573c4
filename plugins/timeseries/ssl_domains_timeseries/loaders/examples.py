"""Files the loaders' ``examples`` name, written for the host's conformance kit
(``@component(..., example_data="module:function")``): small, synthetic, deterministic."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["write_torch_dict_example", "write_wfdb_example"]


def write_torch_dict_example(folder: Path) -> None:
    """``train.pt``: ``{"samples": [8, 2, 64], "labels": [8]}`` (both classes)."""
    import torch

    g = torch.Generator().manual_seed(0)
    torch.save({"samples": torch.randn(8, 2, 64, generator=g), "labels": torch.arange(8) % 2},
               folder / "train.pt")


def write_wfdb_example(folder: Path) -> None:
    """``mitdb/100``: a 2-channel, 4 s record at 250 Hz with normal and ventricular beats."""
    import wfdb

    out = folder / "mitdb"
    out.mkdir(parents=True, exist_ok=True)
    t = np.arange(1000) / 250.0
    sig = np.stack([np.sin(2 * np.pi * t), 0.5 * np.cos(2 * np.pi * t)], axis=1)
    wfdb.wrsamp("100", fs=250, units=["mV", "mV"], sig_name=["MLII", "V1"], p_signal=sig,
                fmt=["16", "16"], write_dir=str(out))
    beats = np.array([150, 350, 550, 750])
    wfdb.wrann("100", "atr", beats, symbol=["N", "V", "N", "V"], write_dir=str(out))
