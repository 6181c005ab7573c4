"""Generic decoder over a backbone's feature pyramid, for the reconstruction pretext tasks.

The backbone stays the encoder that fine-tuning reuses; the decoder is thrown away after
pre-training. It works for any :class:`~ssl_domains.contracts.PyramidBackbone`
(``forward_pyramid``: maps finest first, ``pyramid_channels``, ``pyramid_strides``): CNN pyramids get UNet-style upsample + skip
blocks; a ViT's single token grid is upsampled step by step to the input size.

With ``target_stride > 1`` the decoder stops at ``1/target_stride`` of the input resolution
(maps finer than that are not merged) and the task compares it with the target pooled by the
same factor (:func:`pool_to_stride`): the full-resolution stages dominate the cost of 3-D
reconstruction, and the encoder, which fine-tuning keeps, is unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from monai.networks.layers.factories import Act, Conv
from torch import nn
from torch.nn import functional as F

from ssl_domains.contracts import PyramidBackbone, missing_members
from ssl_domains.errors import IncompatibleError

__all__ = ["PyramidDecoder", "check_image_backbone", "check_pyramid_backbone", "pool_to_stride", "pooled_size",
           "upsample_to"]


def check_image_backbone(backbone: nn.Module, task: str) -> None:
    """Check that ``backbone`` eats 2-D or 3-D images (every image pretext task needs that).

    Raises:
        IncompatibleError: Not a 2-D/3-D image backbone.
    """
    spec = getattr(backbone, "input_spec", None)
    if spec is None or spec.modality != "image" or spec.dims not in (2, 3):
        raise IncompatibleError(
            f"pretext task {task!r} needs a 2-D or 3-D image backbone; "
            f"{type(backbone).__name__} has input_spec {spec}; use resnet_encoder, "
            f"unet_encoder, vit_encoder or swin_encoder"
        )


def check_pyramid_backbone(backbone: nn.Module, task: str) -> None:
    """Check that ``backbone`` can be the encoder of an image encoder-decoder: a 2-D/3-D image
    :class:`~ssl_domains.contracts.PyramidBackbone`.

    Raises:
        IncompatibleError: Not a 2-D/3-D image backbone, or not a pyramid backbone.
    """
    check_image_backbone(backbone, task)
    name = type(backbone).__name__
    missing = missing_members(backbone, PyramidBackbone)
    if missing:
        raise IncompatibleError(
            f"pretext task {task!r} needs multi-scale features but backbone {name} has no "
            f"{', '.join(missing)}; use resnet_encoder, unet_encoder, vit_encoder or swin_encoder"
        )


def pooled_size(size: Sequence[int], stride: int) -> tuple[int, ...]:
    """Spatial size after pooling by ``stride`` (partial edge windows count: ``ceil``)."""
    return tuple(math.ceil(int(n) / stride) for n in size)


def pool_to_stride(x: torch.Tensor, stride: int, reduce: str = "avg") -> torch.Tensor:
    """Pool ``[B, C, *spatial]`` (2-D or 3-D) by ``stride`` to :func:`pooled_size`.

    Args:
        x: Images or a mask (boolean masks stay boolean).
        stride: Pooling window and step; 1 returns ``x`` itself.
        reduce: ``"avg"`` (mean of the voxels under each window; partial edge windows average
            the voxels they cover) or ``"max"`` (for masks: a pooled voxel is set if any voxel
            under it is).

    Raises:
        ValueError: Unknown ``reduce`` or spatial rank other than 2 or 3.
    """
    if reduce not in ("avg", "max"):
        raise ValueError(f"reduce must be 'avg' or 'max', got {reduce!r}")
    if x.ndim not in (4, 5):
        raise ValueError(f"pool_to_stride needs [B, C, H, W] or [B, C, D, H, W], got {tuple(x.shape)}")
    if stride == 1:
        return x
    dims = x.ndim - 2
    if reduce == "max":
        pool = F.max_pool2d if dims == 2 else F.max_pool3d
        return pool(x.float(), stride, stride, ceil_mode=True).to(x.dtype)
    avg = F.avg_pool2d if dims == 2 else F.avg_pool3d
    return avg(x, stride, stride, ceil_mode=True)


def upsample_to(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """(Bi/tri)linear resize of ``[B, C, *spatial]`` to ``size`` (identity when already there);
    used to show a pooled reconstruction at the input's size."""
    if tuple(x.shape[2:]) == tuple(int(n) for n in size):
        return x
    mode = "bilinear" if x.ndim == 4 else "trilinear"
    return F.interpolate(x.float(), size=tuple(int(n) for n in size), mode=mode,
                         align_corners=False).to(x.dtype)


def _block(spatial_dims: int, c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        Conv[Conv.CONV, spatial_dims](c_in, c_out, 3, padding=1, bias=False),
        nn.GroupNorm(math.gcd(8, c_out), c_out),
        Act[Act.LEAKYRELU](0.1),
    )


class PyramidDecoder(nn.Module):
    """Upsample the deepest map, merging each shallower map (skip), then reach the output size.

    The output size is the input size divided by ``target_stride`` (rounded up, see
    :func:`pooled_size`). Maps finer than ``target_stride`` are not merged, so no block runs
    above the output resolution. ``target_stride=1`` reconstructs at the input size.

    Args:
        spatial_dims: 2 or 3.
        pyramid_channels: Channels of the encoder maps, finest first.
        pyramid_strides: Downsampling factor of each map relative to the input.
        out_channels: Channels of the reconstruction (the input's channels).
        max_width: Cap on the decoder's widths.
        min_width: Floor on the widths of the final upsampling steps.
        target_stride: Output resolution is ``1/target_stride`` of the input's, at most the
            coarsest map's stride.

    Raises:
        ValueError: ``min_width`` or ``target_stride`` not a positive int, or ``target_stride``
            coarser than every map.
    """

    def __init__(
        self,
        spatial_dims: int,
        pyramid_channels: list[int],
        pyramid_strides: list[int],
        out_channels: int,
        max_width: int = 256,
        min_width: int = 16,
        target_stride: int = 1,
    ) -> None:
        super().__init__()
        if isinstance(min_width, bool) or not isinstance(min_width, int) or min_width < 1:
            raise ValueError(f"decoder min_width must be a positive int, got {min_width!r}")
        if (isinstance(target_stride, bool) or not isinstance(target_stride, int)
                or target_stride < 1):
            raise ValueError(f"target_stride must be a positive int, got {target_stride!r}")
        if target_stride > max(pyramid_strides):
            raise ValueError(f"target_stride {target_stride} is coarser than the encoder's "
                             f"coarsest map (stride {max(pyramid_strides)}); use at most "
                             f"{max(pyramid_strides)}")
        self.spatial_dims = spatial_dims
        self.target_stride = target_stride
        self.mode = "bilinear" if spatial_dims == 2 else "trilinear"
        #: Index of the finest map merged: maps finer than the output are skipped.
        self.first = next(i for i, s in enumerate(pyramid_strides) if s >= target_stride)
        channels = list(pyramid_channels[self.first:])
        widths = [min(c, max_width) for c in channels]
        c = widths[-1]
        self.bottleneck = _block(spatial_dims, channels[-1], c)
        self.merges = nn.ModuleList()
        for skip_c, w in zip(reversed(channels[:-1]), reversed(widths[:-1])):
            self.merges.append(_block(spatial_dims, c + skip_c, w))
            c = w
        self.ups = nn.ModuleList()
        steps = math.ceil(math.log2(max(1.0, pyramid_strides[self.first] / target_stride)))
        for _ in range(steps):
            w = max(min_width, c // 2)
            self.ups.append(_block(spatial_dims, c, w))
            c = w
        self.head = Conv[Conv.CONV, spatial_dims](c, out_channels, 1)

    @classmethod
    def for_encoder(
        cls,
        encoder: Any,
        out_channels: int,
        max_width: int = 256,
        min_width: int = 16,
        target_stride: int = 1,
    ) -> PyramidDecoder:
        """The decoder on a pyramid backbone's maps (its ``input_spec.dims``,
        ``pyramid_channels`` and ``pyramid_strides``); the other arguments as for the class."""
        return cls(encoder.input_spec.dims, list(encoder.pyramid_channels),
                   list(encoder.pyramid_strides), out_channels, max_width=max_width,
                   min_width=min_width, target_stride=target_stride)

    def _up(self, x: torch.Tensor, size: torch.Size | tuple[int, ...]) -> torch.Tensor:
        return F.interpolate(x, size=tuple(size), mode=self.mode, align_corners=False)

    def forward(self, pyramid: list[torch.Tensor], size: Sequence[int]) -> torch.Tensor:
        """Reconstruction ``[B, out_channels, *pooled_size(size, target_stride)]``.

        Args:
            pyramid: The encoder's maps, finest first.
            size: Spatial size of the encoder's input.
        """
        out_size = pooled_size(size, self.target_stride)
        maps = pyramid[self.first:]
        x = self.bottleneck(maps[-1])
        for skip, merge in zip(reversed(maps[:-1]), self.merges):
            x = merge(torch.cat([self._up(x, skip.shape[2:]), skip], dim=1))
        for up in self.ups:
            target = tuple(min(2 * s, t) for s, t in zip(x.shape[2:], out_size))
            x = up(self._up(x, target))
        if tuple(x.shape[2:]) != out_size:
            x = self._up(x, out_size)
        return self.head(x)
