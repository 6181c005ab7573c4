from __future__ import annotations

import pytest
import torch
from ssl_domains_medical.backbones import ResNetEncoder
from ssl_domains_medical.tasks.tumor_detection import (
    TumorClassification,
    TumorPatchDetection,
    aggregate_cases,
)


def tiny(dims: int = 2) -> ResNetEncoder:
    return ResNetEncoder(spatial_dims=dims, depth=10, width=4)


def test_positive_label_becomes_class_one() -> None:
    task = TumorClassification(tiny(), positive_label=0)
    assert task.map_labels(torch.tensor([0, 1, 1, 0])).tolist() == [1, 0, 0, 1]
    task.observe_labels([0, 1, 1, 1])  # one malignant (class 1) among four
    assert task.class_weights.tolist() == pytest.approx([4 / 6, 2.0])
    out = task({"image": torch.randn(4, 1, 12, 12), "label": torch.tensor([0, 1, 1, 1])})
    assert out["logits"].shape == (4, 2) and torch.isfinite(out["loss"])


def test_labels_unchanged_without_positive_label() -> None:
    task = TumorClassification(tiny(3), num_classes=3)
    assert task.map_labels(torch.tensor([2, 0])).tolist() == [2, 0]
    with pytest.raises(ValueError, match="positive_label needs num_classes=2, got 3"):
        TumorClassification(tiny(), num_classes=3, positive_label=1)


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
