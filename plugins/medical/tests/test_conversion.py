"""Foreign checkpoints are built here from the same architectures (nothing is downloaded).

SwinUNETR checkpoints: ``test_conversion_swin.py``.
"""

from __future__ import annotations

import pytest
import torch
from monai.networks.nets import ResNet, ViTAutoEnc
from ssl_domains_medical.backbones import ResNetEncoder, UNetEncoder, ViTEncoder
from ssl_domains_medical.conversion import convert, detect_source, unwrap
from torch import nn

from ssl_domains.errors import CheckpointError
from ssl_domains.plugins import get_host, reset_host

VIT = {"hidden_size": 32, "mlp_dim": 64, "num_layers": 2, "num_heads": 4}


# -- a replica of Models Genesis' UNet3D (MrGiovanni/ModelsGenesis, pytorch/unet3d.py) --------
class LUConv(nn.Module):
    def __init__(self, in_chan: int, out_chan: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(in_chan, out_chan, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm3d(out_chan)  # ContBatchNorm3d there; same parameters
        self.activation = nn.ReLU(out_chan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.bn1(self.conv1(x)))


def _make_n_conv(in_channel: int, depth: int, double_channel: bool = False) -> nn.Sequential:
    if double_channel:
        c = 32 * 2 ** (depth + 1)
        return nn.Sequential(LUConv(in_channel, c), LUConv(c, c))
    c = 32 * 2**depth
    return nn.Sequential(LUConv(in_channel, c), LUConv(c, 2 * c))


class DownTransition(nn.Module):
    def __init__(self, in_channel: int, depth: int) -> None:
        super().__init__()
        self.ops = _make_n_conv(in_channel, depth)
        self.maxpool = nn.MaxPool3d(2)
        self.current_depth = depth

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        before = self.ops(x)
        return (before if self.current_depth == 3 else self.maxpool(before)), before


class UpTransition(nn.Module):
    def __init__(self, in_chans: int, out_chans: int, depth: int) -> None:
        super().__init__()
        self.up_conv = nn.ConvTranspose3d(in_chans, out_chans, kernel_size=2, stride=2)
        self.ops = _make_n_conv(in_chans + out_chans // 2, depth, double_channel=True)


class UNet3D(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.down_tr64 = DownTransition(1, 0)
        self.down_tr128 = DownTransition(64, 1)
        self.down_tr256 = DownTransition(128, 2)
        self.down_tr512 = DownTransition(256, 3)
        self.up_tr256 = UpTransition(512, 512, 2)
        self.up_tr128 = UpTransition(256, 256, 1)
        self.up_tr64 = UpTransition(128, 128, 0)
        self.out_tr = nn.Module()
        self.out_tr.final_conv = nn.Conv3d(64, 1, kernel_size=1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        for block in (self.down_tr64, self.down_tr128, self.down_tr256, self.down_tr512):
            x, _ = block(x)
        return x


def _randomise_norm_stats(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)


def _assert_loaded(conv_sd: dict, backbone: nn.Module, expected: dict) -> None:
    assert set(conv_sd) == set(backbone.state_dict())
    for k, v in expected.items():
        assert torch.equal(conv_sd[k], v), k
    backbone.load_state_dict(conv_sd)


def test_models_genesis_unet3d() -> None:
    torch.manual_seed(0)
    ref = UNet3D()
    _randomise_norm_stats(ref)
    ckpt = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in ref.state_dict().items()}}
    backbone = UNetEncoder(spatial_dims=3)
    conv = convert(ckpt, "auto", backbone)
    assert conv is not None and conv.source == "models_genesis"
    expected = {f"down_tr.{i}.{k.split('.', 1)[1]}": v for k, v in ref.state_dict().items()
                for i, n in enumerate((64, 128, 256, 512)) if k.startswith(f"down_tr{n}.")}
    _assert_loaded(conv.state_dict, backbone, expected)
    assert len(expected) == len(backbone.state_dict())
    assert conv.notes[0] == f"models_genesis: loaded {len(expected)} of {len(expected)} backbone tensors"
    assert any("out_tr.*, up_tr128.*, up_tr256.*, up_tr64.*" in n for n in conv.notes)
    ref.eval()
    backbone.eval()
    x = torch.randn(1, 1, 8, 8, 8)
    with torch.no_grad():
        assert torch.allclose(backbone.forward_pyramid(x)[-1], ref.encode(x), atol=1e-5)


def test_monai_vitautoenc_tutorial_layout() -> None:
    torch.manual_seed(0)
    ref = ViTAutoEnc(in_channels=1, img_size=16, patch_size=4, **VIT)
    sd = {k: v for k, v in ref.state_dict().items() if "norm_cross_attn" not in k}  # older MONAI
    backbone = ViTEncoder(spatial_dims=3, img_size=16, patch_size=4, **VIT)
    conv = convert({"model": sd}, "vitautoenc", backbone)
    assert conv is not None and conv.source == "monai_vitautoenc"
    _assert_loaded(conv.state_dict, backbone,
                   {k: v for k, v in sd.items() if not k.startswith("conv3d_transpose")})
    assert any("conv3d_transpose" in n for n in conv.notes)
    assert any("keep their initial values" in n and "norm_cross_attn" in n for n in conv.notes)
    x = torch.randn(2, 1, 16, 16, 16)
    with torch.no_grad():
        assert torch.allclose(backbone.forward_tokens(x), ref.norm(ref.blocks[1](ref.blocks[0](
            ref.patch_embedding(x)))), atol=1e-5)


def test_vit_position_embeddings_follow_the_grid() -> None:
    ref = ViTAutoEnc(in_channels=1, img_size=16, patch_size=4, **VIT)
    backbone = ViTEncoder(spatial_dims=3, img_size=32, patch_size=4, **VIT)
    conv = convert(ref.state_dict(), "auto", backbone)
    assert conv is not None
    assert conv.state_dict["patch_embedding.position_embeddings"].shape == (1, 512, 32)
    assert any("interpolated from (1, 64, 32) to (1, 512, 32)" in n for n in conv.notes)


def test_medicalnet_resnet() -> None:
    torch.manual_seed(0)
    ref = ResNet("basic", [1, 1, 1, 1], [8, 16, 32, 64], spatial_dims=3, n_input_channels=1,
                 conv1_t_size=7, conv1_t_stride=2, shortcut_type="B", bias_downsample=False,
                 feed_forward=False)
    _randomise_norm_stats(ref)
    sd = {f"module.{k}": v for k, v in ref.state_dict().items()}
    sd["module.conv_seg.0.weight"] = torch.randn(2, 64, 3, 3, 3)
    backbone = ResNetEncoder(spatial_dims=3, depth=10, width=8, stem_kernel=7, stem_stride=2,
                             max_pool=True)
    conv = convert({"state_dict": sd}, "medicalnet", backbone)
    assert conv is not None and conv.source == "medicalnet"
    _assert_loaded(conv.state_dict, backbone, ref.state_dict())
    assert any("dropped 1 checkpoint tensors not in the backbone (decoder/head): conv_seg.*"
               in n for n in conv.notes)
    ref.eval()
    backbone.eval()
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        assert torch.allclose(backbone.forward_features(x), ref(x), atol=1e-5)


def test_medicalnet_shortcut_a_hint_and_channel_repeat() -> None:
    ref = ResNet("basic", [2, 2, 2, 2], [4, 8, 16, 32], spatial_dims=3, n_input_channels=1,
                 shortcut_type="A", feed_forward=False)
    backbone = ResNetEncoder(spatial_dims=3, in_channels=2, depth=18, width=4, stem_kernel=7)
    conv = convert(ref.state_dict(), "auto", backbone)
    assert conv is not None
    assert any("shortcut_type='A'" in n for n in conv.notes)
    w = ref.state_dict()["conv1.weight"]
    assert torch.allclose(conv.state_dict["conv1.weight"], w.repeat(1, 2, 1, 1, 1) / 2)
    assert any("repeated over 2 channels" in n for n in conv.notes)


def test_wrong_backbone_family_and_no_fit() -> None:
    ref = ViTAutoEnc(in_channels=1, img_size=16, patch_size=4, **VIT)
    with pytest.raises(CheckpointError, match="monai_vitautoenc weights fit vit_encoder, not "
                       "resnet_encoder; build vit_encoder with"):
        convert(ref.state_dict(), "auto", ResNetEncoder(spatial_dims=3, depth=10, width=4))
    other = ViTEncoder(spatial_dims=3, img_size=16, patch_size=4, hidden_size=16, mlp_dim=16,
                       num_layers=1, num_heads=2)
    with pytest.raises(CheckpointError, match="no tensor of the monai_vitautoenc checkpoint fits"):
        convert(ref.state_dict(), "auto", other)


def test_not_ours_returns_none() -> None:
    sd = {"encoder.weight": torch.zeros(2, 2)}
    assert convert(sd, "auto", UNetEncoder(spatial_dims=3, base_channels=4)) is None
    assert convert(sd, "timm", UNetEncoder(spatial_dims=3, base_channels=4)) is None
    assert convert(sd, "auto", nn.Linear(2, 2)) is None
    assert detect_source(sd) is None


def test_unwrap_errors() -> None:
    assert unwrap({"model": {"module.module.a": torch.ones(1)}}) == {"a": torch.ones(1)}
    with pytest.raises(CheckpointError, match="checkpoint holds no tensors"):
        unwrap({"epoch": 1, "arch": "unet"})
    with pytest.raises(CheckpointError, match="checkpoint is a list, not a dict of tensors"):
        unwrap([torch.ones(1)])


def test_hook_is_wired_through_the_host() -> None:
    reset_host()
    try:
        ref = ViTAutoEnc(in_channels=1, img_size=16, patch_size=4, **VIT)
        backbone = ViTEncoder(spatial_dims=3, img_size=16, patch_size=4, **VIT)
        conv = get_host().pm.hook.convert_checkpoint(
            state_dict=ref.state_dict(), source="auto", backbone=backbone)
        assert conv is not None and conv.source == "monai_vitautoenc"
    finally:
        reset_host()
