"""Dilated residual 1-D CNN (TCN / ResNet-1D) backbone for signals.

Bai, Kolter, Koltun, "An Empirical Evaluation of Generic Convolutional and Recurrent Networks
for Sequence Modeling", 2018; Wang, Yan, Oates, "Time Series Classification from Scratch with
Deep Neural Networks: A Strong Baseline", IJCNN 2017.
"""

from __future__ import annotations

import torch
from torch import nn

from ssl_domains.contracts import Example, InputSpec
from ssl_domains.registry import component
from ssl_domains_timeseries.backbones._masking import standardized_input


class _ResidualBlock(nn.Module):
    """conv-norm-GELU-conv-norm plus identity, then GELU; 'same' padding, one dilation."""

    def __init__(self, width: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        pad = dilation * (kernel_size - 1) // 2
        self.conv1 = nn.Conv1d(width, width, kernel_size, padding=pad, dilation=dilation)
        self.norm1 = nn.BatchNorm1d(width)
        self.conv2 = nn.Conv1d(width, width, kernel_size, padding=pad, dilation=dilation)
        self.norm2 = nn.BatchNorm1d(width)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(self.act(self.norm1(self.conv1(x))))
        h = self.norm2(self.conv2(h))
        return self.act(x + h)


@component(
    "tcn",
    description="Dilated residual 1-D CNN (TCN/ResNet-1D), NaN-aware through a mask channel",
    modalities=("signal",),
    dims=(1,),
    examples=[
        Example({"in_channels": 1, "width": 8, "depth": 2, "kernel_size": 3}, input_shape=(1, 32)),
        Example({"in_channels": 2, "width": 8, "depth": 2, "kernel_size": 5, "pool": "meanmax"},
                input_shape=(2, 40)),
    ],
)
class TCN(nn.Module):
    """Stem convolution, then residual blocks with dilations ``dilation_base ** i``.

    The input is zero-filled where missing (NaN) and its observed mask is fed as extra
    channels, so the network knows which values are real. With ``instance_norm`` each channel
    of each item is standardised over its observed points; with ``keep_scale`` (default) an
    embedding of every channel's ``asinh(mean)`` and ``log(std)`` is added to the stem's
    output at every step, so amplitude and offset still reach the features. Convolutions are
    non-causal ('same' padding): every output step sees both sides within the receptive field
    ``1 + 2 * (kernel_size - 1) * sum(dilations)``.

    Pooled features (``forward_features``): the mean over time of the last block
    (``pool="mean"``, ``num_features = width``) or mean and max concatenated
    (``pool="meanmax"``, ``num_features = 2 * width``). :meth:`forward_sequence` gives the
    per-step features ``[B, width, T]`` that pretext heads decode.

    Args:
        in_channels: Input channels.
        width: Channels of every block; also ``num_features`` with ``pool="mean"``.
        depth: Residual blocks.
        kernel_size: Odd kernel size.
        dilation_base: Dilation of block ``i`` is ``dilation_base ** i``.
        dropout: Dropout inside the blocks.
        instance_norm: Standardise each item and channel over its observed points first.
        keep_scale: With ``instance_norm``, add an embedding of each channel's level and
            scale (``asinh(mean)``, ``log(std)`` of its observed points) after the stem.
        pool: ``"mean"`` or ``"meanmax"``.

    Raises:
        ValueError: Even ``kernel_size``, non-positive sizes or an unknown ``pool``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        width: int = 64,
        depth: int = 5,
        kernel_size: int = 7,
        dilation_base: int = 2,
        dropout: float = 0.0,
        instance_norm: bool = True,
        keep_scale: bool = True,
        pool: str = "mean",
    ) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (for 'same' padding), got {kernel_size}")
        if width < 1 or depth < 1:
            raise ValueError(f"width and depth must be >= 1, got {width}, {depth}")
        if pool not in ("mean", "meanmax"):
            raise ValueError(f"pool must be 'mean' or 'meanmax', got {pool!r}")
        self.input_spec = InputSpec("signal", 1, in_channels)
        self.in_channels = in_channels
        self.width = width
        self.instance_norm = instance_norm
        self.keep_scale = keep_scale and instance_norm
        self.pool = pool
        self.sequence_features = width
        self.num_features = width * (2 if pool == "meanmax" else 1)
        self.stem = nn.Sequential(
            nn.Conv1d(2 * in_channels, width, kernel_size, padding=kernel_size // 2),
            nn.BatchNorm1d(width),
            nn.GELU(),
        )
        self.scale_embed = nn.Linear(2 * in_channels, width) if self.keep_scale else None
        self.blocks = nn.Sequential(
            *[_ResidualBlock(width, kernel_size, dilation_base**i, dropout) for i in range(depth)]
        )

    def forward_sequence(self, x: torch.Tensor) -> torch.Tensor:
        """Per-step features ``[B, width, T]`` of a signal ``[B, C, T]`` (NaN = missing).

        Raises:
            ValueError: Wrong input shape.
        """
        filled, observed, scale = standardized_input(x, self.in_channels, "tcn", self.instance_norm)
        shift = None
        if self.scale_embed is not None and scale is not None:
            shift = self.scale_embed(scale.flatten(1))[:, :, None]
        h = self.stem(torch.cat([filled, observed], dim=1))
        return self.blocks(h if shift is None else h + shift)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``[B, num_features]`` (see the class docstring)."""
        h = self.forward_sequence(x)
        if self.pool == "meanmax":
            return torch.cat([h.mean(-1), h.amax(-1)], dim=1)
        return h.mean(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)
