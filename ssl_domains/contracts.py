"""What registered components promise: the surfaces generic code relies on.

Every backbone is an ``nn.Module`` with ``num_features``, ``input_spec`` and
``forward_features(x) -> [B, num_features]`` (the timm surface, pooled). Every pretext task
and fine-tuning task is an ``nn.Module`` that keeps its backbone as ``.backbone`` and whose
``forward(batch)`` returns a dict with a scalar ``"loss"``. Fine-tuning tasks also return
``"logits"`` (``[B, num_classes]``); the decision threshold is chosen by the run's
``finetune.threshold_rule`` (see ``ssl_domains.scoring.thresholds``), not by the task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

__all__ = [
    "MODALITIES",
    "InputSpec",
    "Example",
    "Backbone",
    "PretextTask",
    "FinetuneTask",
    "Baseline",
]

#: The batch key that carries the input, per modality.
MODALITIES = ("image", "signal")


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
