"""NumPy ``.npy``/``.npz`` arrays of series, cut into windows by :class:`~.windows.SignalDataset`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ssl_domains.contracts import Example
from ssl_domains.errors import DataError
from ssl_domains.registry import component
from ssl_domains_timeseries.loaders.tabular import resolve_files
from ssl_domains_timeseries.loaders.windows import (
    SignalDataset,
    WindowSpec,
    files_source,
    labeled_array_recordings,
    windowed,
)

__all__ = ["NumpyDataset", "read_label_file", "split_label_column"]


def read_label_file(path: str | Path) -> np.ndarray:
    """Labels from ``.npy`` or a text file with one label per line.

    Raises:
        DataError: Missing, empty or unreadable file.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(p, "label file not found")
    try:
        if p.suffix == ".npy":
            y = np.load(p, allow_pickle=False)
        else:
            lines = [ln.strip() for ln in p.read_text().splitlines() if ln.strip()]
            y = np.asarray(lines, dtype=object)
    except (OSError, ValueError) as exc:
        raise DataError(p, f"cannot read labels: {exc}") from None
    y = np.asarray(y).reshape(-1)
    if len(y) == 0:
        raise DataError(p, "label file is empty")
    return y


def split_label_column(x: np.ndarray, column: int, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``[N, T+1]`` -> series ``[N, T]`` and labels ``[N]`` taken from ``column``.

    Raises:
        DataError: Not a 2-D array, column out of range, or missing labels.
    """
    if x.ndim != 2:
        raise DataError(path, f"label_column needs a 2-D [N, T] array, got shape {x.shape}")
    if not -x.shape[1] <= column < x.shape[1]:
        raise DataError(path, f"label_column {column} out of range for {x.shape[1]} columns")
    y = x[:, column]
    if np.isnan(y.astype(np.float64)).any():
        raise DataError(path, f"missing label in column {column}, row "
                        f"{int(np.flatnonzero(np.isnan(y.astype(np.float64)))[0]) + 1}")
    return np.delete(x, column, axis=1), y


@component(
    "numpy",
    description="Series from .npy [N,T]/[N,C,T] or .npz (x, y) arrays, windowed",
    modalities=("signal",),
    dims=(1,),
    examples=[
        Example({"path": "../shared/data/ecg5000/ECG5000_TEST_4499.npy", "label_column": 0,
                 "positive_classes": [2, 3, 4, 5]}),
    ],
)
@windowed()
class NumpyDataset(SignalDataset):
    """Windows of series stored as NumPy arrays.

    Args:
        path: ``.npy``/``.npz`` file, folder of them, or a list (concatenated in order).
        x_key: Array of series in a ``.npz``.
        y_key: Array of whole-series labels in a ``.npz`` (ignored when absent).
        point_key: Array ``[N, T]`` of per-point labels in a ``.npz``, or None.
        labels_path: Separate labels (``.npy`` or one per line) for a single input file.
        label_column: Column of a 2-D array that holds the label (UCR-style rows, e.g. 0).
        channels_last: Arrays are ``[N, T, C]`` instead of ``[N, C, T]``.
        label_map: ``{raw label: int}``.
        positive_classes: Raw labels that become 1 (others 0); ECG5000: ``[2, 3, 4, 5]``.

    Shapes: ``[T]`` is one series, ``[N, T]`` N one-channel series, ``[N, C, T]`` N series.

    Raises:
        DataError: Missing/unreadable file, missing key, wrong shape, label count mismatch.
    """

    def __init__(
        self,
        path: str | Sequence[str],
        x_key: str = "x",
        y_key: str | None = "y",
        point_key: str | None = None,
        labels_path: str | None = None,
        label_column: int | None = None,
        channels_last: bool = False,
        label_map: Mapping[Any, int] | None = None,
        positive_classes: Sequence[Any] | None = None,
        *,
        spec: WindowSpec,
    ) -> None:
        files = resolve_files(path, (".npy", ".npz"))
        if labels_path is not None and len(files) != 1:
            raise DataError(labels_path, f"labels_path needs one input file, got {len(files)}")

        def arrays() -> Iterator[tuple[Path, np.ndarray, np.ndarray | None, np.ndarray | None]]:
            """``(file, series, raw labels, point labels)`` per input file, in order."""
            for f in files:
                x, y, pts = self._read(f, x_key, y_key, point_key, label_column)
                if labels_path is not None:
                    y = read_label_file(labels_path)
                    if len(y) != len(x):
                        raise DataError(
                            labels_path, f"{len(y)} labels for {len(x)} series in {f.name}"
                        )
                if channels_last and x.ndim == 3:
                    x = np.swapaxes(x, 1, 2)
                if x.ndim == 1:
                    x = x[None, None]
                elif x.ndim == 2:
                    x = x[:, None]
                elif x.ndim != 3:
                    raise DataError(
                        f, f"array has shape {x.shape}; expected [T], [N, T] or [N, C, T]"
                    )
                yield f, x, y, pts

        recordings = labeled_array_recordings(arrays(), path, label_map, positive_classes)
        super().__init__(recordings, spec, source=files_source(files, path))

    @staticmethod
    def _read(
        path: Path, x_key: str, y_key: str | None, point_key: str | None, label_column: int | None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        try:
            if path.suffix == ".npz":
                with np.load(path, allow_pickle=False) as z:
                    data = {k: z[k] for k in z.files}
            else:
                data = {x_key: np.load(path, allow_pickle=False)}
        except (OSError, ValueError, EOFError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(path, f"cannot read: {msg}") from None
        if x_key not in data:
            raise DataError(path, f"no array {x_key!r} (has: {sorted(data)})")
        x = data[x_key]
        if x.size == 0:
            raise DataError(path, f"array {x_key!r} is empty")
        if not np.issubdtype(x.dtype, np.number) and x.dtype != bool:
            raise DataError(path, f"array {x_key!r} is not numeric (dtype {x.dtype})")
        y = data.get(y_key) if y_key else None
        pts = None
        if point_key is not None:
            if point_key not in data:
                raise DataError(path, f"no array {point_key!r} (has: {sorted(data)})")
            pts = data[point_key]
        if label_column is not None:
            if y is not None:
                raise DataError(path, f"both label_column and array {y_key!r} given")
            x, y = split_label_column(x, label_column, path)
        if y is not None:
            y = np.asarray(y).reshape(-1)
            if len(y) != len(x):
                raise DataError(path, f"{len(y)} labels ({y_key!r}) for {len(x)} series")
        with np.errstate(over="ignore"):  # beyond float32's range -> inf: found by SignalDataset
            return x.astype(np.float32), y, pts
