"""Contrastive pre-training (SimCLR) for 2-D and 3-D images.

Chen, Kornblith, Norouzi and Hinton, "A simple framework for contrastive learning of visual
representations", ICML 2020. Two random views of each image (random resized crop, rotation,
flips, brightness/contrast, noise: :class:`~ssl_domains_medical.augment.Augmentation`) go
through the backbone and a projection MLP; the NT-Xent loss pulls the two views of an image
together and pushes the other images of the batch away. Unlike the reconstruction tasks it
trains the pooled features that classification fine-tuning uses, which is why it suits small
classification sets (BreastMNIST, AdrenalMNIST3D: see ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from matplotlib.figure import Figure
from torch import nn
from torch.nn import functional as F

from ssl_domains.contracts import Example
from ssl_domains.registry import component
from ssl_domains_medical.augment import Augmentation
from ssl_domains_medical.pretext.decoder import check_image_backbone
from ssl_domains_medical.pretext.figures import reconstruction_figure

__all__ = ["ContrastiveViews", "nt_xent"]


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Normalised-temperature cross-entropy over ``2B`` embeddings; the positive of row ``i``
    of ``z1`` is row ``i`` of ``z2`` and vice versa, every other row is a negative."""
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    n = z1.shape[0]
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


@component(
    "contrastive",
    description="SimCLR: two augmented views per image, NT-Xent on projected pooled features, 2-D/3-D",
    modalities=("image",),
    dims=(2, 3),
    examples=[Example({"temperature": 0.2}),
              Example({"temperature": 0.5, "projection_dim": 32, "crop_scale": [0.8, 1.0],
                       "rotate": 0.0, "noise": 0.0})],
)
class ContrastiveViews(nn.Module):
    """SimCLR around any image backbone (its pooled ``forward_features`` are what is trained).

    Args:
        backbone: A 2-D/3-D image backbone.
        temperature: NT-Xent temperature (small data sets: 0.1-0.5).
        projection_dim: Output size of the projection MLP (thrown away after pre-training).
        projection_hidden: Hidden size of the projection MLP.
        crop_scale: Zoom range of the random resized crop (fraction of the field of view).
        rotate: Largest rotation in degrees (about each axis in 3-D).
        translate: Largest shift, fraction of the half field of view.
        flip_axes: Spatial axes flipped at random (default: all of them).
        brightness: Largest brightness shift, in units of the image's std.
        contrast: Largest relative contrast change.
        noise: Gaussian noise std, in units of the image's std.

    Raises:
        IncompatibleError: Not a 2-D/3-D image backbone.
        ValueError: Bad temperature or augmentation ranges.
    """

    def __init__(
        self,
        backbone: nn.Module,
        temperature: float = 0.2,
        projection_dim: int = 64,
        projection_hidden: int = 256,
        crop_scale: Sequence[float] = (0.6, 1.0),
        rotate: float = 20.0,
        translate: float = 0.1,
        flip_axes: Sequence[int] | None = None,
        brightness: float = 0.5,
        contrast: float = 0.3,
        noise: float = 0.1,
    ) -> None:
        super().__init__()
        check_image_backbone(backbone, "contrastive")
        encoder: Any = backbone
        spec = encoder.input_spec
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        lo, hi = (float(v) for v in crop_scale)
        self.backbone: Any = backbone
        self.temperature = float(temperature)
        self.augment = Augmentation(
            scale=(lo, hi), rotate=rotate, translate=translate,
            flip_axes=tuple(range(spec.dims)) if flip_axes is None else tuple(flip_axes),
            brightness=brightness, contrast=contrast, noise=noise,
        )
        width = int(encoder.num_features)
        self.projection = nn.Sequential(
            nn.Linear(width, projection_hidden), nn.BatchNorm1d(projection_hidden), nn.ReLU(),
            nn.Linear(projection_hidden, projection_dim),
        )

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        x = torch.nan_to_num(batch["image"].float())
        if x.shape[0] < 2:
            raise ValueError("contrastive pre-training needs batches of at least 2 images "
                             "(the other images are the negatives); set the data's drop_last: true")
        with torch.no_grad():
            v1, v2 = self.augment(x), self.augment(x)
        z = self.projection(self.backbone.forward_features(torch.cat([v1, v2])))
        loss = nt_xent(z[: len(x)], z[len(x):], self.temperature)
        return {"loss": loss, "input": x, "view_1": v1, "view_2": v2}

    def figures(self, out: dict[str, Any], max_items: int = 4) -> dict[str, Figure]:
        """Input | view 1 | view 2 (the two augmented views the loss pairs)."""
        return {"contrastive_views": reconstruction_figure(
            out, max_items, keys=("input", "view_1", "view_2"))}
