"""PyTorch ``.pt`` dicts of ``samples`` ``[N, C, T]`` and ``labels`` ``[N]`` (TS-TCC / TS2Vec
style), read with ``weights_only=True``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

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

__all__ = ["TorchDictDataset"]


def _as_numpy(value: Any, path: Path, key: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError):
        raise DataError(path, f"entry {key!r} is not an array ({type(value).__name__})") from None


@component(
    "torch_dict",
    description="Series from .pt dicts {'samples': [N,C,T], 'labels': [N]} (weights_only load)",
    modalities=("signal",),
    dims=(1,),
    examples=[Example({"path": "train.pt", "window": None})],
    example_data="ssl_domains_timeseries.loaders.examples:write_torch_dict_example",
)
@windowed(omit=("label_rule", "point_labels", "group_length"))  # whole-series labels only
class TorchDictDataset(SignalDataset):
    """Series stored as a PyTorch dict, one item per series (or windows of them).

    Args:
        path: ``.pt``/``.pth`` file, folder of them, or a list (concatenated in order).
        samples_key: Key of the series ``[N, C, T]`` (or ``[N, T]``).
        labels_key: Key of the labels ``[N]``; an absent key means unlabeled data.
        channels_last: Samples are ``[N, T, C]``.
        label_map: ``{raw label: int}``.
        positive_classes: Raw labels that become 1 (others 0).

    Raises:
        DataError: Unreadable file (including pickled objects refused by ``weights_only``),
            not a dict, missing ``samples_key``, label count mismatch.
    """

    def __init__(
        self,
        path: str | Sequence[str],
        samples_key: str = "samples",
        labels_key: str = "labels",
        channels_last: bool = False,
        label_map: Mapping[Any, int] | None = None,
        positive_classes: Sequence[Any] | None = None,
        *,
        spec: WindowSpec,
    ) -> None:
        files = resolve_files(path, (".pt", ".pth"))
        recordings = labeled_array_recordings(
            (self._read(f, samples_key, labels_key, channels_last) for f in files),
            path,
            label_map,
            positive_classes,
        )
        super().__init__(recordings, spec, source=files_source(files, path))

    @staticmethod
    def _read(
        path: Path, samples_key: str, labels_key: str, channels_last: bool
    ) -> tuple[Path, np.ndarray, np.ndarray | None, None]:
        """``(path, samples [N, C, T], raw labels or None, None)`` of one file."""
        try:
            raw = torch.load(path, weights_only=True, map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - torch raises many types (UnpicklingError, ...)
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(path, f"cannot read with weights_only=True: {msg}") from None
        if not isinstance(raw, Mapping):
            raise DataError(path, f"expected a dict with {samples_key!r}, got {type(raw).__name__}")
        if samples_key not in raw:
            raise DataError(path, f"no entry {samples_key!r} (has: {sorted(map(str, raw))})")
        with np.errstate(over="ignore"):  # beyond float32's range -> inf: found by SignalDataset
            x = _as_numpy(raw[samples_key], path, samples_key).astype(np.float32)
        if x.size == 0:
            raise DataError(path, f"{samples_key!r} is empty")
        y = None
        if labels_key in raw:
            y = _as_numpy(raw[labels_key], path, labels_key).reshape(-1)
            if len(y) != len(x):
                raise DataError(path, f"{len(y)} labels ({labels_key!r}) for {len(x)} samples")
        if channels_last and x.ndim == 3:
            x = np.swapaxes(x, 1, 2)
        if x.ndim == 2:
            x = x[:, None]
        if x.ndim != 3:
            raise DataError(path, f"{samples_key!r} has shape {x.shape}; expected [N, C, T]")
        return path, x, y, None
