"""Evaluate or apply a fine-tuned export of any kind (:mod:`ssl_domains.engine.exports`): score
data, write the predictions CSV, and update ``eval.json`` through :mod:`ssl_domains.engine.assess`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ssl_domains.config import ComponentRef, DataConfig, load_config, read_yaml
from ssl_domains.contracts import skipped_of
from ssl_domains.data.datasets import build_dataset, make_loader, with_stats
from ssl_domains.data.skipping import first_readable
from ssl_domains.engine.assess import (
    Assessment,
    Predictions,
    read_assessment,
    rescore,
    write_assessment,
    write_predictions,
)
from ssl_domains.engine.build import check_modality
from ssl_domains.engine.exports import SelectedModel, load_finetuned, load_model
from ssl_domains.engine.finetune import build_finetune_sources
from ssl_domains.engine.inference import predict
from ssl_domains.engine.runtime import Runtime
from ssl_domains.engine.segmentation import predict_dense, reassess
from ssl_domains.errors import CheckpointError
from ssl_domains.layout.export import ExportConfig
from ssl_domains.layout.run import RunFolder
from ssl_domains.mapping import check_mapping_path, inputs_of, write_mapping
from ssl_domains.registry import Registry

# load_finetuned and load_model are re-exported (they live in engine.exports)
__all__ = ["load_finetuned", "load_model", "evaluate", "predict_data"]


def _score(
    registry: Registry, task: Any, config: ExportConfig, loader: ComponentRef, out_csv: Path, role: str,
    batch_size: int = 32, device: str = "auto", skipped_file: Path | None = None,
) -> tuple[Predictions, Any]:
    """Score ``loader``'s items with a fine-tuned task (training normalisation statistics
    passed on) and write the predictions CSV at the stored threshold; inputs skipped are
    listed in ``skipped_file`` (the run folder's ``skipped.json``) when given."""
    if getattr(task, "dense", False):
        raise CheckpointError(f"{role}: the export holds a segmentation model ({config.task.name if config.task else '?'}); "
                              "`evaluate RUN` scores the run's own cases again; `predict` segments "
                              "other cases (and scores those with a mask)")
    ds = build_dataset(registry, with_stats(registry, loader, config.data_stats), role)
    if isinstance(task, SelectedModel):  # a baseline or ensemble chosen by select: auto
        preds = task.score_dataset(ds, batch_size, device)
    else:
        rt = Runtime.create(device, "auto")
        task.to(rt.device)
        check_modality(task.backbone, first_readable(ds), f"{role} data ({loader.name})")
        dl = make_loader(ds, DataConfig(train=loader, batch_size=batch_size), train=False, seed=0, role=role,
                         stage="evaluate", skipped_file=skipped_file)
        preds = predict(task, dl, rt)
    write_predictions(out_csv, preds, config.threshold)
    return preds, ds


def _segment(registry: Registry, task: Any, config: ExportConfig, loader: ComponentRef,
             out_csv: Path, device: str) -> tuple[list[str], Any]:
    """``predict`` with a segmentation export (:func:`predict_dense`): the case ids and the
    dataset."""
    ds = build_dataset(registry, with_stats(registry, loader, config.data_stats), "prediction")
    if isinstance(task, torch.nn.Module):
        task.to(Runtime.create(device, "auto").device)
        check_modality(task.backbone, first_readable(ds), f"prediction data ({loader.name})")
    seg = predict_dense(task, config, ds, out_csv, f"prediction data ({loader.name})")
    return list(seg.scores), ds


def predict_data(
    path: str | Path, loader: ComponentRef, out_csv: Path, batch_size: int = 32, device: str = "auto",
    mapping: Path | None = None, *, registry: Registry,
) -> dict[str, Any]:
    """Score every item of ``loader`` with the export at ``path``; write a CSV of scores and
    decisions at the validation-chosen threshold. Labels, when present, are copied along.

    Args:
        registry: Where the loader and the exported model's components come from.
        mapping: Also write each row's opaque id -> input as given to this private file
            (refused beside the CSV and in the run's shareable folders).

    Raises:
        ConfigError: ``mapping`` inside a shareable output, or a loader that cannot name its
            inputs.
    """
    if mapping is not None:
        run = RunFolder(path)
        mapping = check_mapping_path(mapping, folders=[run.export, run.report, run.predictions],
                                     files=[out_csv])
    task, config = load_model(path, registry)
    if getattr(task, "dense", False):  # a segmentation export: maps and lesion tables per case
        ids, ds = _segment(registry, task, config, loader, out_csv, device)
    else:
        preds, ds = _score(registry, task, config, loader, out_csv, "prediction", batch_size, device)
        ids = list(preds.ids)
    out = {"items": len(ids), "threshold": config.threshold, "csv": str(out_csv),
           "skipped": [list(s) for s in skipped_of(ds)]}
    if mapping is not None:
        write_mapping(mapping, ids, inputs_of(ds, loader.name),
                      f"opaque id of each row of {out_csv.name} -> the input as given; private: holds paths")
        out["mapping"] = str(mapping)
    return out


def evaluate(run_path: str | Path, loader: ComponentRef | None = None, device: str = "auto", *,
             registry: Registry) -> dict[str, Any]:
    """Re-score the run's test data (or ``loader``) with the stored threshold (the loader and
    the model's components from ``registry``); updates ``eval.json`` and
    ``predictions/test.csv`` when the run's own test set is used."""
    run = Path(run_path)
    folder = RunFolder(run)
    task, config = load_model(run, registry)
    if getattr(task, "dense", False) and loader is None:  # a segmentation run: its own cases
        cfg = load_config(folder.config)
        if cfg.finetune is None:
            raise CheckpointError(f"{folder.config}: has no finetune section")
        task.to(Runtime.create(device, "auto").device)
        after = reassess(run, cfg, task, build_finetune_sources(cfg.finetune, registry))
        return {"metrics": after.metrics("test"), "threshold": after.threshold,
                "n": after.n_test, "csv": str(folder.case_table("test"))}
    if loader is None:
        cfg_path = folder.config
        if not cfg_path.is_file():
            raise CheckpointError(f"{cfg_path}: not found; pass the data to evaluate on")
        raw = read_yaml(cfg_path)
        test = ((raw if isinstance(raw, dict) else {}).get("finetune") or {}).get("data", {}).get("test")
        if not test:
            raise CheckpointError(f"{run}: the run has no test data; pass --loader/--arg")
        loader = ComponentRef(**test)
        key = "test"
    else:
        key = f"eval_{loader.name}"
    out_csv = folder.prediction_file(key)
    preds, _ = _score(registry, task, config, loader, out_csv, "evaluation", device=device,
                      skipped_file=folder.skipped)
    threshold = config.threshold
    # a run folder without eval.json (an export evaluated elsewhere) starts a fresh one
    before = read_assessment(run) if folder.eval.is_file() else Assessment()
    after = rescore(before, key, preds, threshold)
    write_assessment(run, after)
    metrics = after.metrics(key)
    reasons = (after.undefined_metrics or {}).get(key)
    out = {"metrics": metrics, "threshold": threshold, "n": len(preds.ids), "csv": str(out_csv)}
    return {**out, "undefined_metrics": reasons} if reasons else out
