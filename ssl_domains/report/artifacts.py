"""Readers the report adds on top of :mod:`ssl_domains.layout` (which names every file and
reads the run config, exports and predictions): the metrics log and the sweep tables as data
frames, and an auto cell's selection.

Each reader returns None when its file is absent and raises :class:`DataError` (naming the
file and the problem) when it is present but unusable, so a report can skip a section with a
note instead of failing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from ssl_domains.engine.assess import Selection
from ssl_domains.errors import DataError
from ssl_domains.files import read_json_object, read_text
from ssl_domains.layout.schema import first_problem
from ssl_domains.scoring.intervals import SUMMARY_COLUMNS, summary_rows


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
        raise DataError(path, f"not a selection record: {first_problem(err)}") from None


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
