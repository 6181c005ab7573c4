"""Imaging backbones (2-D and 3-D), one family per module.

Every backbone is a :class:`~ssl_domains.contracts.Backbone` (``num_features``, ``input_spec``,
``forward_features(x) -> [B, num_features]``) and a :class:`~ssl_domains.contracts.PyramidBackbone`:
``forward_pyramid(x) -> list[Tensor]`` (feature maps from finest to coarsest, for the
encoder-decoders of the pretext tasks) and ``pyramid_channels`` / ``pyramid_strides`` (channels
and downsampling factor of each map).
"""

from __future__ import annotations

from ssl_domains_medical.backbones.resnet import ResNetEncoder
from ssl_domains_medical.backbones.swin import SwinEncoder
from ssl_domains_medical.backbones.unet import UNetEncoder
from ssl_domains_medical.backbones.vit import ViTEncoder

__all__ = ["ResNetEncoder", "SwinEncoder", "UNetEncoder", "ViTEncoder"]
