"""Batched random augmentation of 2-D/3-D image tensors, on whatever device the batch is on.

One random affine warp per item (scale, rotation, translation, flips: a single
``affine_grid`` + ``grid_sample``), then per-item brightness/contrast and Gaussian noise. It
serves the contrastive pretext task (two views of each image) and train-time augmentation
inside fine-tuning tasks. Randomness comes from torch's global RNG, so a seeded run repeats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

__all__ = ["Augmentation", "augmentation_from", "random_rotation"]


def random_rotation(batch: int, dims: int, max_degrees: float) -> torch.Tensor:
    """Rotation matrices ``[B, dims, dims]``, angles uniform in ``±max_degrees`` (2-D: one angle;
    3-D: one angle about each axis, composed)."""
    def angles() -> torch.Tensor:
        return (torch.rand(batch) * 2 - 1) * math.radians(max_degrees)

    def plane(a: torch.Tensor, i: int, j: int) -> torch.Tensor:
        r = torch.eye(dims).repeat(batch, 1, 1)
        c, s = torch.cos(a), torch.sin(a)
        r[:, i, i], r[:, i, j], r[:, j, i], r[:, j, j] = c, -s, s, c
        return r

    if dims == 2:
        return plane(angles(), 0, 1)
    return plane(angles(), 0, 1) @ plane(angles(), 0, 2) @ plane(angles(), 1, 2)


@dataclass(frozen=True)
class Augmentation:
    """Random warp + intensity change of a batch ``[B, C, *spatial]`` (2-D or 3-D).

    Args:
        scale: Zoom range (``(0.6, 1.0)`` shows 60-100 % of the field of view, i.e. a random
            resized crop; values above 1 zoom out).
        rotate: Largest rotation in degrees (about each axis in 3-D).
        translate: Largest shift as a fraction of the half field of view.
        flip_axes: Spatial axes (0 = first spatial axis) flipped with probability 0.5 each;
            default: the last axis (left-right).
        brightness: Largest additive shift, in units of the item's standard deviation.
        contrast: Largest relative change of contrast around the item's mean.
        noise: Standard deviation of added Gaussian noise, in units of the item's std.
        padding: ``grid_sample`` padding: ``"reflection"``, ``"border"`` or ``"zeros"``.

    Raises:
        ValueError: Bad ranges or padding.
    """

    scale: tuple[float, float] = (0.8, 1.0)
    rotate: float = 15.0
    translate: float = 0.1
    flip_axes: Sequence[int] = (-1,)
    brightness: float = 0.1
    contrast: float = 0.1
    noise: float = 0.0
    padding: str = "reflection"

    def __post_init__(self) -> None:
        lo, hi = self.scale
        if not 0 < lo <= hi:
            raise ValueError(f"augmentation scale must be (low, high) with 0 < low <= high, "
                             f"got {self.scale}")
        if min(self.rotate, self.translate, self.brightness, self.contrast, self.noise) < 0:
            raise ValueError("augmentation rotate, translate, brightness, contrast and noise "
                             "must be >= 0")
        if self.padding not in ("reflection", "border", "zeros"):
            raise ValueError(f"augmentation padding must be reflection, border or zeros, "
                             f"got {self.padding!r}")

    def warp(self, x: torch.Tensor) -> torch.Tensor:
        """The random affine part (scale, rotation, translation, flips)."""
        return self.warp_with_mask(x)[0]

    def warp_with_mask(self, x: torch.Tensor, mask: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`warp` of an image batch and, by the same random affine per item, of its mask
        ``[B, 1, *spatial]`` (nearest-neighbour, zeros outside), so the two stay aligned."""
        batch, dims = x.shape[0], x.ndim - 2
        if dims not in (2, 3):
            raise ValueError(f"augmentation needs [B, C, H, W] or [B, C, D, H, W], got {tuple(x.shape)}")
        lo, hi = self.scale
        zoom = lo + (hi - lo) * torch.rand(batch)
        theta = random_rotation(batch, dims, self.rotate) * zoom.view(-1, 1, 1)
        # affine_grid's coordinates run (x, y[, z]) = last spatial axis first.
        flips = torch.ones(batch, dims)
        for axis in self.flip_axes:
            col = dims - 1 - (axis % dims)
            flips[:, col] = torch.where(torch.rand(batch) < 0.5, -1.0, 1.0)
        theta = theta * flips.unsqueeze(1)
        shift = (torch.rand(batch, dims, 1) * 2 - 1) * self.translate
        affine = torch.cat([theta, shift], dim=2).to(x)
        grid = F.affine_grid(affine, list(x.shape), align_corners=False)
        image = F.grid_sample(x, grid, mode="bilinear", padding_mode=self.padding,
                              align_corners=False)
        if mask is None:
            return image, None
        warped = F.grid_sample(mask.to(grid.dtype), grid, mode="nearest", padding_mode="zeros",
                               align_corners=False)
        return image, warped.to(mask.dtype)

    def intensity(self, x: torch.Tensor) -> torch.Tensor:
        """The random brightness, contrast and noise part."""
        batch, dims = x.shape[0], x.ndim - 2
        shape = (batch,) + (1,) * (dims + 1)
        axes = tuple(range(1, x.ndim))
        mean = x.mean(axes, keepdim=True)
        std = x.std(axes, keepdim=True).clamp(min=1e-6)
        gain = 1 + (torch.rand(shape) * 2 - 1).to(x) * self.contrast
        offset = (torch.rand(shape) * 2 - 1).to(x) * self.brightness * std
        x = (x - mean) * gain + mean + offset
        if self.noise:
            x = x + torch.randn(x.shape).to(x) * self.noise * std
        return x

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.intensity(self.warp(x.float()))


def augmentation_from(args: dict[str, Any] | None) -> Augmentation | None:
    """An :class:`Augmentation` from config keyword arguments (None stays None).

    Raises:
        ValueError: Unknown keys or bad values.
    """
    if args is None:
        return None
    known = set(Augmentation.__dataclass_fields__)
    unknown = sorted(set(args) - known)
    if unknown:
        raise ValueError(f"augment: unknown key(s) {unknown}; allowed: {sorted(known)}")
    kw = dict(args)
    for key in ("scale", "flip_axes"):
        if key in kw:
            kw[key] = tuple(kw[key])
    return Augmentation(**kw)
