"""What registered components promise: the surfaces generic code relies on.

Every backbone is an ``nn.Module`` with ``num_features``, ``input_spec`` and
``forward_features(x) -> [B, num_features]`` (the timm surface, pooled); an image backbone
that can feed an encoder-decoder is also a :class:`PyramidBackbone`. Every pretext task
and fine-tuning task is an ``nn.Module`` that keeps its backbone as ``.backbone`` and whose
``forward(batch)`` returns a dict with a scalar ``"loss"``. Fine-tuning tasks also return
``"logits"`` (``[B, num_classes]``); the decision threshold is chosen by the run's
``finetune.threshold_rule`` (see ``ssl_domains.scoring.thresholds``), not by the task.
Every loader returns an :class:`ItemDataset`; its optional capabilities
(:data:`DATASET_CAPABILITIES`) are read through the accessors here and kept by
:class:`DatasetView`, the one view of some items of a dataset.

This module is the ground floor of the host (it imports nothing of the host). With
:mod:`ssl_domains.errors`, :mod:`ssl_domains.registry` (``component``, ``Registrar``),
:mod:`ssl_domains.identifiers` (``opaque_id``: the one keyed hash of identifiers),
:mod:`ssl_domains.data.skipping` and :mod:`ssl_domains.builtin.classification` it is what a
plugin's components may import (checked by the ``[tool.importlinter]`` contracts in
``pyproject.toml``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # annotations only: importing the contracts (and the registry) loads no torch
    import torch
    from torch import nn

__all__ = [
    "MODALITIES",
    "IMAGE",
    "SIGNAL",
    "LABEL",
    "MASK",
    "META",
    "ID",
    "LOSS",
    "LOGITS",
    "InputSpec",
    "Example",
    "Backbone",
    "PyramidBackbone",
    "PretextTask",
    "FinetuneTask",
    "Baseline",
    "Conversion",
    "missing_members",
    "ItemDataset",
    "DATASET_CAPABILITIES",
    "labels_of",
    "groups_of",
    "stats_of",
    "skipped_of",
    "augment",
    "start_epoch",
    "DatasetView",
]

# -- batch keys: what a loader's items hold and what a task returns, for host and plugins ----
#: Input of an image backbone, ``[C, *spatial]`` per item.
IMAGE = "image"
#: Input of a signal backbone, ``[C, length]`` per item.
SIGNAL = "signal"
#: Integer class of a labeled item (absent on unlabeled items).
LABEL = "label"
#: Segmentation mask of an item (non-zero = foreground), where the loader has one.
MASK = "mask"
#: Per-item dict of metadata; collated into a list, never stacked.
META = "meta"
#: Key in ``META`` of the item's opaque id (:func:`ssl_domains.identifiers.opaque_id`).
ID = "id"
#: Scalar loss in what a task's ``forward(batch)`` returns.
LOSS = "loss"
#: ``[B, num_classes]`` scores in what a fine-tuning task's ``forward(batch)`` returns.
LOGITS = "logits"

#: The batch key that carries the input, per modality.
MODALITIES = (IMAGE, SIGNAL)


@dataclass(frozen=True)
class InputSpec:
    """What a backbone eats: matches data, backbone and task.

    Attributes:
        modality: ``"image"`` or ``"signal"``; it is also the batch key of the input.
        dims: Spatial dimensions: 2 or 3 for images, 1 for signals.
        channels: Input channels.
    """

    modality: str
    dims: int
    channels: int

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r}")
        if self.dims not in (1, 2, 3):
            raise ValueError(f"dims must be 1, 2 or 3, got {self.dims}")
        if self.channels < 1:
            raise ValueError(f"channels must be >= 1, got {self.channels}")


@dataclass(frozen=True)
class Example:
    """A small, fast configuration of a component, used by the conformance kit and docs.

    Attributes:
        args: Keyword arguments for the factory.
        input_shape: Shape of one input item without the batch dimension (backbones only),
            e.g. ``(1, 32, 32, 32)`` for a 1-channel 3-D volume.
    """

    args: dict[str, Any] = field(default_factory=dict)
    input_shape: tuple[int, ...] | None = None


@runtime_checkable
class Backbone(Protocol):
    """The feature extractor that pre-training trains and fine-tuning reuses."""

    num_features: int
    input_spec: InputSpec

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``[B, num_features]`` of an input ``[B, C, *spatial]``."""
        ...

    def parameters(self, recurse: bool = True) -> Any: ...

    def state_dict(self, *args: Any, **kwargs: Any) -> Any: ...


@runtime_checkable
class PyramidBackbone(Protocol):
    """An image backbone that also gives its multi-scale feature maps (encoder-decoder pretext
    tasks build their decoder from them)."""

    #: Channels of each map, finest first.
    pyramid_channels: list[int]
    #: Downsampling factor of each map relative to the input, finest first.
    pyramid_strides: list[int]

    def forward_pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps ``[B, pyramid_channels[i], *spatial / pyramid_strides[i]]``, finest first."""
        ...


def missing_members(obj: object, protocol: type) -> list[str]:
    """Public members of the runtime-checkable ``protocol`` that ``obj`` lacks, methods first
    (empty when ``isinstance(obj, protocol)``), for errors that name what is missing."""
    if isinstance(obj, protocol):
        return []
    names = dict.fromkeys([*vars(protocol), *getattr(protocol, "__annotations__", {})])
    return [n for n in names if not n.startswith("_") and not hasattr(obj, n)]


@dataclass
class Conversion:
    """Foreign weights mapped onto a backbone's parameter names by a plugin (what the
    ``convert_checkpoint`` hook returns).

    Attributes:
        state_dict: Tensors keyed by the *backbone's* parameter names.
        source: The format the plugin recognised (e.g. ``"models_genesis"``).
        notes: Anything the user should know (renamed blocks, dropped heads).
    """

    state_dict: dict[str, torch.Tensor]
    source: str
    notes: list[str] = field(default_factory=list)


@runtime_checkable
class PretextTask(Protocol):
    """A self-supervised objective around a backbone.

    ``forward(batch)`` returns at least ``{"loss": scalar}``; it may add tensors such as
    ``"input"``, ``"corrupted"``, ``"reconstruction"`` that ``figures`` turns into pictures.
    """

    backbone: nn.Module

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]: ...


@runtime_checkable
class FinetuneTask(Protocol):
    """A downstream task: head + loss around a backbone.

    ``forward(batch)`` returns ``{"loss": scalar, "logits": [B, num_classes]}`` (the loss
    only when ``batch`` has ``"label"``). The operating threshold is picked on validation
    data by the run's ``finetune.threshold_rule`` (see ``ssl_domains.scoring.thresholds``).
    """

    backbone: nn.Module
    num_classes: int

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]: ...


@runtime_checkable
class Baseline(Protocol):
    """A classical (non-deep) baseline for label-efficiency comparisons.

    It sees inputs as a NumPy array ``[N, C, *spatial]`` (NaN = missing) and integer labels.
    """

    def fit(self, x: Any, y: Any) -> Baseline: ...

    def predict_proba(self, x: Any) -> Any: ...


# -- the dataset contract ---------------------------------------------------------------------


@runtime_checkable
class ItemDataset(Protocol):
    """What a loader returns: a map-style dataset of item dicts.

    Required: ``len(ds)`` and ``ds[i]``, an item dict with exactly one input key of
    :data:`MODALITIES` (a float tensor ``[C, *spatial]``), ``"meta"`` (a dict) and, on labeled
    data, ``"label"``. Everything else is optional (:data:`DATASET_CAPABILITIES`); generic code
    reads an optional capability only through the accessors below, and views of a dataset
    (:class:`DatasetView`) keep them.
    """

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> dict[str, Any]: ...


#: The optional capabilities of an :class:`ItemDataset`: attribute -> what it promises (the
#: conformance kit checks each one a loader's dataset has; a run checks them when it builds it).
DATASET_CAPABILITIES: dict[str, str] = {
    "labels": "one integer class per item (None: unlabeled); item i's 'label' equals labels[i]",
    "groups": "one group per item (a patient, a series, a recording): splits keep a group on one side",
    "stats": "normalisation statistics of the training data, passed to the validation, test and "
             "prediction loaders that take a 'stats' argument, and kept in the export",
    "skipped": "(path, reason) of every input the loader left out while building the dataset",
    "augment_item": "augment_item(item) -> item: train-time augmentation, applied to training views only",
    "set_epoch": "set_epoch(epoch): called before each training epoch (datasets that draw per epoch)",
    "whole_cases": "whole_cases() -> dataset of whole volumes, one per case (dense tasks)",
    "write_prediction": "write_prediction(index, prob, folder, name, threshold=...): a case's "
                        "probability map written next to its input's geometry (dense tasks)",
    "inputs_by_id": "{opaque id: input as given}: what `predict --mapping` joins ids back to",
}


def labels_of(ds: Any) -> list[int] | None:
    """The dataset's ``labels`` as ints, or None when it has none."""
    labels = getattr(ds, "labels", None)
    return None if labels is None else [int(v) for v in labels]


def groups_of(ds: Any) -> list[str] | None:
    """The dataset's ``groups`` as strings, or None when it has none."""
    groups = getattr(ds, "groups", None)
    return None if groups is None else [str(g) for g in groups]


def stats_of(ds: Any) -> Any:
    """The dataset's normalisation ``stats``, or None."""
    return getattr(ds, "stats", None)


def skipped_of(ds: Any) -> list[tuple[str, str]]:
    """The ``(path, reason)`` pairs the dataset's loader ``skipped`` (empty when none)."""
    return list(getattr(ds, "skipped", None) or [])


def augment(ds: Any, item: dict[str, Any]) -> dict[str, Any]:
    """``item`` through the dataset's ``augment_item``, or unchanged when it has none."""
    fn = getattr(ds, "augment_item", None)
    return fn(item) if fn is not None else item


def start_epoch(ds: Any, epoch: int) -> None:
    """Tell the dataset (its ``set_epoch``, when it has one) which training epoch begins."""
    fn = getattr(ds, "set_epoch", None)
    if fn is not None:
        fn(epoch)


class DatasetView:
    """Some items of a dataset, as a dataset that keeps the contract's optional capabilities:
    ``labels`` and ``groups`` follow the items, ``stats``, ``skipped``, ``augment_item`` and
    ``set_epoch`` are the dataset's. With ``train=True`` items pass through the dataset's
    ``augment_item`` (validation and test views of the same data stay untouched).

    :meth:`joined` puts the items of several datasets one after the other.

    Args:
        base: The dataset.
        indices: Its items in the view, in order.
        train: Augment the items.
    """

    def __init__(self, base: Any, indices: Iterable[int], train: bool = False) -> None:
        self.base = base
        self.indices = [int(i) for i in indices]
        self.train = train
        labels, groups = labels_of(base), groups_of(base)
        self.labels = None if labels is None else [labels[i] for i in self.indices]
        self.groups = None if groups is None else [groups[i] for i in self.indices]
        self.stats = stats_of(base)
        self.skipped = skipped_of(base)
        self._items: list[tuple[Any, int]] | None = None  # a joined view's (dataset, index)
        self._passes_epoch = True

    @classmethod
    def joined(cls, parts: Sequence[tuple[Any, Sequence[int]]], train: bool = False) -> DatasetView:
        """The items of several ``(dataset, indices)`` parts one after the other (the labeled
        set that cross-validation folds: a run's training and validation items).

        Its ``labels`` are the parts' (None when one has none); its ``groups`` are prefixed by
        part number, and an item without a group is a group of its own. ``stats`` and
        ``augment_item`` are the first part's; nothing is listed as skipped (each part's
        loader reported its own) and no epoch is passed on (a fold trains on the items as
        they were drawn).
        """
        view = object.__new__(cls)
        view.base = parts[0][0] if parts else None
        view._items = [(ds, int(i)) for ds, idx in parts for i in idx]
        view.indices = list(range(len(view._items)))
        view.train = train
        per_part = [labels_of(ds) for ds, _ in parts]
        view.labels = (None if any(lab is None for lab in per_part)
                       else [lab[int(i)] for lab, (_, idx) in zip(per_part, parts) for i in idx])  # type: ignore[index]
        view.groups = []
        for k, (ds, idx) in enumerate(parts):
            grp = groups_of(ds)
            view.groups += [f"{k}:{grp[int(i)]}" if grp is not None else f"{k}:item{int(i)}" for i in idx]
        view.stats = stats_of(view.base)
        view.skipped = []
        view._passes_epoch = False
        return view

    @property
    def is_joined(self) -> bool:
        """Whether the view puts several datasets together (:meth:`joined`)."""
        return self._items is not None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Any:
        if self._items is None:
            item = self.base[self.indices[i]]
        else:
            ds, j = self._items[i]
            item = ds[j]
        return self.augment_item(item) if self.train else item

    def set_epoch(self, epoch: int) -> None:
        if self._passes_epoch:
            start_epoch(self.base, epoch)

    def augment_item(self, item: dict[str, Any]) -> dict[str, Any]:
        return augment(self.base, item)
