"""A small multilayer perceptron backbone for any modality (flattens the input)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ssl_domains.contracts import Example, InputSpec
from ssl_domains.registry import component


@component(
    "mlp",
    description="Multilayer perceptron on the flattened input (any modality; for tests and tiny data)",
    modalities=("image", "signal"),
    dims=(1, 2, 3),
    examples=[
        Example({"input_shape": [1, 16], "modality": "signal"}, input_shape=(1, 16)),
        Example({"input_shape": [1, 8, 8], "modality": "image"}, input_shape=(1, 8, 8)),
    ],
)
class MLPBackbone(nn.Module):
    """Flatten -> (Linear, GELU) x depth.

    Args:
        input_shape: Shape of one item, ``[C, *spatial]``.
        modality: ``"image"`` or ``"signal"``.
        hidden: Width of each hidden layer; also ``num_features``.
        depth: Number of hidden layers.
    """

    def __init__(
        self, input_shape: list[int], modality: str = "signal", hidden: int = 64, depth: int = 2
    ) -> None:
        super().__init__()
        shape = tuple(int(s) for s in input_shape)
        self.input_spec = InputSpec(modality=modality, dims=len(shape) - 1, channels=shape[0])
        self.input_shape = shape
        self.num_features = hidden
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(shape)
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.GELU()]
            width = hidden
        self.net = nn.Sequential(*layers)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``[B, hidden]``; NaNs (missing values) count as zero."""
        return self.net(torch.nan_to_num(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)
