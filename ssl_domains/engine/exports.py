"""Exports of every kind (their format: :mod:`ssl_domains.layout.export`): building the
:class:`~ssl_domains.layout.export.ExportConfig` of a run, writing a network's or a baseline's
export, and loading any kind: a fine-tuned network, or the classical baseline or ensemble that
``finetune.select: auto`` chose (a baseline is refitted on load: baselines are deterministic;
nothing is pickled).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from ssl_domains import __version__
from ssl_domains.config import ComponentRef, DataConfig, RunConfig
from ssl_domains.data.datasets import make_loader
from ssl_domains.engine.assess import Predictions
from ssl_domains.engine.checkpoints import read_safetensors
from ssl_domains.engine.inference import predict, stack_inputs
from ssl_domains.engine.run_dir import environment_info
from ssl_domains.engine.runtime import Runtime, keep_threads
from ssl_domains.errors import CheckpointError, SSLDomainsError
from ssl_domains.identifiers import shareable_config
from ssl_domains.layout.export import (
    ExportConfig,
    ExportFolder,
    InputSpecRecord,
    find_export,
    read_export_config,
    write_export,
)
from ssl_domains.registry import Registry

__all__ = ["SelectedModel", "combine", "export_config", "load_finetuned", "load_model",
           "load_selected", "save_baseline_export", "save_network_export"]


def export_config(cfg: RunConfig, backbone: Any, stage: str, **fields: Any) -> ExportConfig:
    """The export config of a run of ``cfg`` with ``backbone``: its components by registry
    name (arguments as :func:`~ssl_domains.identifiers.shareable_config` shows them: an export
    is shareable, so it names no input), the backbone's input and feature size, the versions,
    and ``fields`` (:class:`~ssl_domains.layout.export.ExportConfig`'s)."""
    spec = backbone.input_spec
    for key in ("task", "pretext", "baseline"):
        if fields.get(key) is not None:
            fields[key] = shareable_config(fields[key])
    return ExportConfig(
        stage=stage, run=cfg.name,
        backbone=shareable_config(cfg.backbone.model_dump(mode="json")),
        input_spec=InputSpecRecord(modality=spec.modality, dims=spec.dims, channels=spec.channels),
        num_features=int(backbone.num_features), host_version=__version__,
        environment=environment_info(), **fields)


def save_network_export(folder: Path, config: ExportConfig, *, backbone: nn.Module,
                        model: nn.Module | None, card: str | None) -> ExportFolder:
    """A network's export: its config, ``backbone`` and whole ``model`` weights and card."""
    return write_export(folder, config, card=card, backbone=backbone.state_dict(),
                        model=model.state_dict() if model is not None else None)


def combine(p_deep: np.ndarray, p_base: np.ndarray, w: float) -> np.ndarray:
    """``w * p_deep + (1 - w) * p_base`` (class probabilities ``[N, K]``, same shape).

    Raises:
        SSLDomainsError: The two do not have the same shape.
    """
    a, b = np.asarray(p_deep, dtype=np.float64), np.asarray(p_base, dtype=np.float64)
    if a.shape != b.shape:
        raise SSLDomainsError(f"ensemble: probabilities of shape {a.shape} and {b.shape} "
                              "cannot be averaged (same items and classes needed)")
    return w * a + (1.0 - w) * b


def _export(path: str | Path) -> ExportFolder:
    folder = find_export(path)
    if folder is None:
        raise CheckpointError(f"{path}: no export found (expected {ExportFolder(Path(path)).config} "
                              "or the same in its export folder)")
    return folder


def load_finetuned(path: str | Path, registry: Registry) -> tuple[nn.Module, ExportConfig]:
    """The fine-tuned task model of a run or export folder (its components from
    ``registry``), and its export config.

    Raises:
        CheckpointError: Not a fine-tuning export, or weights that do not fit.
    """
    folder = _export(path)
    config = read_export_config(folder.path)
    if config.kind != "network":
        raise CheckpointError(f"{folder.path}: select: auto chose a {config.kind} here, not a "
                              "fine-tuned network; this needs a network export (use "
                              "--set finetune.select=single)")
    if config.stage != "finetune" or config.task is None or not folder.model.is_file():
        raise CheckpointError(f"{folder.path}: a pre-training export has no classifier; fine-tune it first")
    backbone = registry.create("backbone", config.backbone.name, **config.backbone.args)
    args = {k: v for k, v in config.task.args.items() if k != "num_classes"}
    task = registry.create("finetune", config.task.name, backbone, num_classes=config.num_classes, **args)
    try:
        task.load_state_dict(read_safetensors(folder.model))
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(f"{folder.model}: weights do not fit the model ({first})") from None
    if config.roi_size is not None and hasattr(task, "roi_size"):  # a dense task's window
        task.roi_size = [int(r) for r in config.roi_size]
    task.eval()
    return task, config


def save_baseline_export(folder: Path, config: ExportConfig, *, ref: ComponentRef, key: str,
                         x: np.ndarray, y: np.ndarray) -> ExportFolder:
    """A baseline's export (no card: a member, or a card written by the caller): ``config``
    with ``kind: baseline``, the baseline ``ref`` and ``key``; its training ``x``, ``y``."""
    config = config.model_copy(update={
        "kind": "baseline", "baseline": ComponentRef.model_validate(shareable_config(ref.model_dump(mode="json"))),
        "input_key": key, "n_train": int(len(y))})
    return write_export(folder, config, card=None, baseline={
        "x": torch.from_numpy(np.ascontiguousarray(x)), "y": torch.from_numpy(np.asarray(y, dtype=np.int64))})


class SelectedModel:
    """A classical baseline or an ensemble exported by ``select: auto``, scoring datasets
    (the baseline and the network from ``registry``).

    Raises:
        CheckpointError: A member export is missing or unreadable.
    """

    def __init__(self, folder: Path, config: ExportConfig, registry: Registry) -> None:
        self.folder = ExportFolder(Path(folder))
        self.config = config
        self.registry = registry
        self.kind = config.kind
        self._baseline: Any = None
        self._deep: Any = None

    def _fit_baseline(self) -> tuple[Any, str]:
        folder = self.folder.baseline if self.kind == "ensemble" else self.folder
        cfg = read_export_config(folder.path)
        if cfg.baseline is None or cfg.input_key is None:
            raise CheckpointError(f"{folder.config}: a baseline export names no baseline or input key")
        if self._baseline is None:
            try:
                arrays = load_file(str(folder.baseline_data))
            except (OSError, ValueError, RuntimeError) as err:
                raise CheckpointError(f"{folder.baseline_data}: unreadable ({err})") from None
            model = self.registry.create("baseline", cfg.baseline.name, **cfg.baseline.args)
            model.fit(arrays["x"].numpy(), arrays["y"].numpy())
            self._baseline = model
        return self._baseline, cfg.input_key

    @keep_threads()
    def baseline_probs(self, ds: Any) -> Predictions:
        """The baseline's class probabilities of every item of ``ds``."""
        model, key = self._fit_baseline()
        x, y, ids = stack_inputs(ds, key)
        probs = np.asarray(model.predict_proba(x), dtype=np.float64)
        return Predictions(ids=ids, probs=probs, labels=y, loss=None)

    def score_dataset(self, ds: Any, batch_size: int = 32, device: str = "auto") -> Predictions:
        """Class probabilities of every item of ``ds`` (already built with the export's
        normalisation statistics)."""
        base = self.baseline_probs(ds)
        if self.kind == "baseline":
            return base
        if self._deep is None:
            self._deep, _ = load_finetuned(self.folder.deep.path, self.registry)
        rt = Runtime.create(device, "auto")
        self._deep.to(rt.device)
        ref = ComponentRef(name="selected")
        dl = make_loader(ds, DataConfig(train=ref, batch_size=batch_size), train=False, seed=0)
        deep = predict(self._deep, dl, rt)
        if self.config.weight is None:
            raise CheckpointError(f"{self.folder.config}: an ensemble export without its weight")
        w = float(self.config.weight)
        return Predictions(ids=deep.ids, probs=combine(deep.probs, base.probs, w),
                           labels=deep.labels, loss=None)


def load_selected(path: str | Path, registry: Registry) -> tuple[SelectedModel, ExportConfig] | None:
    """The baseline or ensemble exported by ``select: auto`` at ``path`` (a run or export
    folder), or None when the export is a fine-tuned network (or absent).

    Raises:
        CheckpointError: The export config is not readable or not an export config.
    """
    folder = find_export(path)
    if folder is None:
        return None
    config = read_export_config(folder.path)
    if config.kind == "network":
        return None
    return SelectedModel(folder.path, config, registry), config


def load_model(path: str | Path, registry: Registry) -> tuple[Any, ExportConfig]:
    """The model a run or export folder ships: a fine-tuned network, or the classical
    baseline or ensemble that ``finetune.select: auto`` chose (built from ``registry``); and
    its export config."""
    selected = load_selected(path, registry)
    return selected if selected is not None else load_finetuned(path, registry)
