"""MONAI dictionary-transform pipelines for 2-D and 3-D medical images.

Two builders split the work the way caching needs it: :func:`preprocessing` is deterministic
(orientation, resampling, intensity, foreground crop, fixed size) and its output can be cached
once per volume; :func:`patch_sampler` draws random patches from it on every access. Both
work for 2-D (``dims=2``) and 3-D images; every random transform draws from its own
``R`` state, so ``Compose.set_random_state(seed)`` reproduces a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from monai import transforms as mt

from ssl_domains.errors import ConfigError

__all__ = [
    "CT_WINDOWS",
    "resolve_intensity",
    "intensity_transforms",
    "preprocessing",
    "patch_sampler",
]

#: CT windows in Hounsfield units ``(lower, upper)``: level +- width / 2.
CT_WINDOWS: dict[str, tuple[float, float]] = {
    "soft_tissue": (-160.0, 240.0),  # W 400, L 40
    "abdomen": (-135.0, 215.0),  # W 350, L 40
    "mediastinum": (-125.0, 225.0),  # W 350, L 50
    "liver": (-45.0, 105.0),  # W 150, L 30
    "lung": (-1000.0, 400.0),  # W 1400, L -300
    "bone": (-500.0, 1300.0),  # W 1800, L 400
    "brain": (0.0, 80.0),  # W 80, L 40
    "full": (-1024.0, 3071.0),  # the whole 12-bit CT range
}

_RAS_LABELS = (("L", "R"), ("P", "A"), ("I", "S"))

#: Intensity specs besides window names: a ``(low, high)`` pair is a custom window.
_OTHER_INTENSITY = ("auto", "percentile", "none")


def resolve_intensity(intensity: Any, modality: str) -> Any:
    """Turn ``"auto"`` into a concrete spec: CT -> ``"soft_tissue"`` window, else ``"percentile"``."""
    if intensity == "auto":
        return "soft_tissue" if modality.upper() == "CT" else "percentile"
    return intensity


def intensity_transforms(
    keys: Sequence[str],
    intensity: Any,
    percentiles: tuple[float, float] = (1.0, 99.0),
) -> list[mt.MapTransform]:
    """Intensity normalisation to ``[0, 1]``.

    Args:
        keys: Image keys.
        intensity: A CT window name from :data:`CT_WINDOWS`, a ``(low, high)`` window in the
            image's units, ``"percentile"`` (MR-style: ``percentiles`` of each channel mapped to
            0 and 1, clipped), or ``"none"``/None.
        percentiles: Lower and upper percentile for ``"percentile"``.

    Raises:
        ConfigError: Unknown window name or malformed window.
    """
    if intensity is None or intensity == "none":
        return []
    if intensity == "percentile":
        lo, hi = percentiles
        return [mt.ScaleIntensityRangePercentilesd(keys, lower=lo, upper=hi, b_min=0.0, b_max=1.0,
                                                   clip=True, channel_wise=True)]
    if isinstance(intensity, str):
        if intensity not in CT_WINDOWS:
            raise ConfigError(f"unknown intensity {intensity!r}; use one of "
                              f"{sorted(CT_WINDOWS) + list(_OTHER_INTENSITY)} or a [low, high] window")
        lo, hi = CT_WINDOWS[intensity]
    else:
        try:
            lo, hi = (float(v) for v in intensity)
        except (TypeError, ValueError):
            raise ConfigError(f"intensity window must be [low, high], got {intensity!r}") from None
        if not hi > lo:
            raise ConfigError(f"intensity window needs low < high, got {intensity!r}")
    return [mt.ScaleIntensityRanged(keys, a_min=lo, a_max=hi, b_min=0.0, b_max=1.0, clip=True)]


def _size(value: int | Sequence[int], dims: int, what: str) -> tuple[int, ...]:
    size = (int(value),) * dims if isinstance(value, int) else tuple(int(v) for v in value)
    if len(size) != dims or min(size) < 1:
        raise ConfigError(f"{what} must be {dims} positive integers for {dims}-D images, got {value!r}")
    return size


def preprocessing(
    keys: Sequence[str] = ("image",),
    mask_key: str | None = None,
    *,
    dims: int = 3,
    orientation: str | None = "RAS",
    spacing: float | Sequence[float] | None = None,
    intensity: Any = None,
    percentiles: tuple[float, float] = (1.0, 99.0),
    crop_foreground: bool = False,
    spatial_size: int | Sequence[int] | None = None,
    resize_mode: str = "crop_or_pad",
) -> mt.Compose:
    """Deterministic preprocessing of channel-first MetaTensors (cache its output).

    Order: orientation -> resampling -> intensity -> foreground crop -> fixed size.

    Args:
        keys: Image keys (intensity applies to these only).
        mask_key: Optional mask key: resampled with nearest neighbour, cropped alongside.
        dims: Spatial dimensions (2 or 3).
        orientation: Axis codes (``"RAS"``; the first ``dims`` letters are used), or None.
        spacing: Target voxel size in mm (one number or one per axis), or None to keep.
        intensity: See :func:`intensity_transforms` (``"auto"`` must be resolved first).
        percentiles: For ``intensity="percentile"``.
        crop_foreground: Crop to the bounding box of voxels > 0 (after intensity scaling,
            i.e. above the window's lower bound).
        spatial_size: Fixed output size, or None.
        resize_mode: ``"crop_or_pad"`` (centre crop / symmetric zero pad, keeps spacing) or
            ``"resize"`` (interpolate to the size, changes spacing).

    Raises:
        ConfigError: Bad sizes, spacing, mode or intensity.
    """
    if dims not in (2, 3):
        raise ConfigError(f"dims must be 2 or 3, got {dims}")
    all_keys = [*keys, mask_key] if mask_key else list(keys)
    interp = ["bilinear"] * len(keys) + (["nearest"] if mask_key else [])
    steps: list[Any] = []
    if orientation:
        steps.append(mt.Orientationd(all_keys, axcodes=orientation[:dims], labels=_RAS_LABELS))
    if spacing is not None:
        pixdim = (float(spacing),) * dims if isinstance(spacing, int | float) else tuple(spacing)
        if len(pixdim) != dims or min(pixdim) <= 0:
            raise ConfigError(f"spacing must be {dims} positive numbers, got {spacing!r}")
        steps.append(mt.Spacingd(all_keys, pixdim=pixdim, mode=interp))
    steps.extend(intensity_transforms(keys, intensity, percentiles))
    if crop_foreground:
        steps.append(mt.CropForegroundd(all_keys, source_key=keys[0], allow_smaller=True))
    if spatial_size is not None:
        size = _size(spatial_size, dims, "spatial_size")
        if resize_mode == "crop_or_pad":
            steps.append(mt.ResizeWithPadOrCropd(all_keys, spatial_size=size))
        elif resize_mode == "resize":
            modes = ["area"] * len(keys) + (["nearest"] if mask_key else [])
            steps.append(mt.Resized(all_keys, spatial_size=size, mode=modes))
        else:
            raise ConfigError(f"resize_mode must be 'crop_or_pad' or 'resize', got {resize_mode!r}")
    steps.append(mt.EnsureTyped(all_keys, track_meta=True))
    return mt.Compose(steps)


def patch_sampler(
    keys: Sequence[str] = ("image",),
    patch_size: int | Sequence[int] = 32,
    *,
    dims: int = 3,
    num_samples: int = 1,
    label_key: str | None = None,
    pos: float = 1.0,
    neg: float = 1.0,
) -> mt.Compose:
    """Random patches (a list of ``num_samples`` dicts per input); small volumes are zero-padded.

    Args:
        keys: Keys to crop (images and masks alike).
        patch_size: Patch size (one number or one per axis).
        dims: Spatial dimensions (2 or 3).
        num_samples: Patches per call.
        label_key: A mask key: patches are then centred on foreground with probability
            ``pos / (pos + neg)`` (RandCropByPosNegLabeld); without it, uniform positions
            (RandSpatialCropSamplesd).
        pos: Weight of foreground-centred patches.
        neg: Weight of background-centred patches.

    Raises:
        ConfigError: Bad patch size or sample count.
    """
    size = _size(patch_size, dims, "patch_size")
    if num_samples < 1:
        raise ConfigError(f"num_samples must be >= 1, got {num_samples}")
    all_keys = list(dict.fromkeys([*keys, *([label_key] if label_key else [])]))
    steps: list[Any] = [mt.SpatialPadd(all_keys, spatial_size=size)]
    if label_key:
        steps.append(mt.RandCropByPosNegLabeld(all_keys, label_key=label_key, spatial_size=size,
                                               pos=pos, neg=neg, num_samples=num_samples,
                                               allow_smaller=True))
    else:
        steps.append(mt.RandSpatialCropSamplesd(all_keys, roi_size=size, num_samples=num_samples,
                                                random_size=False))
    return mt.Compose(steps)
