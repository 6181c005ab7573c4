"""Report pictures for reconstruction pretext tasks: input | corrupted | reconstruction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["middle_slice", "reconstruction_figure"]


def middle_slice(x: torch.Tensor) -> np.ndarray:
    """A 2-D picture of one item ``[C, *spatial]``: first channel, middle slice of the last axis
    for 3-D."""
    img = x.detach().float().cpu()[0]
    if img.ndim == 3:
        img = img[..., img.shape[-1] // 2]
    return img.numpy()


def reconstruction_figure(
    out: dict[str, Any],
    max_items: int = 4,
    keys: Sequence[str] = ("input", "corrupted", "reconstruction"),
    mask_key: str | None = None,
) -> Figure:
    """One row per item, one column per key (shared grey scale per row).

    Args:
        out: A pretext task's output with tensors ``[B, C, *spatial]`` under ``keys``.
        max_items: Rows at most.
        keys: Columns.
        mask_key: Optional boolean mask outlined in the ``corrupted`` column.
    """
    n = min(max_items, int(out[keys[0]].shape[0]))
    fig = Figure(figsize=(2.2 * len(keys), 2.2 * max(n, 1)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(max(n, 1), len(keys), squeeze=False)
    for i in range(n):
        pics = [middle_slice(out[k][i]) for k in keys]
        lo, hi = float(pics[0].min()), float(pics[0].max())
        for j, (k, pic) in enumerate(zip(keys, pics)):
            ax = axes[i][j]
            ax.imshow(pic, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1)
            if mask_key and k == "corrupted" and mask_key in out:
                ax.contour(middle_slice(out[mask_key][i].float()), levels=[0.5],
                           colors="tab:red", linewidths=0.5)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(k)
    fig.tight_layout()
    return fig
