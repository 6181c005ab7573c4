"""Fine-tuning exports of every kind: a fine-tuned network, or the classical baseline or
ensemble that ``finetune.select: auto`` chose; writing the baseline export and loading any kind.

* network: ``config.json`` (``stage: finetune``), ``backbone.safetensors``, ``model.safetensors``;
* baseline (``kind: baseline``): ``config.json`` names it and its arguments,
  ``baseline.safetensors`` holds its training inputs and labels; loading refits it (baselines
  are deterministic). Nothing is pickled;
* ensemble (``kind: ensemble``): ``deep/`` and ``baseline/`` exports and the weight of ``deep``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ssl_domains.config import ComponentRef, DataConfig
from ssl_domains.data.datasets import make_loader
from ssl_domains.engine.assess import Predictions
from ssl_domains.engine.checkpoints import MODEL_FILE, read_export_config, read_safetensors
from ssl_domains.engine.inference import predict, stack_inputs
from ssl_domains.engine.runtime import Runtime, keep_threads
from ssl_domains.errors import CheckpointError, SSLDomainsError
from ssl_domains.files import write_json
from ssl_domains.identifiers import shareable_config
from ssl_domains.registry import Registry

__all__ = ["BASELINE_FILE", "SelectedModel", "combine", "load_finetuned", "load_model",
           "load_selected", "save_baseline_export"]

BASELINE_FILE = "baseline.safetensors"


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


def _export_dir(path: Path) -> Path:
    if (path / "export" / "config.json").is_file():
        return path / "export"
    if (path / "config.json").is_file():
        return path
    raise CheckpointError(f"{path}: no export found (expected {path}/export/config.json)")


def load_finetuned(path: str | Path, registry: Registry) -> tuple[nn.Module, dict[str, Any]]:
    """The fine-tuned task model of a run or export folder (its components from
    ``registry``), and its export config.

    Raises:
        CheckpointError: Not a fine-tuning export, or weights that do not fit.
    """
    folder = _export_dir(Path(path))
    config = read_export_config(folder / "config.json")
    if config.get("kind") in ("baseline", "ensemble"):
        raise CheckpointError(f"{folder}: select: auto chose a {config['kind']} here, not a "
                              "fine-tuned network; this needs a network export (use "
                              "--set finetune.select=single)")
    if config.get("stage") != "finetune" or not (folder / MODEL_FILE).is_file():
        raise CheckpointError(f"{folder}: a pre-training export has no classifier; fine-tune it first")
    bb = config["backbone"]
    backbone = registry.create("backbone", bb["name"], **bb.get("args", {}))
    task_ref = config["task"]
    args = {k: v for k, v in task_ref.get("args", {}).items() if k != "num_classes"}
    task = registry.create("finetune", task_ref["name"], backbone, num_classes=config["num_classes"], **args)
    try:
        task.load_state_dict(read_safetensors(folder / MODEL_FILE))
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(f"{folder / MODEL_FILE}: weights do not fit the model ({first})") from None
    if config.get("roi_size") is not None and hasattr(task, "roi_size"):  # a dense task's window
        task.roi_size = [int(r) for r in config["roi_size"]]
    task.eval()
    return task, config


def save_baseline_export(folder: Path, *, ref: ComponentRef, key: str, x: np.ndarray,
                         y: np.ndarray, meta: dict[str, Any]) -> None:
    """``config.json`` (``kind: baseline``) and ``baseline.safetensors`` (training ``x``,
    ``y``) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"x": torch.from_numpy(np.ascontiguousarray(x)),
               "y": torch.from_numpy(np.asarray(y, dtype=np.int64))},
              str(folder / BASELINE_FILE), metadata={"format": "np"})
    write_json(folder / "config.json", {**meta, "kind": "baseline",
                                         "baseline": shareable_config(ref.model_dump(mode="json")),
                                         "input_key": key, "n_train": int(len(y))})


class SelectedModel:
    """A classical baseline or an ensemble exported by ``select: auto``, scoring datasets
    (the baseline and the network from ``registry``).

    Raises:
        CheckpointError: A member export is missing or unreadable.
    """

    def __init__(self, folder: Path, config: dict[str, Any], registry: Registry) -> None:
        self.folder = folder
        self.config = config
        self.registry = registry
        self.kind = str(config.get("kind"))
        self._baseline: Any = None
        self._deep: Any = None

    def _fit_baseline(self) -> tuple[Any, str]:
        folder = self.folder / "baseline" if self.kind == "ensemble" else self.folder
        cfg = json.loads((folder / "config.json").read_text())
        if self._baseline is None:
            try:
                arrays = load_file(str(folder / BASELINE_FILE))
            except (OSError, ValueError, RuntimeError) as err:
                raise CheckpointError(f"{folder / BASELINE_FILE}: unreadable ({err})") from None
            ref = cfg["baseline"]
            model = self.registry.create("baseline", ref["name"], **ref.get("args", {}))
            model.fit(arrays["x"].numpy(), arrays["y"].numpy())
            self._baseline = model
        return self._baseline, str(cfg["input_key"])

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
            self._deep, _ = load_finetuned(self.folder / "deep", self.registry)
        rt = Runtime.create(device, "auto")
        self._deep.to(rt.device)
        ref = ComponentRef(name="selected")
        dl = make_loader(ds, DataConfig(train=ref, batch_size=batch_size), train=False, seed=0)
        deep = predict(self._deep, dl, rt)
        w = float(self.config["weight"])
        return Predictions(ids=deep.ids, probs=combine(deep.probs, base.probs, w),
                           labels=deep.labels, loss=None)


def load_selected(path: str | Path, registry: Registry) -> tuple[SelectedModel, dict[str, Any]] | None:
    """The baseline or ensemble exported by ``select: auto`` at ``path`` (a run or export
    folder), or None when the export is a fine-tuned network (or absent)."""
    p = Path(path)
    folder = p / "export" if (p / "export" / "config.json").is_file() else p
    if not (folder / "config.json").is_file():
        return None
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict) or config.get("kind") not in ("baseline", "ensemble"):
        return None
    return SelectedModel(folder, config, registry), config


def load_model(path: str | Path, registry: Registry) -> tuple[Any, dict[str, Any]]:
    """The model a run or export folder ships: a fine-tuned network, or the classical
    baseline or ensemble that ``finetune.select: auto`` chose (built from ``registry``); and
    its export config."""
    selected = load_selected(path, registry)
    return selected if selected is not None else load_finetuned(path, registry)
