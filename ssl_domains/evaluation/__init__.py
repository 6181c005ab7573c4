"""Evaluation: metrics, validation-chosen thresholds, intervals, plots, reports, model cards."""

from __future__ import annotations

from ssl_domains.evaluation.intervals import (
    Interval,
    PairedDifference,
    bootstrap_ci,
    bootstrap_metrics,
    paired_difference_ci,
    summarize,
)
from ssl_domains.evaluation.metrics import classification_metrics
from ssl_domains.evaluation.model_card import model_card
from ssl_domains.evaluation.report import build_report, build_sweep_report
from ssl_domains.evaluation.thresholds import choose_threshold

__all__ = [
    "Interval",
    "PairedDifference",
    "bootstrap_ci",
    "bootstrap_metrics",
    "build_report",
    "build_sweep_report",
    "choose_threshold",
    "classification_metrics",
    "model_card",
    "paired_difference_ci",
    "summarize",
]
