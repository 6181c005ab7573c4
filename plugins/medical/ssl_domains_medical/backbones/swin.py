"""MONAI Swin transformer encoder (2-D / 3-D), the ``swinViT`` half of MONAI's ``SwinUNETR``.

Liu et al., "Swin Transformer: hierarchical vision transformer using shifted windows", ICCV
2021; Tang et al., "Self-supervised pre-training of Swin transformers for 3D medical image
analysis", CVPR 2022 (SwinUNETR). The module *is* MONAI's ``SwinTransformer``, so its parameter
names (``patch_embed.*``, ``layers1.0.blocks.N.*``, ``layers1.0.downsample.*`` ...) are
``SwinUNETR``'s ``swinViT.*`` names without the prefix, and the self-supervised SwinUNETR
weights convert (see :mod:`ssl_domains_medical.conversion`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets.swin_unetr import SwinTransformer
from monai.utils import ensure_tuple_rep

from ssl_domains.contracts import Example, InputSpec
from ssl_domains.registry import component

__all__ = ["SwinEncoder"]

#: Stages of MONAI's SwinTransformer (its forward pass uses exactly ``layers1`` .. ``layers4``).
STAGES = 4


@component(
    "swin_encoder",
    description="MONAI Swin transformer (SwinUNETR's swinViT), 2-D or 3-D (SwinUNETR "
                "self-supervised weights convert)",
    modalities=("image",),
    dims=(2, 3),
    examples=[
        Example({"spatial_dims": 2, "feature_size": 12, "depths": (1, 1, 1, 1),
                 "num_heads": (3, 3, 3, 3), "window_size": 4}, input_shape=(1, 28, 28)),
        Example({"spatial_dims": 3, "feature_size": 12, "depths": (1, 1, 1, 1),
                 "num_heads": (3, 3, 3, 3), "window_size": 4}, input_shape=(1, 16, 16, 16)),
    ],
)
class SwinEncoder(SwinTransformer):
    """Shifted-window transformer in four stages; features are the pooled last stage.

    Any input size works (windows and patch merging pad), but sizes divisible by
    ``patch_size * 16`` avoid padding; SwinUNETR itself wants multiples of 32. The MONAI
    self-supervised weights (``model_swinvit.pt``) need ``spatial_dims=3, in_channels=1,
    feature_size=48, patch_size=2, window_size=7, depths=(2, 2, 2, 2),
    num_heads=(3, 6, 12, 24)`` (SwinUNETR's defaults apart from ``feature_size``).

    The pyramid has five maps: the patch embedding (``feature_size`` channels, stride
    ``patch_size``) and the output of each stage after its patch merging (channels and stride
    doubling each time), so ``num_features = 16 * feature_size``.

    Args:
        spatial_dims: 2 or 3.
        in_channels: Input channels.
        feature_size: Width of the patch embedding (SwinUNETR's ``feature_size``).
        depths: Transformer blocks in each of the 4 stages.
        num_heads: Attention heads in each stage; stage ``i`` has ``feature_size * 2**i``
            channels, which its heads must divide.
        window_size: Attention window (int or one per spatial dim).
        patch_size: Patch embedding size and stride (int or one per spatial dim).
        mlp_ratio: MLP width over the token width.
        qkv_bias: Bias in the attention projections.
        drop_rate: Dropout after the patch embedding and in the MLPs.
        attn_drop_rate: Dropout on the attention weights.
        drop_path_rate: Stochastic depth, rising linearly to this over the blocks.
        normalize: Layer-normalise each pyramid map over channels (parameter-free, as
            SwinUNETR does with ``normalize=True``).
        downsample: MONAI patch merging, ``"merging"`` (SwinUNETR's default) or
            ``"mergingv2"``.
        use_v2: SwinUNETR-v2 layout (a residual convolution block before each stage,
            ``layers1c`` .. ``layers4c``).
        use_checkpoint: Gradient checkpointing (less memory, slower).

    Raises:
        ValueError: Bad spatial_dims, not four stages, or heads that do not divide a stage's
            channels.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        feature_size: int = 24,
        depths: Sequence[int] = (2, 2, 2, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int | Sequence[int] = 7,
        patch_size: int | Sequence[int] = 2,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        normalize: bool = True,
        downsample: str = "merging",
        use_v2: bool = False,
        use_checkpoint: bool = False,
    ) -> None:
        if spatial_dims not in (2, 3):
            raise ValueError(f"swin_encoder spatial_dims must be 2 or 3, got {spatial_dims}")
        depths, num_heads = tuple(int(d) for d in depths), tuple(int(h) for h in num_heads)
        if len(depths) != STAGES or len(num_heads) != STAGES:
            raise ValueError(f"swin_encoder needs {STAGES} stages: depths {depths} and "
                             f"num_heads {num_heads} must have {STAGES} entries each")
        widths = [feature_size * 2**i for i in range(STAGES)]
        bad = [f"stage {i}: {w} channels, {h} heads"
               for i, (w, h) in enumerate(zip(widths, num_heads)) if w % h]
        if bad:
            raise ValueError(f"swin_encoder num_heads must divide each stage's channels "
                             f"(feature_size * 2**stage): {'; '.join(bad)}")
        window = tuple(int(s) for s in ensure_tuple_rep(window_size, spatial_dims))
        patch = tuple(int(s) for s in ensure_tuple_rep(patch_size, spatial_dims))
        super().__init__(
            in_chans=in_channels,
            embed_dim=feature_size,
            window_size=window,
            patch_size=patch,
            depths=depths,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            drop_rate=drop_rate,
            attn_drop_rate=attn_drop_rate,
            drop_path_rate=drop_path_rate,
            use_checkpoint=use_checkpoint,
            spatial_dims=spatial_dims,
            downsample=downsample,
            use_v2=use_v2,
        )
        self.normalize = normalize
        self.feature_size = feature_size
        self.pyramid_channels = [feature_size] + [2 * w for w in widths]
        self.pyramid_strides = [max(patch) * 2**i for i in range(STAGES + 1)]
        self.num_features = self.pyramid_channels[-1]
        self.input_spec = InputSpec(modality="image", dims=spatial_dims, channels=in_channels)

    def forward_pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The patch embedding and the output of each stage (finest first), as SwinUNETR's
        ``swinViT(x, normalize)`` returns them."""
        return list(super().forward(x, self.normalize))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled last map ``[B, num_features]``."""
        return self.forward_pyramid(x)[-1].flatten(2).mean(dim=2)
