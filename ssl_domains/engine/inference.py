"""Batched inference: scores per item, with item ids and labels when present."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ssl_domains.engine.runtime import Runtime

__all__ = ["Predictions", "predict", "item_id"]


def item_id(meta: Any, fallback: int) -> str:
    """A stable, non-identifying id for an item from its ``meta``."""
    if isinstance(meta, dict):
        for key in ("id", "case_id", "series_id", "window_id"):
            if key in meta and meta[key] is not None:
                base = str(meta[key])
                for extra in ("start", "patch", "index"):
                    if extra in meta and key != "id":
                        base += f":{meta[extra]}"
                        break
                return base
        if "index" in meta:
            return str(meta["index"])
    return str(fallback)


@dataclass
class Predictions:
    """Class probabilities ``[N, K]`` with ids, true labels (or None) and the mean loss."""

    ids: list[str]
    probs: np.ndarray
    labels: np.ndarray | None
    loss: float | None

    @property
    def scores(self) -> np.ndarray:
        """P(class 1) for binary tasks, else the probability matrix."""
        return self.probs[:, 1] if self.probs.shape[1] == 2 else self.probs


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader, rt: Runtime) -> Predictions:
    """Run a fine-tuning task over ``loader`` in eval mode."""
    was_training = model.training
    model.eval()
    ids: list[str] = []
    probs: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    loss_sum, loss_n = 0.0, 0
    for batch in loader:
        n = len(next(v for v in batch.values() if isinstance(v, torch.Tensor)))
        metas = batch.get("meta") or [{}] * n
        ids.extend(item_id(m, len(ids) + i) for i, m in enumerate(metas))
        batch = rt.to_device(batch)
        with rt.autocast():
            out = model(batch)
        probs.append(torch.softmax(out["logits"].float(), dim=1).cpu().numpy())
        if "label" in batch:
            labels.append(batch["label"].cpu().numpy().reshape(-1))
            if "loss" in out:
                loss_sum += float(out["loss"]) * n
                loss_n += n
    model.train(was_training)
    return Predictions(
        ids=ids,
        probs=np.concatenate(probs) if probs else np.zeros((0, 2)),
        labels=np.concatenate(labels).astype(int) if labels else None,
        loss=loss_sum / loss_n if loss_n else None,
    )
