"""Generic classification fine-tuning task: linear (or MLP) head on pooled backbone features."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ssl_domains.contracts import LABEL, LOGITS, LOSS, Example
from ssl_domains.registry import component


@component(
    "classification",
    description="Head on pooled features, class-balanced cross-entropy (binary or multi-class)",
    modalities=("image", "signal"),
    dims=(1, 2, 3),
    examples=[Example({"num_classes": 2}), Example({"num_classes": 3, "hidden": 16})],
)
class ClassificationTask(nn.Module):
    """Classify an item from ``backbone.forward_features``.

    Positive class for binary metrics is class 1. With ``class_balance=True`` the engine's
    call to :meth:`observe_labels` sets inverse-frequency class weights, so a rare positive
    class is not ignored.

    Args:
        backbone: A backbone (``num_features``, ``forward_features``, ``input_spec``).
        num_classes: Number of classes (2 for binary).
        hidden: Width of an optional hidden layer in the head (0 = linear head).
        dropout: Dropout before the head.
        class_balance: Weight the loss by inverse class frequency.
        label_smoothing: Cross-entropy label smoothing.
    """

    def __init__(
        self,
        backbone: Any,
        num_classes: int = 2,
        hidden: int = 0,
        dropout: float = 0.0,
        class_balance: bool = True,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.backbone = backbone
        self.num_classes = num_classes
        self.key = backbone.input_spec.modality
        self.class_balance = class_balance
        self.label_smoothing = label_smoothing
        width = int(backbone.num_features)
        layers: list[nn.Module] = [nn.Dropout(dropout)] if dropout else []
        if hidden:
            layers += [nn.Linear(width, hidden), nn.GELU()]
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.head = nn.Sequential(*layers)
        self.class_weights: torch.Tensor
        self.register_buffer("class_weights", torch.ones(num_classes))

    def observe_labels(self, labels: Sequence[int]) -> None:
        """Set inverse-frequency class weights from the training labels."""
        if not self.class_balance:
            return
        counts = torch.bincount(torch.as_tensor(list(labels), dtype=torch.long),
                                minlength=self.num_classes).float()
        weights = counts.sum() / (self.num_classes * counts.clamp(min=1))
        self.class_weights.copy_(weights)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``[B, K]`` of an input batch (subclasses add test-time variants here)."""
        return self.head(self.backbone.forward_features(x))

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        logits = self.logits(batch[self.key])
        out: dict[str, Any] = {LOGITS: logits}
        if LABEL in batch:
            target = batch[LABEL].long().view(-1)
            out[LOSS] = nn.functional.cross_entropy(
                logits.float(), target, weight=self.class_weights,
                label_smoothing=self.label_smoothing,
            )
        return out
