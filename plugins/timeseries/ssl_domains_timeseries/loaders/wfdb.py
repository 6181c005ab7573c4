"""PhysioNet WFDB records (``.hea`` + signal files) with beat annotations, read through the
``wfdb`` package; annotations become per-point labels or one item per beat."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ssl_domains.contracts import Example
from ssl_domains.errors import DataError
from ssl_domains.identifiers import opaque_id
from ssl_domains.registry import component
from ssl_domains_timeseries.loaders.windows import (
    Recording,
    SignalDataset,
    WindowSpec,
    windowed,
)

__all__ = ["WFDBDataset", "BEAT_SYMBOLS", "NORMAL_SYMBOLS"]

#: Annotation symbols that mark a beat (PhysioNet's standard beat codes).
BEAT_SYMBOLS = tuple("NLRBAaJSVrFejnE/fQ?")
#: Beat symbols counted as normal by default (AAMI class N).
NORMAL_SYMBOLS = ("N", "L", "R", "e", "j")
LABEL_MODES = ("point", "beat", "none")


def _record_paths(path: str | Sequence[str]) -> list[Path]:
    items = [path] if isinstance(path, (str, Path)) else list(path)
    out: list[Path] = []
    for raw in map(Path, items):
        if raw.is_dir():
            found = sorted(raw.glob("*.hea"))
            if not found:
                raise DataError(raw, "folder has no WFDB .hea header files")
            out.extend(f.with_suffix("") for f in found)
            continue
        base = raw.with_suffix("") if raw.suffix in (".hea", ".dat") else raw
        if not base.with_suffix(".hea").is_file():
            raise DataError(base.with_suffix(".hea"), "WFDB header not found")
        out.append(base)
    return out


@component(
    "wfdb",
    description="PhysioNet WFDB records with annotations -> per-point labels or beat items",
    modalities=("signal",),
    dims=(1,),
    examples=[Example({"path": "mitdb/100", "label_mode": "beat", "beat_before": 90,
                       "beat_after": 110})],
    example_data="ssl_domains_timeseries.loaders.examples:write_wfdb_example",
)
@windowed()
class WFDBDataset(SignalDataset):
    """Windows of WFDB records, or one item per annotated beat.

    Args:
        path: Record name (``dir/100``, with or without ``.hea``), folder of records, or list.
        channels: Signal names to read (e.g. ``["MLII"]``); default all.
        annotation: Annotation file extension (``"atr"``), or None for unlabeled records.
        label_mode: ``"point"`` (abnormal beats mark ``[s - beat_before, s + beat_after)`` as
            positive; windows labelled by ``label_rule``), ``"beat"`` (one item per beat
            annotation, the segment around it, labelled by its symbol) or ``"none"``.
        normal_symbols: Beat symbols labelled 0; other beat symbols are 1.
        label_map: ``{symbol: int}`` instead of normal/abnormal; beats whose symbol is not in
            it are left out (beat mode) or count as 0 (point mode).
        beat_before: Samples before the annotation in a beat segment.
        beat_after: Samples after it.

    In beat mode ``window`` is ignored (one item per beat segment).

    Raises:
        DataError: Missing header or annotation file, unreadable record, unknown channel
            names (lists those available), bad label mode.
    """

    def __init__(
        self,
        path: str | Sequence[str],
        channels: Sequence[str] | None = None,
        annotation: str | None = "atr",
        label_mode: str = "point",
        normal_symbols: Sequence[str] = NORMAL_SYMBOLS,
        label_map: Mapping[str, int] | None = None,
        beat_before: int = 90,
        beat_after: int = 110,
        *,
        spec: WindowSpec,
    ) -> None:
        if label_mode not in LABEL_MODES:
            raise DataError(str(path), f"label_mode must be one of {LABEL_MODES}, got {label_mode!r}")
        if annotation is None:
            label_mode = "none"
        self.label_mode = label_mode
        self.normal_symbols = tuple(normal_symbols)
        self.label_map = dict(label_map) if label_map is not None else None
        self.beat_before = beat_before
        self.beat_after = beat_after
        recordings: list[Recording] = []
        names: list[str] | None = None
        for rec_path in _record_paths(path):
            signal, sig_names, fs = self._read_signal(rec_path, channels)
            if names is not None and sig_names != names:
                raise DataError(rec_path, f"channels {sig_names} differ from {names}")
            names = sig_names
            sid = opaque_id("series", rec_path.name)
            if label_mode == "none":
                recordings.append(Recording(signal=signal, series_id=sid, meta={"fs": fs},
                                            origin=str(rec_path)))
                continue
            samples, symbols = self._read_annotation(rec_path, annotation or "atr")
            if label_mode == "point":
                pts = np.zeros(signal.shape[1], dtype=np.int64)
                for s, sym in zip(samples, symbols):
                    v = self._symbol_label(sym)
                    if v:
                        lo, hi = max(0, s - beat_before), min(len(pts), s + beat_after)
                        pts[lo:hi] = np.maximum(pts[lo:hi], v)
                recordings.append(
                    Recording(signal=signal, series_id=sid, point_labels=pts, meta={"fs": fs},
                              origin=str(rec_path))
                )
            else:
                recordings.extend(self._beats(signal, samples, symbols, sid, fs))
        if not recordings:
            raise DataError(str(path), "no annotated beats found")
        if label_mode == "beat":
            spec = dataclasses.replace(spec, window=None)  # one item per beat segment
        super().__init__(recordings, spec, source=str(path), channel_names=names)

    def _symbol_label(self, sym: str) -> int | None:
        """Label of an annotation symbol; None for non-beat or unmapped annotations."""
        if self.label_map is not None:
            return self.label_map.get(sym)
        if sym not in BEAT_SYMBOLS:
            return None
        return 0 if sym in self.normal_symbols else 1

    @staticmethod
    def _read_signal(
        rec_path: Path, channels: Sequence[str] | None
    ) -> tuple[np.ndarray, list[str], float]:
        import wfdb

        try:
            header = wfdb.rdheader(str(rec_path))
        except Exception as exc:  # noqa: BLE001 - wfdb raises many types
            raise DataError(rec_path.with_suffix(".hea"), f"cannot read header: {exc}") from None
        available = list(header.sig_name or [])
        if channels is not None:
            unknown = [c for c in channels if c not in available]
            if unknown:
                raise DataError(
                    rec_path.with_suffix(".hea"),
                    f"unknown channel(s) {unknown} (available: {', '.join(available)})",
                )
        try:
            rec = wfdb.rdrecord(str(rec_path), channel_names=list(channels) if channels else None)
        except Exception as exc:  # noqa: BLE001
            raise DataError(rec_path, f"cannot read signals: {type(exc).__name__}: {exc}") from None
        if rec.p_signal is None or rec.p_signal.size == 0:
            raise DataError(rec_path, "record has no samples")
        return (
            np.ascontiguousarray(rec.p_signal.T, dtype=np.float32),
            list(rec.sig_name),
            float(rec.fs),
        )

    @staticmethod
    def _read_annotation(rec_path: Path, ext: str) -> tuple[np.ndarray, list[str]]:
        import wfdb

        file = rec_path.with_name(f"{rec_path.name}.{ext}")
        if not file.is_file():
            raise DataError(file, "annotation file not found (set annotation=None for none)")
        try:
            ann = wfdb.rdann(str(rec_path), ext)
        except Exception as exc:  # noqa: BLE001
            raise DataError(file, f"cannot read annotations: {type(exc).__name__}: {exc}") from None
        return np.asarray(ann.sample, dtype=np.int64), list(ann.symbol)

    def _beats(
        self, signal: np.ndarray, samples: np.ndarray, symbols: list[str], sid: str, fs: float
    ) -> list[Recording]:
        out = []
        length = self.beat_before + self.beat_after
        for s, sym in zip(samples, symbols):
            v = self._symbol_label(sym)
            if v is None:
                continue
            seg = np.full((signal.shape[0], length), np.nan, dtype=np.float32)
            lo = int(s) - self.beat_before
            a, b = max(0, lo), min(signal.shape[1], lo + length)
            if b > a:
                seg[:, a - lo : b - lo] = signal[:, a:b]
            out.append(
                Recording(
                    signal=seg,
                    series_id=sid,
                    label=int(v),
                    meta={"fs": fs, "beat_sample": int(s), "symbol": sym},
                )
            )
        return out
