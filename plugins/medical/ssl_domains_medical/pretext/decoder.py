"""Generic decoder over a backbone's feature pyramid, for the reconstruction pretext tasks.

The backbone stays the encoder that fine-tuning reuses; the decoder is thrown away after
pre-training. It works for any backbone with ``forward_pyramid`` (maps finest first),
``pyramid_channels`` and ``pyramid_strides``: CNN pyramids get UNet-style upsample + skip
blocks; a ViT's single token grid is upsampled step by step to the input size.
"""

from __future__ import annotations

import math

import torch
from monai.networks.layers.factories import Act, Conv
from torch import nn
from torch.nn import functional as F

from ssl_domains.errors import IncompatibleError

__all__ = ["PyramidDecoder", "check_pyramid_backbone"]


def check_pyramid_backbone(backbone: nn.Module, task: str) -> None:
    """Check that ``backbone`` can be the encoder of an image encoder-decoder.

    Raises:
        IncompatibleError: Not a 2-D/3-D image backbone, or no ``forward_pyramid``.
    """
    spec = getattr(backbone, "input_spec", None)
    name = type(backbone).__name__
    if spec is None or spec.modality != "image" or spec.dims not in (2, 3):
        raise IncompatibleError(
            f"pretext task {task!r} needs a 2-D or 3-D image backbone; {name} has input_spec "
            f"{spec}; use resnet_encoder, unet_encoder or vit_encoder"
        )
    missing = [a for a in ("forward_pyramid", "pyramid_channels", "pyramid_strides")
               if not hasattr(backbone, a)]
    if missing:
        raise IncompatibleError(
            f"pretext task {task!r} needs multi-scale features but backbone {name} has no "
            f"{', '.join(missing)}; use resnet_encoder, unet_encoder or vit_encoder"
        )


def _block(spatial_dims: int, c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        Conv[Conv.CONV, spatial_dims](c_in, c_out, 3, padding=1, bias=False),
        nn.GroupNorm(math.gcd(8, c_out), c_out),
        Act[Act.LEAKYRELU](0.1),
    )


class PyramidDecoder(nn.Module):
    """Upsample the deepest map, merging each shallower map (skip), then reach the input size.

    Args:
        spatial_dims: 2 or 3.
        pyramid_channels: Channels of the encoder maps, finest first.
        pyramid_strides: Downsampling factor of each map relative to the input.
        out_channels: Channels of the reconstruction (the input's channels).
        max_width: Cap on the decoder's widths.
        min_width: Floor on the widths of the final upsampling steps.
    """

    def __init__(
        self,
        spatial_dims: int,
        pyramid_channels: list[int],
        pyramid_strides: list[int],
        out_channels: int,
        max_width: int = 256,
        min_width: int = 16,
    ) -> None:
        super().__init__()
        self.spatial_dims = spatial_dims
        self.mode = "bilinear" if spatial_dims == 2 else "trilinear"
        widths = [min(c, max_width) for c in pyramid_channels]
        c = widths[-1]
        self.bottleneck = _block(spatial_dims, pyramid_channels[-1], c)
        self.merges = nn.ModuleList()
        for skip_c, w in zip(reversed(pyramid_channels[:-1]), reversed(widths[:-1])):
            self.merges.append(_block(spatial_dims, c + skip_c, w))
            c = w
        self.ups = nn.ModuleList()
        for _ in range(max(0, math.ceil(math.log2(max(1, pyramid_strides[0]))))):
            w = max(min_width, c // 2)
            self.ups.append(_block(spatial_dims, c, w))
            c = w
        self.head = Conv[Conv.CONV, spatial_dims](c, out_channels, 1)

    def _up(self, x: torch.Tensor, size: torch.Size | tuple[int, ...]) -> torch.Tensor:
        return F.interpolate(x, size=tuple(size), mode=self.mode, align_corners=False)

    def forward(self, pyramid: list[torch.Tensor], size: tuple[int, ...]) -> torch.Tensor:
        """Reconstruction ``[B, out_channels, *size]`` from the maps (finest first)."""
        x = self.bottleneck(pyramid[-1])
        for skip, merge in zip(reversed(pyramid[:-1]), self.merges):
            x = merge(torch.cat([self._up(x, skip.shape[2:]), skip], dim=1))
        for up in self.ups:
            target = tuple(min(2 * s, t) for s, t in zip(x.shape[2:], size))
            x = up(self._up(x, target))
        if tuple(x.shape[2:]) != tuple(size):
            x = self._up(x, size)
        return self.head(x)
