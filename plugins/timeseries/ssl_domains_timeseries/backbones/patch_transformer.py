"""Channel-independent patch Transformer encoder for signals (PatchTST-style).

Nie, Nguyen, Sinthong, Kalagnanam, "A Time Series is Worth 64 Words: Long-term Forecasting
with Transformers", ICLR 2023.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ssl_domains.contracts import Example, InputSpec
from ssl_domains.registry import component
from ssl_domains_timeseries.backbones._masking import standardized_input


@component(
    "patch_transformer",
    description="PatchTST-style channel-independent patch Transformer encoder (NaN-aware)",
    modalities=("signal",),
    dims=(1,),
    examples=[
        Example({"in_channels": 1, "patch_len": 8, "stride": 8, "d_model": 16, "depth": 1,
                 "heads": 2}, input_shape=(1, 64)),
        Example({"in_channels": 3, "patch_len": 8, "stride": 4, "d_model": 16, "depth": 1,
                 "heads": 2, "pool": "concat"}, input_shape=(3, 50)),
    ],
)
class PatchTransformer(nn.Module):
    """Cut each channel into patches, embed them, and encode each channel's patch sequence.

    Every channel is encoded separately with shared weights (channel independence). A patch
    is embedded from its values *and* its observed mask, so missing values (NaN) never enter
    the arithmetic: they are zero-filled and flagged. With ``instance_norm`` each channel of
    each item is first standardised with the mean/std of its observed points (RevIN without
    the affine part, Kim et al., ICLR 2022). With ``keep_scale`` (default) what that takes
    away comes back as a learned embedding of the channel's ``asinh(mean)`` and ``log(std)``
    added to each of its tokens, so amplitude and offset still separate classes while the
    patch values stay standardised (the pretext losses are computed in those units).

    Pooled features (``forward_features``): the mean over patches of the final tokens, then
    over channels (``pool="mean"``, ``num_features = d_model``) or concatenated across channels
    (``pool="concat"``, ``num_features = d_model * in_channels``; keeps which channel is which).

    Sequence outputs for pretext tasks: :meth:`forward_patches` gives tokens
    ``[B, C, N, d_model]``; :meth:`patchify`/:meth:`unpatchify` map signals to patches and back.

    Args:
        in_channels: Input channels.
        patch_len: Time points per patch.
        stride: Step between patch starts (``stride == patch_len``: no overlap).
        d_model: Token width.
        depth: Transformer layers.
        heads: Attention heads (must divide ``d_model``).
        mlp_ratio: Feed-forward width as a multiple of ``d_model``.
        dropout: Dropout in attention and feed-forward layers.
        instance_norm: Standardise each item and channel over its observed points first.
        keep_scale: With ``instance_norm``, add an embedding of each channel's level and
            scale (``asinh(mean)``, ``log(std)`` of its observed points) to its tokens.
        pool: ``"mean"`` or ``"concat"`` across channels.
        max_patches: Longest patch sequence (size of the learned positional embedding).

    Raises:
        ValueError: Bad sizes or an unknown ``pool``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        patch_len: int = 16,
        stride: int = 8,
        d_model: int = 128,
        depth: int = 3,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        dropout: float = 0.1,
        instance_norm: bool = True,
        keep_scale: bool = True,
        pool: str = "mean",
        max_patches: int = 512,
    ) -> None:
        super().__init__()
        if patch_len < 1 or stride < 1:
            raise ValueError(f"patch_len and stride must be >= 1, got {patch_len}, {stride}")
        if d_model % heads:
            raise ValueError(f"heads ({heads}) must divide d_model ({d_model})")
        if pool not in ("mean", "concat"):
            raise ValueError(f"pool must be 'mean' or 'concat', got {pool!r}")
        self.input_spec = InputSpec("signal", 1, in_channels)
        self.in_channels = in_channels
        self.patch_len = patch_len
        self.stride = stride
        self.d_model = d_model
        self.instance_norm = instance_norm
        self.keep_scale = keep_scale and instance_norm
        self.pool = pool
        self.max_patches = max_patches
        self.num_features = d_model * (in_channels if pool == "concat" else 1)

        self.embed = nn.Linear(2 * patch_len, d_model)
        # level and scale of the channel -> a shift of all its tokens (random init on purpose:
        # pre-training sees standardised inputs only, and a frozen backbone still passes them on)
        self.scale_embed = nn.Linear(2, d_model) if self.keep_scale else None
        self.pos_embed = nn.Parameter(torch.zeros(1, max_patches, d_model))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            d_model, heads, int(d_model * mlp_ratio), dropout,
            activation="gelu", batch_first=True, norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)

    def num_patches(self, length: int) -> int:
        """Patches covering ``length`` time points (the last one padded with missing values)."""
        return max(1, math.ceil((length - self.patch_len) / self.stride) + 1)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """Signal ``[B, C, T]`` -> patches ``[B, C, N, patch_len]`` (padding is NaN = missing)."""
        n = self.num_patches(x.shape[-1])
        pad = (n - 1) * self.stride + self.patch_len - x.shape[-1]
        if pad > 0:
            x = F.pad(x, (0, pad), value=float("nan"))
        return x.unfold(-1, self.patch_len, self.stride)

    def unpatchify(self, patches: torch.Tensor, length: int) -> torch.Tensor:
        """Patches ``[B, C, N, patch_len]`` -> signal ``[B, C, length]``; overlaps are averaged."""
        b, c, n, p = patches.shape
        total = (n - 1) * self.stride + p
        cols = patches.reshape(b * c, n, p).transpose(1, 2)  # [BC, P, N]
        summed = F.fold(cols, (1, total), (1, p), stride=(1, self.stride))
        counts = F.fold(torch.ones_like(cols), (1, total), (1, p), stride=(1, self.stride))
        return (summed / counts).reshape(b, c, total)[..., :length]

    def forward_patches(self, x: torch.Tensor) -> torch.Tensor:
        """Final tokens ``[B, C, N, d_model]`` of a signal ``[B, C, T]`` (NaN = missing).

        Raises:
            ValueError: Wrong channel count, or more than ``max_patches`` patches.
        """
        filled, observed, scale = standardized_input(
            x, self.in_channels, "patch_transformer", self.instance_norm
        )
        shift = None
        if self.scale_embed is not None and scale is not None:
            shift = self.scale_embed(scale)[:, :, None, :]  # [B, C, 1, D]
        values = self.patchify(filled).nan_to_num(0.0)  # padding only
        seen = self.patchify(observed).nan_to_num(0.0)
        b, c, n, _ = values.shape
        if n > self.max_patches:
            raise ValueError(
                f"{n} patches exceed max_patches={self.max_patches}; raise max_patches, "
                "patch_len or stride, or use shorter windows"
            )
        tokens = self.embed(torch.cat([values, seen], dim=-1))
        if shift is not None:
            tokens = tokens + shift
        tokens = tokens.reshape(b * c, n, -1)
        tokens = self.drop(tokens + self.pos_embed[:, :n])
        tokens = self.norm(self.encoder(tokens))
        return tokens.reshape(b, c, n, -1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``[B, num_features]`` (see the class docstring)."""
        per_channel = self.forward_patches(x).mean(dim=2)  # [B, C, D]
        if self.pool == "concat":
            return per_channel.flatten(1)
        return per_channel.mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)
