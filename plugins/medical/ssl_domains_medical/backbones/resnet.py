"""MONAI ResNet encoder (2-D / 3-D) laid out like MedicalNet, so its weights convert.

Chen, Ma and Zheng, "Med3D: Transfer learning for 3D medical image analysis", arXiv:1904.00625
(MedicalNet). Parameter names are MONAI's ``ResNet`` names (``conv1``, ``bn1``,
``layer1.0.conv1`` ...), which are MedicalNet's once its ``module.`` prefix is stripped.
"""

from __future__ import annotations

import torch
from monai.networks.nets import ResNet

from ssl_domains.contracts import Example, InputSpec
from ssl_domains.registry import component

__all__ = ["ResNetEncoder", "RESNET_LAYOUTS"]

#: depth -> (block type, blocks per stage), as in He et al. and MedicalNet.
RESNET_LAYOUTS: dict[int, tuple[str, list[int]]] = {
    10: ("basic", [1, 1, 1, 1]),
    18: ("basic", [2, 2, 2, 2]),
    34: ("basic", [3, 4, 6, 3]),
    50: ("bottleneck", [3, 4, 6, 3]),
}


@component(
    "resnet_encoder",
    description="MONAI ResNet-10/18/34/50 encoder, 2-D or 3-D (MedicalNet weights convert)",
    modalities=("image",),
    dims=(2, 3),
    examples=[
        Example({"spatial_dims": 2, "depth": 10, "width": 8, "stem_stride": 1,
                 "stem_kernel": 3, "max_pool": False}, input_shape=(1, 28, 28)),
        Example({"spatial_dims": 3, "depth": 10, "width": 4, "stem_stride": 2},
                input_shape=(1, 16, 16, 16)),
    ],
)
class ResNetEncoder(ResNet):
    """ResNet without its classification layer; features are globally average-pooled.

    The defaults suit small 2-D images such as 28x28 MedMNIST (3x3 stem, stride 1, no max
    pool). For MedicalNet weights use ``spatial_dims=3, width=64, stem_kernel=7,
    stem_stride=2, max_pool=True`` and the depth of the checkpoint; MedicalNet's ResNet-18/34
    use ``shortcut_type="A"`` (parameter-free shortcuts), ResNet-10/50 ``"B"``.

    Args:
        spatial_dims: 2 or 3.
        in_channels: Input channels.
        depth: 10, 18, 34 or 50 (see :data:`RESNET_LAYOUTS`).
        width: Channels of the first stage; stages have ``width * (1, 2, 4, 8)``.
        stem_kernel: Kernel size of the first convolution.
        stem_stride: Stride of the first convolution.
        max_pool: Max-pool (stride 2) after the stem.
        shortcut_type: ``"B"`` (1x1 conv + norm when the shape changes) or ``"A"`` (pooling
            and zero padding, no parameters).
        bias_downsample: Bias in the shortcut convolution (MedicalNet: False).
        norm: MONAI norm name (``"batch"``, ``"instance"``, ``"group"`` ...).

    Raises:
        ValueError: Unknown depth or spatial_dims.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        depth: int = 18,
        width: int = 32,
        stem_kernel: int = 3,
        stem_stride: int = 1,
        max_pool: bool = False,
        shortcut_type: str = "B",
        bias_downsample: bool = False,
        norm: str | tuple = "batch",
    ) -> None:
        if depth not in RESNET_LAYOUTS:
            raise ValueError(f"resnet_encoder depth must be one of {sorted(RESNET_LAYOUTS)}, "
                             f"got {depth}")
        if spatial_dims not in (2, 3):
            raise ValueError(f"resnet_encoder spatial_dims must be 2 or 3, got {spatial_dims}")
        block, layers = RESNET_LAYOUTS[depth]
        widths = [width * m for m in (1, 2, 4, 8)]
        super().__init__(
            block=block,
            layers=layers,
            block_inplanes=widths,
            spatial_dims=spatial_dims,
            n_input_channels=in_channels,
            conv1_t_size=stem_kernel,
            conv1_t_stride=stem_stride,
            no_max_pool=not max_pool,
            shortcut_type=shortcut_type,
            bias_downsample=bias_downsample,
            feed_forward=False,
            norm=norm,
        )
        expansion = 4 if block == "bottleneck" else 1
        self.depth = depth
        self.num_features = widths[-1] * expansion
        self.pyramid_channels = [widths[0]] + [w * expansion for w in widths]
        pooled = stem_stride * (2 if max_pool else 1)
        self.pyramid_strides = [stem_stride, pooled, pooled * 2, pooled * 4, pooled * 8]
        self.input_spec = InputSpec(modality="image", dims=spatial_dims, channels=in_channels)

    def forward_pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps after the stem and after each of the four stages (finest first)."""
        x = self.act(self.bn1(self.conv1(x)))
        maps = [x]
        if not self.no_max_pool:
            x = self.maxpool(x)
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
            maps.append(x)
        return maps

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled last-stage features ``[B, num_features]``."""
        return self.forward(x)
