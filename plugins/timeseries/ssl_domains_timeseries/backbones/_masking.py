"""Missing-value handling shared by the signal backbones: observed masks and instance statistics."""

from __future__ import annotations

import torch


def observed_and_filled(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a signal with NaN for missing values into (zero-filled values, observed mask).

    Args:
        x: Signal ``[B, C, T]``; NaN (or inf) marks a missing value.

    Returns:
        ``(filled, observed)``: ``filled`` has 0 where a value is missing; ``observed`` is a
        float tensor (1 = observed) of the same shape.
    """
    observed = torch.isfinite(x)
    filled = torch.where(observed, x, torch.zeros((), dtype=x.dtype, device=x.device))
    return filled, observed.to(x.dtype)


def instance_stats(
    filled: torch.Tensor, observed: torch.Tensor, eps: float = 1e-5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation over observed time points, per item and channel.

    A channel with no observed point gets mean 0 and std 1.

    Args:
        filled: Zero-filled signal ``[B, C, T]``.
        observed: Observed mask (1 = observed), same shape.
        eps: Added to the variance.

    Returns:
        ``(mean, std)``, each ``[B, C, 1]``.
    """
    count = observed.sum(-1, keepdim=True)
    mean = (filled * observed).sum(-1, keepdim=True) / count.clamp(min=1)
    var = (((filled - mean) * observed) ** 2).sum(-1, keepdim=True) / count.clamp(min=1)
    std = torch.where(count > 1, torch.sqrt(var + eps), torch.ones_like(var))
    return mean, std


def scale_features(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Level and scale of each item and channel: ``asinh(mean)`` and ``log(std)``, ``[B, C, 2]``.

    What instance normalisation takes away, in units a network can use: ``log(std)`` turns an
    amplitude *ratio* into the same shift on any unit scale (twice the amplitude is +0.69);
    ``asinh`` is the identity near 0 and logarithmic far from it, so offsets are kept in full on
    standardised data (a loader's ``normalize: global``) and compressed, not lost, on raw units.

    Args:
        mean: ``[B, C, 1]`` from :func:`instance_stats`.
        std: ``[B, C, 1]`` from :func:`instance_stats`.
    """
    return torch.cat([torch.asinh(mean), torch.log(std)], dim=-1)


def standardized_input(
    x: torch.Tensor, in_channels: int, name: str, instance_norm: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """A backbone's input checked, zero-filled where missing and (optionally) standardised.

    Args:
        x: Signal ``[B, in_channels, T]``; NaN marks a missing value.
        in_channels: The channels the backbone takes.
        name: The backbone's registered name (for the error).
        instance_norm: Standardise each item and channel over its observed points.

    Returns:
        ``(filled, observed, scale)``: the zero-filled (with ``instance_norm`` also
        standardised) signal, its observed mask, and :func:`scale_features` ``[B, C, 2]`` of
        what standardising took away (None without ``instance_norm``).

    Raises:
        ValueError: Wrong input shape.
    """
    if x.ndim != 3 or x.shape[1] != in_channels:
        raise ValueError(f"{name} expects [B, {in_channels}, T], got {tuple(x.shape)}")
    filled, observed = observed_and_filled(x.float())
    if not instance_norm:
        return filled, observed, None
    mean, std = instance_stats(filled, observed)
    return (filled - mean) / std * observed, observed, scale_features(mean, std)


def signal_from_batch(batch: dict, key: str = "signal") -> torch.Tensor:
    """The batch's signal ``[B, C, T]`` as float with NaN wherever a value is missing.

    A ``"mask"`` entry (True = observed) is applied when present; without one, NaNs already in
    the signal mark the missing values.
    """
    x = batch[key].float()
    mask = batch.get("mask")
    if mask is not None:
        x = torch.where(mask.bool(), x, torch.full((), float("nan"), device=x.device))
    return x
