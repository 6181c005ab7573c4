"""The dataset fingerprint: a voxel grid and a patch size planned from the data itself, as
nnU-Net plans them, within a compute budget (``spacing: auto``, ``patch_size: auto``).

One recipe then serves datasets of very different scales (0.7 mm lung-nodule crops, 1 x 1 x 3 mm
limb MR, whole-body CT) without a per-dataset choice of grid or patch:

- **Spacing.** The median voxel size per axis over the cases. When the data are anisotropic
  (the coarsest median axis more than 3x the finest), that axis takes the 10th percentile of
  its spacings (nnU-Net's rule: fewer cases are interpolated across thick slices). When the
  median case on that grid has more voxels than ``max_voxels``, the finest axes are coarsened
  step by step (x1.03, never beyond the coarsest; then all together), as nnU-Net plans its
  low-resolution stage, so that whole cases stay affordable for a sliding window on a CPU.
- **Patch.** The median case's shape on that grid, each axis rounded up to a multiple of
  ``divisor`` (the encoder's total downsampling), then the largest axis cut by ``divisor``
  until the patch has at most ``patch_voxels`` voxels.

Pure functions of the cases' spacings and shapes: the loaders read them (headers or volumes)
and pass the plan on to validation, test and prediction data through the training data's
``stats``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["ANISOTROPY", "MAX_VOXELS", "PATCH_VOXELS", "plan_patch", "plan_spacing", "median_shape"]

#: A dataset is anisotropic when its coarsest median spacing is more than this times the finest.
ANISOTROPY = 3.0
#: Voxels of the median case on the planned grid, at most (about 48^3: a sliding window over a
#: whole case takes seconds on one CPU core).
MAX_VOXELS = 48 ** 3
#: Voxels of a training patch, at most (32^3: a batch of 4 trains on one CPU core).
PATCH_VOXELS = 32 ** 3
#: Step by which the finest axes are coarsened to meet ``max_voxels``.
STEP = 1.03


def median_shape(spacings: Any, shapes: Any, target: Sequence[float]) -> np.ndarray:
    """Median over cases of each case's shape resampled to ``target`` spacing (``spacings``
    and ``shapes``: one row per case)."""
    sp, sh = np.asarray(spacings, dtype=float), np.asarray(shapes, dtype=float)
    return np.median(sh * sp / np.asarray(target, dtype=float), axis=0)


def plan_spacing(spacings: Sequence[Sequence[float]], shapes: Sequence[Sequence[int]], *,
                 max_voxels: int = MAX_VOXELS) -> list[float]:
    """The planned voxel size (mm per axis) of cases with these voxel ``spacings`` and
    ``shapes`` (one row per case, axes in the loader's order).

    Raises:
        ValueError: No case, rows of different lengths, or a non-positive spacing.
    """
    sp = np.asarray(spacings, dtype=float)
    sh = np.asarray(shapes, dtype=float)
    if sp.ndim != 2 or not len(sp) or sp.shape != sh.shape:
        raise ValueError(f"a fingerprint needs one spacing and one shape per case, with as many "
                         f"axes; got spacings {sp.shape} and shapes {sh.shape}")
    if not np.all(np.isfinite(sp)) or (sp <= 0).any():
        raise ValueError("a fingerprint needs positive, finite voxel spacings")
    target = np.median(sp, axis=0)
    coarse = int(np.argmax(target))
    if target[coarse] > ANISOTROPY * target.min():
        target[coarse] = float(np.percentile(sp[:, coarse], 10))
    while np.prod(median_shape(sp, sh, target)) > max_voxels:
        top = target.max()
        fine = target < top
        if fine.any():
            target[fine] = np.minimum(target[fine] * STEP, top)
        else:
            target = target * STEP
    return [round(float(v), 4) for v in target]


def plan_patch(shape: Sequence[float] | np.ndarray, *, patch_voxels: int = PATCH_VOXELS, divisor: int = 8,
               smallest: int = 16) -> list[int]:
    """The planned patch of cases whose median shape (on the planned grid) is ``shape``:
    each axis at least ``smallest`` and a multiple of ``divisor``; the largest axis cut first.

    Raises:
        ValueError: A budget below one patch of ``smallest`` per axis.
    """
    dims = len(shape)
    if patch_voxels < smallest ** dims:
        raise ValueError(f"patch_voxels {patch_voxels} is below the smallest patch "
                         f"({smallest}^{dims} = {smallest ** dims})")
    patch = [max(smallest, divisor * math.ceil(float(s) / divisor)) for s in shape]
    while math.prod(patch) > patch_voxels:
        axis = int(np.argmax(patch))
        patch[axis] = max(smallest, patch[axis] - divisor)
    return patch


def describe(plan: dict[str, Any]) -> str:
    """One line for the log: the planned grid and patch."""
    parts = []
    if plan.get("spacing") is not None:
        parts.append("spacing " + " x ".join(f"{v:g}" for v in plan["spacing"]) + " mm")
    if plan.get("patch_size") is not None:
        parts.append("patch " + " x ".join(str(v) for v in plan["patch_size"]))
    if plan.get("cases"):
        parts.append(f"from {plan['cases']} case(s)")
    return ", ".join(parts)
