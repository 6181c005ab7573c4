from __future__ import annotations

import pytest
import torch
from ssl_domains_timeseries.backbones.tcn import TCN
from ssl_domains_timeseries.tasks.anomaly_classification import AnomalyClassificationTask

from ssl_domains.builtin.mlp import MLPBackbone
from ssl_domains.contracts import FinetuneTask
from ssl_domains.errors import ConfigError, IncompatibleError
from ssl_domains.plugins import Host


def small_tcn() -> TCN:
    return TCN(in_channels=2, width=8, depth=1, kernel_size=3)


def test_binary_logits_loss_and_contract() -> None:
    task = AnomalyClassificationTask(small_tcn(), num_classes=2)
    assert isinstance(task, FinetuneTask)
    x = torch.randn(4, 2, 24)
    mask = torch.rand(4, 2, 24) > 0.3
    x[0, 0, 0] = float("nan")
    out = task({"signal": x, "mask": mask, "label": torch.tensor([0, 1, 0, 0])})
    assert out["logits"].shape == (4, 2) and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in task.parameters() if p.grad is not None)
    assert "loss" not in task({"signal": x})


def test_mask_hides_values() -> None:
    task = AnomalyClassificationTask(small_tcn()).eval()
    x = torch.randn(1, 2, 24)
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[..., 12:] = False
    y = x.clone()
    y[..., 12:] = 1e3  # values behind the mask must not matter
    a = task({"signal": x, "mask": mask})["logits"]
    b = task({"signal": y, "mask": mask})["logits"]
    assert torch.allclose(a, b)


def test_multiclass_and_class_balance() -> None:
    task = AnomalyClassificationTask(small_tcn(), num_classes=3, hidden=8)
    task.observe_labels([0] * 6 + [1] * 3 + [2])
    w = task.class_weights
    assert w[2] > w[1] > w[0]
    out = task({"signal": torch.randn(3, 2, 16), "label": torch.tensor([0, 1, 2])})
    assert out["logits"].shape == (3, 3)


@pytest.mark.parametrize("value", [True, False])
def test_freeze_backbone_points_to_the_one_linear_probe(ssl_host: Host, value: bool) -> None:
    # the engine's ``finetune.mode: linear`` is the linear probe (tests/engine/test_finetune.py)
    message = r"^finetune task 'anomaly_classification': freeze_backbone was removed; set " \
              r"`finetune.mode: linear` to train the head alone \(a linear probe\)$"
    with pytest.raises(ConfigError, match=message):
        AnomalyClassificationTask(small_tcn(), freeze_backbone=value)
    with pytest.raises(ConfigError, match=message):  # as a config's task args reach it
        ssl_host.registry.create("finetune", "anomaly_classification", small_tcn(),
                                 num_classes=2, freeze_backbone=value)
    task = AnomalyClassificationTask(small_tcn())
    task.train()
    assert task.backbone.training and all(p.requires_grad for p in task.backbone.parameters())


def test_errors() -> None:
    with pytest.raises(IncompatibleError, match="needs a signal backbone"):
        AnomalyClassificationTask(MLPBackbone([1, 4, 4], modality="image"))
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        AnomalyClassificationTask(small_tcn(), num_classes=1)


def test_registers_auto_order_of_preference(ssl_host: Host) -> None:
    """``select: auto`` without ``finetune.prefer`` uses the order the task registers: the
    suite's signal ranking (MiniRocket, then the ensemble, before fine-tuning; the other
    baselines last)."""
    from ssl_domains.autoselect.choice import checked_preference

    entry = ssl_host.registry.get("finetune", "anomaly_classification")
    order = checked_preference(entry.meta["prefer"], "anomaly_classification")
    assert order == ("baseline:minirocket", "ensemble", "ssl", "scratch", "linear_probe",
                     "baseline")
    assert entry.describe()["prefer"] == list(order)  # what `ssl-domains describe` shows
