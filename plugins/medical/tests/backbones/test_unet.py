from __future__ import annotations

import pytest
import torch
from ssl_domains_medical.backbones.unet import UNetEncoder


def test_models_genesis_layout() -> None:
    model = UNetEncoder(spatial_dims=3)
    assert model.pyramid_channels == [64, 128, 256, 512]
    assert model.num_features == 512
    keys = model.state_dict()
    assert keys["down_tr.0.ops.0.conv1.weight"].shape == (32, 1, 3, 3, 3)
    assert keys["down_tr.0.ops.1.conv1.weight"].shape == (64, 32, 3, 3, 3)
    assert keys["down_tr.3.ops.1.conv1.weight"].shape == (512, 256, 3, 3, 3)
    assert "down_tr.3.ops.1.conv1.bias" in keys
    assert "down_tr.2.ops.0.bn1.running_mean" in keys


@pytest.mark.parametrize("shape", [(2, 1, 16, 16, 16), (2, 3, 28, 28)])
def test_features_and_pyramid(shape: tuple[int, ...]) -> None:
    model = UNetEncoder(spatial_dims=len(shape) - 2, in_channels=shape[1], base_channels=4,
                        levels=3)
    x = torch.randn(shape)
    maps = model.forward_pyramid(x)
    assert [m.shape[1] for m in maps] == [8, 16, 32] == model.pyramid_channels
    assert [m.shape[2] for m in maps] == [shape[2] // s for s in model.pyramid_strides]
    assert model.forward_features(x).shape == (2, 32)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="levels must be >= 1, got 0"):
        UNetEncoder(levels=0)
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3, got 4"):
        UNetEncoder(spatial_dims=4)
