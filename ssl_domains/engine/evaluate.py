"""Evaluate or apply a fine-tuned export: rebuild it by registry name, score data, write CSVs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from ssl_domains.config import ComponentRef, DataConfig
from ssl_domains.data.datasets import build_dataset, make_loader, with_stats
from ssl_domains.data.skipping import first_readable
from ssl_domains.engine.build import check_modality
from ssl_domains.engine.checkpoints import MODEL_FILE, read_export_config, read_safetensors
from ssl_domains.engine.finetune import _metrics, write_predictions
from ssl_domains.engine.inference import Predictions, predict
from ssl_domains.engine.labels import undefined_reasons
from ssl_domains.engine.runtime import Runtime
from ssl_domains.errors import CheckpointError
from ssl_domains.files import write_json
from ssl_domains.plugins import get_host

__all__ = ["load_finetuned", "load_model", "evaluate", "predict_data"]


def _export_dir(path: Path) -> Path:
    if (path / "export" / "config.json").is_file():
        return path / "export"
    if (path / "config.json").is_file():
        return path
    raise CheckpointError(f"{path}: no export found (expected {path}/export/config.json)")


def load_finetuned(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The fine-tuned task model of a run or export folder, and its export config.

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
    registry = get_host().registry
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
    task.eval()
    return task, config


def load_model(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """The model a run or export folder ships: a fine-tuned network, or the classical
    baseline or ensemble that ``finetune.select: auto`` chose; and its export config."""
    from ssl_domains.sweep.select import load_selected

    selected = load_selected(path)
    return selected if selected is not None else load_finetuned(path)


def _score(
    task: Any, config: dict[str, Any], loader: ComponentRef, out_csv: Path, role: str,
    batch_size: int = 32, device: str = "auto",
) -> tuple[Predictions, Any]:
    """Score ``loader``'s items with a fine-tuned task (training normalisation statistics
    passed on) and write the predictions CSV at the stored threshold."""
    registry = get_host().registry
    ds = build_dataset(registry, with_stats(registry, loader, config.get("data_stats")), role)
    if hasattr(task, "score_dataset"):  # a baseline or ensemble chosen by select: auto
        preds = task.score_dataset(ds, batch_size, device)
        write_predictions(out_csv, preds, config.get("threshold"))
        return preds, ds
    rt = Runtime.create(device, "auto")
    task.to(rt.device)
    check_modality(task.backbone, first_readable(ds), f"{role} data ({loader.name})")
    dl = make_loader(ds, DataConfig(train=loader, batch_size=batch_size), train=False, seed=0, role=role, stage="evaluate")
    preds = predict(task, dl, rt)
    write_predictions(out_csv, preds, config.get("threshold"))
    return preds, ds


def predict_data(
    path: str | Path, loader: ComponentRef, out_csv: Path, batch_size: int = 32, device: str = "auto"
) -> dict[str, Any]:
    """Score every item of ``loader`` with the export at ``path``; write a CSV of scores and
    decisions at the validation-chosen threshold. Labels, when present, are copied along."""
    task, config = load_model(path)
    preds, ds = _score(task, config, loader, out_csv, "prediction", batch_size, device)
    return {"items": len(preds.ids), "threshold": config.get("threshold"), "csv": str(out_csv),
            "skipped": [list(s) for s in getattr(ds, "skipped", [])]}


def evaluate(run_path: str | Path, loader: ComponentRef | None = None, device: str = "auto") -> dict[str, Any]:
    """Re-score the run's test data (or ``loader``) with the stored threshold; updates
    ``eval.json`` and ``predictions/test.csv`` when the run's own test set is used."""
    run = Path(run_path)
    task, config = load_model(run)
    if loader is None:
        import yaml

        cfg_path = run / "config.yaml"
        if not cfg_path.is_file():
            raise CheckpointError(f"{run}: no config.yaml; pass the data to evaluate on")
        raw = yaml.safe_load(cfg_path.read_text())
        test = (raw.get("finetune") or {}).get("data", {}).get("test")
        if not test:
            raise CheckpointError(f"{run}: the run has no test data; pass --loader/--arg")
        loader = ComponentRef(**test)
        key, out_csv = "test", run / "predictions" / "test.csv"
    else:
        key, out_csv = f"eval_{loader.name}", run / "predictions" / f"eval_{loader.name}.csv"
    preds, _ = _score(task, config, loader, out_csv, "evaluation", device=device)
    threshold = config.get("threshold")
    metrics = _metrics(preds, threshold)
    eval_path = run / "eval.json"
    summary = json.loads(eval_path.read_text()) if eval_path.is_file() else {}
    summary[key] = metrics
    summary[f"n_{key}"] = len(preds.ids)
    reasons = undefined_reasons(preds.labels, metrics, key)
    undefined = {k: v for k, v in (summary.get("undefined_metrics") or {}).items() if k != key}
    if reasons:
        undefined[key] = reasons
    if undefined:
        summary["undefined_metrics"] = undefined
    else:
        summary.pop("undefined_metrics", None)
    write_json(eval_path, summary)
    out = {"metrics": metrics, "threshold": threshold, "n": len(preds.ids), "csv": str(out_csv)}
    return {**out, "undefined_metrics": reasons} if reasons else out
