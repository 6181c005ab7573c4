"""What a component promises, as checks both the conformance kit and a run apply, so a plugin
author reads the same words whether the kit caught the fault on an example or the run caught it
on real data.

Each check returns ``None`` when the promise holds, else the problem in a few words (no
component name: the kit puts the component's name in front, the run the data's role, the
loader or backbone and its plugin). No torch import: the values checked are tensors already.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ssl_domains.contracts import DATASET_CAPABILITIES, META, MODALITIES

__all__ = ["item_problem", "per_item_problem", "labels_problem", "features_problem", "dataset_problem"]


def item_problem(item: Any, modalities: Sequence[str] = (), dims: Sequence[int] = ()) -> str | None:
    """An item is a dict with exactly one input tensor ``[C, *spatial]`` (float, of a declared
    modality and dimensionality) and a ``meta`` dict.

    Args:
        item: One item of a loader's dataset.
        modalities: The loader's declared modalities (empty: any).
        dims: The loader's declared spatial dimensionalities (empty: any).
    """
    if not isinstance(item, dict):
        return f"items must be dicts, got {type(item).__name__}"
    keys = [k for k in MODALITIES if k in item]
    if len(keys) != 1:
        return f"an item needs exactly one input key of {MODALITIES}, has {sorted(item)}"
    key = keys[0]
    if modalities and key not in modalities:
        return f"item key {key!r} not in declared {tuple(modalities)}"
    x = item[key]
    if not (hasattr(x, "is_floating_point") and x.is_floating_point()):
        return f"item[{key!r}] must be a float tensor, got {getattr(x, 'dtype', type(x).__name__)}"
    shape = tuple(x.shape)
    if len(shape) < 2:
        return (f"item[{key!r}] has shape {shape}: items are [C, *spatial] (a signal [C, T], an "
                "image [C, H, W] or [C, D, H, W]); add the channel axis (x[None])")
    if dims and len(shape) - 1 not in dims:
        return f"item[{key!r}] has shape {shape}: {len(shape) - 1} spatial dims, declared {list(dims)}"
    if shape[0] < 1:
        return f"item[{key!r}] has no channels"
    if not isinstance(item.get(META), dict):
        return f"item[{META!r}] must be a dict"
    return None


def per_item_problem(what: str, values: Sequence[Any] | None, n_items: int) -> str | None:
    """``labels`` and ``groups`` hold one value per item (None: the dataset has none)."""
    if values is not None and len(values) != n_items:
        return f"{len(values)} {what} for {n_items} items"
    return None


def labels_problem(labels: Sequence[Any] | None, n_items: int) -> str | None:
    """``labels`` holds one integer per item (or is None: unlabeled)."""
    if labels is None:
        return None
    try:
        integers = all(int(v) == v for v in labels)
    except (TypeError, ValueError):
        integers = False
    if not integers:
        return "labels must be integers"
    return per_item_problem("labels", labels, n_items)


def dataset_problem(ds: Any) -> tuple[str, str] | None:
    """A loader's dataset keeps the dataset contract (:class:`~ssl_domains.contracts.ItemDataset`):
    ``len`` and indexing, and each optional capability it has in its documented form.

    Returns:
        ``(conformance property, problem)`` of the first broken promise (``"builds"``,
        ``"labels"`` or ``"groups"``), or None.
    """
    if not (hasattr(ds, "__len__") and hasattr(ds, "__getitem__")):
        return "builds", f"a loader must return a Dataset (len and indexing), got {type(ds).__name__}"
    n = len(ds)
    problem = labels_problem(getattr(ds, "labels", None), n)
    if problem is not None:
        return "labels", problem
    problem = per_item_problem("groups", getattr(ds, "groups", None), n)
    if problem is not None:
        return "groups", problem
    skipped = getattr(ds, "skipped", None) or []
    if not isinstance(skipped, list | tuple) or not all(isinstance(s, list | tuple) and len(s) == 2 for s in skipped):
        return "builds", "skipped must be a list of (path, reason)"
    for name in ("augment_item", "set_epoch", "whole_cases", "write_prediction"):
        if getattr(ds, name, None) is not None and not callable(getattr(ds, name)):
            return "builds", f"{name} must be a method: {DATASET_CAPABILITIES[name]}"
    return None


def features_problem(features: Any, batch: int, num_features: int) -> str | None:
    """``forward_features`` gives finite ``[B, num_features]``."""
    shape = tuple(features.shape)
    if shape != (batch, num_features):
        return (f"forward_features gave {shape}, not [B, num_features] = {(batch, num_features)}; "
                "pool over the spatial axes or fix num_features")
    if not bool(features.isfinite().all()):
        return "non-finite features"
    return None
