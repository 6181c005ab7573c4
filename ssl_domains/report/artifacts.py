"""Readers for the files the engine writes into a run folder and a sweep folder.

Each reader returns None when its file is absent and raises :class:`DataError` (naming the
file and the problem) when it is present but unusable, so a report can skip a section with a
note instead of failing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from ssl_domains.config import read_yaml
from ssl_domains.engine.assess import Selection, read_prediction_table
from ssl_domains.errors import DataError
from ssl_domains.files import read_json_object, read_text
from ssl_domains.identifiers import shareable_config
from ssl_domains.scoring.intervals import SUMMARY_COLUMNS, summary_rows

#: Sub-folder of a run folder that holds a sweep.
SWEEP_DIR = "sweep"


@dataclass
class Predictions:
    """One predictions CSV (``id, label, score`` or ``score_0..score_{K-1}``, ``decision``).

    Attributes:
        labels: Integer labels [N].
        scores: P(class 1) [N] for binary, class scores [N, K] otherwise.
        decision: The engine's decisions [N] (None when the column is absent).
    """

    labels: np.ndarray
    scores: np.ndarray
    decision: np.ndarray | None

    @property
    def binary(self) -> bool:
        """Whether the scores are binary P(class 1)."""
        return self.scores.ndim == 1


def read_config(path: Path) -> dict[str, Any] | None:
    """A run folder's ``config.yaml`` as every shareable output shows it (paths and input ids
    replaced by opaque ids, :func:`~ssl_domains.identifiers.shareable_config`); None when
    absent.

    Raises:
        DataError: Unreadable, not YAML (a Python tag included) or not a mapping.
    """
    if not path.is_file():
        return None
    config = read_yaml(path, read_text(path))  # a link planted in the run folder is refused
    if not isinstance(config, dict):
        raise DataError(path, f"expected a mapping, got {type(config).__name__}")
    return shareable_config(config)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path`` (None when absent)."""
    if not path.is_file():
        return None
    return read_json_object(path)


def read_selection(path: Path) -> Selection | None:
    """What an ``auto`` cell chose (its ``selection.json``; None when absent).

    Raises:
        DataError: When it is not JSON or not a selection record.
    """
    data = read_json(path)
    if data is None:
        return None
    try:
        return Selection.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the object"
        raise DataError(path, f"not a selection record: {where}: {first['msg']}") from None


def read_metrics(path: Path) -> tuple[pd.DataFrame, int] | None:
    """The records of ``metrics.jsonl`` and the number of unreadable lines skipped.

    A run killed mid-write may leave a truncated last line; such lines are counted, not fatal.

    Returns:
        ``(frame, skipped)`` or None when the file is absent.

    Raises:
        DataError: When the file cannot be read or holds no usable record.
    """
    if not path.is_file():
        return None
    records: list[dict[str, Any]] = []
    skipped = 0
    for line in read_text(path).splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            skipped += 1
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            skipped += 1
    if not records:
        raise DataError(path, "no JSON records")
    return pd.DataFrame.from_records(records), skipped


def read_predictions(path: Path) -> Predictions | None:
    """A predictions CSV (None when absent), parsed by the engine's
    :func:`~ssl_domains.engine.assess.read_prediction_table`; rows without a label are dropped.

    Raises:
        DataError: When the label or score columns are missing or not numeric.
    """
    if not path.is_file():
        return None
    table = read_prediction_table(path)
    if table.labels is None:
        raise DataError(path, f"no 'label' column (columns: {', '.join(table.columns)})")
    keep = ~np.isnan(table.labels)
    decision = table.decisions[keep] if table.decisions is not None else None
    return Predictions(table.labels[keep].astype(int), table.scores[keep], decision)


def read_results(path: Path) -> pd.DataFrame | None:
    """The tidy sweep table ``results.csv`` (None when absent).

    Raises:
        DataError: When it is unreadable or lacks a required column.
    """
    if not path.is_file():
        return None
    try:
        df = pd.read_csv(path, float_precision="round_trip")
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise DataError(path, f"not a readable CSV ({err})") from None
    missing = [c for c in ("arm", "n_labels", "seed", "metric", "value") if c not in df.columns]
    if missing:
        raise DataError(path, f"missing column(s) {', '.join(missing)}")
    if "fraction" not in df.columns:
        df["fraction"] = np.nan
    return df


def summarize(results: pd.DataFrame, alpha: float = 0.05,
              pairs: Sequence[tuple[str, str]] = (("ssl", "scratch"),),
              method: str = "t") -> pd.DataFrame:
    """The summary table of a tidy results table (:func:`~ssl_domains.scoring.intervals.summary_rows`):
    columns ``kind, arm, n_labels, fraction, metric, mean, std, n, ci_low, ci_high``.

    Raises:
        ValueError: When a required column is missing.
    """
    rows = summary_rows(results.to_dict("records"), alpha=alpha, pairs=pairs, method=method)
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def find_sweep(path: Path) -> Path | None:
    """The sweep folder (the one holding ``results.csv``) at or under ``path``, if any."""
    for candidate in (path, path / SWEEP_DIR):
        if (candidate / "results.csv").is_file():
            return candidate
    return None


def parse_cell_name(name: str) -> tuple[str, str, str] | None:
    """``"<arm>_<size>_<seed>"`` -> ``(arm, size, seed)`` (arm names may contain ``_``)."""
    parts = name.rsplit("_", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None
