"""Arrays from a ``.npz``/``.npy``/``.pt`` file as a dataset of dict items."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ssl_domains.contracts import LABEL, META, Example
from ssl_domains.errors import DataError
from ssl_domains.registry import component


@component(
    "arrays",
    description="Inputs (and optional labels) from one .npz/.npy/.pt file",
    modalities=("image", "signal"),
    dims=(1, 2, 3),
    examples=[Example({"path": "data.npz", "x_key": "x", "y_key": "y"})],
    example_data="ssl_domains.builtin.examples:write_arrays_example",
)
class ArrayDataset(Dataset):
    """Items ``{key: x[i], "label": y[i], "meta": {"index": i}}`` from an array file.

    Args:
        path: ``.npz`` (keys ``x_key``/``y_key``), ``.npy`` (inputs only) or ``.pt`` (dict).
        key: Batch key of the input: ``"image"`` or ``"signal"``.
        x_key: Name of the input array; shape ``[N, C, *spatial]`` or ``[N, *spatial]``
            (a channel axis is added).
        y_key: Name of the label array, or None for unlabeled data.
        spatial_dims: Spatial dimensions of one item (to decide whether a channel axis exists).
    """

    def __init__(
        self,
        path: str,
        key: str = "signal",
        x_key: str = "x",
        y_key: str | None = "y",
        spatial_dims: int = 1,
    ) -> None:
        self.path = Path(path)
        self.key = key
        self.x_key = x_key
        self.y_key = y_key
        self.spatial_dims = spatial_dims
        data = self._read()
        x = data[x_key]
        if x.ndim == spatial_dims + 1:
            x = x[:, None]
        if x.ndim != spatial_dims + 2:
            raise DataError(self.path, f"array {x_key!r} has shape {tuple(x.shape)}; expected "
                            f"[N, C, {spatial_dims} spatial dims]")
        self.x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        self.labels: list[int] | None = None
        if y_key is not None and y_key in data:
            y = np.asarray(data[y_key]).reshape(-1)
            if len(y) != len(self.x):
                raise DataError(self.path, f"{len(y)} labels for {len(self.x)} inputs")
            self.labels = [int(v) for v in y]

    def _read(self) -> dict[str, Any]:
        if not self.path.exists():
            raise DataError(self.path, "file not found")
        try:
            if self.path.suffix == ".npz":
                with np.load(self.path) as z:
                    data = {k: z[k] for k in z.files}
            elif self.path.suffix == ".npy":
                data = {self.x_key: np.load(self.path)}
            elif self.path.suffix == ".pt":
                raw = torch.load(self.path, weights_only=True, map_location="cpu")
                data = {k: np.asarray(v) for k, v in dict(raw).items()}
            else:
                raise DataError(self.path, "unsupported file type; use .npz, .npy or .pt")
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise DataError(self.path, f"cannot read: {type(exc).__name__}: {exc}") from None
        if self.x_key not in data:
            raise DataError(self.path, f"no array {self.x_key!r} (has: {sorted(data)})")
        return data

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item: dict[str, Any] = {self.key: self.x[i], META: {"index": i}}
        if self.labels is not None:
            item[LABEL] = self.labels[i]
        return item
