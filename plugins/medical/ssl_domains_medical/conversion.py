"""Foreign checkpoints mapped onto this plugin's backbones.

Recognised layouts (``source`` name, then the backbone they fit):

- ``monai_vitautoenc``: MONAI ``ViTAutoEnc`` (self-supervised tutorial weights) or ``ViT``:
  ``patch_embedding.*``, ``blocks.N.*``, ``norm.*`` -> ``vit_encoder``; the decoder
  (``conv3d_transpose*``) is dropped; position embeddings are interpolated to another grid.
- ``models_genesis``: Models Genesis ``UNet3D`` (Zhou et al., MedIA 2021):
  ``down_tr64 .. down_tr512`` -> ``unet_encoder`` levels 0..3; ``up_tr*``/``out_tr`` dropped.
- ``medicalnet``: MedicalNet ResNets (Chen et al., 2019): ``conv1``, ``bn1``, ``layerN.*`` ->
  ``resnet_encoder``; the segmentation head ``conv_seg`` is dropped.
- ``swin_unetr``: SwinUNETR self-supervised weights (``swinViT.*``) are recognised but cannot be
  loaded: this plugin has no Swin backbone (a clear :class:`CheckpointError` says so).

Checkpoints may be nested (``state_dict`` / ``model`` / ``net`` ...) and prefixed
(``module.`` from DataParallel); both are undone. Backbone tensors the checkpoint lacks keep
their initial values; checkpoint tensors the backbone lacks, or whose shape differs, are
dropped; every such case is listed in the notes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ssl_domains.engine.checkpoints import Conversion
from ssl_domains.errors import CheckpointError
from ssl_domains_medical.backbones import ResNetEncoder, UNetEncoder, ViTEncoder

__all__ = ["SOURCES", "ALIASES", "unwrap", "detect_source", "convert"]

#: Canonical source names and the backbone class each fits (None: recognised, not loadable).
SOURCES: dict[str, type[nn.Module] | None] = {
    "monai_vitautoenc": ViTEncoder,
    "models_genesis": UNetEncoder,
    "medicalnet": ResNetEncoder,
    "swin_unetr": None,
}

#: Other spellings users may give for ``source``.
ALIASES = {
    "vitautoenc": "monai_vitautoenc", "monai_vit": "monai_vitautoenc", "vit": "monai_vitautoenc",
    "genesis": "models_genesis", "modelsgenesis": "models_genesis", "unet3d": "models_genesis",
    "med3d": "medicalnet", "medical_net": "medicalnet",
    "swinunetr": "swin_unetr", "swin_unetr_ssl": "swin_unetr", "swin": "swin_unetr",
}

_NESTING = ("state_dict", "model_state_dict", "model", "net", "network", "weights")
_BACKBONE_NAME = {ViTEncoder: "vit_encoder", UNetEncoder: "unet_encoder",
                  ResNetEncoder: "resnet_encoder"}
_HINT = {
    "monai_vitautoenc": "vit_encoder with the checkpoint's img_size/patch_size/hidden_size/"
                        "mlp_dim/num_layers/num_heads (MONAI tutorial: spatial_dims=3, "
                        "img_size=96, patch_size=16, hidden_size=768, mlp_dim=3072, "
                        "num_layers=12, num_heads=12)",
    "models_genesis": "unet_encoder with spatial_dims=3, in_channels=1, base_channels=32, "
                      "levels=4",
    "medicalnet": "resnet_encoder with spatial_dims=3, width=64, stem_kernel=7, stem_stride=2, "
                  "max_pool=True and the checkpoint's depth (10/18/34/50; shortcut_type='A' "
                  "for 18/34)",
}


def unwrap(obj: Any) -> dict[str, torch.Tensor]:
    """The flat tensor dict inside a checkpoint: nesting keys descended, ``module.`` stripped.

    Raises:
        CheckpointError: No tensors found.
    """
    while isinstance(obj, Mapping):
        nested = next((k for k in _NESTING if isinstance(obj.get(k), Mapping)), None)
        if nested is None or any(isinstance(v, torch.Tensor) for v in obj.values()):
            break
        obj = obj[nested]
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"checkpoint is a {type(obj).__name__}, not a dict of tensors")
    out: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            continue
        k = str(key)
        while k.startswith("module."):
            k = k[len("module."):]
        out[k] = value
    if not out:
        raise CheckpointError(f"checkpoint holds no tensors (top-level keys: {sorted(obj)[:8]})")
    return out


def detect_source(state_dict: Mapping[str, Any]) -> str | None:
    """Guess the layout of an unwrapped state dict (None when not recognised)."""
    keys = list(state_dict)
    if any(k.startswith("swinViT.") for k in keys):
        return "swin_unetr"
    if any(re.match(r"down_tr\d+\.ops\.", k) for k in keys):
        return "models_genesis"
    if any(k.startswith("patch_embedding.") for k in keys) and any(
            k.startswith("blocks.") for k in keys):
        return "monai_vitautoenc"
    if "conv1.weight" in state_dict and any(k.startswith("layer1.") for k in keys):
        return "medicalnet"
    return None


def _map_vit(key: str) -> str | None:
    return key if key.split(".")[0] in ("patch_embedding", "blocks", "norm") else None


def _map_genesis(key: str) -> str | None:
    m = re.match(r"down_tr(\d+)\.(.*)", key)
    if m is None or int(m.group(1)) < 64:
        return None
    return f"down_tr.{int(math.log2(int(m.group(1)) // 64))}.{m.group(2)}"


def _map_medicalnet(key: str) -> str | None:
    stems = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")
    return key if key.split(".")[0] in stems else None


#: source -> checkpoint key -> backbone key (None: not part of the encoder).
_MAPPERS: dict[str, Callable[[str], str | None]] = {
    "monai_vitautoenc": _map_vit,
    "models_genesis": _map_genesis,
    "medicalnet": _map_medicalnet,
}


def _resize_pos_embed(value: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor | None:
    """Interpolate ``[1, n, hidden]`` position embeddings from a cubic/square grid to ``grid``."""
    n, dims = value.shape[1], len(grid)
    side = round(n ** (1.0 / dims))
    if side**dims != n:
        return None
    x = value[0].T.reshape(1, value.shape[2], *[side] * dims).float()
    mode = "bilinear" if dims == 2 else "trilinear"
    x = F.interpolate(x, size=grid, mode=mode, align_corners=False)
    return x.reshape(1, value.shape[2], -1).transpose(1, 2).to(value.dtype)


def _adapt(key: str, value: torch.Tensor, target: torch.Tensor, backbone: nn.Module
           ) -> tuple[torch.Tensor | None, str | None]:
    """Fit ``value`` to ``target``'s shape where a principled mapping exists."""
    if key == "patch_embedding.position_embeddings" and isinstance(backbone, ViTEncoder):
        resized = _resize_pos_embed(value, backbone.grid_size)
        if resized is not None and resized.shape == target.shape:
            return resized, (f"{key}: interpolated from {tuple(value.shape)} to "
                             f"{tuple(target.shape)} (grid {backbone.grid_size})")
    if (value.ndim == target.ndim >= 3 and value.shape[1] == 1 and target.shape[1] > 1
            and value.shape[0] == target.shape[0] and value.shape[2:] == target.shape[2:]):
        c = target.shape[1]
        return (value.repeat(1, c, *[1] * (value.ndim - 2)) / c,
                f"{key}: 1-channel input weights repeated over {c} channels (divided by {c})")
    return None, None


def _short(keys: list[str], n: int = 6) -> str:
    return ", ".join(keys[:n]) + (f", ... ({len(keys) - n} more)" if len(keys) > n else "")


def convert(state_dict: Mapping[str, Any], source: str, backbone: nn.Module) -> Conversion | None:
    """Map a foreign checkpoint onto ``backbone``.

    Args:
        state_dict: The checkpoint (nested or not, ``module.`` prefixes or not).
        source: ``"auto"`` or a name of :data:`SOURCES` / :data:`ALIASES`.
        backbone: A freshly built ``vit_encoder``, ``unet_encoder`` or ``resnet_encoder``.

    Returns:
        A :class:`Conversion` with every key of ``backbone.state_dict()``, or None when the
        backbone or the format is not this plugin's.

    Raises:
        CheckpointError: The format is recognised but does not fit ``backbone`` (wrong backbone
            family, no tensor of matching shape) or cannot be loaded at all (SwinUNETR).
    """
    if not isinstance(backbone, tuple(_BACKBONE_NAME)):
        return None
    name = str(source).lower()
    name = ALIASES.get(name, name)
    if name != "auto" and name not in SOURCES:
        return None
    sd = unwrap(state_dict)
    if name == "auto":
        detected = detect_source(sd)
        if detected is None:
            return None
        name = detected
    fits = SOURCES[name]
    if fits is None:
        swin = sorted({".".join(k.split(".")[:2]) for k in sd if k.startswith("swinViT.")})
        raise CheckpointError(
            f"{name} checkpoint ({_short(swin, 4)}) needs a Swin transformer backbone, which "
            "ssl-domains-medical does not provide; its weights cannot be loaded into "
            f"{_BACKBONE_NAME[type(backbone)]}. Use MONAI ViTAutoEnc, Models Genesis or "
            "MedicalNet weights, or start from scratch"
        )
    if not isinstance(backbone, fits):
        raise CheckpointError(
            f"{name} weights fit {_BACKBONE_NAME[fits]}, not {_BACKBONE_NAME[type(backbone)]}; "
            f"build {_HINT[name]}"
        )
    target = backbone.state_dict()
    out: dict[str, torch.Tensor] = {}
    notes: list[str] = []
    mismatched, unused = [], []
    for src, value in sd.items():
        key = _MAPPERS[name](src)
        if key is None or key not in target:
            unused.append(src)
            continue
        if value.shape != target[key].shape:
            adapted, note = _adapt(key, value, target[key], backbone)
            if adapted is None:
                mismatched.append(f"{key} {tuple(value.shape)} vs {tuple(target[key].shape)}")
                continue
            value = adapted
            notes.append(str(note))
        out[key] = value.detach().to(dtype=target[key].dtype).clone()
    if not out:
        raise CheckpointError(
            f"no tensor of the {name} checkpoint fits {_BACKBONE_NAME[fits]} "
            f"({len(mismatched)} shape mismatches, e.g. {_short(mismatched, 2)}); build "
            f"{_HINT[name]}"
        )
    missing = [k for k in target if k not in out]
    for key in missing:
        out[key] = target[key].clone()
    notes.insert(0, f"{name}: loaded {len(target) - len(missing)} of {len(target)} backbone "
                    f"tensors")
    if unused:
        groups = sorted({k.split(".")[0] + ".*" for k in unused})
        notes.append(f"dropped {len(unused)} checkpoint tensors not in the backbone "
                     f"(decoder/head): {_short(groups)}")
    if mismatched:
        notes.append(f"dropped {len(mismatched)} tensors with another shape: "
                     f"{_short(mismatched, 4)}")
    if missing:
        notes.append(f"{len(missing)} backbone tensors not in the checkpoint keep their initial "
                     f"values: {_short(missing)}")
        if name == "medicalnet" and any(".downsample." in k for k in missing):
            notes.append("the checkpoint has no shortcut convolutions (MedicalNet ResNet-18/34 "
                         "use parameter-free shortcuts): build resnet_encoder with "
                         "shortcut_type='A'")
    if name == "medicalnet":
        notes.append("MedicalNet dilates layer3/layer4 (stride 1); resnet_encoder strides them "
                     "like MONAI's resnet, whose own MedicalNet loading does the same")
    if name == "models_genesis":
        notes.append("Models Genesis used ContBatchNorm3d (batch statistics also at test "
                     "time); here its running statistics are used in eval mode")
    return Conversion(state_dict=out, source=name, notes=notes)
