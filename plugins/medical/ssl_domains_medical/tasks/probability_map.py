"""Sliding-window tumor-probability maps from a patch classifier, case scores, NIfTI output."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from monai.inferers import sliding_window_inference

__all__ = ["probability_map", "case_score", "save_probability_map"]


def probability_map(
    score_patches: Callable[[torch.Tensor], torch.Tensor],
    volume: torch.Tensor,
    roi_size: Sequence[int] | int,
    overlap: float = 0.5,
    sw_batch_size: int = 16,
    mode: str = "gaussian",
) -> torch.Tensor:
    """Per-voxel tumor probability: every window's patch score, blended where windows overlap.

    Args:
        score_patches: Maps patches ``[B, C, *roi_size]`` to probabilities ``[B]``.
        volume: One image ``[C, *spatial]`` (2-D or 3-D).
        roi_size: Window size (the patch size the classifier was trained on).
        overlap: Fraction of overlap between neighbouring windows, in [0, 1).
        sw_batch_size: Windows scored at once.
        mode: MONAI blending, ``"gaussian"`` (centre-weighted) or ``"constant"``.

    Returns:
        ``[*spatial]`` float tensor in [0, 1], on the volume's grid.

    Raises:
        ValueError: ``volume`` is not ``[C, *spatial]`` with 2 or 3 spatial dims, or bad
            overlap.
    """
    if volume.ndim not in (3, 4):
        raise ValueError(f"probability_map expects one image [C, *spatial] with 2 or 3 spatial "
                         f"dims, got shape {tuple(volume.shape)}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    dims = volume.ndim - 1
    roi = [roi_size] * dims if isinstance(roi_size, int) else [int(r) for r in roi_size]

    def predictor(patches: torch.Tensor) -> torch.Tensor:
        p = score_patches(patches).float().view(-1, 1, *[1] * dims)
        return p.expand(-1, 1, *patches.shape[2:]).contiguous()

    with torch.no_grad():
        out = sliding_window_inference(volume[None].float(), roi, sw_batch_size, predictor,
                                       overlap=overlap, mode=mode, padding_mode="constant")
    return torch.as_tensor(out)[0, 0].clamp(0.0, 1.0)


def case_score(prob_map: torch.Tensor, method: str = "topk_mean",
               top_fraction: float = 0.01) -> float:
    """One tumor score per case from its probability map.

    Args:
        prob_map: ``[*spatial]`` probabilities.
        method: ``"max"`` or ``"topk_mean"`` (mean of the highest ``top_fraction`` voxels,
            less sensitive to a single noisy window).
        top_fraction: Fraction of voxels averaged by ``"topk_mean"``.

    Raises:
        ValueError: Unknown method.
    """
    flat = prob_map.reshape(-1).float()
    if method == "max":
        return float(flat.max())
    if method == "topk_mean":
        k = max(1, int(round(top_fraction * flat.numel())))
        return float(flat.topk(k).values.mean())
    raise ValueError(f"case score method must be 'max' or 'topk_mean', got {method!r}")


def save_probability_map(
    prob_map: torch.Tensor | np.ndarray, affine: np.ndarray | torch.Tensor, path: str | Path
) -> Path:
    """Write a probability map as NIfTI (float32) with the input image's affine.

    Args:
        prob_map: ``[*spatial]`` (2-D or 3-D) or ``[1, *spatial]`` for 3-D.
        affine: The 4x4 voxel-to-world (RAS) affine of the input image.
        path: Output ``.nii`` or ``.nii.gz``.

    Returns:
        The written path.

    Raises:
        ValueError: The affine is not 4x4 or the map has a channel axis of size > 1.
    """
    arr = np.asarray(prob_map.detach().cpu() if isinstance(prob_map, torch.Tensor) else prob_map,
                     dtype=np.float32)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim not in (2, 3):
        raise ValueError(f"probability map must be [*spatial] (2-D or 3-D), got {arr.shape}")
    aff = np.asarray(affine.cpu() if isinstance(affine, torch.Tensor) else affine, dtype=np.float64)
    if aff.shape != (4, 4):
        raise ValueError(f"affine must be 4x4, got {aff.shape}")
    img = nib.Nifti1Image(arr, aff)
    img.set_qform(aff, code=1)
    img.set_sform(aff, code=1)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(out))
    return out
