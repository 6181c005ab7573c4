from __future__ import annotations

import pytest
import torch
from monai.networks.nets import SwinUNETR
from ssl_domains_medical.backbones.swin import SwinEncoder
from ssl_domains_medical.pretext.masked import MaskedInpainting

SMALL = {"feature_size": 12, "depths": (1, 1, 1, 1), "num_heads": (3, 3, 3, 3), "window_size": 4}


@pytest.mark.parametrize(("dims", "size"), [(2, 32), (3, 16)])
def test_pyramid_and_features(dims: int, size: int) -> None:
    model = SwinEncoder(spatial_dims=dims, **SMALL)
    x = torch.randn(2, 1, *[size] * dims)
    maps = model.forward_pyramid(x)
    assert [m.shape[1] for m in maps] == model.pyramid_channels == [12, 24, 48, 96, 192]
    assert model.pyramid_strides == [2, 4, 8, 16, 32]
    assert [tuple(m.shape[2:]) for m in maps] == [
        tuple([max(1, size // s)] * dims) for s in model.pyramid_strides]
    feats = model.forward_features(x)
    assert feats.shape == (2, model.num_features) == (2, 192)
    assert torch.allclose(feats, maps[-1].flatten(2).mean(2))


def test_same_names_and_outputs_as_swinunetr_swinvit() -> None:
    torch.manual_seed(0)
    ref = SwinUNETR(in_channels=1, out_channels=2, spatial_dims=3, **SMALL)
    ours = SwinEncoder(spatial_dims=3, **SMALL)
    swin = {k[len("swinViT."):]: v for k, v in ref.state_dict().items()
            if k.startswith("swinViT.")}
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in swin.items()}
    ours.load_state_dict(swin)
    x = torch.randn(1, 1, 32, 32, 32)
    with torch.no_grad():
        for a, b in zip(ours.forward_pyramid(x), ref.swinViT(x, ref.normalize)):
            assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize(("dims", "size"), [(2, 28), (3, 16)])
def test_masked_inpainting_on_swin(dims: int, size: int) -> None:
    torch.manual_seed(0)
    task = MaskedInpainting(SwinEncoder(spatial_dims=dims, **SMALL), mask_ratio=0.5)
    x = torch.randn(2, 1, *[size] * dims)
    out = task({"image": x})
    assert out["reconstruction"].shape == x.shape
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    grad = task.backbone.patch_embed.proj.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3, got 1"):
        SwinEncoder(spatial_dims=1)
    with pytest.raises(ValueError, match=r"needs 4 stages: depths \(2, 2\)"):
        SwinEncoder(depths=(2, 2), num_heads=(3, 6))
    with pytest.raises(ValueError, match="num_heads must divide each stage's channels "
                       r"\(feature_size \* 2\*\*stage\): stage 0: 12 channels, 5 heads"):
        SwinEncoder(feature_size=12, num_heads=(5, 6, 12, 24))
