"""The ``medmnist`` loader: MedMNIST ``.npz`` files (2-D 28..224 px and 3-D 28..64 voxel sets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ssl_domains.contracts import Example
from ssl_domains.errors import ConfigError, DataError
from ssl_domains.registry import component

__all__ = ["MedMNISTDataset"]

_SPLITS = ("train", "val", "test")


@component(
    "medmnist",
    description="MedMNIST .npz arrays (2-D or 3-D), one split or train+val, binary relabelling",
    modalities=("image",),
    dims=(2, 3),
    examples=[Example({"path": "../shared/data/breastmnist/breastmnist.npz", "split": "train",
                       "positive_label": 0})],
)
class MedMNISTDataset(Dataset):
    """Items ``{"image": [C, *spatial] float32 in [0, 1], "label": int, "meta": {...}}``.

    2-D sets give ``[1, H, W]`` (grey) or ``[3, H, W]`` (RGB); 3-D sets ``[1, D, H, W]``.
    ``meta`` has ``id`` (``"<split>-<index>"``), ``split`` and ``index``.

    Args:
        path: The ``.npz`` file (keys ``<split>_images`` and ``<split>_labels``).
        split: ``"train"``, ``"val"``, ``"test"``, or several joined by ``+``
            (``"train+val"``).
        positive_label: Binarise: items whose original label equals this become 1, all others
            0 (BreastMNIST: ``positive_label=0`` makes malignant = 1). None keeps the labels.
        unlabeled: Drop labels (``labels is None``; items have no ``"label"``), for pre-training.
        max_items: Keep only the first ``max_items`` (quick runs), or None for all.
        augment: Train-time augmentation (applied by the engine to training items only):
            random left-right flip and a random shift of up to ``max_shift`` pixels per axis
            (zero padded), drawn from torch's seeded RNG.
        max_shift: Largest shift in pixels.

    Raises:
        DataError: Missing/unreadable file, missing split, multi-label targets.
        ConfigError: Unknown split name.
    """

    def __init__(
        self,
        path: str,
        split: str = "train",
        positive_label: int | None = None,
        unlabeled: bool = False,
        max_items: int | None = None,
        augment: bool = False,
        max_shift: int = 2,
    ) -> None:
        self.path = Path(path)
        self.split = split
        self.positive_label = positive_label
        self.unlabeled = unlabeled
        self.max_items = max_items
        self.augment = augment
        self.max_shift = max_shift
        splits = [s.strip() for s in split.split("+")]
        bad = [s for s in splits if s not in _SPLITS]
        if bad or not splits:
            raise ConfigError(f"medmnist split {split!r}: use train, val, test or a '+' join "
                              "like 'train+val'")
        if not self.path.is_file():
            raise DataError(self.path, "file not found")
        images: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        ids: list[tuple[str, int]] = []
        try:
            with np.load(self.path) as z:
                for s in splits:
                    if f"{s}_images" not in z.files or f"{s}_labels" not in z.files:
                        raise DataError(self.path, f"no split {s!r} (keys: {sorted(z.files)})")
                    x, y = z[f"{s}_images"], z[f"{s}_labels"]
                    images.append(x)
                    labels.append(y.reshape(len(y), -1))
                    ids.extend((s, i) for i in range(len(x)))
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001 - numpy/zip errors
            raise DataError(self.path, f"unreadable .npz: {type(exc).__name__}: {exc}") from None
        x = np.concatenate(images)
        y = np.concatenate(labels)
        if y.shape[1] != 1:
            raise DataError(self.path, f"multi-label targets ({y.shape[1]} per image) are not "
                            "supported; use a single-label MedMNIST set")
        if max_items is not None:
            x, y, ids = x[:max_items], y[:max_items], ids[:max_items]
        self._ids = ids
        self.images = x  # uint8, [N, H, W], [N, H, W, 3] or [N, D, H, W]
        raw = y[:, 0].astype(np.int64)
        if positive_label is not None:
            raw = (raw == int(positive_label)).astype(np.int64)
        self.labels: list[int] | None = None if unlabeled else [int(v) for v in raw]
        self.dims = 2 if x.ndim == 3 or (x.ndim == 4 and x.shape[-1] in (3, 4)) else 3

    def __len__(self) -> int:
        return len(self.images)

    def augment_item(self, item: dict[str, Any]) -> dict[str, Any]:
        """Random flip + shift of a training item (identity unless ``augment``)."""
        if not self.augment:
            return item
        x = item["image"]
        if bool(torch.rand(()) < 0.5):
            x = x.flip(-1)
        s = self.max_shift
        if s > 0:
            shifts = torch.randint(-s, s + 1, (x.ndim - 1,)).tolist()
            padded = torch.nn.functional.pad(x, [s, s] * (x.ndim - 1))
            slices = [slice(None)] + [slice(s - d, s - d + n) for d, n in zip(reversed(shifts), x.shape[1:])]
            x = padded[tuple(slices)]
        return {**item, "image": x.contiguous()}

    def __getitem__(self, i: int) -> dict[str, Any]:
        arr = np.asarray(self.images[i], dtype=np.float32) / 255.0
        if self.dims == 2 and arr.ndim == 3:  # [H, W, 3] -> [3, H, W]
            arr = np.moveaxis(arr, -1, 0)
        else:
            arr = arr[None]
        split, index = self._ids[i]
        item: dict[str, Any] = {
            "image": torch.from_numpy(np.ascontiguousarray(arr)),
            "meta": {"id": f"{split}-{index}", "split": split, "index": index},
        }
        if self.labels is not None:
            item["label"] = self.labels[i]
        return item
