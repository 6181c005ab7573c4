"""Batch dict items: tensors and numbers are stacked, ``meta`` stays a list of dicts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ssl_domains.contracts import ID, META
from ssl_domains.errors import DataError

__all__ = ["collate_items"]


def collate_items(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Collate dict items (the shared keys ``image``/``signal``/``label``/``mask``/``meta``).

    Raises:
        DataError: Items of different shapes under one key (the message names the key and the
            shapes, and the item ids when ``meta`` has them).
    """
    batch: dict[str, Any] = {}
    for key in items[0]:
        values = [it[key] for it in items]
        if key == META:
            batch[key] = list(values)
            continue
        first = values[0]
        if isinstance(first, torch.Tensor | np.ndarray):
            tensors = [torch.as_tensor(v) for v in values]
            shapes = {tuple(t.shape) for t in tensors}
            if len(shapes) > 1:
                ids = [str(it.get(META, {}).get(ID, i)) for i, it in enumerate(items)]
                raise DataError(
                    f"batch key {key!r}",
                    f"items have different shapes {sorted(shapes)} (items {ids[:4]}...); "
                    "set a fixed spatial_size/patch_size/window in the loader",
                )
            batch[key] = torch.stack(tensors)
        elif isinstance(first, bool | int | float | np.integer | np.floating):
            batch[key] = torch.as_tensor(values)
        else:
            batch[key] = list(values)
    return batch
