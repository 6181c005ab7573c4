"""Numenta Anomaly Benchmark series with their labelled anomaly windows
(``labels/combined_windows.json``), cut into labelled windows.

Reference: A. Lavin and S. Ahmad, "Evaluating Real-time Anomaly Detection Algorithms - the
Numenta Anomaly Benchmark", IEEE ICMLA 2015 (arXiv:1510.03336).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ssl_domains.contracts import Example
from ssl_domains.errors import DataError
from ssl_domains.identifiers import opaque_id
from ssl_domains.registry import component
from ssl_domains_timeseries.loaders.tabular import numeric_column
from ssl_domains_timeseries.loaders.windows import (
    Recording,
    SignalDataset,
    WindowSpec,
    windowed,
)

__all__ = ["NABDataset", "load_windows"]


def load_windows(path: Path) -> dict[str, list[list[str]]]:
    """``{"<category>/<file>.csv": [[start, end], ...]}`` from a NAB label file.

    Raises:
        DataError: Missing, unreadable or malformed file.
    """
    if not path.is_file():
        raise DataError(path, "NAB label file not found")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(path, f"cannot read JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DataError(path, "expected a JSON object {series: [[start, end], ...]}")
    return data


@component(
    "nab",
    description="NAB series + combined_windows.json anomaly windows -> labelled windows",
    modalities=("signal",),
    dims=(1,),
    examples=[Example({"data_root": "../shared/data/nab",
                       "series": ["realKnownCause/nyc_taxi.csv"], "window": 64, "stride": 16})],
)
@windowed(window=128, normalize="per_series")
class NABDataset(SignalDataset):
    """Windows of NAB series, positive where they overlap a labelled anomaly window.

    Args:
        data_root: NAB checkout (with ``data/`` and ``labels/``), or a folder with the same
            layout (e.g. ``sample_data/timeseries/nab``).
        series: Series names relative to ``data/`` (``"realKnownCause/nyc_taxi.csv"``) or
            whole categories (``"realKnownCause"``).
        labels_file: Anomaly windows, relative to ``data_root``.

    Items carry ``meta["series"]`` (the NAB name: public data), ``meta["start_time"]`` and
    ``meta["event"]`` (the anomaly window a positive item overlaps, for event-level recall).

    Raises:
        DataError: Missing folders or files, a series not in the label file (lists close
            names), non-numeric values, window timestamps outside the series.
    """

    def __init__(
        self,
        data_root: str,
        series: str | Sequence[str] = ("realKnownCause/nyc_taxi.csv",),
        labels_file: str = "labels/combined_windows.json",
        *,
        spec: WindowSpec,
    ) -> None:
        root = Path(data_root)
        if not (root / "data").is_dir():
            raise DataError(root, "not a NAB folder: no data/ inside")
        label_path = root / labels_file
        windows = load_windows(label_path)
        names = self._expand(root, [series] if isinstance(series, str) else list(series))
        recordings = []
        for name in names:
            if name not in windows:
                known = [k for k in windows if k.split("/")[0] == name.split("/")[0]]
                raise DataError(
                    label_path,
                    f"series {name!r} has no entry (same category: {', '.join(known) or 'none'})",
                )
            recordings.append(self._read_series(root, name, windows[name], label_path))
        self.series = names
        super().__init__(recordings, spec, source=str(root), channel_names=["value"])

    @staticmethod
    def _expand(root: Path, series: list[str]) -> list[str]:
        out: list[str] = []
        for s in series:
            if s.endswith(".csv"):
                out.append(s)
                continue
            folder = root / "data" / s
            if not folder.is_dir():
                cats = sorted(p.name for p in (root / "data").iterdir() if p.is_dir())
                raise DataError(folder, f"no such series or category (categories: {', '.join(cats)})")
            out.extend(f"{s}/{f.name}" for f in sorted(folder.glob("*.csv")))
        if not out:
            raise DataError(root, "no series selected")
        return out

    @staticmethod
    def _read_series(root: Path, name: str, spans: list[list[str]], label_path: Path) -> Recording:
        file = root / "data" / name
        if not file.is_file():
            raise DataError(file, "NAB series file not found")
        try:
            df = pd.read_csv(file)
        except pd.errors.EmptyDataError:
            raise DataError(file, "file is empty") from None
        except (OSError, ValueError) as exc:
            raise DataError(file, f"cannot read: {exc}") from None
        missing = [c for c in ("timestamp", "value") if c not in df.columns]
        if missing:
            raise DataError(file, f"unknown column(s) {missing} (available: {', '.join(df.columns)})")
        if len(df) == 0:
            raise DataError(file, "file has a header but no data rows")
        values = numeric_column(df, "value", file, row_offset=2)
        times = pd.to_datetime(df["timestamp"], errors="coerce")
        if times.isna().any():
            i = int(np.flatnonzero(times.isna().to_numpy())[0])
            raise DataError(file, f"bad timestamp {df['timestamp'].iloc[i]!r}, row {i + 1} (line {i + 2})")
        t = times.to_numpy()
        intervals = []
        for k, span in enumerate(spans):
            try:
                start, end = pd.to_datetime(span[0]), pd.to_datetime(span[1])
            except (ValueError, TypeError, IndexError):
                raise DataError(label_path, f"{name}: window {k} is not [start, end]: {span!r}") from None
            lo = int(np.searchsorted(t, start.to_datetime64(), side="left"))
            hi = int(np.searchsorted(t, end.to_datetime64(), side="right"))
            if hi <= lo:
                raise DataError(label_path, f"{name}: window {k} {span} lies outside the series")
            intervals.append((lo, hi))
        return Recording(
            signal=values[None].astype(np.float32),
            series_id=opaque_id("series", name),
            intervals=intervals,
            times=df["timestamp"].astype(str).to_numpy(),
            meta={"series": name},
            origin=str(file),
            first_row=1,
        )
