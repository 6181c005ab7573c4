"""Batched inference: scores per item, with item ids and labels when present."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ssl_domains.data.datasets import labels_of
from ssl_domains.data.skipping import iter_readable
from ssl_domains.engine.assess import Predictions
from ssl_domains.engine.runtime import Runtime
from ssl_domains.errors import SSLDomainsError

__all__ = ["Predictions", "predict", "item_id", "stack_inputs"]


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


def stack_inputs(ds: Any, key: str) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Inputs ``[N, C, *spatial]`` (float32, NaN kept), labels ``[N]`` (None when any item has
    none) and item ids of ``ds``, for models that read whole arrays (classical baselines).
    Items that fail to read are left out and counted (:func:`~ssl_domains.data.skipping.iter_readable`).

    Raises:
        SSLDomainsError: Items without the input key.
        DataError: More than 5 % of the items are unreadable.
    """
    fallback = labels_of(ds)
    xs, ys, ids = [], [], []
    for i, item in iter_readable(ds, "baseline input"):
        if key not in item:
            raise SSLDomainsError(f"baseline input: items have keys {sorted(k for k in item if k != 'meta')}, "
                                  f"not {key!r} (the backbone's modality)")
        x = item[key]
        xs.append(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x))
        ys.append(int(item["label"]) if "label" in item else (fallback[i] if fallback is not None else None))
        ids.append(item_id(item.get("meta"), i))
    labels = None if any(y is None for y in ys) else np.asarray(ys, dtype=int)
    return np.stack(xs).astype(np.float32, copy=False), labels, ids


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
