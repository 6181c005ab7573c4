from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from ssl_domains_medical.backbones import UNetEncoder, ViTEncoder
from ssl_domains_medical.pretext.masked import MaskedInpainting, block_mask

from ssl_domains.builtin.mlp import MLPBackbone
from ssl_domains.errors import IncompatibleError


def small_unet(dims: int = 2) -> UNetEncoder:
    return UNetEncoder(spatial_dims=dims, base_channels=4, levels=2)


def small_vit3d() -> ViTEncoder:
    return ViTEncoder(spatial_dims=3, img_size=8, patch_size=4, hidden_size=16, mlp_dim=16,
                      num_layers=1, num_heads=2)


def test_block_mask_ratio_and_blocks() -> None:
    m = block_mask((3, 16, 12), (4, 4), 0.5, np.random.RandomState(0))
    assert m.shape == (3, 1, 16, 12) and m.dtype == torch.bool
    assert m.float().mean().item() == pytest.approx(0.5, abs=1 / 12)
    blocks = m[:, 0].reshape(3, 4, 4, 3, 4)  # every 4x4 block is all-in or all-out
    assert torch.all(blocks.all(dim=(2, 4)) | ~blocks.any(dim=(2, 4)))


def test_block_mask_crops_partial_blocks_3d() -> None:
    m = block_mask((2, 5, 6, 7), (4, 4, 4), 0.3, np.random.RandomState(1))
    assert m.shape == (2, 1, 5, 6, 7)
    assert m.any()


@pytest.mark.parametrize("fill", ["learned", "zero", "noise"])
def test_loss_is_on_the_masked_region_only(fill: str) -> None:
    task = MaskedInpainting(small_unet(), mask_ratio=0.4, block_size=4, fill=fill, loss="l1")
    out = task({"image": torch.randn(2, 1, 16, 16)})
    mask = out["mask"].expand_as(out["input"])
    err = (out["reconstruction"] - out["input"]).abs()
    assert out["loss"].item() == pytest.approx(err[mask].mean().item(), rel=1e-5)
    assert torch.equal(out["corrupted"][~mask], out["input"][~mask])
    if fill == "zero":
        assert torch.all(out["corrupted"][mask] == 0)


def test_seeded_runs_reproduce_and_gradients_reach_backbone() -> None:
    task = MaskedInpainting(small_unet(), block_size=4)
    x = torch.randn(2, 1, 8, 8)
    torch.manual_seed(3)
    a = task({"image": x})
    torch.manual_seed(3)
    b = task({"image": x})
    assert torch.equal(a["mask"], b["mask"])
    a["loss"].backward()
    assert task.backbone.down_tr[0].ops[0].conv1.weight.grad.abs().sum() > 0
    assert task.mask_token.grad is not None


def test_vit_default_block_is_the_patch() -> None:
    vit = ViTEncoder(spatial_dims=2, img_size=16, patch_size=4, hidden_size=16, mlp_dim=16,
                     num_layers=1, num_heads=2)
    task = MaskedInpainting(vit)
    assert task.block_size == (4, 4)
    out = task({"image": torch.randn(2, 1, 16, 16)})
    assert out["reconstruction"].shape == (2, 1, 16, 16)


def test_figures_side_by_side() -> None:
    task = MaskedInpainting(small_vit3d(), block_size=2)
    out = task({"image": torch.randn(3, 1, 8, 8, 8)})
    figs = task.figures({k: v.detach() for k, v in out.items()}, max_items=2)
    fig = figs["masked_inpainting"]
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 6
    assert [ax.get_title() for ax in fig.axes[:3]] == ["input", "corrupted", "reconstruction"]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"mask_ratio must be in \(0, 1\), got 1.0"):
        MaskedInpainting(small_unet(), mask_ratio=1.0)
    with pytest.raises(ValueError, match="fill must be one of"):
        MaskedInpainting(small_unet(), fill="mean")
    with pytest.raises(ValueError, match="loss must be one of"):
        MaskedInpainting(small_unet(), loss="huber")
    with pytest.raises(ValueError, match="block_size must be a positive int or 2 positive ints"):
        MaskedInpainting(small_unet(), block_size=[2, 2, 2])
    with pytest.raises(IncompatibleError, match="masked_inpainting"):
        MaskedInpainting(MLPBackbone([1, 8, 8], modality="image"))
