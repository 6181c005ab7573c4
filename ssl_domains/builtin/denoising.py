"""Denoising autoencoder pretext task for any backbone (Vincent et al., ICML 2008)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ssl_domains.contracts import LOSS, MODALITIES, Example
from ssl_domains.registry import component


@component(
    "denoising",
    description="Reconstruct the clean input from a noisy copy through a linear decoder",
    modalities=("image", "signal"),
    dims=(1, 2, 3),
    examples=[Example({"noise": 0.1})],
)
class DenoisingAutoencoder(nn.Module):
    """Gaussian-noise denoising with a linear decoder from pooled features.

    Args:
        backbone: Any backbone; its ``input_shape`` attribute fixes the output size, else
            ``input_shape`` must be given.
        noise: Standard deviation of the added noise.
        input_shape: Shape of one item when the backbone has no ``input_shape``.

    Raises:
        IncompatibleError: The item shape is unknown.
    """

    def __init__(
        self, backbone: Any, noise: float = 0.1, input_shape: list[int] | None = None
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.noise = noise
        shape = tuple(input_shape or backbone.input_shape)
        self.input_shape = shape
        self.key = backbone.input_spec.modality
        assert self.key in MODALITIES
        self.decoder = nn.Linear(int(backbone.num_features), math.prod(shape))

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        x = torch.nan_to_num(batch[self.key])
        noisy = x + self.noise * torch.randn_like(x)
        recon = self.decoder(self.backbone.forward_features(noisy)).view_as(x)
        loss = nn.functional.mse_loss(recon, x)
        return {LOSS: loss, "input": x, "corrupted": noisy, "reconstruction": recon}
