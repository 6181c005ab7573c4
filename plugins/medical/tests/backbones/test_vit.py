from __future__ import annotations

import pytest
import torch
from monai.networks.nets import ViTAutoEnc
from ssl_domains_medical.backbones.vit import ViTEncoder

SMALL = {"hidden_size": 32, "mlp_dim": 64, "num_layers": 2, "num_heads": 4}


@pytest.mark.parametrize(("dims", "size", "grid"), [(2, 28, (7, 7)), (3, 16, (4, 4, 4))])
def test_features_and_token_grid(dims: int, size: int, grid: tuple[int, ...]) -> None:
    model = ViTEncoder(spatial_dims=dims, img_size=size, patch_size=4, **SMALL)
    x = torch.randn(2, 1, *[size] * dims)
    assert model.forward_features(x).shape == (2, 32)
    (tokens,) = model.forward_pyramid(x)
    assert tokens.shape == (2, 32, *grid)
    assert model.input_shape == (1, *[size] * dims)
    assert model.pyramid_strides == [4]


def test_same_names_as_vitautoenc_encoder() -> None:
    ours = ViTEncoder(spatial_dims=3, img_size=16, patch_size=4, **SMALL)
    ref = ViTAutoEnc(in_channels=1, img_size=16, patch_size=4, **SMALL)
    enc = {k: v.shape for k, v in ref.state_dict().items() if not k.startswith("conv3d_transpose")}
    assert {k: v.shape for k, v in ours.state_dict().items()} == enc


def test_patch_must_divide_image() -> None:
    with pytest.raises(ValueError, match=r"patch_size \(5, 5\) must divide img_size \(28, 28\)"):
        ViTEncoder(spatial_dims=2, img_size=28, patch_size=5, **SMALL)
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3, got 1"):
        ViTEncoder(spatial_dims=1)
