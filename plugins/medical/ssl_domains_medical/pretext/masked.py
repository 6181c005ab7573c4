"""Masked-volume inpainting: hide random blocks, reconstruct them (2-D and 3-D).

In the spirit of masked image modelling (He et al., "Masked autoencoders are scalable vision
learners", CVPR 2022; Xie et al., "SimMIM", CVPR 2022) with a convolutional or ViT encoder and
a generic pyramid decoder; the loss is computed on the masked region only. With
``target_stride > 1`` the decoder reconstructs a pooled copy of the input (cheaper 3-D
pre-training) and the loss covers every pooled voxel with a hidden voxel under it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from ssl_domains.contracts import Example
from ssl_domains.registry import component
from ssl_domains_medical.pretext.decoder import (
    PyramidDecoder,
    check_pyramid_backbone,
    pool_to_stride,
    upsample_to,
)
from ssl_domains_medical.pretext.figures import reconstruction_figure

__all__ = ["MaskedInpainting", "block_mask"]

FILLS = ("zero", "learned", "noise")
LOSSES = ("mse", "l1")


def block_mask(
    shape: Sequence[int], block_size: Sequence[int], mask_ratio: float, rng: np.random.RandomState
) -> torch.Tensor:
    """Random block mask for a batch.

    Args:
        shape: ``[B, *spatial]``.
        block_size: Block edge per spatial dim.
        mask_ratio: Fraction of blocks hidden (at least one block per item).
        rng: Source of randomness.

    Returns:
        Boolean tensor ``[B, 1, *spatial]``, True where hidden.
    """
    batch, spatial = int(shape[0]), [int(s) for s in shape[1:]]
    grid = [math.ceil(s / b) for s, b in zip(spatial, block_size)]
    n = math.prod(grid)
    k = min(n, max(1, round(mask_ratio * n)))
    flat = np.zeros((batch, n), dtype=bool)
    for i in range(batch):
        flat[i, rng.permutation(n)[:k]] = True
    m = torch.from_numpy(flat).view(batch, *grid)
    for d, b in enumerate(block_size):
        m = m.repeat_interleave(int(b), dim=d + 1)
    m = m[(slice(None), *(slice(0, s) for s in spatial))]
    return m.unsqueeze(1)


@component(
    "masked_inpainting",
    description="Hide random blocks and reconstruct them (loss on the hidden region), 2-D/3-D",
    modalities=("image",),
    dims=(2, 3),
    examples=[Example({"mask_ratio": 0.5}), Example({"mask_ratio": 0.3, "fill": "zero",
                                                     "loss": "l1", "block_size": 2})],
)
class MaskedInpainting(nn.Module):
    """Encoder-decoder that inpaints randomly masked blocks.

    Each call draws a seed from torch's RNG and builds the mask with a NumPy ``RandomState``
    from it, so ``torch.manual_seed`` reproduces a run.

    Args:
        backbone: ``resnet_encoder``, ``unet_encoder`` or ``vit_encoder`` (anything with
            ``forward_pyramid``, ``pyramid_channels`` and ``pyramid_strides``).
        mask_ratio: Fraction of blocks hidden, in (0, 1).
        block_size: Block edge in pixels/voxels (int or one per dim); default: the ViT patch
            size, else 4.
        fill: What hidden blocks show: ``"learned"`` (one trained value per channel),
            ``"zero"`` or ``"noise"`` (standard normal).
        loss: ``"mse"`` or ``"l1"``, averaged over hidden elements.
        decoder_width: Largest decoder width.
        decoder_min_width: Smallest width of the decoder's final upsampling steps.
        target_stride: Reconstruct at ``1/target_stride`` of the input resolution, against the
            input average-pooled by that factor; the loss covers pooled voxels with any hidden
            voxel under them (mask max-pooled). 1 reconstructs at full resolution.

    Raises:
        IncompatibleError: The backbone has no feature pyramid or is not 2-D/3-D imaging.
        ValueError: Bad mask_ratio, fill, loss, block_size, decoder_min_width or target_stride
            (a positive int, at most the backbone's coarsest pyramid stride).
    """

    def __init__(
        self,
        backbone: nn.Module,
        mask_ratio: float = 0.5,
        block_size: int | Sequence[int] | None = None,
        fill: str = "learned",
        loss: str = "mse",
        decoder_width: int = 256,
        decoder_min_width: int = 16,
        target_stride: int = 1,
    ) -> None:
        super().__init__()
        check_pyramid_backbone(backbone, "masked_inpainting")
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
        if fill not in FILLS:
            raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        encoder: Any = backbone
        spec = encoder.input_spec
        if block_size is None:
            block_size = getattr(encoder, "patch_size", 4)
        sizes = [block_size] * spec.dims if isinstance(block_size, int) else list(block_size)
        if len(sizes) != spec.dims or any(int(b) < 1 for b in sizes):
            raise ValueError(f"block_size must be a positive int or {spec.dims} positive ints, "
                             f"got {block_size!r}")
        self.backbone: Any = backbone
        self.mask_ratio = mask_ratio
        self.block_size = tuple(int(b) for b in sizes)
        self.fill = fill
        self.loss_name = loss
        self.mask_token = nn.Parameter(torch.zeros(spec.channels), requires_grad=fill == "learned")
        self.decoder = PyramidDecoder.for_encoder(encoder, spec.channels, max_width=decoder_width,
                                                  min_width=decoder_min_width,
                                                  target_stride=target_stride)

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Mask, reconstruct and score one batch.

        Returns:
            ``loss``; ``input``, ``corrupted`` and ``mask`` (True where hidden) at the input
            size; ``reconstruction``, ``target`` (the pooled input) and ``target_mask`` (the
            pooled mask the loss uses) at ``1/target_stride`` of it.
        """
        x = torch.nan_to_num(batch["image"].float())
        seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
        rng = np.random.RandomState(seed)
        mask = block_mask((x.shape[0], *x.shape[2:]), self.block_size, self.mask_ratio, rng)
        mask = mask.to(x.device)
        if self.fill == "noise":
            gen = torch.Generator().manual_seed(seed)
            filler = torch.randn(x.shape, generator=gen).to(x)
        else:
            filler = self.mask_token.view(1, -1, *[1] * (x.ndim - 2)).expand_as(x)
        corrupted = torch.where(mask, filler, x)
        recon = self.decoder(self.backbone.forward_pyramid(corrupted), tuple(x.shape[2:]))
        stride = self.decoder.target_stride
        target = pool_to_stride(x, stride, "avg")
        hidden = pool_to_stride(mask, stride, "max")
        err = (recon - target).abs() if self.loss_name == "l1" else (recon - target) ** 2
        weight = hidden.to(err.dtype).expand_as(err)
        loss = (err * weight).sum() / weight.sum().clamp(min=1.0)
        return {"loss": loss, "input": x, "corrupted": corrupted, "reconstruction": recon,
                "target": target, "mask": mask, "target_mask": hidden}

    def figures(self, out: dict[str, Any], max_items: int = 4) -> dict[str, Figure]:
        """Input | masked input (hidden blocks outlined) | reconstruction of the hidden blocks
        pasted into the visible input (only hidden blocks are trained). A pooled
        reconstruction (``target_stride > 1``) is upsampled to the input size first."""
        mask = out["mask"].expand_as(out["input"])
        recon = upsample_to(out["reconstruction"], out["input"].shape[2:])
        shown = {**out, "reconstruction": torch.where(mask, recon, out["input"])}
        return {"masked_inpainting": reconstruction_figure(shown, max_items, mask_key="mask")}
