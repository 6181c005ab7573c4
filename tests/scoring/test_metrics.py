"""Metrics against hand-computed small cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ssl_domains.scoring.metrics import classification_metrics, fast_binary_metrics

Y = [0, 0, 1, 1]
S = [0.1, 0.4, 0.35, 0.8]


def test_binary_ranking_metrics_by_hand() -> None:
    m = classification_metrics(Y, S)
    assert m["auroc"] == pytest.approx(0.75)  # 3 of 4 positive/negative pairs ordered
    assert m["auprc"] == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)
    # specificity >= 0.9 only at fpr = 0, where the best sensitivity is 1/2
    assert m["sensitivity_at_specificity"] == pytest.approx(0.5)
    assert m["sens_at_spec90"] == m["sensitivity_at_specificity"]
    assert "accuracy" not in m  # threshold metrics only with a threshold


def test_binary_threshold_metrics_by_hand() -> None:
    m = classification_metrics(Y, S, threshold=0.5)  # predicts [0, 0, 0, 1]
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["sensitivity"] == pytest.approx(0.5)
    assert m["specificity"] == pytest.approx(1.0)
    assert m["precision"] == pytest.approx(1.0)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["balanced_accuracy"] == pytest.approx(0.75)
    # score == threshold counts as positive
    assert classification_metrics(Y, S, threshold=0.35)["sensitivity"] == pytest.approx(1.0)


def test_other_specificity_gets_its_own_key() -> None:
    m = classification_metrics(Y, S, specificity=0.5)
    assert m["sens_at_spec50"] == pytest.approx(1.0)
    assert "sens_at_spec90" not in m


def test_two_column_scores_are_binary() -> None:
    s = np.asarray(S)
    two = np.stack([1 - s, s], axis=1)
    assert classification_metrics(Y, two, 0.5) == classification_metrics(Y, s, 0.5)


def test_one_class_gives_nan_not_exception() -> None:
    m = classification_metrics([0, 0, 0], [0.2, 0.7, 0.4], threshold=0.5)
    assert math.isnan(m["auroc"]) and math.isnan(m["auprc"])
    assert math.isnan(m["sensitivity"]) and math.isnan(m["sensitivity_at_specificity"])
    assert m["specificity"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(2 / 3)
    positives = classification_metrics([1, 1], [0.2, 0.7], threshold=0.5)
    assert math.isnan(positives["auroc"]) and math.isnan(positives["specificity"])
    assert positives["auprc"] == pytest.approx(1.0)


def test_multiclass_by_hand_and_against_sklearn() -> None:
    y = np.array([0, 1, 2, 0, 1, 2])
    s = np.array([[.7, .2, .1], [.1, .8, .1], [.2, .2, .6],
                  [.3, .4, .3], [.2, .5, .3], [.5, .1, .4]])
    m = classification_metrics(y, s)
    # argmax = [0, 1, 2, 1, 1, 0]: 4 of 6 right; per-class F1 = 1/2, 4/5, 2/3
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["f1"] == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    assert m["balanced_accuracy"] == pytest.approx(4 / 6)
    assert m["auroc"] == pytest.approx(roc_auc_score(y, s, multi_class="ovr", average="macro"))


def test_multiclass_absent_class_is_skipped_in_auroc() -> None:
    y = np.array([0, 0, 1, 1])
    s = np.array([[.8, .1, .1], [.6, .3, .1], [.2, .7, .1], [.3, .6, .1]])
    m = classification_metrics(y, s)
    assert m["auroc"] == pytest.approx(1.0)
    assert m["accuracy"] == pytest.approx(1.0)


@pytest.mark.parametrize(("y", "s", "message"), [
    ([0, 1], [0.5], "2 labels but 1 scores"),
    ([], [], "no items to score"),
    ([0, 1], [0.5, float("nan")], "NaN"),
    ([0, 2], [0.5, 0.1], "binary scores need labels 0/1"),
    ([0, 3], [[.5, .3, .2], [.1, .1, .8]], "labels must lie in 0..2"),
    ([0, 1], np.zeros((2, 2, 2)), "scores must be [N] or [N, K]"),
])
def test_bad_inputs_name_the_problem(y: list, s: list, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")
                       .replace(".", r"\.")):
        classification_metrics(y, s)


@pytest.mark.parametrize("seed", range(6))
def test_fast_binary_metrics_equal_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    y = (rng.random(n) < rng.uniform(0.05, 0.6)).astype(int)
    if seed == 4:
        y[:] = 0  # degenerate: one class
    s = np.round(rng.random(n) + 0.5 * y, 1 if seed % 2 else 6)  # with and without ties
    thr = float(rng.uniform(0.2, 1.2))
    for spec in (0.9, 0.75):
        ref = classification_metrics(y, s, threshold=thr, specificity=spec)
        fast = fast_binary_metrics(y, s.astype(float), threshold=thr, specificity=spec)
        assert fast.keys() == ref.keys()
        for key, value in ref.items():
            assert fast[key] == pytest.approx(value, nan_ok=True, abs=1e-12), key
