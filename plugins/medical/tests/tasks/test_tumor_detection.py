from __future__ import annotations

import pytest
import torch
from ssl_domains_medical.backbones import ResNetEncoder
from ssl_domains_medical.tasks.tumor_detection import (
    TumorClassification,
    TumorPatchDetection,
    aggregate_cases,
)

from ssl_domains.errors import ConfigError
from ssl_domains.plugins import Host


def tiny(dims: int = 2) -> ResNetEncoder:
    return ResNetEncoder(spatial_dims=dims, depth=10, width=4)


def test_labels_are_used_as_the_data_gives_them() -> None:
    task = TumorClassification(tiny())
    task.observe_labels([1, 0, 0, 0])  # one tumor (class 1) among four
    assert task.class_weights.tolist() == pytest.approx([4 / 6, 2.0])
    labels = torch.tensor([1, 0, 0, 0])
    out = task({"image": torch.randn(4, 1, 12, 12), "label": labels})
    assert out["logits"].shape == (4, 2) and torch.isfinite(out["loss"])
    weighted = torch.nn.functional.cross_entropy(out["logits"], labels, weight=task.class_weights)
    assert out["loss"].item() == pytest.approx(weighted.item(), rel=1e-5)  # no remapping
    assert TumorClassification(tiny(3), num_classes=3)({"image": torch.randn(2, 1, 8, 8, 8),
                                                        "label": torch.tensor([2, 0])})["logits"].shape == (2, 3)


@pytest.mark.parametrize("value", [0, 1])
def test_positive_label_points_to_the_loader(ssl_host: Host, value: int) -> None:
    message = (r"^finetune task 'tumor_classification': positive_label was removed; remap labels in "
               r"the data \(the medmnist loader's positive_label, or label 1 = tumor in your label "
               r"file\) so training and metrics see the same labels$")
    with pytest.raises(ConfigError, match=message):
        TumorClassification(tiny(), positive_label=value)
    with pytest.raises(ConfigError, match=message):  # as a config's task args reach it
        ssl_host.registry.create("finetune", "tumor_classification", tiny(), num_classes=2,
                                 positive_label=value)


def test_aggregate_cases() -> None:
    scores = aggregate_cases([0.1, 0.9, 0.3, 0.5], ["a", "a", "b", "b"], "max")
    assert scores == {"a": 0.9, "b": 0.5}
    assert aggregate_cases([0.2, 0.4], ["c", "c"], "mean") == {"c": pytest.approx(0.3)}
    with pytest.raises(ValueError, match="2 probabilities for 1 case ids"):
        aggregate_cases([0.1, 0.2], ["a"])
    with pytest.raises(ValueError, match="must be 'max' or 'mean', got 'median'"):
        aggregate_cases([0.1], ["a"], "median")


def test_patch_detection_maps_a_volume() -> None:
    task = TumorPatchDetection(tiny(3))
    task.train()
    vol = torch.randn(1, 12, 10, 9)
    prob = task.probability_map(vol, roi_size=8, overlap=0.5, sw_batch_size=4)
    assert prob.shape == (12, 10, 9)
    assert float(prob.min()) >= 0 and float(prob.max()) <= 1
    assert task.training  # mode restored
    assert 0 <= task.case_score(prob) <= 1


def test_patch_detection_arguments() -> None:
    with pytest.raises(ValueError, match="binary .* num_classes must be 2, got 3"):
        TumorPatchDetection(tiny(), num_classes=3)
    with pytest.raises(ValueError, match="score must be 'topk_mean' or 'max', got 'mean'"):
        TumorPatchDetection(tiny(), score="mean")
    with pytest.raises(ValueError, match="needs roi_size"):
        TumorPatchDetection(tiny()).probability_map(torch.randn(1, 8, 8))


def test_augment_applies_in_training_only_and_tta_flip_is_mirror_invariant() -> None:
    torch.manual_seed(0)
    task = TumorClassification(tiny(), augment={"scale": [0.7, 0.9], "rotate": 20},
                               tta_flip=True)
    x = torch.rand(4, 1, 12, 12)
    task.eval()
    a, b = task({"image": x})["logits"], task({"image": x})["logits"]
    assert torch.equal(a, b)  # evaluation is deterministic: no augmentation
    assert torch.allclose(a, task({"image": x.flip(-1)})["logits"], atol=1e-5)
    task.train()  # batch norm in training mode is deterministic: differences are augmentation
    assert not torch.allclose(task({"image": x})["logits"], task({"image": x})["logits"])
    task.augment = None
    assert torch.allclose(task({"image": x})["logits"], task({"image": x})["logits"])
    with pytest.raises(ValueError, match="unknown key"):
        TumorClassification(tiny(), augment={"shear": 0.1})


@pytest.mark.parametrize("name", ["tumor_classification", "tumor_patch_detection"])
def test_registers_auto_order_of_preference(ssl_host: Host, name: str) -> None:
    """``select: auto`` without ``finetune.prefer`` uses the order the task registers: the
    suite's image and volume ranking (the fine-tuned pre-trained network first)."""
    from ssl_domains.autoselect.choice import checked_preference

    entry = ssl_host.registry.get("finetune", name)
    order = checked_preference(entry.meta["prefer"], name)
    assert order == ("ssl", "ensemble", "linear_probe", "scratch", "baseline")
    assert entry.describe()["prefer"] == list(order)  # what `ssl-domains describe` shows
