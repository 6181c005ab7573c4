"""Anomaly classification of signal windows or whole series (binary or multi-class)."""

from __future__ import annotations

from typing import Any

from torch import nn

from ssl_domains.builtin.classification import ClassificationTask
from ssl_domains.contracts import Example
from ssl_domains.errors import ConfigError, IncompatibleError
from ssl_domains.registry import component
from ssl_domains_timeseries.backbones._masking import signal_from_batch


@component(
    "anomaly_classification",
    description="Classify signal windows/series as normal vs anomalous (or K classes); class-balanced, Youden threshold",
    modalities=("signal",),
    dims=(1,),
    examples=[Example({"num_classes": 2}), Example({"num_classes": 3, "hidden": 16,
                                                    "dropout": 0.1})],
    # auto's order of preference (finetune.prefer's default): the candidates by average
    # shortfall from the best arm over the benchmark suite's seven signal datasets, MiniRocket
    # first and the other baselines last (benchmarks/HISTORY.md, "auto: two standard errors,
    # one baseline named"); without aeon there is no MiniRocket and the ensemble comes first
    prefer=("baseline:minirocket", "ensemble", "ssl", "scratch", "linear_probe", "baseline"),
)
class AnomalyClassificationTask(ClassificationTask):
    """A head on the backbone's pooled features; class 1 (or any class > 0) is "anomalous".

    Missing values travel as NaN or through the batch's ``"mask"`` (True = observed) and are
    handed to the backbone as NaN, which the signal backbones zero-fill and flag. With
    ``class_balance`` the engine's call to :meth:`observe_labels` weights the loss by inverse
    class frequency (anomalies are usually rare). For binary tasks the decision threshold is
    chosen on validation data by the run's ``finetune.threshold_rule`` (default Youden's J).

    With few labels (tens), a linear probe (``finetune.mode: linear``: the engine trains the
    head alone, the backbone frozen and in eval mode) is often as good as full fine-tuning and
    cannot destroy pre-trained features.

    Args:
        backbone: A signal backbone (``input_spec.modality == "signal"``).
        num_classes: 2 for normal/anomalous, more for anomaly types.
        hidden: Width of an optional hidden layer in the head (0 = linear head).
        dropout: Dropout before the head.
        class_balance: Weight the loss by inverse class frequency.
        label_smoothing: Cross-entropy label smoothing.
        freeze_backbone: Removed: passing it is an error that points to
            ``finetune.mode: linear``, the one linear probe.

    Raises:
        ConfigError: ``freeze_backbone`` given.
        IncompatibleError: The backbone does not take signals.
        ValueError: ``num_classes < 2``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int = 2,
        hidden: int = 0,
        dropout: float = 0.0,
        class_balance: bool = True,
        label_smoothing: float = 0.0,
        *,
        freeze_backbone: bool | None = None,
    ) -> None:
        if freeze_backbone is not None:
            raise ConfigError(
                "finetune task 'anomaly_classification': freeze_backbone was removed; set "
                "`finetune.mode: linear` to train the head alone (a linear probe)"
            )
        spec = backbone.input_spec
        if spec.modality != "signal":
            raise IncompatibleError(
                f"anomaly_classification needs a signal backbone; {type(backbone).__name__} "
                f"takes {spec.modality}"
            )
        super().__init__(backbone, num_classes, hidden, dropout, class_balance, label_smoothing)

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        x = signal_from_batch(batch, self.key)
        return super().forward({**batch, self.key: x})
