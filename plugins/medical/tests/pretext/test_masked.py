from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from ssl_domains_medical.backbones import ResNetEncoder, UNetEncoder, ViTEncoder
from ssl_domains_medical.pretext.decoder import pool_to_stride
from ssl_domains_medical.pretext.masked import MaskedInpainting, block_mask
from torch import nn

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


def small_resnet3d() -> ResNetEncoder:
    return ResNetEncoder(spatial_dims=3, depth=10, width=4, stem_stride=2)


class PooledCopy(nn.Module):
    """Stand-in decoder: the corrupted input (the backbone stub passes it through), pooled,
    plus ``offset`` wherever no voxel under a pooled voxel was hidden."""

    def __init__(self, stride: int, offset: float = 0.0) -> None:
        super().__init__()
        self.target_stride, self.offset = stride, offset

    def forward(self, pyramid: list[torch.Tensor], size: tuple[int, ...]) -> torch.Tensor:
        corrupted = pyramid[0]
        hidden = pool_to_stride((corrupted == 0).any(dim=1, keepdim=True), self.target_stride,
                                "max")
        return pool_to_stride(corrupted, self.target_stride) + self.offset * (~hidden).float()


def test_pooled_reconstruction_shapes_and_target() -> None:
    task = MaskedInpainting(small_resnet3d(), block_size=2, target_stride=2)
    x = torch.rand(2, 1, 9, 8, 8)
    out = task({"image": x})
    assert out["reconstruction"].shape == out["target"].shape == (2, 1, 5, 4, 4)
    assert out["target_mask"].shape == (2, 1, 5, 4, 4) and out["mask"].shape == (2, 1, 9, 8, 8)
    blocks = x[:, :, :8].reshape(2, 1, 4, 2, 4, 2, 4, 2).mean((3, 5, 7))
    assert torch.allclose(out["target"][:, :, :4], blocks)
    assert torch.allclose(out["target"][:, :, 4], x[:, :, 8].reshape(2, 1, 4, 2, 4, 2).mean((3, 5)))
    mask = out["mask"].expand_as(out["input"])
    assert torch.equal(out["corrupted"][~mask], out["input"][~mask])
    err = (out["reconstruction"] - out["target"]) ** 2
    assert out["loss"].item() == pytest.approx(err[out["target_mask"]].mean().item(), rel=1e-5)
    fig = task.figures({k: v.detach() for k, v in out.items()}, max_items=1)["masked_inpainting"]
    assert len(fig.axes) == 3


@pytest.mark.parametrize("stride", [2, 4])
def test_pooled_loss_covers_hidden_voxels_only(stride: int) -> None:
    task = MaskedInpainting(small_resnet3d(), mask_ratio=0.1, block_size=2, fill="zero",
                            target_stride=stride)
    task.backbone.forward_pyramid = lambda c: [c]
    x = torch.ones(2, 1, 8, 8, 8)
    # equal to the target where hidden, wrong everywhere else: the loss does not see it
    task.decoder = PooledCopy(stride, offset=0.0)
    torch.manual_seed(0)
    out = task({"image": x})
    hidden_fraction = pool_to_stride(out["mask"].float(), stride)
    expected = (hidden_fraction ** 2)[out["target_mask"]].mean()
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-6) and expected > 0
    assert torch.equal(out["target_mask"], hidden_fraction > 0)
    assert (~out["target_mask"]).any()  # some pooled voxels are fully visible
    if stride == 4:  # 2-voxel blocks: pooled voxels that are partly hidden count as hidden
        assert ((hidden_fraction > 0) & (hidden_fraction < 1)).any()
    task.decoder = PooledCopy(stride, offset=5.0)  # far off on the fully visible voxels
    torch.manual_seed(0)
    assert task({"image": x})["loss"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_stride_one_is_the_full_resolution_loss() -> None:
    task = MaskedInpainting(small_resnet3d(), block_size=2, loss="l1", target_stride=1)
    default = MaskedInpainting(small_resnet3d(), block_size=2, loss="l1")
    assert {k: v.shape for k, v in task.state_dict().items()} == {
        k: v.shape for k, v in default.state_dict().items()}
    default.load_state_dict(task.state_dict())
    x = torch.rand(2, 1, 8, 8, 8)
    torch.manual_seed(5)
    out = task({"image": x})
    torch.manual_seed(5)
    assert torch.equal(default({"image": x})["loss"], out["loss"])
    # the loss before target_stride existed: full-size reconstruction, mean over hidden voxels
    recon = task.decoder(task.backbone.forward_pyramid(out["corrupted"]), (8, 8, 8))
    mask = out["mask"].expand_as(x)
    assert recon.shape == x.shape and out["target"] is out["input"]
    assert out["loss"].item() == pytest.approx((recon - x).abs()[mask].mean().item(), rel=1e-5)


def test_bad_target_stride_and_min_width() -> None:
    with pytest.raises(ValueError, match="target_stride must be a positive int, got -2"):
        MaskedInpainting(small_unet(), target_stride=-2)
    with pytest.raises(ValueError, match="decoder min_width must be a positive int, got 0"):
        MaskedInpainting(small_unet(), decoder_min_width=0)
    with pytest.raises(ValueError, match="target_stride 8 is coarser than the encoder's coarsest"):
        MaskedInpainting(small_unet(), target_stride=8)
