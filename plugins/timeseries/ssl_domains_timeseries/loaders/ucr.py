"""UCR/UEA archive files: ``.tsv`` (2018), ``.txt`` (2015, whitespace or comma), ``.ts``
(sktime/UEA, multivariate, missing ``?``, variable lengths) and ``.npy`` rows with the label
in column 0."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ssl_domains.contracts import Example
from ssl_domains.errors import DataError
from ssl_domains.registry import component
from ssl_domains_timeseries.loaders.numpy import split_label_column
from ssl_domains_timeseries.loaders.tabular import resolve_files
from ssl_domains_timeseries.loaders.windows import (
    SignalDataset,
    WindowSpec,
    files_source,
    labeled_array_recordings,
    windowed,
)

__all__ = ["UCRDataset", "read_ucr_table", "read_ts"]

FORMATS = ("auto", "tsv", "txt", "ts", "npy")
_SUFFIX = {".tsv": "tsv", ".txt": "txt", ".ts": "ts", ".npy": "npy", ".csv": "txt"}
_PAIR = re.compile(r"\(([^()]*)\)")
_MISSING = {"?", "nan", "NaN", "NA", ""}


def _floats(tokens: Sequence[str], path: Path, where: str) -> np.ndarray:
    """Tokens to float32 (``?``/``NaN``/empty -> NaN).

    Raises:
        DataError: A token that is not a number; names the place and the value.
    """
    out = np.empty(len(tokens), dtype=np.float32)
    for j, tok in enumerate(tokens):
        tok = tok.strip()
        if tok in _MISSING:
            out[j] = np.nan
            continue
        try:
            out[j] = float(tok)
        except ValueError:
            raise DataError(path, f"non-numeric value {tok!r} at {where}, column {j + 1}") from None
    return out


def read_ucr_table(path: Path, fmt: str) -> tuple[list[np.ndarray], list[str]]:
    """Rows ``label v1 v2 ...`` of a ``.tsv``/``.txt`` file.

    Returns:
        Series ``[1, T_i]`` (trailing NaN padding removed) and raw labels.

    Raises:
        DataError: Empty file, non-numeric value (names line and column).
    """
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read: {exc}") from None
    lines = [(n, ln) for n, ln in enumerate(text.splitlines(), 1) if ln.strip()]
    if not lines:
        raise DataError(path, "file is empty")
    if fmt == "tsv":
        sep: str | None = "\t"
    else:
        sep = "," if "," in lines[0][1] else None
    series, labels = [], []
    for n, ln in lines:
        tokens = ln.strip().split(sep)
        if len(tokens) < 2:
            raise DataError(path, f"line {n}: a label and at least one value are needed")
        vals = _floats(tokens[1:], path, f"line {n}")
        last = np.flatnonzero(~np.isnan(vals))
        vals = vals[: last[-1] + 1] if len(last) else vals
        series.append(vals[None])
        labels.append(tokens[0].strip())
    return series, labels


def _ts_header(lines: list[tuple[int, str]], path: Path) -> tuple[dict[str, str], int]:
    header: dict[str, str] = {}
    for k, (_, ln) in enumerate(lines):
        if not ln.startswith("@"):
            continue
        key, _, value = ln[1:].partition(" ")
        key = key.lower()
        if key == "data":
            return header, k + 1
        header[key] = value.strip()
    raise DataError(path, "no @data line: not a .ts file")


def read_ts(path: Path) -> tuple[list[np.ndarray], list[str] | None]:
    """A sktime/UEA ``.ts`` file.

    Returns:
        Series ``[C, T_i]`` (dimensions of unequal length padded with NaN) and raw class
        labels (None when ``@classLabel false``).

    Raises:
        DataError: No ``@data``, wrong number of dimensions, non-numeric value (names line).
    """
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read: {exc}") from None
    lines = [(n, ln.strip()) for n, ln in enumerate(text.splitlines(), 1)]
    lines = [(n, ln) for n, ln in lines if ln and not ln.startswith("#")]
    if not lines:
        raise DataError(path, "file is empty")
    header, first = _ts_header(lines, path)
    if "targetlabel" in header and header["targetlabel"].lower().startswith("true"):
        raise DataError(path, "regression .ts files (@targetLabel true) are not supported")
    has_label = header.get("classlabel", "false").lower().startswith("true")
    stamped = header.get("timestamps", "false").lower() == "true"
    dims = int(header.get("dimensions", header.get("dimension", "0")) or 0)
    series: list[np.ndarray] = []
    labels: list[str] = []
    for n, ln in lines[first:]:
        if stamped:
            parts = re.split(r"(?<=\)):", ln)
            if has_label:
                last = parts[-1]
                cut = last.rfind("):")
                if cut < 0:
                    raise DataError(path, f"line {n}: no class label after the values")
                parts[-1], label = last[: cut + 1], last[cut + 2 :]
        else:
            parts = ln.split(":")
            if has_label:
                *parts, label = parts
        if has_label:
            labels.append(label.strip())
        if dims and len(parts) != dims:
            raise DataError(path, f"line {n}: {len(parts)} dimensions, header says {dims}")
        chans = []
        for d, part in enumerate(parts):
            if stamped:
                tokens = [p.rsplit(",", 1)[-1] for p in _PAIR.findall(part)]
            else:
                tokens = part.split(",")
            chans.append(_floats(tokens, path, f"line {n}, dimension {d + 1}"))
        t = max(len(c) for c in chans)
        arr = np.full((len(chans), t), np.nan, dtype=np.float32)
        for d, c in enumerate(chans):
            arr[d, : len(c)] = c
        series.append(arr)
    if not series:
        raise DataError(path, "no series after @data")
    counts = {s.shape[0] for s in series}
    if len(counts) > 1:
        raise DataError(path, f"series have different numbers of dimensions {sorted(counts)}")
    return series, (labels if has_label else None)


@component(
    "ucr",
    description="UCR/UEA archive files (.tsv, .txt, .ts, label-first .npy) with class labels",
    modalities=("signal",),
    dims=(1,),
    examples=[
        Example({"path": ["../shared/data/ecg5000/ECG5000_TRAIN.txt",
                          "../shared/data/ecg5000/ECG5000_TEST_4499.npy"],
                 "positive_classes": [2, 3, 4, 5]}),
    ],
)
@windowed(omit=("label_rule", "point_labels", "group_length"))  # whole-series labels only
class UCRDataset(SignalDataset):
    """Series of a UCR/UEA classification problem, one item per series (or windows of them).

    Args:
        path: A file, folder, or list of files (e.g. TRAIN and TEST, concatenated in order).
        format: ``"auto"`` (by suffix), ``"tsv"``, ``"txt"``, ``"ts"`` or ``"npy"`` (rows
            ``[label, v1, ...]``, as the ECG5000 ``.npy``).
        label_map: ``{raw class: int}``.
        positive_classes: Raw classes that become 1, others 0 (ECG5000: ``[2, 3, 4, 5]``).

    Raises:
        DataError: Unknown format, unreadable or empty file, non-numeric value (names line and
            column), class labels that are not integers without ``label_map``.
    """

    def __init__(
        self,
        path: str | Sequence[str],
        format: str = "auto",
        label_map: Mapping[Any, int] | None = None,
        positive_classes: Sequence[Any] | None = None,
        *,
        spec: WindowSpec,
    ) -> None:
        if format not in FORMATS:
            raise DataError(str(path), f"format must be one of {FORMATS}, got {format!r}")
        files = resolve_files(path, tuple(_SUFFIX))

        def arrays() -> Iterator[tuple[Path, list[np.ndarray], list[Any] | None, None]]:
            """``(file, series, raw labels, point labels)`` per input file, in order."""
            for f in files:
                fmt = format if format != "auto" else _SUFFIX.get(f.suffix.lower())
                if fmt is None:
                    raise DataError(f, f"unknown UCR file type {f.suffix!r}; pass format=...")
                series, raw = self._read(f, fmt)
                yield f, series, raw, None

        recordings = labeled_array_recordings(
            arrays(), path, label_map, positive_classes, what="class labels"
        )
        super().__init__(recordings, spec, source=files_source(files, path))

    @staticmethod
    def _read(path: Path, fmt: str) -> tuple[list[np.ndarray], list[Any] | None]:
        if fmt == "ts":
            return read_ts(path)
        if fmt == "npy":
            try:
                x = np.load(path, allow_pickle=False)
            except (OSError, ValueError, EOFError) as exc:
                raise DataError(path, f"cannot read: {exc}") from None
            if x.size == 0:
                raise DataError(path, "array is empty")
            x, y = split_label_column(np.asarray(x, dtype=np.float32), 0, path)
            return [row[None] for row in x], list(y)
        return read_ucr_table(path, fmt)
