"""Tumor detection fine-tuning: image/case-level classification and patch-level detection.

``tumor_classification`` scores a whole image or volume (e.g. malignant vs benign);
``tumor_patch_detection`` scores patches (trained on :class:`TumorPatches`) and turns a
volume into a tumor-probability map with a sliding window, plus one score per case.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ssl_domains.builtin.classification import ClassificationTask
from ssl_domains.contracts import Example
from ssl_domains.errors import ConfigError
from ssl_domains.registry import component
from ssl_domains_medical.augment import augmentation_from
from ssl_domains_medical.tasks.patches import TumorPatches
from ssl_domains_medical.tasks.probability_map import (
    case_score,
    probability_map,
    save_probability_map,
)

__all__ = ["TumorClassification", "TumorPatchDetection", "TumorPatches", "aggregate_cases"]

#: ``auto``'s default order of preference for the medical tasks (``prefer`` of their
#: ``@component``; a config's ``finetune.prefer`` overrides it): the candidates by average
#: shortfall from the best arm over the benchmark suite's image and volume datasets; each of
#: them, held out of that ranking, gets the same first two (benchmarks/HISTORY.md, "auto: two
#: standard errors, one baseline named").
MEDICAL_PREFERENCE = ("ssl", "ensemble", "linear_probe", "scratch", "baseline")


def aggregate_cases(
    probs: Sequence[float] | np.ndarray, groups: Sequence[str], method: str = "max"
) -> dict[str, float]:
    """Case-level scores from image-level probabilities (several images per case).

    Args:
        probs: Positive-class probability per image.
        groups: Case id per image.
        method: ``"max"`` or ``"mean"``.

    Raises:
        ValueError: Lengths differ or unknown method.
    """
    p = np.asarray(probs, dtype=float).reshape(-1)
    if len(p) != len(groups):
        raise ValueError(f"{len(p)} probabilities for {len(groups)} case ids")
    if method not in ("max", "mean"):
        raise ValueError(f"case aggregation must be 'max' or 'mean', got {method!r}")
    reduce = np.max if method == "max" else np.mean
    out: dict[str, list[float]] = {}
    for g, v in zip(groups, p):
        out.setdefault(str(g), []).append(float(v))
    return {g: float(reduce(v)) for g, v in out.items()}


@component(
    "tumor_classification",
    description="Image/case-level tumor classification (e.g. malignant vs benign), class-balanced",
    modalities=("image",),
    dims=(2, 3),
    examples=[Example({"num_classes": 2}), Example({"num_classes": 2, "dropout": 0.1}),
              Example({"num_classes": 2, "augment": {"scale": [0.9, 1.0], "rotate": 10},
                       "tta_flip": True})],
    prefer=MEDICAL_PREFERENCE,
)
class TumorClassification(ClassificationTask):
    """Classify a whole image or volume from the backbone's pooled features.

    Class 1 is "tumor" (the positive class of AUROC etc.). Labels are used as the data gives
    them: datasets that code the disease as another label are remapped by their loader (the
    ``medmnist`` loader's ``positive_label``; BreastMNIST: 0 = malignant), so training,
    metrics, thresholds and baselines all see the same labels. Several images per case are
    combined with :func:`aggregate_cases`.

    ``augment`` warps and re-weights training batches on their device (only in training mode;
    see :class:`~ssl_domains_medical.augment.Augmentation`); ``tta_flip`` averages the logits
    of the image and its left-right mirror at evaluation and prediction.

    Args:
        backbone: Any 2-D/3-D image backbone.
        num_classes: Number of classes (2 = tumor vs no tumor).
        hidden: Width of an optional hidden layer in the head.
        dropout: Dropout before the head.
        class_balance: Inverse-frequency class weights from :meth:`observe_labels`.
        label_smoothing: Cross-entropy label smoothing.
        augment: Train-time batch augmentation, keyword arguments of
            :class:`~ssl_domains_medical.augment.Augmentation` (``scale``, ``rotate``,
            ``translate``, ``flip_axes``, ``brightness``, ``contrast``, ``noise``), or None.
        tta_flip: At evaluation, average the logits of the input and its mirror (last axis).
        positive_label: Removed: passing it is an error that points to the loader's
            ``positive_label`` (the one label remapping).

    Raises:
        ConfigError: ``positive_label`` given.
        ValueError: Bad ``augment`` values.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int = 2,
        hidden: int = 0,
        dropout: float = 0.0,
        class_balance: bool = True,
        label_smoothing: float = 0.0,
        augment: dict[str, Any] | None = None,
        tta_flip: bool = False,
        *,
        positive_label: int | None = None,
    ) -> None:
        if positive_label is not None:
            raise ConfigError(
                "finetune task 'tumor_classification': positive_label was removed; remap labels in "
                "the data (the medmnist loader's positive_label, or label 1 = tumor in your label "
                "file) so training and metrics see the same labels"
            )
        super().__init__(backbone, num_classes=num_classes, hidden=hidden, dropout=dropout,
                         class_balance=class_balance, label_smoothing=label_smoothing)
        self.augment = augmentation_from(augment)
        self.tta_flip = tta_flip

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        if self.training and self.augment is not None:
            with torch.no_grad():
                batch = {**batch, self.key: self.augment(batch[self.key])}
        return super().forward(batch)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits; with ``tta_flip`` at evaluation, the mean over the input and its mirror."""
        logits = super().logits(x)
        if self.training or not self.tta_flip:
            return logits
        return (logits + super().logits(x.flip(-1))) / 2


@component(
    "tumor_patch_detection",
    description="Patch tumor classifier + sliding-window probability map (NIfTI) + case score",
    modalities=("image",),
    dims=(2, 3),
    examples=[Example({"num_classes": 2}), Example({"num_classes": 2, "score": "max"})],
    prefer=MEDICAL_PREFERENCE,
)
class TumorPatchDetection(ClassificationTask):
    """Score patches for tumor; map whole volumes with a sliding window.

    Train it on :class:`TumorPatches` (loader ``tumor_patches``). At inference,
    :meth:`probability_map` slides a ``roi_size`` window (the training patch size) over a
    volume, :meth:`case_score` reduces the map to one score and
    :meth:`save_probability_map` writes it as NIfTI on the input's grid.

    Args:
        backbone: Any 2-D/3-D image backbone.
        num_classes: 2 (tumor vs background).
        hidden: Width of an optional hidden layer in the head.
        dropout: Dropout before the head.
        class_balance: Inverse-frequency class weights from :meth:`observe_labels`.
        score: Case score from the map: ``"topk_mean"`` or ``"max"``.
        top_fraction: Voxel fraction averaged by ``"topk_mean"``.

    Raises:
        ValueError: ``num_classes`` is not 2, or unknown ``score``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int = 2,
        hidden: int = 0,
        dropout: float = 0.0,
        class_balance: bool = True,
        score: str = "topk_mean",
        top_fraction: float = 0.01,
    ) -> None:
        if num_classes != 2:
            raise ValueError(f"tumor_patch_detection is binary (tumor vs background); "
                             f"num_classes must be 2, got {num_classes}")
        if score not in ("topk_mean", "max"):
            raise ValueError(f"score must be 'topk_mean' or 'max', got {score!r}")
        super().__init__(backbone, num_classes=2, hidden=hidden, dropout=dropout,
                         class_balance=class_balance)
        self.score = score
        self.top_fraction = top_fraction

    def patch_probabilities(self, patches: torch.Tensor) -> torch.Tensor:
        """Tumor probability ``[B]`` of patches ``[B, C, *roi]``."""
        return self.forward({self.key: patches})["logits"].float().softmax(-1)[:, 1]

    def probability_map(
        self,
        volume: torch.Tensor,
        roi_size: Sequence[int] | int | None = None,
        overlap: float = 0.5,
        sw_batch_size: int = 16,
    ) -> torch.Tensor:
        """Tumor-probability map ``[*spatial]`` of one volume ``[C, *spatial]``.

        ``roi_size`` defaults to the backbone's fixed input size (ViT) and must otherwise be
        the training patch size. Runs in eval mode and restores the previous mode.

        Raises:
            ValueError: No ``roi_size`` for a backbone without a fixed input size.
        """
        if roi_size is None:
            roi_size = getattr(self.backbone, "img_size", None)
            if roi_size is None:
                raise ValueError("probability_map needs roi_size (the training patch size)")
        was_training = self.training
        self.eval()
        try:
            device = next(self.parameters()).device
            return probability_map(lambda p: self.patch_probabilities(p.to(device)).cpu(),
                                   volume.cpu(), roi_size, overlap, sw_batch_size)
        finally:
            self.train(was_training)

    def case_score(self, prob_map: torch.Tensor) -> float:
        """One tumor score for the case (see :func:`case_score`)."""
        return case_score(prob_map, self.score, self.top_fraction)

    @staticmethod
    def save_probability_map(prob_map: torch.Tensor, affine: Any, path: str | Path) -> Path:
        """Write the map as NIfTI with the input's affine (see :func:`save_probability_map`)."""
        return save_probability_map(prob_map, affine, path)
