"""SwinUNETR checkpoints, built here from MONAI's own Swin transformer (nothing is downloaded)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from monai.networks.nets import SwinUNETR
from monai.networks.nets.swin_unetr import SwinTransformer
from ssl_domains_medical.backbones import SwinEncoder, UNetEncoder
from ssl_domains_medical.conversion import convert, detect_source, unwrap

from ssl_domains.engine.checkpoints import load_init
from ssl_domains.errors import CheckpointError
from ssl_domains.plugins import get_host, reset_host

SMALL = {"depths": (1, 1, 1, 1), "num_heads": (3, 3, 3, 3), "window_size": 4}
LAYOUT = ("spatial_dims=3, in_channels=1, feature_size={fs}, patch_size=2, window_size=4, "
          "depths={depths}, num_heads=(3, 3, 3, 3)")


def _swinvit(feature_size: int = 12, depths: tuple[int, ...] = (1, 1, 1, 1),
             in_channels: int = 1) -> SwinTransformer:
    """The module SSLHead (``swinViT`` / ``swin_vit``) and SwinUNETR (``swinViT``) hold."""
    torch.manual_seed(0)
    return SwinTransformer(in_chans=in_channels, embed_dim=feature_size, window_size=(4, 4, 4),
                           patch_size=(2, 2, 2), depths=depths, num_heads=(3, 3, 3, 3),
                           spatial_dims=3)


def _ssl_head(swin: SwinTransformer, prefix: str, fc_names: bool = False) -> dict:
    """A pre-training checkpoint: DataParallel ``module.`` keys, SSLHead's three heads."""
    sd = {}
    for k, v in swin.state_dict().items():
        if fc_names:  # the research-contributions MLP naming that SwinUNETR.load_from reads
            k = k.replace(".mlp.linear1.", ".mlp.fc1.").replace(".mlp.linear2.", ".mlp.fc2.")
        sd[f"module.{prefix}{k}"] = v
    dim = swin.num_features * 2
    sd.update({"module.rotation_head.weight": torch.randn(4, dim),
               "module.rotation_head.bias": torch.randn(4),
               "module.contrastive_head.weight": torch.randn(512, dim),
               "module.contrastive_head.bias": torch.randn(512),
               "module.conv.0.weight": torch.randn(dim // 2, dim, 3, 3, 3)})
    return {"epoch": 100, "state_dict": sd, "optimizer": {"lr": 1e-4}}


def _check_equal(conv_sd: dict, backbone: SwinEncoder, expected: dict) -> None:
    assert set(conv_sd) == set(backbone.state_dict()) == set(expected)
    for k, v in expected.items():
        assert torch.equal(conv_sd[k], v), k
    backbone.load_state_dict(conv_sd)


@pytest.mark.parametrize(("prefix", "fc_names"), [("swinViT.", False), ("swin_vit.", False),
                                                  ("", True)])
def test_ssl_head_checkpoints(prefix: str, fc_names: bool) -> None:
    swin = _swinvit()
    ckpt = _ssl_head(swin, prefix, fc_names)
    assert detect_source(unwrap(ckpt)) == "swin_unetr"
    backbone = SwinEncoder(spatial_dims=3, feature_size=12, **SMALL)
    conv = convert(ckpt, "auto", backbone)
    assert conv is not None and conv.source == "swin_unetr"
    _check_equal(conv.state_dict, backbone, swin.state_dict())
    n = len(swin.state_dict())
    assert conv.notes[0] == f"swin_unetr: loaded {n} of {n} backbone tensors"
    assert ("dropped 5 checkpoint tensors not in the backbone (decoder/head): "
            "contrastive_head.*, conv.*, rotation_head.*") in conv.notes
    assert any("renamed 16 mlp.fc1/mlp.fc2 tensors" in m for m in conv.notes) == fc_names
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        assert torch.allclose(backbone.forward_pyramid(x)[-1], swin(x)[-1], atol=1e-6)


def test_swinunetr_state_dict_drops_its_unet() -> None:
    torch.manual_seed(0)
    ref = SwinUNETR(in_channels=1, out_channels=3, feature_size=12, **SMALL)
    backbone = SwinEncoder(spatial_dims=3, feature_size=12, **SMALL)
    conv = convert(ref.state_dict(), "swin_unetr", backbone)
    assert conv is not None
    _check_equal(conv.state_dict, backbone, {k[len("swinViT."):]: v for k, v in
                                             ref.state_dict().items() if k.startswith("swinViT.")})
    assert ("dropped 33 checkpoint tensors not in the backbone (decoder/head): decoder1.*, "
            "decoder2.*, decoder3.*, decoder4.*, decoder5.*, encoder1.*, ... (5 more)") in conv.notes
    x = torch.randn(1, 1, 32, 32, 32)
    with torch.no_grad():
        for a, b in zip(backbone.forward_pyramid(x), ref.swinViT(x, ref.normalize)):
            assert torch.allclose(a, b, atol=1e-6)


def test_one_channel_weights_repeat_over_more_channels() -> None:
    swin = _swinvit()
    backbone = SwinEncoder(spatial_dims=3, in_channels=2, feature_size=12, **SMALL)
    conv = convert(_ssl_head(swin, "swinViT."), "swin", backbone)
    assert conv is not None
    w = swin.state_dict()["patch_embed.proj.weight"]
    assert torch.allclose(conv.state_dict["patch_embed.proj.weight"], w.repeat(1, 2, 1, 1, 1) / 2)
    assert any("repeated over 2 channels" in m for m in conv.notes)


def test_other_architecture_is_refused_with_the_fitting_layout() -> None:
    backbone = SwinEncoder(spatial_dims=3, feature_size=12, **SMALL)
    wider = _ssl_head(_swinvit(feature_size=24), "swinViT.")
    with pytest.raises(CheckpointError, match=re.escape(
            "swin_unetr checkpoint does not match this swin_encoder (62 tensors with another "
            "shape, e.g. patch_embed.proj.weight (24, 1, 2, 2, 2) vs (12, 1, 2, 2, 2)")) as err:
        convert(wider, "auto", backbone)
    assert str(err.value).endswith(
        "; build swin_encoder with " + LAYOUT.format(fs=24, depths=(1, 1, 1, 1)))
    deeper = _ssl_head(_swinvit(depths=(2, 1, 1, 1)), "")
    with pytest.raises(CheckpointError, match=re.escape(
            "(14 checkpoint encoder tensors the backbone lacks, e.g. "
            "layers1.0.blocks.1.norm1.weight")) as err:
        convert(deeper, "auto", backbone)
    assert str(err.value).endswith(LAYOUT.format(fs=12, depths=(2, 1, 1, 1)))
    shallower = SwinEncoder(spatial_dims=3, feature_size=12, **{**SMALL, "depths": (2, 1, 1, 1)})
    with pytest.raises(CheckpointError, match="14 backbone tensors the checkpoint lacks, e.g. "
                       r"layers1\.0\.blocks\.1\.norm1\.weight"):
        convert(_ssl_head(_swinvit(), "swinViT."), "auto", shallower)


def test_swin_weights_into_another_backbone_family() -> None:
    ckpt = _ssl_head(_swinvit(), "swinViT.")
    with pytest.raises(CheckpointError, match=re.escape(
            "swin_unetr weights fit swin_encoder, not unet_encoder; build swin_encoder with "
            + LAYOUT.format(fs=12, depths=(1, 1, 1, 1)))):
        convert(ckpt, "auto", UNetEncoder(spatial_dims=3, base_channels=4))


def test_init_loads_the_published_layout_through_the_host(tmp_path: Path) -> None:
    swin = _swinvit()
    path = tmp_path / "model_swinvit.pt"
    torch.save(_ssl_head(swin, "", fc_names=True), path)
    backbone = SwinEncoder(spatial_dims=3, feature_size=12, **SMALL)
    reset_host()
    try:
        report = load_init(path, backbone, registry=get_host().registry)
    finally:
        reset_host()
    assert report.source == "swin_unetr"
    assert report.missing == [] and report.mismatched == [] and report.unexpected == []
    assert any("rotation_head.*" in n for n in report.notes)
    for k, v in swin.state_dict().items():
        assert torch.equal(backbone.state_dict()[k], v), k
