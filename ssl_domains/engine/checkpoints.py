"""Resume checkpoints (atomic), safetensors reading, and ``--init`` weight loading (exports
are written and their configs read by :mod:`ssl_domains.layout.export`)."""

from __future__ import annotations

import errno
import logging
import os
import pickle
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from ssl_domains.errors import CheckpointError
from ssl_domains.files import atomic_write_with, write_guard
from ssl_domains.layout.export import ExportFolder, find_export, read_export_config
from ssl_domains.layout.names import BACKBONE_FILE, EXPORT_CONFIG_FILE, LAST_CHECKPOINT
from ssl_domains.layout.run import RunFolder
from ssl_domains.registry import Registry

__all__ = [
    "InitReport",
    "save_checkpoint",
    "load_checkpoint",
    "latest_checkpoint",
    "load_resume_checkpoint",
    "mismatch_error",
    "check_resumable",
    "UnsafeFileError",
    "read_export_weights",
    "read_safetensors",
    "load_init",
    "unwrap_state_dict",
]

log = logging.getLogger(__name__)


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


class UnsafeFileError(CheckpointError):
    """A weights file holds Python objects besides tensors and was refused unread."""


# -- resume checkpoints ---------------------------------------------------------------------
def save_checkpoint(state: dict[str, Any], folder: Path, step: int, keep: int = 2) -> Path:
    """Write ``step_XXXXXXXX.pt`` and point ``last.pt`` at it, both atomically.

    The bytes go to a temporary file that is fsynced and renamed, so a kill at any moment
    leaves either the old or the new checkpoint, never a torn one; ``last.pt`` is a hard link
    to the same bytes (a copy where the file system has no hard links), swapped in by rename.
    ``state`` must hold only what ``torch.load(weights_only=True)`` reads back: tensors,
    dicts, lists, tuples and plain numbers/strings (see :func:`~ssl_domains.engine.runtime.rng_state`).

    Raises:
        WriteError: Disk full, read-only or similar; no temporary file is left behind.
    """
    with write_guard(folder):
        folder.mkdir(parents=True, exist_ok=True)
    periodic = folder / f"step_{step:08d}.pt"
    # streamed; a full disk inside torch.save (a RuntimeError there) is reported as what it is
    atomic_write_with(periodic, lambda f: torch.save(state, f))
    last, last_tmp = folder / LAST_CHECKPOINT, folder / f".{LAST_CHECKPOINT}.tmp"
    with write_guard(last, last_tmp):
        last_tmp.unlink(missing_ok=True)
        try:
            os.link(periodic, last_tmp)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):
                raise
            shutil.copyfile(periodic, last_tmp)
        os.replace(last_tmp, last)
    olds = sorted(folder.glob("step_*.pt"))
    for old in olds[:-keep]:
        old.unlink(missing_ok=True)
    return last


def latest_checkpoint(folder: Path) -> Path | None:
    """``last.pt`` in ``folder``, or the newest periodic one, or None."""
    last = folder / LAST_CHECKPOINT
    if last.is_file():
        return last
    steps = sorted(folder.glob("step_*.pt"))
    return steps[-1] if steps else None


_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_INNER = re.compile(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n\n|$)", re.S)


def _numpy_globals() -> list[Any]:
    """numpy scalars, dtypes and plain arrays: what foreign checkpoints often hold beside their
    weights (``"best_acc": np.float64(...)``). Building them runs no code of the file's choosing
    (an object array's items go through the same restricted unpickler)."""
    import numpy as np

    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    dtypes = getattr(np, "dtypes", None)
    classes = [c for c in vars(dtypes).values() if isinstance(c, type) and issubclass(c, np.dtype)] if dtypes else []
    return [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar, *classes]


def _load_tensors_only(path: Path, what: str, numpy: bool = False) -> Any:
    """``torch.load(path, weights_only=True)``: tensors, containers and plain values only
    (and, with ``numpy``, numpy scalars and arrays).

    Raises:
        CheckpointError: The file holds other Python objects (refused: unpickling them could run
            code) or cannot be read at all.
    """
    try:
        if numpy:
            with torch.serialization.safe_globals(_numpy_globals()):
                return torch.load(path, map_location="cpu", weights_only=True)
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        names = list(dict.fromkeys(_GLOBAL.findall(text)))
        if not names:
            try:
                names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
            except Exception:  # noqa: BLE001 - not a torch.save file: no globals to name
                names = []
        if names:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            raise UnsafeFileError(
                f"{path}: refused to load this {what}: it holds Python objects besides tensors "
                f"({shown}), and unpickling them could run code; convert it to .safetensors on a "
                "machine where you trust its source (README: Safe with untrusted files)"
            ) from None
        inner = _INNER.search(text)
        why = " ".join(inner.group(1).split()) if inner else "not a PyTorch weights file"
        raise CheckpointError(f"{path}: cannot read {what} (not a plain PyTorch weights file: {why})") from None
    except Exception as exc:  # noqa: BLE001
        first = (str(exc).strip().splitlines() or [""])[0].split(". ")[0]  # torch adds advice
        raise CheckpointError(f"{path}: cannot read {what} ({type(exc).__name__}: {first})") from None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a resume checkpoint written by :func:`save_checkpoint` (``weights_only=True``:
    a replaced file that carries pickled code is refused, never run).

    Raises:
        CheckpointError: Missing, unreadable or unsafe file.
    """
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    state = _load_tensors_only(path, "checkpoint")
    if not isinstance(state, dict) or "step" not in state or "model" not in state:
        raise CheckpointError(f"{path}: not a resume checkpoint of ssl-domains")
    return state


def load_resume_checkpoint(path: Path) -> dict[str, Any]:
    """:func:`load_checkpoint` of the checkpoint ``--resume`` continues from; a damaged one
    (cut short by a full disk or a copy, overwritten) names the last intact periodic
    checkpoint of the same folder, which the user can resume from instead.

    Raises:
        CheckpointError: Missing, refused (pickled code) or damaged; one line.
    """
    try:
        return load_checkpoint(path)
    except UnsafeFileError:
        raise
    except CheckpointError as exc:
        damaged = str(exc)
    same = path.stat().st_ino if path.is_file() else None  # last.pt is a hard link to a step file
    for older in sorted(path.parent.glob("step_*.pt"), reverse=True):
        if older == path or older.stat().st_ino == same:
            continue
        try:
            step = load_checkpoint(older)["step"]
        except CheckpointError:
            continue
        raise CheckpointError(f"{damaged}: the file is damaged or cut short. The last intact "
                              f"periodic checkpoint is {older} (step {step}): copy it over "
                              f"{path} and resume again (the steps after it are redone)") from None
    raise CheckpointError(f"{damaged}: the file is damaged or cut short and no intact periodic "
                          f"checkpoint is left in {path.parent}: start the run again") from None


def _component(config: Any, *dotted: str) -> str:
    """``name {args}`` of the first component the resolved ``config`` names at ``dotted``."""
    for path in dotted:
        node = config
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get("name"):
            return f"{node['name']} {node.get('args') or {}}"
    return "?"


def _differences(saved: dict[str, Any], model: nn.Module) -> str:
    """How a saved state dict differs from ``model``'s, in a few words."""
    target = model.state_dict()
    shapes = [f"{k}: {tuple(v.shape)} in the file, {tuple(target[k].shape)} expected"
              for k, v in saved.items() if k in target and hasattr(v, "shape") and v.shape != target[k].shape]
    missing = [k for k in target if k not in saved]
    unexpected = [k for k in saved if k not in target]
    first = (shapes or [f"{k} missing" for k in missing] or [f"{k} not in the model" for k in unexpected]
             or ["the optimiser's parameter groups differ"])[0]
    return (f"{len(shapes)} tensor(s) of other shapes, {len(missing)} missing, {len(unexpected)} "
            f"unexpected (first: {first})")


def mismatch_error(path: Path | None, state: dict[str, Any], expected: dict[str, Any], stage: str,
                   model: nn.Module | None = None) -> CheckpointError:
    """The one-line error of a resume checkpoint that does not fit the run the config
    describes: the file, the run and components it belongs to, what the config expects, and
    (given the ``model`` the config built) the first differences of the weights."""
    belongs = state.get("config") or {}
    task = f"{stage}.task"
    detail = f": {_differences(state.get('model') or {}, model)}" if model is not None else ""
    return CheckpointError(
        f"{path or 'checkpoint'}: resume checkpoint of run {belongs.get('name')!r} ({stage}, step "
        f"{state.get('step')}; backbone {_component(belongs, 'backbone')}, task "
        f"{_component(belongs, task)}) does not fit what the config builds (backbone "
        f"{_component(expected, 'backbone')}, task {_component(expected, task)}){detail}; resume "
        "with the config the run was started with, or start a new run in another folder")


def check_resumable(path: Path | None, state: dict[str, Any], expected: dict[str, Any], stage: str) -> None:
    """Refuse, before anything is written, to resume a checkpoint whose backbone or task
    differs from the config's (training settings such as ``epochs`` may change).

    Raises:
        CheckpointError: One line, see :func:`mismatch_error`.
    """
    belongs = state.get("config") or {}
    if not belongs:  # a checkpoint without its config: the weights decide (Trainer.load_state)
        return
    for part in ("backbone", f"{stage}.task"):
        if _component(belongs, part) != _component(expected, part):
            raise mismatch_error(path, state, expected, stage)


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file (a format that holds no code).

    Raises:
        CheckpointError: Missing or not a safetensors file.
    """
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        return load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - SafetensorError, OSError, ...
        first = (str(exc).strip().splitlines() or [""])[0]
        raise CheckpointError(f"{path}: not a readable safetensors file ({first})") from None


# -- exports --------------------------------------------------------------------------------
def read_export_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The backbone state dict of an export folder (its config checked first).

    Raises:
        CheckpointError: Not an export folder, or an unreadable config or weights file.
    """
    export = ExportFolder(Path(folder))
    if not export.config.is_file() or not export.backbone.is_file():
        raise CheckpointError(f"{folder}: not an export (needs {EXPORT_CONFIG_FILE} and {BACKBONE_FILE})")
    read_export_config(export.path)
    return read_safetensors(export.backbone)


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


def load_init(path: str | Path, backbone: nn.Module, source: str = "auto", strict: bool = False,
              *, registry: Registry | None = None) -> InitReport:
    """Load weights into ``backbone`` from an export folder, a run folder, a resume checkpoint,
    a ``.safetensors`` file, or foreign weights (through the ``convert_checkpoint`` hook of
    the plugins of ``registry``; without one, only names and shapes that match are loaded).

    Raises:
        CheckpointError: Nothing usable, or strict loading with missing weights.
    """
    p = Path(path)
    if p.is_dir():
        export = find_export(p, BACKBONE_FILE)
        checkpoints = RunFolder(p).checkpoints
        if export is not None and export.path != p:
            p = export.path
        elif checkpoints.is_dir() and latest_checkpoint(checkpoints):
            p = latest_checkpoint(checkpoints)  # type: ignore[assignment]
        if p.is_dir():
            sd = read_export_weights(p)
            return _apply(backbone, sd, InitReport(str(p), "export", "ssl-domains"), strict)
    if not p.is_file():
        raise CheckpointError(f"{p}: --init path not found (give an export folder, a run folder or a weights file)")
    if p.suffix == ".safetensors":
        sd = read_safetensors(p)
        kind = "safetensors"
    else:
        # weights_only: tensors and containers only; a file carrying pickled code is refused
        raw = _load_tensors_only(p, "weights file", numpy=True)
        kind = "weights"
        if isinstance(raw, dict) and "model" in raw and "step" in raw and "rng" in raw:
            kind = "resume checkpoint"
            raw = {k[len("backbone."):]: v for k, v in raw["model"].items() if k.startswith("backbone.")}
        sd = unwrap_state_dict(raw)
    matched = _match(sd, backbone)
    target = backbone.state_dict()
    fits = sum(k in target and tuple(target[k].shape) == tuple(v.shape) for k, v in matched.items())
    if source == "auto" and fits >= max(1, int(0.9 * len(target))):
        return _apply(backbone, matched, InitReport(str(p), kind, "ssl-domains"), strict)
    conv = registry.convert(sd, source, backbone) if registry is not None else None
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
