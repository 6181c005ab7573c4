"""The ``medmnist`` loader: MedMNIST ``.npz`` files (2-D 28..224 px and 3-D 28..64 voxel sets)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

from ssl_domains.contracts import Example
from ssl_domains.errors import ConfigError, DataError
from ssl_domains.registry import component

__all__ = ["MedMNISTDataset"]

_SPLITS = ("train", "val", "test")
#: Items resized per chunk at load time (bounds the float copy: 64 volumes of 64^3 = 64 MiB).
_RESIZE_CHUNK = 64


def _axes(value: int | Sequence[int] | None, name: str) -> list[int]:
    """An int or a sequence of ints as a list (None: empty).

    Raises:
        ConfigError: Anything else.
    """
    if value is None:
        return []
    items = [value] if isinstance(value, int) else value
    if not isinstance(items, Sequence) or isinstance(items, str) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in items):
        raise ConfigError(f"medmnist {name} {value!r}: expected an int or a list of ints")
    return [int(v) for v in items]


def resize_images(images: np.ndarray, size: Sequence[int], channel_last: bool) -> np.ndarray:
    """Resize a uint8 stack ``[N, *spatial]`` (or ``[N, H, W, C]``) to ``size``, kept uint8.

    Axes that shrink are box-averaged (``area``, i.e. anti-aliased), then axes that grow are
    (bi/tri)linearly interpolated; values are rounded back to uint8 (at most 0.5/255 off, the
    source's own quantisation). Works in chunks to bound memory.
    """
    size = tuple(int(n) for n in size)
    n = len(images)
    spatial = images.shape[1:-1] if channel_last else images.shape[1:]
    if tuple(spatial) == size:
        return images
    shrunk = tuple(min(a, b) for a, b in zip(spatial, size))
    mode = "bilinear" if len(size) == 2 else "trilinear"
    shape = (n, *size, images.shape[-1]) if channel_last else (n, *size)
    out = np.empty(shape, dtype=np.uint8)
    for start in range(0, n, _RESIZE_CHUNK):
        x = torch.from_numpy(np.asarray(images[start:start + _RESIZE_CHUNK])).float()
        x = x.movedim(-1, 1) if channel_last else x.unsqueeze(1)
        if shrunk != tuple(spatial):
            x = F.interpolate(x, size=shrunk, mode="area")
        if shrunk != size:
            x = F.interpolate(x, size=size, mode=mode, align_corners=False)
        x = x.round_().clamp_(0, 255).to(torch.uint8)
        x = x.movedim(1, -1) if channel_last else x.squeeze(1)
        out[start:start + len(x)] = x.numpy()
    return out


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
            Remapping happens here only, in the data, so training, metrics, thresholds and
            baselines all see the same labels (tasks take labels as they come).
        unlabeled: Drop labels (``labels is None``; items have no ``"label"``), for pre-training.
        max_items: Keep only the first ``max_items`` (quick runs), or None for all.
        augment: Train-time augmentation (applied by the engine to training items only):
            a random flip along each of ``flip_axes`` (probability 0.5 each) and a random shift
            of up to ``max_shift`` pixels per axis (zero padded), drawn from torch's seeded RNG.
        max_shift: Largest shift in pixels.
        flip_axes: Spatial axes that ``augment`` may flip (0 = first spatial axis, negative
            from the end), an int or a list; default: the last axis only (left-right). All
            three axes of a volume: ``[0, 1, 2]``. None: no flips.
        size: Resize every image to this spatial size (an int for every axis or one int per
            axis), e.g. ``32`` to pre-train on AdrenalMNIST3D at 32^3; labels are unchanged.
            Done once, at load time, on the whole uint8 stack (shrinking axes box-averaged,
            i.e. anti-aliased; growing axes interpolated (bi/tri)linearly; stored uint8 like
            the source). Chosen over resizing each item because that cost recurs every
            epoch: AdrenalMNIST3D train (1188 volumes, 64^3 -> 32^3, one thread) takes 2.0 s
            once (1.7 ms a volume) against 0.7 ms a volume in every epoch, so the single pass
            is cheaper from the third epoch on, and a shrunk stack also takes less memory.

    Raises:
        DataError: Missing/unreadable file, missing split, multi-label targets.
        ConfigError: Unknown split name; ``size`` or ``flip_axes`` not ints, a size below 1,
            or a count or axis that does not fit the images' dimensions.
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
        flip_axes: int | Sequence[int] | None = -1,
        size: int | Sequence[int] | None = None,
    ) -> None:
        self.path = Path(path)
        self.split = split
        self.positive_label = positive_label
        self.unlabeled = unlabeled
        self.max_items = max_items
        self.augment = augment
        self.max_shift = max_shift
        self.flip_axes = flip_axes
        self.size = size
        flips = _axes(flip_axes, "flip_axes")
        sizes = _axes(size, "size")
        if size is not None and (not sizes or any(n < 1 for n in sizes)):
            raise ConfigError(f"medmnist size {size!r}: sizes must be positive ints")
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
        self.dims = 2 if x.ndim == 3 or (x.ndim == 4 and x.shape[-1] in (3, 4)) else 3
        if any(not -self.dims <= a < self.dims for a in flips):
            raise ConfigError(f"medmnist flip_axes {flip_axes!r}: the spatial axes of these "
                              f"{self.dims}-D images are 0..{self.dims - 1} (or negative)")
        #: Tensor dims of an item ``[C, *spatial]`` that augmentation may flip, in draw order.
        self._flip_dims = list(dict.fromkeys(1 + a % self.dims for a in flips))
        if size is not None:
            if len(sizes) == 1:
                sizes = sizes * self.dims
            if len(sizes) != self.dims:
                raise ConfigError(f"medmnist size {size!r}: give one int or {self.dims} ints "
                                  f"for these {self.dims}-D images")
            x = resize_images(x, sizes, channel_last=self.dims == 2 and x.ndim == 4)
        self.images = x  # uint8, [N, H, W], [N, H, W, 3] or [N, D, H, W]
        raw = y[:, 0].astype(np.int64)
        if positive_label is not None:
            raw = (raw == int(positive_label)).astype(np.int64)
        self.labels: list[int] | None = None if unlabeled else [int(v) for v in raw]

    def __len__(self) -> int:
        return len(self.images)

    def augment_item(self, item: dict[str, Any]) -> dict[str, Any]:
        """Random flips (``flip_axes``) + shift of a training item (identity unless
        ``augment``)."""
        if not self.augment:
            return item
        x = item["image"]
        for dim in self._flip_dims:
            if bool(torch.rand(()) < 0.5):
                x = x.flip(dim)
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
