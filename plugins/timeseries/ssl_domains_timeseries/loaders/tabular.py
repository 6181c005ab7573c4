"""CSV and Parquet tables of signals, wide (one column per channel) or long (id, time,
channel, value), cut into windows by :class:`~.windows.SignalDataset`."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ssl_domains.contracts import Example
from ssl_domains.errors import DataError
from ssl_domains.identifiers import opaque_id
from ssl_domains.registry import component
from ssl_domains_timeseries.loaders.windows import (
    Recording,
    SignalDataset,
    WindowSpec,
    map_labels,
    windowed,
)

__all__ = ["TabularDataset", "CSVDataset", "ParquetDataset", "resolve_files", "numeric_column"]

log = logging.getLogger(__name__)

#: Extra strings read as missing values (besides pandas' NA, NaN, null, empty, ...).
NA_VALUES = ["?"]


def resolve_files(path: str | Path | Sequence[str | Path], suffixes: Sequence[str]) -> list[Path]:
    """Files named by ``path``: a file, a folder (its files with one of ``suffixes``), or a list.

    Raises:
        DataError: A path that does not exist, or a folder without matching files.
    """
    items = [path] if isinstance(path, (str, Path)) else list(path)
    if not items:
        raise DataError("<path>", "no input files given")
    out: list[Path] = []
    for p in map(Path, items):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in suffixes)
            if not found:
                raise DataError(p, f"folder has no {'/'.join(suffixes)} files")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(p, "file not found")
    return out


def numeric_column(df: pd.DataFrame, column: str, path: Path, row_offset: int) -> np.ndarray:
    """Column as float32 (missing -> NaN).

    Args:
        df: The table.
        column: Column name.
        path: File (for the message).
        row_offset: File line of the first data row (CSV: 2; Parquet: 0 = no line numbers).

    Raises:
        DataError: A cell that is neither a number nor a missing-value marker; names the
            column, row (1-based data row) and, for CSV, the line.
    """
    col = df[column]
    if pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=np.float32)
    if pd.api.types.is_numeric_dtype(col):
        with np.errstate(over="ignore"):  # beyond float32's range -> inf: found and reported later
            return col.to_numpy(dtype=np.float32, na_value=np.nan)
    conv = pd.to_numeric(col, errors="coerce")
    bad = conv.isna() & col.notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        where = f"row {i + 1}" + (f" (line {i + row_offset})" if row_offset else "")
        raise DataError(
            path, f"non-numeric value {str(col.iloc[i])!r} in column {column!r}, {where}"
        )
    with np.errstate(over="ignore"):
        return conv.to_numpy(dtype=np.float32, na_value=np.nan)


def _check_columns(df: pd.DataFrame, wanted: Sequence[str | None], path: Path) -> None:
    missing = [c for c in wanted if c is not None and c not in df.columns]
    if missing:
        raise DataError(
            path,
            f"unknown column(s) {missing} (available: {', '.join(map(str, df.columns))})",
        )


class TabularDataset(SignalDataset):
    """Signals from tables; see :class:`CSVDataset` for the arguments (``spec``: the windowing
    arguments, see :func:`~.windows.windowed`)."""

    suffixes: tuple[str, ...] = ()
    row_offset = 0

    def _read(self, path: Path) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    def __init__(
        self,
        path: str | Sequence[str],
        format: str = "wide",
        time_column: str | None = None,
        channels: Sequence[str] | None = None,
        label_column: str | None = None,
        id_column: str | None = None,
        ids: Sequence[str] | None = None,
        channel_column: str = "channel",
        value_column: str = "value",
        labels_file: str | None = None,
        label_map: Mapping[Any, int] | None = None,
        positive_classes: Sequence[Any] | None = None,
        *,
        spec: WindowSpec,
    ) -> None:
        if format not in ("wide", "long"):
            raise DataError(str(path), f"format must be 'wide' or 'long', got {format!r}")
        self.format = format
        self.time_column = time_column
        self.channels = list(channels) if channels is not None else None
        self.label_column = label_column
        self.id_column = id_column
        self.channel_column = channel_column
        self.value_column = value_column
        self.label_map = label_map
        self.positive_classes = positive_classes
        files = resolve_files(path, self.suffixes)
        recordings: list[Recording] = []
        raw_ids: list[str] = []
        names: list[str] | None = None
        skipped: list[tuple[str, str]] = []
        for f in files:
            try:
                recs, file_ids, chans = self._load_file(f)
                if names is not None and chans != names:
                    raise DataError(f, f"channels {chans} differ from the first file's {names}")
            except DataError as exc:
                if len(files) == 1:
                    raise
                # listed in ``skipped``; logged once by whoever builds the dataset, never here too
                skipped.append((exc.path, exc.reason))
                continue
            names = chans
            recordings.extend(recs)
            raw_ids.extend(file_ids)
        if ids is not None:
            wanted = [str(i) for i in ids]
            unknown = [i for i in wanted if i not in raw_ids]
            if unknown:
                raise DataError(
                    str(path),
                    f"unknown series id(s) {unknown[:5]} (available: {', '.join(raw_ids[:10])}"
                    f"{', ...' if len(raw_ids) > 10 else ''})",
                )
            keep = [k for k, i in enumerate(raw_ids) if i in set(wanted)]
            recordings = [recordings[k] for k in keep]
            raw_ids = [raw_ids[k] for k in keep]
        if not recordings:
            first = skipped[0] if skipped else (str(path), "no series found")
            raise DataError(first[0], f"no usable file ({first[1]})")
        if labels_file is not None:
            self._attach_series_labels(recordings, raw_ids, Path(labels_file))
        super().__init__(
            recordings,
            spec,
            source=str(path) if isinstance(path, (str, Path)) else str(files[0].parent),
            channel_names=names,
        )
        self.skipped = skipped

    # -- one file --------------------------------------------------------------------------
    def _read_checked(self, path: Path) -> pd.DataFrame:
        try:
            df = self._read(path)
        except pd.errors.EmptyDataError:
            raise DataError(path, "file is empty") from None
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(path, f"cannot read: {msg}") from None
        except Exception as exc:  # noqa: BLE001 - pyarrow raises its own types
            raise DataError(path, f"cannot read: {type(exc).__name__}: {exc}") from None
        if len(df.columns) == 0:
            raise DataError(path, "file is empty")
        if len(df) == 0:
            raise DataError(path, "file has a header but no data rows")
        df.columns = [str(c) for c in df.columns]
        return df

    def _load_file(self, path: Path) -> tuple[list[Recording], list[str], list[str]]:
        df = self._read_checked(path)
        if self.format == "wide":
            return self._wide(df, path)
        return self._long(df, path)

    def _labels_of(self, df: pd.DataFrame, path: Path) -> np.ndarray:
        col = df[self.label_column]
        if col.isna().any():
            i = int(np.flatnonzero(col.isna().to_numpy())[0])
            raise DataError(path, f"missing label in column {self.label_column!r}, row {i + 1}")
        return np.asarray(
            map_labels(col.to_numpy(), path, self.label_map, self.positive_classes),
            dtype=np.int64,
        )

    def _wide(self, df: pd.DataFrame, path: Path) -> tuple[list[Recording], list[str], list[str]]:
        special = [self.time_column, self.label_column, self.id_column]
        _check_columns(df, [*special, *(self.channels or [])], path)
        chans = self.channels if self.channels is not None else [
            c for c in df.columns if c not in special
        ]
        if not chans:
            raise DataError(path, "no channel columns left after time/label/id columns")
        x = np.stack([numeric_column(df, c, path, self.row_offset) for c in chans])
        y = self._labels_of(df, path) if self.label_column else None
        t = df[self.time_column].astype(str).to_numpy() if self.time_column else None
        if self.id_column is None:
            groups = {path.stem: np.arange(len(df))}
        else:
            keys = df[self.id_column].astype(str)
            groups = {str(k): np.asarray(v) for k, v in keys.groupby(keys, sort=False).indices.items()}
        recs, ids = [], []
        for raw_id, rows in groups.items():
            recs.append(
                Recording(
                    signal=np.ascontiguousarray(x[:, rows]),
                    series_id=opaque_id("series", path.name, raw_id),
                    point_labels=None if y is None else y[rows],
                    times=None if t is None else t[rows],
                    origin=str(path),
                    first_row=1 if self.id_column is None else 0,
                    name="" if self.id_column is None else str(raw_id),
                )
            )
            ids.append(raw_id)
        return recs, ids, list(chans)

    def _long(self, df: pd.DataFrame, path: Path) -> tuple[list[Recording], list[str], list[str]]:
        _check_columns(
            df,
            [self.id_column, self.time_column, self.channel_column, self.value_column,
             self.label_column],
            path,
        )
        df = df.copy()
        df[self.channel_column] = df[self.channel_column].astype(str)
        df["__value"] = numeric_column(df, self.value_column, path, self.row_offset)
        id_col = self.id_column or "__id"
        if self.id_column is None:
            df[id_col] = path.stem
        df[id_col] = df[id_col].astype(str)
        time_col = self.time_column or "__t"
        if self.time_column is None:
            df[time_col] = df.groupby([id_col, self.channel_column]).cumcount()
        dup = df.duplicated([id_col, time_col, self.channel_column])
        if dup.any():
            i = int(np.flatnonzero(dup.to_numpy())[0])
            where = f"row {i + 1}" + (f" (line {i + self.row_offset})" if self.row_offset else "")
            raise DataError(path, f"duplicate (id, time, channel) at {where}")
        present = list(dict.fromkeys(df[self.channel_column]))
        if self.channels is not None:
            unknown = [c for c in self.channels if c not in present]
            if unknown:
                raise DataError(
                    path, f"unknown channel(s) {unknown} (available: {', '.join(present)})"
                )
            chans = list(self.channels)
            df = df[df[self.channel_column].isin(chans)]
        else:
            chans = present
        wide = df.pivot(index=[id_col, time_col], columns=self.channel_column, values="__value")
        wide = wide.reindex(columns=chans)
        if self.label_column:
            lab = pd.Series(self._labels_of(df, path), index=df.index)
            per_point = lab.groupby([df[id_col], df[time_col]]).max()
            per_point = per_point.reindex(wide.index)
        recs, ids = [], []
        order = list(dict.fromkeys(df[id_col]))
        for raw_id in order:
            block = wide.loc[raw_id]
            recs.append(
                Recording(
                    signal=block.to_numpy(dtype=np.float64, na_value=np.nan).T.copy(),
                    series_id=opaque_id("series", path.name, raw_id),
                    point_labels=(
                        per_point.loc[raw_id].to_numpy(dtype=np.int64)
                        if self.label_column
                        else None
                    ),
                    times=block.index.astype(str).to_numpy() if self.time_column else None,
                    origin=str(path),
                    name=str(raw_id),
                )
            )
            ids.append(raw_id)
        return recs, ids, chans

    # -- series labels from a separate file --------------------------------------------------
    def _attach_series_labels(
        self, recordings: list[Recording], raw_ids: list[str], labels_file: Path
    ) -> None:
        try:
            table = pd.read_csv(labels_file, dtype=str, keep_default_na=False)
        except FileNotFoundError:
            raise DataError(labels_file, "label file not found") from None
        except pd.errors.EmptyDataError:
            raise DataError(labels_file, "label file is empty") from None
        if len(table.columns) < 2:
            raise DataError(
                labels_file,
                f"label file needs two columns (id, label), has {list(table.columns)}",
            )
        id_col, lab_col = table.columns[0], table.columns[1]
        lookup = dict(zip(table[id_col].astype(str), table[lab_col]))
        missing = [i for i in raw_ids if i not in lookup]
        if missing:
            raise DataError(
                labels_file,
                f"no label for {len(missing)} of {len(raw_ids)} series, e.g. {missing[:3]} "
                f"(label file ids are matched against column {id_col!r})",
            )
        values = map_labels([lookup[i] for i in raw_ids], labels_file, self.label_map,
                            self.positive_classes)
        for rec, v in zip(recordings, values):
            rec.label = v


_TABULAR_DOC = """

    Args:
        path: A file, a folder (all its files of this type; unreadable ones are skipped and
            listed in ``skipped``) or a list of files.
        format: ``"wide"`` (one column per channel, rows in time order) or ``"long"`` (one row
            per id, time, channel, value; pivoted, sorted by time within each id).
        time_column: Timestamp column (kept as ``meta["start_time"]``; not a channel).
        channels: Columns (wide) or channel names (long) to use, in this order; default all.
        label_column: Per-point label column (0 = normal); windows are labelled by
            ``label_rule``. In long form the label of a time step is the max over channels.
        id_column: Column splitting a table into several series (e.g. recording or patient
            id; hashed, never shown).
        ids: Keep only these series (``id_column`` values, or file stems), e.g. to hold out
            test recordings.
        channel_column: Channel name column (long form).
        value_column: Value column (long form).
        labels_file: CSV ``id,label`` with one whole-series label per series id (the
            ``id_column`` value, or the file stem without one).
        label_map: ``{raw label: int}``.
        positive_classes: Raw labels that become 1 (all others 0).

    Raises:
        DataError: Missing or empty file, unknown columns (lists those available),
            non-numeric cells (names row and column), label file ids that do not match.
"""


@component(
    "csv",
    description="Signals from CSV tables (wide or long), windowed, with per-point or series labels",
    modalities=("signal",),
    dims=(1,),
    examples=[Example({"path": "sample_data/timeseries/pretrain_unlabeled.csv",
                       "time_column": "timestamp", "window": 256, "normalize": "global"})],
)
@windowed()
class CSVDataset(TabularDataset):
    __doc__ = "Windows of signals read from CSV files." + _TABULAR_DOC

    suffixes = (".csv", ".tsv", ".txt", ".gz")
    row_offset = 2

    def _read(self, path: Path) -> pd.DataFrame:
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        return pd.read_csv(path, sep=sep, na_values=NA_VALUES)


@component(
    "parquet",
    description="Signals from Parquet tables (wide or long), windowed, with per-point or series labels",
    modalities=("signal",),
    dims=(1,),
    examples=[Example({"path": "sample_data/timeseries/finetune_labeled.parquet",
                       "id_column": "series", "label_column": "label", "time_column": "t",
                       "window": 128, "stride": 64})],
)
@windowed()
class ParquetDataset(TabularDataset):
    __doc__ = "Windows of signals read from Parquet files." + _TABULAR_DOC

    suffixes = (".parquet", ".pq")
    row_offset = 0

    def _read(self, path: Path) -> pd.DataFrame:
        return pd.read_parquet(path)
