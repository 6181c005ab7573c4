"""Windowing core shared by every time-series loader.

A loader turns its files into :class:`Recording` objects (``[C, T]`` float32, NaN = missing,
optional per-point labels, anomaly intervals or a whole-series label) and hands them to
:class:`SignalDataset`, which cuts fixed-length windows, labels them, pads short series with
NaN and a ``False`` mask, and normalises without ever replacing a NaN. How it does so is one
:class:`WindowSpec`; loaders take its fields as flat arguments (``window: 128, stride: 64``
in a config) through :func:`windowed`, which documents them once for every loader.

Non-finite input (``inf``, ``-inf``, or a value beyond float32's range such as ``1e308``, which
becomes ``inf`` when read) is found here for every loader, reported per file and channel
(count, first row) and, by the ``nonfinite`` option, masked as missing (default, with a
warning) or refused. Statistics are computed in float64 over observed values only, so they are
always finite.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import re
import textwrap
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset

from ssl_domains.data.nonfinite import (
    NONFINITE_MODES,
    check_nonfinite_mode,
    nonfinite_reason,
    nonfinite_refusal,
    nonfinite_values,
)
from ssl_domains.errors import DataError
from ssl_domains.identifiers import opaque_id

__all__ = [
    "NORMALIZE_MODES",
    "Recording",
    "SignalDataset",
    "map_labels",
    "parse_label_rule",
    "intervals_to_points",
    "array_recordings",
    "labeled_array_recordings",
    "files_source",
    "WindowSpec",
    "windowed",
    "check_finite_or_nan",
    "NONFINITE_MODES",
]

log = logging.getLogger(__name__)

#: Allowed values of ``normalize``.
NORMALIZE_MODES = ("none", "per_series", "per_window", "global")
#: Non-finite findings logged one line each; the rest are summed up in one more line.
_MAX_NONFINITE_LINES = 10

_RULE = re.compile(r"^fraction\s*>=\s*([0-9]*\.?[0-9]+)$")


@dataclass
class Recording:
    """One multichannel series before windowing.

    Attributes:
        signal: ``[C, T]`` float32; NaN marks a missing value.
        series_id: Opaque id (``opaque_id("series", ...)``: a keyed HMAC, file names and patient ids never leave the loader); it becomes the item's group.
        point_labels: ``[T]`` int labels per time step (0 = normal), or None.
        intervals: Anomaly intervals as ``(start, end)`` sample indices, end exclusive, or None.
        label: Whole-series label, inherited by each of its windows, or None.
        times: ``[T]`` timestamps as strings (for ``meta["start_time"]``), or None.
        meta: Extra JSON-able scalars copied into every item's ``meta``.
        origin: The file it was read from, for messages only (never copied into items).
        first_row: Row of the file holding its first time step (1 = first data row), or 0
            when rows do not map to time steps; used to say where a bad value is.
        name: The series as its file names it (an id column's value, a position), or "" when
            the file holds one series; for messages and ``--mapping`` only.
    """

    signal: np.ndarray
    series_id: str
    point_labels: np.ndarray | None = None
    intervals: list[tuple[int, int]] | None = None
    label: int | None = None
    times: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    origin: str = ""
    first_row: int = 0
    name: str = ""

    @property
    def length(self) -> int:
        """Number of time steps."""
        return int(self.signal.shape[1])

    @property
    def num_channels(self) -> int:
        """Number of channels."""
        return int(self.signal.shape[0])


def parse_label_rule(rule: str) -> float | None:
    """``"any"`` -> None (one positive point suffices); ``"fraction>=x"`` -> x in (0, 1].

    Raises:
        ValueError: Any other string.
    """
    rule = rule.strip().lower()
    if rule == "any":
        return None
    m = _RULE.match(rule)
    if m:
        x = float(m.group(1))
        if 0.0 < x <= 1.0:
            return x
    raise ValueError(f"label_rule must be 'any' or 'fraction>=x' with 0 < x <= 1, got {rule!r}")


def intervals_to_points(intervals: Iterable[tuple[int, int]], length: int) -> np.ndarray:
    """Per-point 0/1 labels ``[length]`` from ``(start, end)`` intervals (end exclusive)."""
    out = np.zeros(length, dtype=np.int64)
    for s, e in intervals:
        out[max(0, int(s)) : min(length, int(e))] = 1
    return out


def _events(points: np.ndarray) -> np.ndarray:
    """Event index per point (-1 outside events): runs of consecutive positive points."""
    pos = points > 0
    starts = pos & ~np.concatenate([[False], pos[:-1]])
    ids = np.cumsum(starts) - 1
    return np.where(pos, ids, -1)


def _canon(value: Any) -> str:
    """Canonical text of a raw label (``1.0`` and ``"1"`` and ``1`` are the same class)."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    text = str(value).strip()
    try:
        f = float(text)
    except ValueError:
        return text
    return str(int(f)) if f.is_integer() else text


def map_labels(
    raw: Sequence[Any] | np.ndarray,
    path: str | Path,
    label_map: Mapping[Any, int] | None = None,
    positive_classes: Sequence[Any] | None = None,
) -> list[int]:
    """Integer labels from raw class values.

    Args:
        raw: Raw labels (ints, integer-valued floats or strings).
        path: File the labels come from (for error messages).
        label_map: ``{raw: int}``; keys compare by value (``1``, ``1.0`` and ``"1"`` match).
        positive_classes: Raw classes that become 1; every other class becomes 0. Overrides
            ``label_map``. E.g. ECG5000: ``[2, 3, 4, 5]``.

    Returns:
        One int per raw label. Without a map, integer-valued labels are kept as they are.

    Raises:
        DataError: A label missing from ``label_map``, or a non-integer label without a map.
    """
    canon = [_canon(v) for v in np.asarray(raw, dtype=object).reshape(-1)]
    if positive_classes is not None:
        pos = {_canon(c) for c in positive_classes}
        return [1 if c in pos else 0 for c in canon]
    if label_map is not None:
        table = {_canon(k): int(v) for k, v in label_map.items()}
        missing = sorted({c for c in canon if c not in table})
        if missing:
            raise DataError(
                path, f"labels {missing[:5]} are not in label_map (keys: {sorted(table)})"
            )
        return [table[c] for c in canon]
    out: list[int] = []
    for i, c in enumerate(canon):
        try:
            out.append(int(c))
        except ValueError:
            raise DataError(
                path,
                f"label {c!r} (item {i}) is not an integer; pass label_map={{...}} or "
                "positive_classes=[...]",
            ) from None
    return out


def _nan_stats(x: np.ndarray, axis: int | tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std in float64 ignoring NaN; channels without data get mean 0, std 1; std 0
    (or a std that is not finite) becomes 1."""
    x = np.asarray(x, dtype=np.float64)
    count = np.sum(~np.isnan(x), axis=axis)
    total = np.nansum(x, axis=axis, dtype=np.float64)
    mean = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    shape = [1] * x.ndim
    keep = [a for a in range(x.ndim) if a not in np.atleast_1d(axis)]
    for a in keep:
        shape[a] = x.shape[a]
    centered = x - mean.reshape(shape)
    var = np.nansum(centered * centered, axis=axis, dtype=np.float64) / np.maximum(count, 1)
    std = np.sqrt(var)
    std = np.where((count > 0) & (std > 1e-8) & np.isfinite(std), std, 1.0)
    return np.where(np.isfinite(mean), mean, 0.0), std


@dataclass(frozen=True)
class WindowSpec:
    """How series become items: the windowing arguments every time-series loader takes.

    Loaders take these fields as flat keyword arguments (``loader: {name: csv, args: {window:
    128, stride: 64}}``); :func:`windowed` gathers them into one ``WindowSpec`` and appends
    the descriptions below to the loader's own documentation.

    Attributes:
        window: Window length in time steps; None = one item per series, padded with NaN
            (mask False) to the longest series.
        stride: Step between window starts; None = ``window`` (no overlap).
        label_rule: How a window's label follows from per-point labels or anomaly
            intervals: ``"any"`` (one positive point makes it positive) or ``"fraction>=x"``
            (at least a fraction x of its points, 0 < x <= 1). Whole-series labels are
            inherited as they are.
        normalize: ``"none"``, ``"per_series"`` (each channel of each series to mean 0,
            std 1), ``"per_window"`` (each channel of each item) or ``"global"`` (per-channel
            statistics of this data, or of ``stats`` when given). NaNs are ignored in
            statistics and stay NaN.
        stats: ``{"mean": [C], "std": [C]}`` of the training data (its dataset's ``stats``),
            so validation and test data are normalised with them under ``"global"``; the
            engine passes them on by itself.
        cover_end: Add a last window ending at the series' end when the stride leaves a tail.
        point_labels: Also return ``"point_label"`` ``[L]`` int64 per item (-1 on padding).
        group_length: Group windows into contiguous blocks of this many time steps (group
            ``"<series_id>/<block>"``), so one long recording can still be split into
            training and validation blocks; None = one group per series.
        nonfinite: ``"mask"`` (default): ``inf``, ``-inf`` and values beyond float32's range
            (``1e308``) become missing values (NaN, mask False), with one warning per file
            and channel (count, first row); ``"refuse"``: such a value stops loading, naming
            the file, channel and row.
    """

    window: int | None = None
    stride: int | None = None
    label_rule: str = "any"
    normalize: str = "none"
    stats: Mapping[str, Sequence[float]] | None = None
    cover_end: bool = False
    point_labels: bool = False
    group_length: int | None = None
    nonfinite: str = "mask"

    def check(self, source: str | Path) -> float | None:
        """Refuse values no loader can use; returns the fraction of ``label_rule`` (None for
        ``"any"``).

        Raises:
            DataError: One line naming ``source`` and the argument.
        """
        if self.normalize not in NORMALIZE_MODES:
            raise DataError(source, f"normalize must be one of {NORMALIZE_MODES}, got {self.normalize!r}")
        if self.window is not None and self.window < 1:
            raise DataError(source, f"window must be >= 1, got {self.window}")
        if self.group_length is not None and self.group_length < 1:
            raise DataError(source, f"group_length must be >= 1, got {self.group_length}")
        if self.stride is not None and self.stride < 1:
            raise DataError(source, f"stride must be >= 1, got {self.stride}")
        check_nonfinite_mode(source, self.nonfinite)
        try:
            return parse_label_rule(self.label_rule)
        except ValueError as exc:
            raise DataError(source, str(exc)) from None


class SignalDataset(Dataset):
    """Fixed-length windows over recordings, as dict items.

    Items: ``{"signal": [C, L] float32 (NaN kept), "mask": [C, L] bool (True = observed),
    "label": int (labeled data only), "meta": {"series_id", "start", "length", ...}}``;
    with ``point_labels=True`` also ``"point_label": [L] int64`` (-1 on padding).

    Args:
        recordings: The series; all must have the same number of channels.
        spec: Window length and step, labelling, normalisation and the rest
            (:class:`WindowSpec`); None = its defaults (one item per series).
        source: File or folder the recordings came from (for error messages).
        channel_names: Names of the channels (for ``inspect`` and ``stats``).

    Attributes:
        labels: One int per item, or None when the recordings carry no labels.
        groups: Series id per item (keeps a series on one side of a split).
        stats: ``{"mean", "std", "channels"}`` used by global normalisation, else None.
        recordings: The (normalised unless per-window) recordings.
        skipped: ``(path, reason)`` of inputs the loader skipped.
        nonfinite_found: One dict per file and channel with non-finite values: ``file``
            (position, "file 2 of 5"), ``series`` (opaque id of the first series concerned),
            ``channel``, ``count``, ``first_row``.

    Raises:
        DataError: No recordings, channel counts that differ, bad options, non-finite values
            with ``nonfinite="refuse"``, or ``stats`` that are not finite.
    """

    def __init__(
        self,
        recordings: Sequence[Recording],
        spec: WindowSpec | None = None,
        source: str | Path = "<recordings>",
        channel_names: Sequence[str] | None = None,
    ) -> None:
        spec = spec or WindowSpec()
        self.source = str(source)
        if not recordings:
            raise DataError(source, "no series found")
        counts = {r.num_channels for r in recordings}
        if len(counts) > 1:
            raise DataError(source, f"series have different channel counts {sorted(counts)}")
        self._fraction = spec.check(source)
        self.spec = spec
        self.nonfinite = spec.nonfinite
        window, group_length = spec.window, spec.group_length
        self.window = window
        self.stride = spec.stride or window
        self.label_rule = spec.label_rule
        self.normalize = spec.normalize
        self.cover_end = spec.cover_end
        self.point_labels = spec.point_labels
        self.num_channels = counts.pop()
        self.channel_names = (
            list(channel_names)
            if channel_names is not None
            else [f"ch{i}" for i in range(self.num_channels)]
        )
        self.skipped: list[tuple[str, str]] = []
        self.recordings = list(recordings)
        self.nonfinite_found = self._mask_nonfinite()
        self._points = [self._point_labels_of(r) for r in self.recordings]
        self._events = [None if p is None else _events(p) for p in self._points]
        self.stats = self._normalise(spec.stats)
        self.length = window or max(r.length for r in self.recordings)
        self._index: list[tuple[int, int]] = []
        for k, rec in enumerate(self.recordings):
            self._index.extend((k, s) for s in self._starts(rec.length))
        self.group_length = group_length
        self.groups = [
            self.recordings[k].series_id
            if group_length is None
            else f"{self.recordings[k].series_id}/{s // group_length}"
            for k, s in self._index
        ]
        self.labels = self._window_labels()

    # -- construction ----------------------------------------------------------------------
    @staticmethod
    def _point_labels_of(rec: Recording) -> np.ndarray | None:
        if rec.point_labels is not None:
            return np.asarray(rec.point_labels, dtype=np.int64).reshape(-1)
        if rec.intervals is not None:
            return intervals_to_points(rec.intervals, rec.length)
        return None

    def _starts(self, length: int) -> list[int]:
        if self.window is None or length <= self.window:
            return [0]
        assert self.stride is not None
        starts = list(range(0, length - self.window + 1, self.stride))
        if self.cover_end and starts[-1] + self.window < length:
            starts.append(length - self.window)
        return starts

    def _mask_nonfinite(self) -> list[dict[str, Any]]:
        """Find inf / out-of-range values in every recording; mask them as missing (NaN) or
        refuse them, per ``nonfinite``. Returns one finding per file and channel."""
        origins = list(dict.fromkeys(r.origin for r in self.recordings))
        found: dict[tuple[str, int], dict[str, Any]] = {}
        for rec in self.recordings:
            sig = np.asarray(rec.signal)
            bad = nonfinite_values(sig, nan=False)  # NaN is a missing sample, not a bad one
            if not bad.any():
                if sig.dtype != np.float32:
                    rec.signal = sig.astype(np.float32)
                continue
            for c in np.flatnonzero(bad.any(axis=1)):
                t = int(np.flatnonzero(bad[c])[0])
                row = rec.first_row + t if rec.first_row else t + 1
                key = (rec.origin, int(c))
                entry = found.get(key)
                if entry is None:
                    found[key] = {
                        "file": f"{origins.index(rec.origin) + 1} of {len(origins)}",
                        "series": rec.series_id, "channel": self.channel_names[c],
                        "count": int(bad[c].sum()), "first_row": row, "origin": rec.origin,
                    }
                else:
                    entry["count"] += int(bad[c].sum())
            if self.nonfinite == "refuse":
                e = next(iter(found.values()))
                where = f"row {e['first_row']}{'' if rec.first_row else ' of the series'}"
                raise DataError(e["origin"] or self.source, f"channel {e['channel']!r} has " + nonfinite_refusal(
                    e["count"], "value", where, nan=False, masked="treat them as missing"))
            clean = np.array(sig, dtype=np.float64)
            clean[bad] = np.nan
            rec.signal = clean.astype(np.float32)
        out = [{k: v for k, v in e.items() if k != "origin"} for e in found.values()]
        for e in out[:_MAX_NONFINITE_LINES]:  # one line per file and channel, never a path
            log.warning("file %s (series %s), channel %r: %s; masked as missing (nonfinite='refuse' "
                        "stops instead)", e["file"], e["series"], e["channel"],
                        nonfinite_reason(e["count"], "value", f"row {e['first_row']}", nan=False))
        if len(out) > _MAX_NONFINITE_LINES:
            rest = out[_MAX_NONFINITE_LINES:]
            log.warning("%d more file/channel pairs with %d non-finite value(s) in all, masked as missing "
                        "(`ssl-domains timeseries inspect` lists them)", len(rest), sum(e["count"] for e in rest))
        return out

    def _normalise(self, stats: Mapping[str, Sequence[float]] | None) -> dict[str, Any] | None:
        if self.normalize == "per_series":
            for rec in self.recordings:
                mean, std = _nan_stats(rec.signal, axis=1)
                rec.signal = ((rec.signal - mean[:, None]) / std[:, None]).astype(np.float32)
            return None
        if self.normalize != "global":
            return None
        if stats is None:
            joined = np.concatenate([r.signal for r in self.recordings], axis=1)
            mean, std = _nan_stats(joined, axis=1)
        else:
            try:
                mean = np.asarray(stats["mean"], dtype=np.float64).reshape(-1)
                std = np.asarray(stats["std"], dtype=np.float64).reshape(-1)
            except (KeyError, TypeError, ValueError):
                raise DataError(self.source, "stats must be {'mean': [C], 'std': [C]}") from None
            if len(mean) != self.num_channels or len(std) != self.num_channels:
                raise DataError(
                    self.source,
                    f"stats have {len(mean)} channels, data has {self.num_channels}",
                )
            if not (np.isfinite(mean).all() and np.isfinite(std).all()):
                raise DataError(self.source, f"stats are not finite (mean {mean.tolist()}, std "
                                f"{std.tolist()}); recompute them from the training data")
            std = np.where(std > 1e-8, std, 1.0)
        for rec in self.recordings:
            rec.signal = ((rec.signal - mean[:, None]) / std[:, None]).astype(np.float32)
        return {
            "mean": [float(v) for v in mean],
            "std": [float(v) for v in std],
            "channels": list(self.channel_names),
        }

    def _window_labels(self) -> list[int] | None:
        has_series = [r.label is not None for r in self.recordings]
        has_points = [p is not None for p in self._points]
        if not any(has_series) and not any(has_points):
            return None
        if not all(s or p for s, p in zip(has_series, has_points)):
            raise DataError(self.source, "some series have labels and others do not")
        labels: list[int] = []
        for k, s in self._index:
            rec = self.recordings[k]
            if rec.label is not None:
                labels.append(int(rec.label))
                continue
            pts = self._points[k]
            assert pts is not None
            seg = pts[s : s + self.length]
            if self._fraction is None:
                labels.append(int(seg.max()) if len(seg) else 0)
            else:
                pos = seg > 0
                frac = float(pos.mean()) if len(seg) else 0.0
                labels.append(int(seg[pos].max()) if frac >= self._fraction else 0)
        return labels

    # -- access ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._index)

    def window_of(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw window ``[C, L]`` (NaN-padded) and its per-point labels (-1 on padding)."""
        k, s = self._index[i]
        rec = self.recordings[k]
        L = self.length
        seg = rec.signal[:, s : s + L]
        x = np.full((self.num_channels, L), np.nan, dtype=np.float32)
        x[:, : seg.shape[1]] = seg
        pts = self._points[k]
        y = None
        if pts is not None:
            y = np.full(L, -1, dtype=np.int64)
            part = pts[s : s + L]
            y[: len(part)] = part
        return x, y

    def __getitem__(self, i: int) -> dict[str, Any]:
        k, s = self._index[i]
        rec = self.recordings[k]
        x, y = self.window_of(i)
        if self.normalize == "per_window":
            mean, std = _nan_stats(x, axis=1)
            x = ((x - mean[:, None]) / std[:, None]).astype(np.float32)
        meta: dict[str, Any] = {
            **rec.meta,
            "series_id": rec.series_id,
            "start": int(s),
            "length": int(min(self.length, rec.length - s)),
        }
        if rec.times is not None and s < len(rec.times):
            meta["start_time"] = str(rec.times[s])
        events = self._events[k]
        if events is not None:
            ev = events[s : s + self.length]
            ev = ev[ev >= 0]
            meta["event"] = f"{rec.series_id}#{int(ev[0])}" if len(ev) else ""
        item: dict[str, Any] = {
            "signal": torch.from_numpy(x),
            "mask": torch.from_numpy(~np.isnan(x)),
            "meta": meta,
        }
        if self.labels is not None:
            item["label"] = self.labels[i]
        if self.point_labels and y is not None:
            item["point_label"] = torch.from_numpy(y)
        return item

    def arrays(self) -> tuple[np.ndarray, np.ndarray | None]:
        """All items as ``x [N, C, L]`` (NaN kept) and ``y [N]`` or None (for baselines)."""
        xs = np.stack([self[i]["signal"].numpy() for i in range(len(self))]) if len(self) else (
            np.zeros((0, self.num_channels, self.length), dtype=np.float32)
        )
        y = None if self.labels is None else np.asarray(self.labels, dtype=np.int64)
        return xs, y

    @property
    def inputs_by_id(self) -> dict[str, str]:
        """Opaque series id -> the input as given (file, and the series' name in it), for
        ``--mapping`` only: never written into a run folder or shareable output."""
        return {r.series_id: r.origin + (f" [{r.name}]" if r.name else "") for r in self.recordings}

    def summary(self) -> dict[str, Any]:
        """Channels, lengths, NaN counts and label counts of the recordings (for ``inspect``)."""
        lengths = [r.length for r in self.recordings]
        nan = np.zeros(self.num_channels, dtype=np.int64)
        for r in self.recordings:
            nan += np.isnan(r.signal).sum(axis=1)
        out: dict[str, Any] = {
            "series": len(self.recordings),
            "channels": list(self.channel_names),
            "length": {
                "min": int(min(lengths)),
                "median": float(np.median(lengths)),
                "max": int(max(lengths)),
                "total": int(sum(lengths)),
            },
            "nan": {c: int(n) for c, n in zip(self.channel_names, nan)},
            "nonfinite": {c: sum(e["count"] for e in self.nonfinite_found if e["channel"] == c)
                          for c in self.channel_names},
            "items": len(self),
        }
        if self.nonfinite_found:
            out["nonfinite_found"] = [dict(e) for e in self.nonfinite_found]
        series_labels = [r.label for r in self.recordings if r.label is not None]
        if series_labels:
            vals, cnt = np.unique(series_labels, return_counts=True)
            out["series_labels"] = {str(int(v)): int(c) for v, c in zip(vals, cnt)}
        pts = [p for p in self._points if p is not None]
        if pts:
            allp = np.concatenate(pts)
            vals, cnt = np.unique(allp, return_counts=True)
            out["point_labels"] = {str(int(v)): int(c) for v, c in zip(vals, cnt)}
            out["events"] = int(sum(int(e.max()) + 1 for e in self._events if e is not None and len(e)))
        if self.labels is not None:
            vals, cnt = np.unique(self.labels, return_counts=True)
            out["item_labels"] = {str(int(v)): int(c) for v, c in zip(vals, cnt)}
        return out


_Loader = TypeVar("_Loader", bound=type[SignalDataset])


def _field_docs() -> dict[str, str]:
    """``{field: its description}`` from the ``Attributes:`` section of :class:`WindowSpec`."""
    docs: dict[str, str] = {}
    name = ""
    for line in (WindowSpec.__doc__ or "").split("Attributes:", 1)[1].splitlines():
        m = re.match(r"^ {8}(\w+): (.*)$", line)
        if m:
            name = m.group(1)
            docs[name] = m.group(2)
        elif name and line.startswith(" " * 12):
            docs[name] += " " + line.strip()
    return docs


def windowed(*, omit: Sequence[str] = (), **defaults: Any) -> Callable[[_Loader], _Loader]:
    """Give a loader the fields of :class:`WindowSpec` as flat keyword arguments.

    The loader's ``__init__`` takes ``spec: WindowSpec``; the decorated class takes
    ``window=..., stride=..., ...`` instead (keyword-only, with type annotations the host
    checks and converts, so ``describe`` shows them and configs name them as before), builds
    one ``WindowSpec`` and passes it as ``spec``. The fields' descriptions join the class
    documentation (before its ``Raises:``).

    Args:
        omit: Fields this loader does not take (e.g. ``label_rule`` without point labels).
        defaults: Defaults of this loader that differ from :class:`WindowSpec`'s.

    Raises:
        TypeError: A name in ``omit`` or ``defaults`` that is not a field.
    """
    spec_fields = {f.name: f for f in dataclasses.fields(WindowSpec)}
    unknown = sorted((set(omit) | set(defaults)) - set(spec_fields))
    if unknown:
        raise TypeError(f"windowed(): {unknown} are not WindowSpec fields")
    names = [n for n in spec_fields if n not in omit]
    spec_hints = typing.get_type_hints(WindowSpec)

    def decorate(cls: _Loader) -> _Loader:
        init = cls.__init__
        sig = inspect.signature(init)
        if "spec" not in sig.parameters:
            raise TypeError(f"{cls.__name__}.__init__ must take spec: WindowSpec")
        hints = {k: v for k, v in typing.get_type_hints(init).items() if k != "spec"}
        params = [p for p in sig.parameters.values() if p.name != "spec"]
        params += [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY,
                                     default=defaults.get(n, spec_fields[n].default),
                                     annotation=WindowSpec.__annotations__[n]) for n in names]

        @functools.wraps(init)
        def __init__(self: SignalDataset, *args: Any, **kwargs: Any) -> None:
            given = {n: kwargs.pop(n) for n in names if n in kwargs}
            init(self, *args, spec=WindowSpec(**{**defaults, **given}), **kwargs)

        __init__.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        __init__.__annotations__ = {**hints, **{n: spec_hints[n] for n in names}}
        cls.__init__ = __init__  # type: ignore[method-assign]
        docs = _field_docs()
        lines = [textwrap.fill(f"{n}: {docs[n]}" + (f" Default here: ``{defaults[n]!r}``."
                                                      if n in defaults else ""),
                               96, initial_indent=" " * 8, subsequent_indent=" " * 12)
                 for n in names]
        section = ("    Windowing (flat arguments, gathered into a :class:`WindowSpec`):\n"
                   + "\n".join(lines) + "\n\n")
        doc = (cls.__doc__ or "").rstrip() + "\n\n"
        at = doc.find("    Raises:")  # before Raises, else at the end
        cls.__doc__ = doc[:at] + section + doc[at:] if at >= 0 else doc + section
        return cls

    return decorate


def check_finite_or_nan(x: np.ndarray, path: str | Path) -> None:
    """Refuse infinite values (NaN is allowed: it means missing).

    Raises:
        DataError: The array contains +/-inf.
    """
    if np.isinf(x).any():
        idx = np.argwhere(np.isinf(x))[0]
        raise DataError(path, f"infinite value at index {tuple(int(i) for i in idx)}")


def array_recordings(
    x: np.ndarray | Sequence[np.ndarray],
    path: str | Path,
    labels: Sequence[int] | None = None,
    point_labels: np.ndarray | Sequence[np.ndarray] | None = None,
    start: int = 0,
) -> list[Recording]:
    """Recordings from ``[N, C, T]`` (or a list of ``[C, T_i]``) with optional labels.

    Args:
        x: The series.
        path: Their file (for ids and messages).
        labels: One whole-series label per series, or None.
        point_labels: ``[N, T]`` (or a list of ``[T_i]``) per-point labels, or None.
        start: Index of the first series in the file (ids stay unique across files).

    Raises:
        DataError: Label counts or point-label lengths that do not match.
    """
    n = len(x)
    if labels is not None and len(labels) != n:
        raise DataError(path, f"{len(labels)} labels for {n} series")
    if point_labels is not None and len(point_labels) != n:
        raise DataError(path, f"{len(point_labels)} point-label rows for {n} series")
    name = Path(path).name
    out = []
    for i in range(n):
        with np.errstate(over="ignore"):  # beyond float32's range -> inf, found by SignalDataset
            sig = np.asarray(x[i], dtype=np.float32)
        if sig.ndim == 1:
            sig = sig[None]
        pts = None
        if point_labels is not None:
            pts = np.asarray(point_labels[i]).reshape(-1).astype(np.int64)
            if len(pts) != sig.shape[1]:
                raise DataError(
                    path, f"series {start + i}: {len(pts)} point labels for length {sig.shape[1]}"
                )
        out.append(
            Recording(
                signal=sig,
                series_id=opaque_id("series", name, start + i),
                point_labels=pts,
                label=None if labels is None else int(labels[i]),
                meta={"index": start + i},
                origin=str(path),
                name=f"series {start + i}",
            )
        )
    return out


def labeled_array_recordings(
    arrays: Iterable[tuple[Path, Any, Any, Any]],
    path: str | Path | Sequence[str | Path],
    label_map: Mapping[Any, int] | None = None,
    positive_classes: Sequence[Any] | None = None,
    what: str = "labels",
) -> list[Recording]:
    """Recordings of several array files, with their raw labels mapped by :func:`map_labels`.

    Args:
        arrays: ``(file, series, raw labels or None, point labels or None)`` per file, read
            lazily in order (a file's errors come before the next file is read).
        path: What the user named (for the message when files disagree).
        label_map: ``{raw: int}``, as in :func:`map_labels`.
        positive_classes: Raw classes that become 1, as in :func:`map_labels`.
        what: Name of the labels in the message (``"labels"``, ``"class labels"``).

    Raises:
        DataError: Some files have labels and others do not, or as :func:`map_labels` and
            :func:`array_recordings`.
    """
    recordings: list[Recording] = []
    labeled: list[bool] = []
    for f, x, raw, pts in arrays:
        labels = None if raw is None else map_labels(raw, f, label_map, positive_classes)
        recordings.extend(array_recordings(x, f, labels, pts, start=len(recordings)))
        labeled.append(raw is not None)
    if any(labeled) and not all(labeled):
        raise DataError(str(path), f"some files have {what} and others do not")
    return recordings


def files_source(files: Sequence[Path], path: str | Path | Sequence[str | Path]) -> str:
    """The ``source`` of a dataset read from ``files``: the file itself when there is one."""
    return str(files[0]) if len(files) == 1 else str(path)
