"""Denoising autoencoder pretext task for any backbone (Vincent et al., ICML 2008)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ssl_domains.contracts import LOSS, MODALITIES, Example
from ssl_domains.errors import IncompatibleError
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
            ``input_shape`` must be given (a run gives the shape of its items).
        noise: Standard deviation of the added noise.
        input_shape: Shape of one item ``[C, *spatial]`` when the backbone has no
            ``input_shape``; every item must have it.

    Raises:
        IncompatibleError: The item shape is unknown.
    """

    def __init__(
        self, backbone: Any, noise: float = 0.1, input_shape: list[int] | None = None
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.noise = noise
        shape = input_shape or getattr(backbone, "input_shape", None)
        if not shape:
            raise IncompatibleError(
                f"denoising decodes whole items from pooled features, so it needs their shape: "
                f"{type(backbone).__name__} has no input_shape; pass input_shape=[C, *spatial]")
        self.input_shape = tuple(int(n) for n in shape)
        self.key = backbone.input_spec.modality
        assert self.key in MODALITIES
        self.decoder = nn.Linear(int(backbone.num_features), math.prod(self.input_shape))

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        x = torch.nan_to_num(batch[self.key])
        if tuple(x.shape[1:]) != self.input_shape:
            raise IncompatibleError(
                f"denoising was built for items of shape {list(self.input_shape)}, got "
                f"{list(x.shape[1:])}; it needs items of one shape (fixed window or crop)")
        noisy = x + self.noise * torch.randn_like(x)
        recon = self.decoder(self.backbone.forward_features(noisy)).view_as(x)
        loss = nn.functional.mse_loss(recon, x)
        return {LOSS: loss, "input": x, "corrupted": noisy, "reconstruction": recon}
