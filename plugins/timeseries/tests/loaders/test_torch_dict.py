"""torch_dict loader: .pt dicts read with weights_only=True."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ssl_domains_timeseries.loaders.torch_dict import TorchDictDataset

from ssl_domains.errors import DataError


def test_samples_and_labels(tmp_path: Path) -> None:
    torch.save({"samples": torch.randn(5, 3, 40), "labels": torch.tensor([0, 1, 2, 1, 0])},
               tmp_path / "train.pt")
    ds = TorchDictDataset(str(tmp_path / "train.pt"), window=20)
    assert len(ds) == 10 and ds[0]["signal"].shape == (3, 20)
    assert ds.labels == [0, 0, 1, 1, 2, 2, 1, 1, 0, 0]
    binary = TorchDictDataset(str(tmp_path / "train.pt"), positive_classes=[2])
    assert binary.labels == [0, 0, 1, 0, 0]


def test_unlabeled_channels_last(tmp_path: Path) -> None:
    torch.save({"samples": torch.randn(2, 40, 3)}, tmp_path / "u.pt")
    ds = TorchDictDataset(str(tmp_path / "u.pt"), channels_last=True)
    assert ds.labels is None and ds[0]["signal"].shape == (3, 40)


class Evil:
    """Not a tensor: weights_only refuses to unpickle it."""


def test_bad_files(tmp_path: Path) -> None:
    torch.save({"samples": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(DataError, match="evil.pt: cannot read with weights_only=True"):
        TorchDictDataset(str(tmp_path / "evil.pt"))
    torch.save(torch.zeros(3), tmp_path / "t.pt")
    with pytest.raises(DataError, match="t.pt: expected a dict with 'samples', got Tensor$"):
        TorchDictDataset(str(tmp_path / "t.pt"))
    torch.save({"x": torch.zeros(3)}, tmp_path / "k.pt")
    with pytest.raises(DataError, match=r"k.pt: no entry 'samples' \(has: \['x'\]\)$"):
        TorchDictDataset(str(tmp_path / "k.pt"))
    torch.save({"samples": torch.zeros(3, 1, 4), "labels": torch.zeros(2)}, tmp_path / "m.pt")
    with pytest.raises(DataError, match=r"m.pt: 2 labels \('labels'\) for 3 samples$"):
        TorchDictDataset(str(tmp_path / "m.pt"))
