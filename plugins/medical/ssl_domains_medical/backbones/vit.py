"""MONAI Vision Transformer encoder (2-D / 3-D), laid out like MONAI's ``ViTAutoEnc`` encoder.

Dosovitskiy et al., "An image is worth 16x16 words", ICLR 2021. The parameter names
(``patch_embedding.*``, ``blocks.N.*``, ``norm.*``) are those of MONAI's ``ViT`` and of the
encoder half of ``ViTAutoEnc``, so the weights of MONAI's self-supervised ViTAutoEnc tutorial
load after dropping its decoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets import ViT
from monai.utils import ensure_tuple_rep

from ssl_domains.contracts import Example, InputSpec
from ssl_domains.registry import component

__all__ = ["ViTEncoder"]


@component(
    "vit_encoder",
    description="MONAI ViT encoder, 2-D or 3-D (MONAI ViTAutoEnc tutorial weights convert)",
    modalities=("image",),
    dims=(2, 3),
    examples=[
        Example({"spatial_dims": 3, "img_size": 16, "patch_size": 4, "hidden_size": 32,
                 "mlp_dim": 64, "num_layers": 2, "num_heads": 4}, input_shape=(1, 16, 16, 16)),
        Example({"spatial_dims": 2, "img_size": 28, "patch_size": 4, "hidden_size": 32,
                 "mlp_dim": 64, "num_layers": 2, "num_heads": 4}, input_shape=(1, 28, 28)),
    ],
)
class ViTEncoder(ViT):
    """Transformer over non-overlapping patches; features are the mean of the output tokens.

    Inputs must have exactly ``img_size``. MONAI's ViTAutoEnc tutorial used
    ``spatial_dims=3, img_size=96, patch_size=16, hidden_size=768, mlp_dim=3072,
    num_layers=12, num_heads=12``.

    Args:
        spatial_dims: 2 or 3.
        in_channels: Input channels.
        img_size: Input size (int or one per spatial dim).
        patch_size: Patch size (int or one per spatial dim); must divide ``img_size``.
        hidden_size: Token width (``num_features``).
        mlp_dim: Width of the transformer MLPs.
        num_layers: Transformer blocks.
        num_heads: Attention heads (must divide ``hidden_size``).
        proj_type: Patch projection, ``"conv"`` or ``"perceptron"``.
        dropout_rate: Dropout in the blocks.
        qkv_bias: Bias in the attention projections.

    Raises:
        ValueError: ``patch_size`` does not divide ``img_size``, or bad spatial_dims.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        img_size: int | Sequence[int] = 28,
        patch_size: int | Sequence[int] = 4,
        hidden_size: int = 192,
        mlp_dim: int = 768,
        num_layers: int = 6,
        num_heads: int = 6,
        proj_type: str = "conv",
        dropout_rate: float = 0.0,
        qkv_bias: bool = False,
    ) -> None:
        if spatial_dims not in (2, 3):
            raise ValueError(f"vit_encoder spatial_dims must be 2 or 3, got {spatial_dims}")
        img = tuple(int(s) for s in ensure_tuple_rep(img_size, spatial_dims))
        patch = tuple(int(s) for s in ensure_tuple_rep(patch_size, spatial_dims))
        if any(i % p for i, p in zip(img, patch)):
            raise ValueError(f"vit_encoder patch_size {patch} must divide img_size {img}")
        super().__init__(
            in_channels=in_channels,
            img_size=img,
            patch_size=patch,
            hidden_size=hidden_size,
            mlp_dim=mlp_dim,
            num_layers=num_layers,
            num_heads=num_heads,
            proj_type=proj_type,
            classification=False,
            dropout_rate=dropout_rate,
            spatial_dims=spatial_dims,
            qkv_bias=qkv_bias,
        )
        self.img_size = img
        self.patch_size = patch
        self.grid_size = tuple(i // p for i, p in zip(img, patch))
        self.input_shape = (in_channels, *img)
        self.num_features = hidden_size
        self.pyramid_channels = [hidden_size]
        self.pyramid_strides = [max(patch)]
        self.input_spec = InputSpec(modality="image", dims=spatial_dims, channels=in_channels)

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised output tokens ``[B, n_patches, hidden_size]``."""
        return super().forward(x)[0]

    def forward_pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The tokens as one feature map ``[B, hidden_size, *grid_size]``."""
        tokens = self.forward_tokens(x)
        return [tokens.transpose(1, 2).reshape(x.shape[0], -1, *self.grid_size)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of the output tokens ``[B, hidden_size]``."""
        return self.forward_tokens(x).mean(dim=1)
