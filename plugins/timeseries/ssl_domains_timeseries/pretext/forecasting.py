"""Forecasting pretext task: predict the last ``horizon`` points of each item from the rest.

Forecasting as self-supervision for time series follows e.g. PatchTST (Nie et al., ICLR 2023);
the forecast error doubles as a label-free anomaly score (Malhotra et al., "Long Short Term
Memory Networks for Anomaly Detection in Time Series", ESANN 2015).
"""

from __future__ import annotations

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
    "forecasting",
    description="Forecast the last `horizon` points from the context (MSE/MAE); error = anomaly score",
    modalities=("signal",),
    dims=(1,),
    examples=[Example({"horizon": 4}), Example({"horizon": 8, "loss": "mae"})],
)
class ForecastingTask(nn.Module):
    """Split each item ``[C, T]`` into context (first ``T - horizon``) and target (the rest).

    The backbone sees the whole item with the target hidden (set missing), so any signal
    backbone fits and the context length need not be fixed. Context and target are
    standardised with the context's per-channel mean/std; the loss is computed in those units
    over observed target points only. Missing values never reach the loss.

    ``forward`` returns ``loss``, ``input`` (the item, NaN = missing), ``forecast`` and
    ``target`` (``[B, C, horizon]``, original units) and ``score`` (``[B]`` per-item error).

    Args:
        backbone: A signal backbone.
        horizon: Points to forecast; must be shorter than the items.
        loss: ``"mse"`` or ``"mae"``.
        input_length: Item length; only for backbones with pooled features alone.

    Raises:
        ValueError: ``horizon < 1`` or an unknown ``loss``.
        IncompatibleError: The backbone does not take 1-D signals.
    """

    def __init__(
        self,
        backbone: nn.Module,
        horizon: int = 16,
        loss: str = "mse",
        input_length: int | None = None,
    ) -> None:
        super().__init__()
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if loss not in ("mse", "mae"):
            raise ValueError(f"loss must be 'mse' or 'mae', got {loss!r}")
        self.backbone = backbone
        self.horizon = horizon
        self.loss = loss
        self.decoder = SignalDecoder(backbone, input_length, task="forecasting")

    def _forecast(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        x = signal_from_batch(batch)
        length = x.shape[-1]
        if self.horizon >= length:
            raise ValueError(
                f"forecasting horizon {self.horizon} must be shorter than the items "
                f"({length} points); lower horizon or use longer windows"
            )
        start = length - self.horizon
        context = torch.zeros_like(x, dtype=torch.bool)
        context[..., :start] = True
        xs, mean, std = standardise(x, context)
        hidden = torch.where(context, xs, torch.full((), float("nan"), device=x.device))
        pred = self.decoder(self.backbone, hidden)[..., start:]
        target = xs[..., start:]
        score = masked_error(pred, target, torch.isfinite(target), self.loss)
        return {"x": x, "pred": pred, "mean": mean, "std": std, "score": score}

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        r = self._forecast(batch)
        start = r["x"].shape[-1] - self.horizon
        return {
            "loss": r["score"].mean(),
            "input": r["x"].detach(),
            "forecast": (r["pred"] * r["std"] + r["mean"]).detach(),
            "target": r["x"][..., start:].detach(),
            "score": r["score"].detach(),
        }

    @torch.no_grad()
    def anomaly_scores(self, batch: dict[str, Any]) -> torch.Tensor:
        """Label-free anomaly score per item ``[B]``: its forecast error (higher = stranger).

        Errors are in units of the context's standard deviation. Call in eval mode.
        """
        return self._forecast(batch)["score"]

    def figures(self, out: dict[str, Any], max_items: int = 4) -> dict[str, Any]:
        """One figure: context, true continuation and forecast of channel 0 per item."""
        x = out["input"].float().cpu()
        forecast = out["forecast"].float().cpu()
        n = min(max_items, x.shape[0])
        length = x.shape[-1]
        start = length - forecast.shape[-1]
        fig = Figure(figsize=(8, 1.8 * n))
        FigureCanvasAgg(fig)
        axes = fig.subplots(n, 1, squeeze=False)
        t = torch.arange(length)
        for i in range(n):
            ax = axes[i, 0]
            ax.plot(t[:start], x[i, 0, :start], color="0.4", lw=1, label="context")
            ax.plot(t[start:], x[i, 0, start:], color="tab:blue", lw=1.2, label="truth")
            ax.plot(t[start:], forecast[i, 0], color="tab:orange", lw=1.2, ls="--",
                    label="forecast")
            ax.axvline(start - 0.5, color="0.7", lw=0.8)
            if i == 0:
                ax.legend(loc="upper left", fontsize=7, ncol=3)
        axes[-1, 0].set_xlabel("time step")
        fig.tight_layout()
        return {"forecast": fig}
