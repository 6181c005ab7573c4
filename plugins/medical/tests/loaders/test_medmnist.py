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


@pytest.fixture()
def npz3d(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "vol.npz"
    np.savez(path, train_images=rng.integers(0, 256, (3, 8, 6, 5), dtype=np.uint8),
             train_labels=np.array([[0], [1], [1]], np.uint8))
    return path


def test_size_resizes_2d_grey_rgb_and_3d(npz, npz3d):
    grey = MedMNISTDataset(str(npz), split="train", size=14)
    plain = MedMNISTDataset(str(npz), split="train")
    assert grey[0]["image"].shape == (1, 14, 14) and grey.labels == plain.labels
    box = plain[0]["image"].reshape(1, 14, 2, 14, 2).mean((2, 4))
    assert (grey[0]["image"] - box).abs().max() <= 0.5 / 255 + 1e-6  # area average, rounded
    assert MedMNISTDataset(str(npz), split="test", size=[7, 56])[0]["image"].shape == (3, 7, 56)
    white = MedMNISTDataset(str(npz), split="val", size=[40, 20])[0]["image"]
    assert white.shape == (1, 40, 20) and bool((white == 1.0).all())
    vol = MedMNISTDataset(str(npz3d), size=(4, 12, 2))
    assert vol[2]["image"].shape == (1, 4, 12, 2) and vol.labels == [0, 1, 1]
    assert MedMNISTDataset(str(npz3d), size=4)[0]["image"].shape == (1, 4, 4, 4)


def test_bad_size_and_flip_axes(npz, npz3d):
    with pytest.raises(ConfigError, match=r"medmnist size 0: sizes must be positive ints"):
        MedMNISTDataset(str(npz), size=0)
    with pytest.raises(ConfigError, match=r"medmnist size \[\]: sizes must be positive ints"):
        MedMNISTDataset(str(npz), size=[])
    with pytest.raises(ConfigError, match=r"medmnist size '32': expected an int or a list of ints"):
        MedMNISTDataset(str(npz), size="32")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"medmnist size \[8, 8\]: give one int or 3 ints for "
                       "these 3-D images"):
        MedMNISTDataset(str(npz3d), size=[8, 8])
    with pytest.raises(ConfigError, match=r"medmnist flip_axes 2.5: expected an int or a list"):
        MedMNISTDataset(str(npz), flip_axes=2.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"medmnist flip_axes \[0, 2\]: the spatial axes of "
                       r"these 2-D images are 0..1 \(or negative\)"):
        MedMNISTDataset(str(npz), flip_axes=[0, 2])


def test_flips_along_every_axis_of_a_volume(npz3d):
    import torch

    ds = MedMNISTDataset(str(npz3d), augment=True, max_shift=0, flip_axes=[0, 1, 2])
    x = ds[0]["image"]
    torch.manual_seed(0)
    seen = [ds.augment_item(ds[0])["image"] for _ in range(40)]
    for dims in [(), (1,), (2,), (3,), (1, 2, 3)]:
        want = x.flip(dims) if dims else x
        assert any(torch.equal(s, want) for s in seen), dims  # each axis flips, alone or all
    last = MedMNISTDataset(str(npz3d), augment=True, max_shift=0)  # default: last axis only
    outs = [last.augment_item(last[0])["image"] for _ in range(20)]
    assert all(torch.equal(o, x) or torch.equal(o, x.flip(3)) for o in outs)
    assert any(torch.equal(o, x.flip(3)) for o in outs)
    none = MedMNISTDataset(str(npz3d), augment=True, max_shift=0, flip_axes=None)
    assert torch.equal(none.augment_item(none[0])["image"], x)
