"""Scoring: metrics, validation-chosen thresholds, intervals and lesion-level segmentation scores.

Pure functions on arrays (no training, no plotting, no files, no pandas): the ground floor beside
:mod:`ssl_domains.errors`, used by the engine, the sweep and the report alike.
"""

from __future__ import annotations

from ssl_domains.scoring.intervals import (
    Interval,
    PairedDifference,
    bootstrap_ci,
    bootstrap_metrics,
    paired_difference_ci,
    summary_rows,
)
from ssl_domains.scoring.lesions import (
    FROC,
    LesionMatch,
    case_metrics,
    froc,
    lesion_table,
    match_lesions,
    segmentation_metrics,
)
from ssl_domains.scoring.metrics import classification_metrics
from ssl_domains.scoring.thresholds import choose_threshold

__all__ = [
    "FROC",
    "Interval",
    "LesionMatch",
    "PairedDifference",
    "bootstrap_ci",
    "bootstrap_metrics",
    "case_metrics",
    "choose_threshold",
    "classification_metrics",
    "froc",
    "lesion_table",
    "match_lesions",
    "paired_difference_ci",
    "segmentation_metrics",
    "summary_rows",
]
