"""Dense signal decoder shared by the signal pretext tasks: backbone -> prediction ``[B, C, T]``.

Which head is used depends on what the backbone offers:

- ``forward_patches(x) -> [B, C, N, D]`` with ``patchify``/``unpatchify`` (``patch_transformer``):
  a linear map from each token to its patch's values, overlapping patches averaged;
- ``forward_sequence(x) -> [B, F, T]`` with ``sequence_features`` (``tcn``): a 1x1 convolution;
- otherwise pooled ``forward_features(x) -> [B, num_features]``: a linear map to all ``C * T``
  values, which needs a fixed length (``input_length`` or the backbone's ``input_shape``).
"""

from __future__ import annotations

import torch
from torch import nn

from ssl_domains.errors import IncompatibleError


class SignalDecoder(nn.Module):
    """Predict every time point of a signal from a backbone's features.

    Args:
        backbone: A signal backbone (``input_spec.modality == "signal"``).
        input_length: Series length, needed only for backbones with pooled features alone.
        task: Name of the pretext task, for error messages.

    Raises:
        IncompatibleError: Not a signal backbone, or a pooled-only backbone without a known
            input length.
    """

    def __init__(
        self, backbone: nn.Module, input_length: int | None = None, task: str = "pretext task"
    ) -> None:
        super().__init__()
        spec = backbone.input_spec
        if spec.modality != "signal" or spec.dims != 1:
            raise IncompatibleError(
                f"{task} needs a 1-D signal backbone; {type(backbone).__name__} takes "
                f"{spec.modality} with {spec.dims} spatial dims"
            )
        self.channels = spec.channels
        if hasattr(backbone, "forward_patches"):
            self.mode = "patches"
            self.head: nn.Module = nn.Linear(int(backbone.d_model), int(backbone.patch_len))
            self.length = None
        elif hasattr(backbone, "forward_sequence"):
            self.mode = "sequence"
            self.head = nn.Conv1d(int(backbone.sequence_features), self.channels, 1)
            self.length = None
        else:
            shape = getattr(backbone, "input_shape", None)
            length = input_length or (int(shape[-1]) if shape else None)
            if not length:
                raise IncompatibleError(
                    f"{task}: backbone {type(backbone).__name__} has neither forward_patches "
                    "nor forward_sequence; pass input_length=<series length> to decode "
                    "from its pooled features"
                )
            self.mode = "pooled"
            self.length = int(length)
            self.head = nn.Linear(int(backbone.num_features), self.channels * self.length)

    def forward(self, backbone: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Prediction ``[B, C, T]`` for input ``x`` ``[B, C, T]`` (NaN = missing/hidden).

        Raises:
            IncompatibleError: Pooled mode and ``T`` differs from the fixed length.
        """
        if self.mode == "patches":
            values = self.head(backbone.forward_patches(x))
            return backbone.unpatchify(values, x.shape[-1])
        if self.mode == "sequence":
            return self.head(backbone.forward_sequence(x))
        if x.shape[-1] != self.length:
            raise IncompatibleError(
                f"decoder built for length {self.length}, got a series of length {x.shape[-1]}"
            )
        out = self.head(backbone.forward_features(x))
        return out.view(x.shape[0], self.channels, self.length)


def standardise(
    x: torch.Tensor, visible: torch.Tensor, eps: float = 1e-5
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Standardise each item and channel with the mean/std of its *visible* points.

    Pretext losses are computed in these units, so series on different scales weigh alike.

    Args:
        x: Signal ``[B, C, T]`` (may hold NaN).
        visible: Bool mask of the points the model sees, same shape.
        eps: Added to the variance.

    Returns:
        ``(x_std, mean, std)``; ``x_std`` keeps NaN where ``x`` has NaN; mean/std ``[B, C, 1]``.
    """
    ok = visible & torch.isfinite(x)
    filled = torch.where(ok, x, torch.zeros((), dtype=x.dtype, device=x.device))
    count = ok.sum(-1, keepdim=True)
    mean = filled.sum(-1, keepdim=True) / count.clamp(min=1)
    var = (torch.where(ok, filled - mean, 0.0) ** 2).sum(-1, keepdim=True) / count.clamp(min=1)
    std = torch.where(count > 1, torch.sqrt(var + eps), torch.ones_like(var))
    return (x - mean) / std, mean, std


def masked_error(
    pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, loss: str = "mse"
) -> torch.Tensor:
    """Per-item mean error over ``valid`` points (NaN-safe); items with none give 0.

    Args:
        pred: Prediction ``[B, ...]``.
        target: Target, same shape (may hold NaN where not valid).
        valid: Bool mask of the points to score.
        loss: ``"mse"`` or ``"mae"``.

    Returns:
        ``[B]`` errors.
    """
    diff = pred - torch.where(valid, target, pred.detach())
    err = diff.pow(2) if loss == "mse" else diff.abs()
    err = torch.where(valid, err, torch.zeros((), dtype=err.dtype, device=err.device))
    dims = tuple(range(1, err.ndim))
    return err.sum(dims) / valid.sum(dims).clamp(min=1)
