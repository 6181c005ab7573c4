"""The ``medmnist`` loader: splits, binary relabelling, unlabeled mode, errors."""

from __future__ import annotations

import numpy as np
import pytest
from ssl_domains_medical.loaders.medmnist import MedMNISTDataset

from ssl_domains.errors import ConfigError, DataError

from .conftest import shared_data


@pytest.fixture()
def npz(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "toy.npz"
    np.savez(path, train_images=rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
             train_labels=np.array([[0], [1], [1], [2], [0], [1]], np.uint8),
             val_images=np.full((2, 28, 28), 255, np.uint8), val_labels=np.array([[0], [1]], np.uint8),
             test_images=np.zeros((3, 28, 28, 3), np.uint8), test_labels=np.zeros((3, 1), np.uint8))
    return path


def test_train_plus_val_and_positive_label(npz):
    ds = MedMNISTDataset(str(npz), split="train+val", positive_label=0)
    assert len(ds) == 8 and ds.labels == [1, 0, 0, 0, 1, 0, 1, 0]
    item = ds[6]
    assert item["image"].shape == (1, 28, 28) and float(item["image"].max()) == 1.0
    assert item["label"] == 1 and item["meta"] == {"id": "val-0", "split": "val", "index": 0}


def test_rgb_and_unlabeled(npz):
    ds = MedMNISTDataset(str(npz), split="test", unlabeled=True)
    assert ds.labels is None and "label" not in ds[0] and ds[0]["image"].shape == (3, 28, 28)


def test_errors(npz, tmp_path):
    with pytest.raises(ConfigError, match="medmnist split 'training'"):
        MedMNISTDataset(str(npz), split="training")
    with pytest.raises(DataError, match="file not found"):
        MedMNISTDataset(str(tmp_path / "none.npz"))
    np.savez(tmp_path / "multi.npz", train_images=np.zeros((2, 28, 28), np.uint8),
             train_labels=np.zeros((2, 3), np.uint8))
    with pytest.raises(DataError, match="multi-label targets"):
        MedMNISTDataset(str(tmp_path / "multi.npz"))
    with pytest.raises(DataError, match="no split 'val'"):
        MedMNISTDataset(str(tmp_path / "multi.npz"), split="val")


def test_breastmnist_malignant_is_positive():
    ds = MedMNISTDataset(str(shared_data("breastmnist") / "breastmnist.npz"), split="train",
                         positive_label=0)
    assert len(ds) == 546 and sum(ds.labels) == 147  # 147 malignant (original label 0)


def test_adrenal_3d():
    ds = MedMNISTDataset(str(shared_data("adrenalmnist3d") / "adrenalmnist3d_64.npz"), split="val",
                         max_items=4)
    assert len(ds) == 4 and ds[0]["image"].shape == (1, 64, 64, 64)


def test_augmentation_only_on_training_views(tmp_path) -> None:
    import numpy as np
    import torch
    from ssl_domains_medical.loaders.medmnist import MedMNISTDataset

    from ssl_domains.data.datasets import Subset

    rng = np.random.RandomState(0)
    path = tmp_path / "m.npz"
    np.savez(path, train_images=rng.randint(0, 255, (4, 8, 8)).astype(np.uint8),
             train_labels=np.array([[0], [1], [0], [1]]))
    ds = MedMNISTDataset(str(path), augment=True, max_shift=2)
    plain = ds[0]["image"]
    torch.manual_seed(0)
    seen = [Subset(ds, [0], train=True)[0]["image"] for _ in range(8)]
    assert all(s.shape == plain.shape for s in seen)
    assert any(not torch.equal(s, plain) for s in seen)
    assert torch.equal(Subset(ds, [0])[0]["image"], plain)  # validation view untouched
    torch.manual_seed(0)
    again = [Subset(ds, [0], train=True)[0]["image"] for _ in range(8)]
    assert all(torch.equal(a, b) for a, b in zip(seen, again))  # seeded
