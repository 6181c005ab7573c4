"""What registered components promise: the surfaces generic code relies on.

Every backbone is an ``nn.Module`` with ``num_features``, ``input_spec`` and
``forward_features(x) -> [B, num_features]`` (the timm surface, pooled); an image backbone
that can feed an encoder-decoder is also a :class:`PyramidBackbone`. Every pretext task
and fine-tuning task is an ``nn.Module`` that keeps its backbone as ``.backbone`` and whose
``forward(batch)`` returns a dict with a scalar ``"loss"``. Fine-tuning tasks also return
``"logits"`` (``[B, num_classes]``); the decision threshold is chosen by the run's
``finetune.threshold_rule`` (see ``ssl_domains.scoring.thresholds``), not by the task.

This module is the ground floor of the host (it imports nothing of the host). With
:mod:`ssl_domains.errors`, :mod:`ssl_domains.registry` (``component``, ``Registrar``),
:mod:`ssl_domains.identifiers` (``opaque_id``: the one keyed hash of identifiers),
:mod:`ssl_domains.data.skipping` and :mod:`ssl_domains.builtin.classification` it is what a
plugin's components may import (checked by the ``[tool.importlinter]`` contracts in
``pyproject.toml``).
"""

from __future__ import annotations

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
