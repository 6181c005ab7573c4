from __future__ import annotations

import pytest
import torch
from monai.networks.nets import ResNet
from ssl_domains_medical.backbones.resnet import RESNET_LAYOUTS, ResNetEncoder


@pytest.mark.parametrize(
    ("kw", "shape"),
    [
        ({"spatial_dims": 2, "depth": 10, "width": 4}, (2, 1, 28, 28)),
        ({"spatial_dims": 3, "depth": 10, "width": 4, "stem_stride": 2, "max_pool": True,
          "in_channels": 2}, (2, 2, 16, 16, 16)),
    ],
)
def test_features_and_pyramid(kw: dict, shape: tuple[int, ...]) -> None:
    model = ResNetEncoder(**kw)
    x = torch.randn(shape)
    assert model.forward_features(x).shape == (2, model.num_features) == (2, 32)
    maps = model.forward_pyramid(x)
    assert [m.shape[1] for m in maps] == model.pyramid_channels
    for m, stride in zip(maps, model.pyramid_strides):
        assert m.shape[2] == -(-shape[2] // stride)
    assert model.input_spec.dims == kw["spatial_dims"]
    assert model.input_spec.channels == shape[1]


def test_small_images_keep_resolution_with_default_stem() -> None:
    model = ResNetEncoder(spatial_dims=2, depth=18, width=4)
    maps = model.forward_pyramid(torch.randn(1, 1, 28, 28))
    assert [tuple(m.shape[2:]) for m in maps] == [(28, 28), (28, 28), (14, 14), (7, 7), (4, 4)]


@pytest.mark.parametrize("depth", sorted(RESNET_LAYOUTS))
def test_medicalnet_layout_has_monai_names(depth: int) -> None:
    kw = {"spatial_dims": 3, "depth": depth, "width": 8, "stem_kernel": 7, "stem_stride": 2,
          "max_pool": True}
    ours = ResNetEncoder(**kw)
    block, layers = RESNET_LAYOUTS[depth]
    ref = ResNet(block, layers, [8, 16, 32, 64], spatial_dims=3, n_input_channels=1,
                 conv1_t_size=7, conv1_t_stride=2, bias_downsample=False, feed_forward=False)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in ref.state_dict().items()}
    assert ours.num_features == 64 * (4 if block == "bottleneck" else 1)


def test_bad_arguments_say_what_is_allowed() -> None:
    with pytest.raises(ValueError, match=r"depth must be one of \[10, 18, 34, 50\], got 12"):
        ResNetEncoder(depth=12)
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3, got 1"):
        ResNetEncoder(spatial_dims=1)
