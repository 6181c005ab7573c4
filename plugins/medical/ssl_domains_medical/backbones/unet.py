"""UNet-style convolutional encoder (2-D / 3-D) laid out like Models Genesis' UNet3D.

Zhou et al., "Models Genesis", Medical Image Analysis 67 (2021) 101840. The original encoder
is four ``DownTransition`` blocks ``down_tr64 .. down_tr512``, each two ``LUConv`` (conv 3x3x3
with bias, batch norm, ReLU) with channels ``base*2^d -> base*2^(d+1)`` and a 2x max pool
between levels. Here the blocks are ``down_tr.0 .. down_tr.{levels-1}`` with the same inner
names (``ops.0.conv1``, ``ops.0.bn1`` ...), so Models Genesis weights map one to one.
"""

from __future__ import annotations

import torch
from monai.networks.layers.factories import Act, Conv, Norm, Pool
from torch import nn

from ssl_domains.contracts import Example, InputSpec
from ssl_domains.registry import component

__all__ = ["UNetEncoder", "LUConv", "DownTransition"]


class LUConv(nn.Module):
    """Convolution (3x3, bias) -> norm -> activation (Models Genesis' ``LUConv``)."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int,
                 norm: str = "batch", act: str = "relu") -> None:
        super().__init__()
        self.conv1 = Conv[Conv.CONV, spatial_dims](in_channels, out_channels, 3, padding=1)
        self.bn1 = Norm[norm, spatial_dims](out_channels)
        self.activation = Act[act]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.bn1(self.conv1(x)))


class DownTransition(nn.Module):
    """Two :class:`LUConv` (``c_in -> w -> 2w``); the pooling happens between levels."""

    def __init__(self, spatial_dims: int, in_channels: int, width: int,
                 norm: str = "batch", act: str = "relu") -> None:
        super().__init__()
        self.ops = nn.Sequential(
            LUConv(spatial_dims, in_channels, width, norm, act),
            LUConv(spatial_dims, width, 2 * width, norm, act),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ops(x)


@component(
    "unet_encoder",
    description="UNet encoder (Models Genesis UNet3D layout; its weights convert), 2-D or 3-D",
    modalities=("image",),
    dims=(2, 3),
    examples=[
        Example({"spatial_dims": 3, "base_channels": 4, "levels": 3}, input_shape=(1, 16, 16, 16)),
        Example({"spatial_dims": 2, "base_channels": 8, "levels": 3}, input_shape=(1, 28, 28)),
    ],
)
class UNetEncoder(nn.Module):
    """Contracting path of a UNet: ``levels`` double-conv blocks with 2x max pooling between.

    Level ``d`` outputs ``base_channels * 2^(d+1)`` channels at ``1/2^d`` of the input size;
    with ``base_channels=32, levels=4`` (the defaults for 3-D) this is Models Genesis' encoder
    (64, 128, 256, 512 channels).

    Args:
        spatial_dims: 2 or 3.
        in_channels: Input channels (Models Genesis: 1).
        base_channels: Width of the first convolution (Models Genesis: 32).
        levels: Number of resolution levels (Models Genesis: 4).
        norm: MONAI norm name (``"batch"``, ``"instance"`` ...).
        act: MONAI activation name (Models Genesis: ``"relu"``).

    Raises:
        ValueError: Bad spatial_dims or levels.
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        base_channels: int = 32,
        levels: int = 4,
        norm: str = "batch",
        act: str = "relu",
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"unet_encoder spatial_dims must be 2 or 3, got {spatial_dims}")
        if levels < 1:
            raise ValueError(f"unet_encoder levels must be >= 1, got {levels}")
        self.input_spec = InputSpec(modality="image", dims=spatial_dims, channels=in_channels)
        self.pyramid_channels = [base_channels * 2 ** (d + 1) for d in range(levels)]
        self.pyramid_strides = [2**d for d in range(levels)]
        self.num_features = self.pyramid_channels[-1]
        c_in = in_channels
        blocks = []
        for d in range(levels):
            blocks.append(DownTransition(spatial_dims, c_in, base_channels * 2**d, norm, act))
            c_in = self.pyramid_channels[d]
        self.down_tr = nn.ModuleList(blocks)
        self.pool = Pool[Pool.MAX, spatial_dims](2)
        self.global_pool = Pool[Pool.ADAPTIVEAVG, spatial_dims](1)

    def forward_pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Output of each level before pooling (finest first)."""
        maps = []
        for d, block in enumerate(self.down_tr):
            if d:
                x = self.pool(x)
            x = block(x)
            maps.append(x)
        return maps

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled deepest features ``[B, num_features]``."""
        return self.global_pool(self.forward_pyramid(x)[-1]).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)
