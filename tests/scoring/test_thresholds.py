"""Threshold rules on a small case worked out by hand."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ssl_domains.scoring.metrics import classification_metrics
from ssl_domains.scoring.thresholds import FALLBACK_THRESHOLD, choose_threshold

Y = [0, 0, 1, 1]
S = [0.1, 0.4, 0.35, 0.8]


@pytest.mark.parametrize(("rule", "expected"), [
    ("youden", 0.8),  # J = 0.5 at 0.8 and 0.35; the first (stricter) one wins
    ("f1", 0.35),  # F1: 0.8 -> 2/3, 0.4 -> 1/2, 0.35 -> 4/5, 0.1 -> 2/3
    ("spec90", 0.8),
    ("sensitivity_at_specificity:0.9", 0.8),
    ("sensitivity_at_specificity:0.5", 0.35),  # full sensitivity at specificity 1/2
    ("fixed:0.3", 0.3),
    ("  YOUDEN ", 0.8),
])
def test_rules_by_hand(rule: str, expected: float) -> None:
    assert choose_threshold(Y, S, rule) == pytest.approx(expected)


def test_spec_rule_meets_specificity_with_best_sensitivity() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.4).astype(int)
    s = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(size=300))))
    thr = choose_threshold(y, s, "sensitivity_at_specificity:0.8")
    m = classification_metrics(y, s, threshold=thr, specificity=0.8)
    assert m["specificity"] >= 0.8
    assert m["sensitivity"] == pytest.approx(m["sensitivity_at_specificity"])


def test_youden_maximises_j() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(200) < 0.5).astype(int)
    s = rng.random(200) + 0.3 * y
    m = classification_metrics(y, s, threshold=choose_threshold(y, s))
    best = max((s[y == 1] >= t).mean() + (s[y == 0] < t).mean() for t in s)
    assert m["sensitivity"] + m["specificity"] == pytest.approx(best)


def test_strict_specificity_can_call_nothing_positive() -> None:
    thr = choose_threshold([0, 1, 0], [0.9, 0.5, 0.1], "sensitivity_at_specificity:1.0")
    assert thr > 0.9 and np.isfinite(thr)


def test_one_class_falls_back_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert choose_threshold([1, 1, 1], [0.2, 0.5, 0.9]) == FALLBACK_THRESHOLD
    assert "one class only" in caplog.text


@pytest.mark.parametrize(("rule", "message"), [
    ("best", "unknown threshold rule 'best'; allowed: youden, f1, spec90, "
             "sensitivity_at_specificity:<x>, fixed:<x>"),
    ("fixed:abc", "'abc' is not a number"),
    ("sensitivity_at_specificity:1.5", "specificity must be in \\[0, 1\\]"),
])
def test_bad_rules(rule: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        choose_threshold(Y, S, rule)


def test_multiclass_scores_refused() -> None:
    with pytest.raises(ValueError, match="needs binary scores, got 3 classes"):
        choose_threshold([0, 1, 2], np.eye(3))
