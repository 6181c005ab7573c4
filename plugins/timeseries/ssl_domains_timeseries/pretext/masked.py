"""Masked patch reconstruction for signals: hide random segments, reconstruct them.

The masked-patch objective of PatchTST (Nie et al., ICLR 2023), after masked autoencoders
(He et al., CVPR 2022), with the loss restricted to hidden points that were observed.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import nn

from ssl_domains.contracts import Example
from ssl_domains.registry import component
from ssl_domains_timeseries.backbones._masking import signal_from_batch
from ssl_domains_timeseries.pretext.decoder import SignalDecoder, masked_error, standardise


@component(
    "masked_patches",
    description="Hide random segments of each channel and reconstruct them (loss on hidden, observed points)",
    modalities=("signal",),
    dims=(1,),
    examples=[Example({"mask_ratio": 0.4, "segment_len": 4}), Example({"loss": "mae"})],
)
class MaskedPatchTask(nn.Module):
    """Cut each channel into segments of ``segment_len`` points and hide a ``mask_ratio``
    share of them (independently per item and channel, at least one); the backbone sees the
    hidden points as missing and a light decoder reconstructs them.

    Values are standardised per item and channel with the visible points' mean/std and the
    loss is computed in those units over hidden points that were observed (truly missing
    values are never targets). Randomness comes from torch's global generator (seeded by the
    engine).

    ``forward`` returns ``loss``, ``input`` (NaN = missing), ``corrupted`` (the input with
    hidden points set to NaN), ``reconstruction`` (original units) and ``hidden`` (bool mask).

    Args:
        backbone: A signal backbone.
        mask_ratio: Share of segments hidden, in (0, 1).
        segment_len: Points per segment; default the backbone's ``patch_len``, else 16.
        loss: ``"mse"`` or ``"mae"``.
        input_length: Item length; only for backbones with pooled features alone.

    Raises:
        ValueError: ``mask_ratio`` outside (0, 1), ``segment_len < 1`` or an unknown ``loss``.
        IncompatibleError: The backbone does not take 1-D signals.
    """

    def __init__(
        self,
        backbone: nn.Module,
        mask_ratio: float = 0.4,
        segment_len: int | None = None,
        loss: str = "mse",
        input_length: int | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
        if loss not in ("mse", "mae"):
            raise ValueError(f"loss must be 'mse' or 'mae', got {loss!r}")
        seg = segment_len if segment_len is not None else getattr(backbone, "patch_len", 16)
        if seg < 1:
            raise ValueError(f"segment_len must be >= 1, got {seg}")
        self.backbone = backbone
        self.mask_ratio = mask_ratio
        self.segment_len = int(seg)
        self.loss = loss
        self.decoder = SignalDecoder(backbone, input_length, task="masked_patches")

    def sample_hidden(self, shape: torch.Size, device: torch.device) -> torch.Tensor:
        """Bool mask ``shape`` (``[B, C, T]``) of hidden points, whole segments at a time."""
        b, c, length = shape
        n_seg = math.ceil(length / self.segment_len)
        n_hide = min(n_seg, max(1, round(self.mask_ratio * n_seg)))
        ranks = torch.rand(b, c, n_seg, device=device).argsort(-1).argsort(-1)
        seg_hidden = ranks < n_hide
        return seg_hidden.repeat_interleave(self.segment_len, dim=-1)[..., :length]

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        x = signal_from_batch(batch)
        hidden = self.sample_hidden(x.shape, x.device)
        xs, mean, std = standardise(x, ~hidden)
        nan = torch.full((), float("nan"), device=x.device)
        recon = self.decoder(self.backbone, torch.where(hidden, nan, xs))
        valid = hidden & torch.isfinite(xs)
        loss = masked_error(recon, xs, valid, self.loss).mean()
        return {
            "loss": loss,
            "input": x.detach(),
            "corrupted": torch.where(hidden, nan, x).detach(),
            "reconstruction": (recon * std + mean).detach(),
            "hidden": hidden,
        }

    def figures(self, out: dict[str, Any], max_items: int = 4) -> dict[str, Any]:
        """One figure: channel 0 per item, hidden segments shaded, reconstruction on them."""
        x = out["input"].float().cpu()
        recon = out["reconstruction"].float().cpu()
        hidden = out["hidden"].cpu()
        n = min(max_items, x.shape[0])
        t = torch.arange(x.shape[-1])
        fig = Figure(figsize=(8, 1.8 * n))
        FigureCanvasAgg(fig)
        axes = fig.subplots(n, 1, squeeze=False)
        for i in range(n):
            ax = axes[i, 0]
            h = hidden[i, 0]
            ax.plot(t, x[i, 0], color="tab:blue", lw=1, label="truth")
            ax.plot(t, torch.where(h, recon[i, 0], torch.nan), color="tab:orange", lw=1.2,
                    label="reconstruction (hidden points)")
            ax.fill_between(t.numpy(), 0, 1, where=h.numpy(), color="0.85",
                            transform=ax.get_xaxis_transform(), label="hidden")
            if i == 0:
                ax.legend(loc="upper left", fontsize=7, ncol=3)
        axes[-1, 0].set_xlabel("time step")
        fig.tight_layout()
        return {"reconstruction": fig}
