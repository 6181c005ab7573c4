from __future__ import annotations

import pytest
import torch
from ssl_domains_medical.augment import Augmentation, augmentation_from, random_rotation


def ramp(dims: int) -> torch.Tensor:
    shape = (2, 1) + (8,) * dims
    return torch.arange(float(torch.tensor(shape).prod())).reshape(shape)


@pytest.mark.parametrize("dims", [2, 3])
def test_identity_settings_return_the_input(dims: int) -> None:
    x = ramp(dims)
    aug = Augmentation(scale=(1.0, 1.0), rotate=0.0, translate=0.0, flip_axes=(),
                       brightness=0.0, contrast=0.0)
    assert torch.allclose(aug(x), x, atol=1e-3)


@pytest.mark.parametrize("dims", [2, 3])
def test_flips_mirror_only_the_named_axis(dims: int) -> None:
    x = ramp(dims)
    torch.manual_seed(0)
    aug = Augmentation(scale=(1.0, 1.0), rotate=0.0, translate=0.0, flip_axes=(0,),
                       brightness=0.0, contrast=0.0)
    seen = set()
    for _ in range(8):
        out = aug.warp(x)
        for i in range(len(x)):
            if torch.allclose(out[i], x[i], atol=1e-3):
                seen.add("same")
            else:
                assert torch.allclose(out[i], x[i].flip(1), atol=1e-3)  # spatial axis 0
                seen.add("flipped")
    assert seen == {"same", "flipped"}


def test_rotation_matrices_are_orthonormal() -> None:
    for dims in (2, 3):
        r = random_rotation(5, dims, 30.0)
        eye = torch.eye(dims).expand(5, dims, dims)
        assert torch.allclose(r @ r.transpose(1, 2), eye, atol=1e-5)
        assert torch.allclose(torch.linalg.det(r), torch.ones(5), atol=1e-5)


def test_random_views_differ_and_keep_shape_and_seed() -> None:
    x = torch.rand(4, 1, 16, 16)
    aug = Augmentation(scale=(0.6, 1.0), rotate=20, noise=0.1)
    torch.manual_seed(3)
    a = aug(x)
    torch.manual_seed(3)
    b = aug(x)
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.allclose(a, aug(x))


def test_intensity_keeps_the_mean_without_brightness() -> None:
    x = torch.rand(3, 1, 8, 8, 8)
    aug = Augmentation(brightness=0.0, contrast=0.5)
    out = aug.intensity(x)
    assert torch.allclose(out.mean((1, 2, 3, 4)), x.mean((1, 2, 3, 4)), atol=1e-5)
    assert not torch.allclose(out, x)


def test_bad_settings_raise() -> None:
    with pytest.raises(ValueError, match="scale"):
        Augmentation(scale=(1.0, 0.5))
    with pytest.raises(ValueError, match=">= 0"):
        Augmentation(rotate=-1)
    with pytest.raises(ValueError, match="padding"):
        Augmentation(padding="wrap")
    with pytest.raises(ValueError, match="unknown key"):
        augmentation_from({"zoom": 2})
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        Augmentation()(torch.rand(2, 8))
    assert augmentation_from(None) is None
    assert augmentation_from({"scale": [0.9, 1.0]}) == Augmentation(scale=(0.9, 1.0))
