"""Models Genesis restoration: undo non-linear intensity, local shuffling and (in/out)-painting.

Zhou, Sodha, Pang, Gotway and Liang, "Models Genesis", Medical Image Analysis 67 (2021) 101840
(first published at MICCAI 2019). The transformations and their probabilities follow the
authors' reference code (``pytorch/utils.py``, ``config.py`` of MrGiovanni/ModelsGenesis):
flip (0.4, also applied to the target), local pixel shuffling (0.5), Bezier intensity curve
(0.9), then painting (0.9): in-painting (0.2) or out-painting (0.8). Works in 2-D and 3-D.
With ``target_stride > 1`` the decoder restores a pooled copy of the original (cheaper 3-D
pre-training).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from scipy.special import comb
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

__all__ = [
    "GenesisRestoration",
    "bezier_curve",
    "nonlinear_transformation",
    "local_pixel_shuffling",
    "in_painting",
    "out_painting",
    "flip",
    "corrupt",
]

#: Reference volume size (64x64x32) and block count of the original local shuffling.
_REF_NUMEL, _REF_BLOCKS = 64 * 64 * 32, 10000


def _randint(rng: np.random.RandomState, lo: int, hi: int) -> int:
    """Inclusive ``[lo, hi]`` like Python's ``random.randint``; ``hi < lo`` gives ``lo``."""
    return int(rng.randint(lo, max(lo, hi) + 1))


def bezier_curve(points: np.ndarray, n_times: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Points of the Bezier curve with control ``points`` ``[n, 2]`` (Bernstein form)."""
    n = len(points) - 1
    t = np.linspace(0.0, 1.0, n_times)
    basis = np.array([comb(n, i) * t ** (n - i) * (1 - t) ** i for i in range(n + 1)])
    return points[:, 0] @ basis, points[:, 1] @ basis


def flip(
    x: np.ndarray, y: np.ndarray, rng: np.random.RandomState, prob: float = 0.4
) -> tuple[np.ndarray, np.ndarray]:
    """Flip input and target along random spatial axes (up to 3 times)."""
    cnt = 3
    while rng.rand() < prob and cnt > 0:
        axis = 1 + int(rng.randint(x.ndim - 1))
        x, y = np.flip(x, axis=axis), np.flip(y, axis=axis)
        cnt -= 1
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def nonlinear_transformation(
    x: np.ndarray, rng: np.random.RandomState, prob: float = 0.9
) -> np.ndarray:
    """Map intensities in [0, 1] through a random monotonic cubic Bezier curve (half the time
    decreasing, i.e. inverted)."""
    if rng.rand() >= prob:
        return x
    points = np.array([[0.0, 0.0], [rng.rand(), rng.rand()], [rng.rand(), rng.rand()],
                       [1.0, 1.0]])
    xvals, yvals = bezier_curve(points)
    if rng.rand() < 0.5:
        xvals = np.sort(xvals)
    else:
        xvals, yvals = np.sort(xvals), np.sort(yvals)
    return np.interp(x, xvals, yvals)


def local_pixel_shuffling(
    x: np.ndarray, rng: np.random.RandomState, prob: float = 0.5, n_blocks: int | None = None
) -> np.ndarray:
    """Shuffle pixels inside many small random windows (edge up to 1/10 of the image).

    Args:
        x: ``[C, *spatial]``.
        rng: Source of randomness.
        prob: Probability of applying it.
        n_blocks: Windows; default scales the original 10,000 per 64x64x32 volume to the size
            of ``x``.
    """
    if rng.rand() >= prob:
        return x
    spatial = x.shape[1:]
    if n_blocks is None:
        n_blocks = max(1, round(_REF_BLOCKS * math.prod(spatial) / _REF_NUMEL))
    orig, out = x, x.copy()
    for _ in range(n_blocks):
        size = [_randint(rng, 1, max(1, s // 10)) for s in spatial]
        start = [_randint(rng, 0, s - b) for s, b in zip(spatial, size)]
        idx = (slice(None), *(slice(a, a + b) for a, b in zip(start, size)))
        window = orig[idx].reshape(x.shape[0], -1)
        out[idx] = window[:, rng.permutation(window.shape[1])].reshape(out[idx].shape)
    return out


def in_painting(x: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """Replace up to 5 inner boxes (edges 1/6..1/3 of the image) by uniform noise."""
    x = x.copy()
    spatial = x.shape[1:]
    cnt = 5
    while cnt > 0 and rng.rand() < 0.95:
        size = [_randint(rng, max(1, s // 6), max(1, s // 3)) for s in spatial]
        start = [_randint(rng, min(3, (s - b) // 2), s - b - min(3, (s - b) // 2))
                 for s, b in zip(spatial, size)]
        idx = (slice(None), *(slice(a, a + b) for a, b in zip(start, size)))
        x[idx] = rng.rand(*x[idx].shape)
        cnt -= 1
    return x


def out_painting(x: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """Keep only a few inner boxes (edges about 3/7..4/7 of the image); noise elsewhere."""
    spatial = x.shape[1:]
    out = rng.rand(*x.shape)

    def keep() -> None:
        size = [s - _randint(rng, 3 * s // 7, 4 * s // 7) for s in spatial]
        start = [_randint(rng, min(3, (s - b) // 2), s - b - min(3, (s - b) // 2))
                 for s, b in zip(spatial, size)]
        idx = (slice(None), *(slice(a, a + b) for a, b in zip(start, size)))
        out[idx] = x[idx]

    keep()
    cnt = 4
    while cnt > 0 and rng.rand() < 0.95:
        keep()
        cnt -= 1
    return out


def corrupt(
    x: np.ndarray,
    rng: np.random.RandomState,
    flip_rate: float,
    local_rate: float,
    nonlinear_rate: float,
    paint_rate: float,
    inpaint_rate: float,
    n_blocks: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Models Genesis corruption of one item ``[C, *spatial]`` with intensities in [0, 1].

    The probabilities are those of :class:`GenesisRestoration` (whose arguments hold the
    defaults).

    Returns:
        ``(corrupted, target)``; the target is ``x``, flipped like the input.
    """
    x, y = flip(x, x.copy(), rng, flip_rate)
    x = local_pixel_shuffling(x, rng, local_rate, n_blocks)
    x = nonlinear_transformation(x, rng, nonlinear_rate)
    if rng.rand() < paint_rate:
        x = in_painting(x, rng) if rng.rand() < inpaint_rate else out_painting(x, rng)
    return x, y


@component(
    "genesis_restoration",
    description="Models Genesis: restore images after intensity curve, shuffling, in/out-painting",
    modalities=("image",),
    dims=(2, 3),
    examples=[Example({}), Example({"paint_rate": 1.0, "inpaint_rate": 1.0})],
)
class GenesisRestoration(nn.Module):
    """Encoder-decoder that restores the original image from a Models Genesis corruption.

    Each item is min-max scaled to [0, 1] (the range the transformations assume), corrupted,
    and scaled back; the loss is the MSE between reconstruction and (flipped) original. Each
    call draws a seed from torch's RNG for a NumPy ``RandomState``, so ``torch.manual_seed``
    reproduces a run.

    Args:
        backbone: ``resnet_encoder``, ``unet_encoder`` or ``vit_encoder``.
        flip_rate: Probability of each of up to three flips (input and target).
        local_rate: Probability of local pixel shuffling.
        nonlinear_rate: Probability of the Bezier intensity curve.
        paint_rate: Probability of painting.
        inpaint_rate: Given painting, probability of in-painting (else out-painting).
        shuffle_blocks: Local-shuffling windows per item (default: scaled to the image size).
        decoder_width: Largest decoder width.
        decoder_min_width: Smallest width of the decoder's final upsampling steps.
        target_stride: Restore at ``1/target_stride`` of the input resolution, against the
            (flipped) original average-pooled by that factor. 1 restores at full resolution.

    Raises:
        IncompatibleError: The backbone has no feature pyramid or is not 2-D/3-D imaging.
        ValueError: A probability outside [0, 1]; bad decoder_min_width or target_stride (a
            positive int, at most the backbone's coarsest pyramid stride).
    """

    def __init__(
        self,
        backbone: nn.Module,
        flip_rate: float = 0.4,
        local_rate: float = 0.5,
        nonlinear_rate: float = 0.9,
        paint_rate: float = 0.9,
        inpaint_rate: float = 0.2,
        shuffle_blocks: int | None = None,
        decoder_width: int = 256,
        decoder_min_width: int = 16,
        target_stride: int = 1,
    ) -> None:
        super().__init__()
        check_pyramid_backbone(backbone, "genesis_restoration")
        self.rates = {"flip_rate": flip_rate, "local_rate": local_rate,
                      "nonlinear_rate": nonlinear_rate, "paint_rate": paint_rate,
                      "inpaint_rate": inpaint_rate}
        bad = {k: v for k, v in self.rates.items() if not 0.0 <= v <= 1.0}
        if bad:
            raise ValueError(f"genesis_restoration probabilities must be in [0, 1], got {bad}")
        self.backbone: Any = backbone
        self.shuffle_blocks = shuffle_blocks
        encoder: Any = backbone
        self.decoder = PyramidDecoder.for_encoder(encoder, encoder.input_spec.channels,
                                                  max_width=decoder_width,
                                                  min_width=decoder_min_width,
                                                  target_stride=target_stride)

    def make_pairs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(corrupted, target)`` for a batch ``[B, C, *spatial]``, in the input's units."""
        rng = np.random.RandomState(int(torch.randint(0, 2**31 - 1, (1,)).item()))
        arr = x.detach().cpu().double().numpy()
        corrupted, target = np.empty_like(arr), np.empty_like(arr)
        for i, item in enumerate(arr):
            lo, hi = float(item.min()), float(item.max())
            scale = hi - lo if hi > lo else 1.0
            c, t = corrupt((item - lo) / scale, rng, n_blocks=self.shuffle_blocks, **self.rates)
            corrupted[i], target[i] = c * scale + lo, t * scale + lo
        return (torch.from_numpy(corrupted).to(x), torch.from_numpy(target).to(x))

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Corrupt, restore and score one batch.

        Returns:
            ``loss``; ``input`` (the flipped original) and ``corrupted`` at the input size;
            ``reconstruction`` and ``target`` (the pooled original) at ``1/target_stride``
            of it.
        """
        x = torch.nan_to_num(batch["image"].float())
        corrupted, original = self.make_pairs(x)
        recon = self.decoder(self.backbone.forward_pyramid(corrupted), tuple(x.shape[2:]))
        target = pool_to_stride(original, self.decoder.target_stride, "avg")
        loss = nn.functional.mse_loss(recon, target)
        return {"loss": loss, "input": original, "corrupted": corrupted,
                "reconstruction": recon, "target": target}

    def figures(self, out: dict[str, Any], max_items: int = 4) -> dict[str, Figure]:
        """Original | corrupted | restored (a pooled restoration upsampled to the input size)."""
        shown = {**out, "reconstruction": upsample_to(out["reconstruction"],
                                                      out["input"].shape[2:])}
        return {"genesis_restoration": reconstruction_figure(shown, max_items)}
