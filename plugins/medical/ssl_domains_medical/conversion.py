"""Foreign checkpoints mapped onto this plugin's backbones.

Recognised layouts (``source`` name, then the backbone they fit):

- ``monai_vitautoenc``: MONAI ``ViTAutoEnc`` (self-supervised tutorial weights) or ``ViT``:
  ``patch_embedding.*``, ``blocks.N.*``, ``norm.*`` -> ``vit_encoder``; the decoder
  (``conv3d_transpose*``) is dropped; position embeddings are interpolated to another grid.
- ``models_genesis``: Models Genesis ``UNet3D`` (Zhou et al., MedIA 2021):
  ``down_tr64 .. down_tr512`` -> ``unet_encoder`` levels 0..3; ``up_tr*``/``out_tr`` dropped.
- ``medicalnet``: MedicalNet ResNets (Chen et al., 2019): ``conv1``, ``bn1``, ``layerN.*`` ->
  ``resnet_encoder``; the segmentation head ``conv_seg`` is dropped.
- ``swin_unetr``: SwinUNETR's Swin transformer -> ``swin_encoder``: MONAI's self-supervised
  ``model_swinvit.pt`` (research-contributions ``SwinUNETR/Pretrain``, the file
  ``SwinUNETR.load_from`` reads: ``module.patch_embed.*``, ``module.layers1.0.blocks.N.*`` with
  ``mlp.fc1``/``mlp.fc2``, renamed to MONAI's ``mlp.linear1``/``mlp.linear2``), a whole ``SSLHead``
  (``swinViT.*`` or ``swin_vit.*``; ``rotation_head``, ``contrastive_head`` and ``conv`` are
  dropped) or a whole ``SwinUNETR`` (``swinViT.*``; ``encoder*``, ``decoder*``, ``out`` dropped).
  The Swin architecture must match exactly (only 1-channel input weights may be repeated over
  more channels); otherwise the error names the ``swin_encoder`` arguments the checkpoint needs.

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

from ssl_domains.contracts import Conversion
from ssl_domains.errors import CheckpointError
from ssl_domains_medical.backbones import ResNetEncoder, SwinEncoder, UNetEncoder, ViTEncoder

__all__ = ["SOURCES", "ALIASES", "unwrap", "detect_source", "convert"]

#: Canonical source names and the backbone class each fits.
SOURCES: dict[str, type[nn.Module]] = {
    "monai_vitautoenc": ViTEncoder,
    "models_genesis": UNetEncoder,
    "medicalnet": ResNetEncoder,
    "swin_unetr": SwinEncoder,
}

#: Other spellings users may give for ``source``.
ALIASES = {
    "vitautoenc": "monai_vitautoenc", "monai_vit": "monai_vitautoenc", "vit": "monai_vitautoenc",
    "genesis": "models_genesis", "modelsgenesis": "models_genesis", "unet3d": "models_genesis",
    "med3d": "medicalnet", "medical_net": "medicalnet",
    "swinunetr": "swin_unetr", "swin_unetr_ssl": "swin_unetr", "swin": "swin_unetr",
    "swinvit": "swin_unetr", "model_swinvit": "swin_unetr",
}

_NESTING = ("state_dict", "model_state_dict", "model", "net", "network", "weights")
_BACKBONE_NAME = {ViTEncoder: "vit_encoder", UNetEncoder: "unet_encoder",
                  ResNetEncoder: "resnet_encoder", SwinEncoder: "swin_encoder"}
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
    "swin_unetr": "swin_encoder with the checkpoint's sizes (MONAI model_swinvit.pt: "
                  "spatial_dims=3, in_channels=1, feature_size=48, patch_size=2, window_size=7, "
                  "depths=(2, 2, 2, 2), num_heads=(3, 6, 12, 24))",
}
_SWIN_PREFIXES = ("swinViT.", "swin_vit.")


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
    if any(k.startswith(_SWIN_PREFIXES) for k in keys) or (
            "patch_embed.proj.weight" in state_dict
            and any(k.startswith("layers1.0.blocks.") for k in keys)):
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


def _map_swin(key: str) -> str | None:
    for prefix in _SWIN_PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix):]
            break
    if re.match(r"(patch_embed|layers[1-4]c?)\.", key) is None:
        return None
    return re.sub(r"\.mlp\.fc([12])\.", r".mlp.linear\1.", key)


#: source -> checkpoint key -> backbone key (None: not part of the encoder).
_MAPPERS: dict[str, Callable[[str], str | None]] = {
    "monai_vitautoenc": _map_vit,
    "models_genesis": _map_genesis,
    "medicalnet": _map_medicalnet,
    "swin_unetr": _map_swin,
}


def _swin_layout(sd: Mapping[str, torch.Tensor]) -> str | None:
    """The ``swin_encoder`` arguments a Swin checkpoint was built with (None: no patch embed)."""
    mapped = {k: v for k, v in ((_map_swin(k), v) for k, v in sd.items()) if k is not None}
    embed = mapped.get("patch_embed.proj.weight")
    if embed is None or embed.ndim not in (4, 5):
        return None
    dims, patch = embed.ndim - 2, tuple(embed.shape[2:])
    args = [f"spatial_dims={dims}", f"in_channels={embed.shape[1]}",
            f"feature_size={embed.shape[0]}",
            f"patch_size={patch[0] if len(set(patch)) == 1 else patch}"]
    tables = [mapped.get(f"layers{i}.0.blocks.0.attn.relative_position_bias_table")
              for i in range(1, 5)]
    if tables[0] is not None:
        side = round(tables[0].shape[0] ** (1.0 / dims))
        if side**dims == tables[0].shape[0]:
            args.append(f"window_size={(side + 1) // 2}")
    depths = tuple(len({m.group(1) for k in mapped
                        if (m := re.match(rf"layers{i}\.0\.blocks\.(\d+)\.", k))})
                   for i in range(1, 5))
    args.append(f"depths={depths}")
    if all(t is not None for t in tables):
        args.append(f"num_heads={tuple(int(t.shape[1]) for t in tables if t is not None)}")
    if any(k.startswith("layers1c.") for k in mapped):
        args.append("use_v2=True")
    return "swin_encoder with " + ", ".join(args)


def _hint(name: str, sd: Mapping[str, torch.Tensor]) -> str:
    """How to build the backbone that fits a checkpoint of source ``name``."""
    layout = _swin_layout(sd) if name == "swin_unetr" else None
    return layout or _HINT[name]


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


def _check_swin_fit(sd: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor],
                    out: Mapping[str, torch.Tensor], mismatched: list[str], orphans: list[str]
                    ) -> None:
    """A Swin transformer loads whole or not at all.

    Raises:
        CheckpointError: Shapes differ, or the checkpoint and the backbone do not hold the same
            encoder tensors; the message names the ``swin_encoder`` the checkpoint fits.
    """
    reshaped = {m.split(" ")[0] for m in mismatched}
    missing = [k for k in target if k not in out and k not in reshaped]
    problems = [f"{len(keys)} {what}, e.g. {_short(keys, 2)}" for keys, what in (
        (mismatched, "tensors with another shape"),
        (orphans, "checkpoint encoder tensors the backbone lacks"),
        (missing, "backbone tensors the checkpoint lacks"),
    ) if keys]
    if problems:
        raise CheckpointError(
            f"swin_unetr checkpoint does not match this swin_encoder ({'; '.join(problems)}); "
            f"build {_hint('swin_unetr', sd)}"
        )


def convert(state_dict: Mapping[str, Any], source: str, backbone: nn.Module) -> Conversion | None:
    """Map a foreign checkpoint onto ``backbone``.

    Args:
        state_dict: The checkpoint (nested or not, ``module.`` prefixes or not).
        source: ``"auto"`` or a name of :data:`SOURCES` / :data:`ALIASES`.
        backbone: A freshly built ``vit_encoder``, ``unet_encoder``, ``resnet_encoder`` or
            ``swin_encoder``.

    Returns:
        A :class:`Conversion` with every key of ``backbone.state_dict()``, or None when the
        backbone or the format is not this plugin's.

    Raises:
        CheckpointError: The format is recognised but does not fit ``backbone`` (wrong backbone
            family, no tensor of matching shape; for Swin, any difference in architecture).
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
    if not isinstance(backbone, fits):
        raise CheckpointError(
            f"{name} weights fit {_BACKBONE_NAME[fits]}, not {_BACKBONE_NAME[type(backbone)]}; "
            f"build {_hint(name, sd)}"
        )
    target = backbone.state_dict()
    out: dict[str, torch.Tensor] = {}
    notes: list[str] = []
    mismatched, unused, orphans = [], [], []
    for src, value in sd.items():
        key = _MAPPERS[name](src)
        if key is None:
            unused.append(src)
            continue
        if key not in target:
            orphans.append(src)
            continue
        if value.shape != target[key].shape:
            adapted, note = _adapt(key, value, target[key], backbone)
            if adapted is None:
                mismatched.append(f"{key} {tuple(value.shape)} vs {tuple(target[key].shape)}")
                continue
            value = adapted
            notes.append(str(note))
        out[key] = value.detach().to(dtype=target[key].dtype).clone()
    if name == "swin_unetr":
        _check_swin_fit(sd, target, out, mismatched, orphans)
    unused += orphans
    if not out:
        raise CheckpointError(
            f"no tensor of the {name} checkpoint fits {_BACKBONE_NAME[fits]} "
            f"({len(mismatched)} shape mismatches, e.g. {_short(mismatched, 2)}); build "
            f"{_hint(name, sd)}"
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
    if name == "swin_unetr":
        renamed = [k for k in sd if re.search(r"\.mlp\.fc[12]\.", k)]
        if renamed:
            notes.append(f"renamed {len(renamed)} mlp.fc1/mlp.fc2 tensors to MONAI's "
                         "mlp.linear1/mlp.linear2")
    if name == "models_genesis":
        notes.append("Models Genesis used ContBatchNorm3d (batch statistics also at test "
                     "time); here its running statistics are used in eval mode")
    return Conversion(state_dict=out, source=name, notes=notes)

