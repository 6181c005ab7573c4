"""Resume checkpoints (atomic), shareable exports (safetensors), and ``--init`` weight loading."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ssl_domains.errors import CheckpointError

__all__ = [
    "Conversion",
    "InitReport",
    "save_checkpoint",
    "load_checkpoint",
    "latest_checkpoint",
    "save_export",
    "read_export",
    "load_init",
    "unwrap_state_dict",
]

log = logging.getLogger(__name__)

BACKBONE_FILE = "backbone.safetensors"
MODEL_FILE = "model.safetensors"


@dataclass
class Conversion:
    """Foreign weights mapped onto a backbone's parameter names by a plugin.

    Attributes:
        state_dict: Tensors keyed by the *backbone's* parameter names.
        source: The format the plugin recognised (e.g. ``"models_genesis"``).
        notes: Anything the user should know (renamed blocks, dropped heads).
    """

    state_dict: dict[str, torch.Tensor]
    source: str
    notes: list[str] = field(default_factory=list)


@dataclass
class InitReport:
    """What ``--init`` loaded into the backbone."""

    path: str
    kind: str
    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"init from {self.kind} ({self.source}): loaded {len(self.loaded)} tensors, "
                f"missing {len(self.missing)}, unexpected {len(self.unexpected)}, "
                f"shape-mismatched {len(self.mismatched)}")

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# -- resume checkpoints ---------------------------------------------------------------------
def save_checkpoint(state: dict[str, Any], folder: Path, step: int, keep: int = 2) -> Path:
    """Write ``step_XXXXXXXX.pt`` and point ``last.pt`` at it, both atomically.

    The bytes go to a temporary file that is fsynced and renamed, so a kill at any moment
    leaves either the old or the new checkpoint, never a torn one; ``last.pt`` is a hard link
    to the same bytes (a copy where the file system has no hard links), swapped in by rename.
    """
    folder.mkdir(parents=True, exist_ok=True)
    periodic = folder / f"step_{step:08d}.pt"
    tmp = folder / f".{periodic.name}.tmp"
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, periodic)
    last_tmp = folder / ".last.pt.tmp"
    last_tmp.unlink(missing_ok=True)
    try:
        os.link(periodic, last_tmp)
    except OSError:
        shutil.copyfile(periodic, last_tmp)
    os.replace(last_tmp, folder / "last.pt")
    olds = sorted(folder.glob("step_*.pt"))
    for old in olds[:-keep]:
        old.unlink(missing_ok=True)
    return folder / "last.pt"


def latest_checkpoint(folder: Path) -> Path | None:
    """``last.pt`` in ``folder``, or the newest periodic one, or None."""
    last = folder / "last.pt"
    if last.is_file():
        return last
    steps = sorted(folder.glob("step_*.pt"))
    return steps[-1] if steps else None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a resume checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: Missing or unreadable file.
    """
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        # our own file: it holds RNG states (numpy arrays), so full unpickling is needed
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc})") from None


# -- exports --------------------------------------------------------------------------------
def save_export(
    folder: Path,
    *,
    backbone: nn.Module,
    model: nn.Module | None,
    config: dict[str, Any],
    card: str,
) -> Path:
    """Write a shareable export: ``config.json``, ``backbone.safetensors``,
    ``model.safetensors`` (whole task model) and ``README.md`` (model card)."""
    folder.mkdir(parents=True, exist_ok=True)

    def _save(module: nn.Module, name: str) -> None:
        sd = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
        tmp = folder / f".{name}.tmp"
        save_file(sd, str(tmp), metadata={"format": "pt"})
        os.replace(tmp, folder / name)

    _save(backbone, BACKBONE_FILE)
    if model is not None:
        _save(model, MODEL_FILE)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "README.md").write_text(card)
    return folder


def read_export(folder: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(config, backbone_state_dict)`` of an export folder.

    Raises:
        CheckpointError: Not an export folder.
    """
    cfg_path, weights = folder / "config.json", folder / BACKBONE_FILE
    if not cfg_path.is_file() or not weights.is_file():
        raise CheckpointError(f"{folder}: not an export (needs config.json and {BACKBONE_FILE})")
    return json.loads(cfg_path.read_text()), load_file(str(weights))


# -- --init -----------------------------------------------------------------------------------
_PREFIXES = ("module.", "model.", "backbone.", "encoder.", "net.")


def unwrap_state_dict(obj: Any) -> dict[str, torch.Tensor]:
    """Peel ``{"state_dict": ...}`` / ``{"model": ...}`` nesting and ``module.`` prefixes."""
    for _ in range(3):
        if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            for key in ("state_dict", "model_state_dict", "model", "net", "network", "weights"):
                if key in obj and isinstance(obj[key], dict):
                    obj = obj[key]
                    break
            else:
                break
    if not isinstance(obj, dict):
        raise CheckpointError("checkpoint holds no state dict")
    sd = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    while sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def _match(sd: dict[str, torch.Tensor], backbone: nn.Module) -> dict[str, torch.Tensor]:
    """Keys of ``sd`` renamed to the backbone's, trying common wrapper prefixes."""
    target = backbone.state_dict()
    best = sd
    best_hits = sum(k in target for k in sd)
    for prefix in _PREFIXES:
        cand = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
        hits = sum(k in target for k in cand)
        if hits > best_hits:
            best, best_hits = cand, hits
    return best


def _apply(backbone: nn.Module, sd: dict[str, torch.Tensor], report: InitReport, strict: bool) -> InitReport:
    target = backbone.state_dict()
    usable = {}
    for k, v in sd.items():
        if k not in target:
            report.unexpected.append(k)
        elif tuple(target[k].shape) != tuple(v.shape):
            report.mismatched.append(f"{k}: {tuple(v.shape)} vs {tuple(target[k].shape)}")
        else:
            usable[k] = v.to(target[k].dtype)
    report.loaded = sorted(usable)
    report.missing = sorted(k for k in target if k not in usable)
    if not usable:
        raise CheckpointError(
            f"{report.path}: no tensor fits the backbone ({len(sd)} in file, e.g. "
            f"{sorted(sd)[:3]}); pass --init-source to name the format"
        )
    if strict and (report.missing or report.mismatched):
        raise CheckpointError(f"{report.path}: strict init but {report.summary()}")
    backbone.load_state_dict(usable, strict=False)
    return report


def load_init(path: str | Path, backbone: nn.Module, source: str = "auto", strict: bool = False) -> InitReport:
    """Load weights into ``backbone`` from an export folder, a run folder, a resume checkpoint,
    a ``.safetensors`` file, or foreign weights (through the ``convert_checkpoint`` hook).

    Raises:
        CheckpointError: Nothing usable, or strict loading with missing weights.
    """
    p = Path(path)
    if p.is_dir():
        if (p / "export" / BACKBONE_FILE).is_file():
            p = p / "export"
        elif (p / "checkpoints").is_dir() and latest_checkpoint(p / "checkpoints"):
            p = latest_checkpoint(p / "checkpoints")  # type: ignore[assignment]
        if p.is_dir():
            _, sd = read_export(p)
            return _apply(backbone, sd, InitReport(str(p), "export", "ssl-domains"), strict)
    if not p.is_file():
        raise CheckpointError(f"{p}: --init path not found (give an export folder, a run folder or a weights file)")
    if p.suffix == ".safetensors":
        sd = load_file(str(p))
        kind = "safetensors"
    else:
        try:
            raw = torch.load(p, map_location="cpu", weights_only=True)
            kind = "weights"
        except Exception:  # noqa: BLE001 - our resume checkpoints hold RNG state
            try:
                raw = torch.load(p, map_location="cpu", weights_only=False)
                kind = "checkpoint"
            except Exception as exc:  # noqa: BLE001
                raise CheckpointError(f"{p}: cannot read weights ({type(exc).__name__}: {exc})") from None
        if isinstance(raw, dict) and "model" in raw and "step" in raw and "rng" in raw:
            kind = "resume checkpoint"
            raw = {k[len("backbone."):]: v for k, v in raw["model"].items() if k.startswith("backbone.")}
        sd = unwrap_state_dict(raw)
    matched = _match(sd, backbone)
    target = backbone.state_dict()
    fits = sum(k in target and tuple(target[k].shape) == tuple(v.shape) for k, v in matched.items())
    if source == "auto" and fits >= max(1, int(0.9 * len(target))):
        return _apply(backbone, matched, InitReport(str(p), kind, "ssl-domains"), strict)
    from ssl_domains.plugins import get_host

    conv = get_host().pm.hook.convert_checkpoint(state_dict=sd, source=source, backbone=backbone)
    if conv is None:
        if fits:
            return _apply(backbone, matched, InitReport(str(p), kind, "partial match",
                          notes=["no plugin recognised the format; loaded tensors whose names and shapes match"]), strict)
        raise CheckpointError(
            f"{p}: no plugin recognised these weights (source={source!r}; keys like "
            f"{[re.sub(r'[0-9]+', 'N', k) for k in sorted(sd)[:3]]})"
        )
    report = InitReport(str(p), kind, conv.source, notes=list(conv.notes))
    return _apply(backbone, conv.state_dict, report, strict)
