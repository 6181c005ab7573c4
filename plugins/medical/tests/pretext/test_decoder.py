from __future__ import annotations

import pytest
import torch
from ssl_domains_medical.backbones import ResNetEncoder, ViTEncoder
from ssl_domains_medical.pretext.decoder import PyramidDecoder, check_pyramid_backbone

from ssl_domains.builtin.mlp import MLPBackbone
from ssl_domains.errors import IncompatibleError


def test_reaches_input_size_from_odd_sizes_and_strides() -> None:
    bb = ResNetEncoder(spatial_dims=2, depth=10, width=4, stem_stride=2, max_pool=True)
    dec = PyramidDecoder(2, bb.pyramid_channels, bb.pyramid_strides, out_channels=3)
    x = torch.randn(2, 1, 27, 30)
    assert len(dec.ups) == 1
    assert dec(bb.forward_pyramid(x), (27, 30)).shape == (2, 3, 27, 30)


def test_vit_tokens_are_upsampled_step_by_step() -> None:
    bb = ViTEncoder(spatial_dims=2, img_size=32, patch_size=8, hidden_size=32, mlp_dim=32,
                    num_layers=1, num_heads=2)
    dec = PyramidDecoder(2, bb.pyramid_channels, bb.pyramid_strides, out_channels=1)
    assert len(dec.ups) == 3
    assert dec(bb.forward_pyramid(torch.randn(1, 1, 32, 32)), (32, 32)).shape == (1, 1, 32, 32)


def test_incompatible_backbones_are_named() -> None:
    with pytest.raises(IncompatibleError, match="needs a 2-D or 3-D image backbone; MLPBackbone"):
        check_pyramid_backbone(MLPBackbone([1, 16], modality="signal"), "masked_inpainting")
    with pytest.raises(IncompatibleError, match="MLPBackbone has no forward_pyramid"):
        check_pyramid_backbone(MLPBackbone([1, 8, 8], modality="image"), "genesis_restoration")
