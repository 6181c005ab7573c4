from __future__ import annotations

import pytest
import torch
from ssl_domains_medical.backbones import ResNetEncoder, ViTEncoder
from ssl_domains_medical.pretext.decoder import (
    PyramidDecoder,
    check_pyramid_backbone,
    pool_to_stride,
    pooled_size,
    upsample_to,
)

from ssl_domains.builtin.mlp import MLPBackbone
from ssl_domains.contracts import Backbone, PyramidBackbone, missing_members
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
    with pytest.raises(IncompatibleError, match="MLPBackbone has no forward_pyramid, pyramid_channels, pyramid_strides;"):
        check_pyramid_backbone(MLPBackbone([1, 8, 8], modality="image"), "genesis_restoration")
    half = MLPBackbone([1, 8, 8], modality="image")
    half.forward_pyramid = lambda x: [x]  # type: ignore[method-assign]
    half.pyramid_channels = [1]  # type: ignore[assignment]
    with pytest.raises(IncompatibleError, match="MLPBackbone has no pyramid_strides;"):
        check_pyramid_backbone(half, "masked_inpainting")


def test_shipped_image_encoders_are_pyramid_backbones(ssl_host) -> None:
    entries = [e for e in ssl_host.registry.entries("backbone") if e.plugin == "medical"]
    assert {"resnet_encoder", "unet_encoder", "vit_encoder", "swin_encoder"} <= {e.name for e in entries}
    for entry in entries:
        bb = entry.factory(**entry.examples[0].args)
        assert isinstance(bb, Backbone) and isinstance(bb, PyramidBackbone), entry.name
        assert missing_members(bb, PyramidBackbone) == []
        check_pyramid_backbone(bb, "masked_inpainting")


def test_pooling_counts_partial_edge_windows() -> None:
    x = torch.arange(1.0, 4.0).view(1, 1, 1, 3)  # [1, 2, 3]
    assert pooled_size((1, 3), 2) == (1, 2)
    assert pool_to_stride(x, 2).flatten().tolist() == [1.5, 3.0]
    mask = torch.tensor([False, False, False, True, False]).view(1, 1, 1, 1, 5)
    pooled = pool_to_stride(mask, 2, "max")
    assert pooled.dtype == torch.bool and pooled.flatten().tolist() == [False, True, False]
    assert pool_to_stride(x, 1) is x
    assert upsample_to(pool_to_stride(x, 2), (1, 3)).shape == (1, 1, 1, 3)


def test_pooling_errors() -> None:
    with pytest.raises(ValueError, match="reduce must be 'avg' or 'max', got 'sum'"):
        pool_to_stride(torch.zeros(1, 1, 4, 4), 2, "sum")
    with pytest.raises(ValueError, match=r"needs \[B, C, H, W\] or \[B, C, D, H, W\], got \(1, 4\)"):
        pool_to_stride(torch.zeros(1, 4), 2)


@pytest.mark.parametrize(("stride", "merges", "ups", "out"), [(1, 4, 1, 15), (2, 4, 0, 8),
                                                              (4, 2, 0, 4), (16, 0, 0, 1)])
def test_target_stride_stops_early(stride: int, merges: int, ups: int, out: int) -> None:
    bb = ResNetEncoder(spatial_dims=3, depth=10, width=4, stem_stride=2)  # strides 2,2,4,8,16
    dec = PyramidDecoder(3, bb.pyramid_channels, bb.pyramid_strides, 1, target_stride=stride)
    assert (len(dec.merges), len(dec.ups)) == (merges, ups)
    y = dec(bb.forward_pyramid(torch.randn(2, 1, 15, 15, 15)), (15, 15, 15))
    assert y.shape == (2, 1, out, out, out)


def test_vit_decoder_with_target_stride() -> None:
    bb = ViTEncoder(spatial_dims=2, img_size=32, patch_size=8, hidden_size=32, mlp_dim=32,
                    num_layers=1, num_heads=2)
    dec = PyramidDecoder(2, bb.pyramid_channels, bb.pyramid_strides, 1, target_stride=2)
    assert len(dec.ups) == 2
    assert dec(bb.forward_pyramid(torch.randn(1, 1, 32, 32)), (32, 32)).shape == (1, 1, 16, 16)


def test_bad_decoder_arguments() -> None:
    bb = ResNetEncoder(spatial_dims=2, depth=10, width=4, stem_stride=2)
    args = (2, bb.pyramid_channels, bb.pyramid_strides, 1)
    with pytest.raises(ValueError, match="target_stride must be a positive int, got 0"):
        PyramidDecoder(*args, target_stride=0)
    with pytest.raises(ValueError, match="target_stride must be a positive int, got 1.5"):
        PyramidDecoder(*args, target_stride=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"target_stride 32 is coarser than the encoder's "
                       r"coarsest map \(stride 16\); use at most 16"):
        PyramidDecoder(*args, target_stride=32)
    with pytest.raises(ValueError, match="decoder min_width must be a positive int, got 0"):
        PyramidDecoder(*args, min_width=0)
