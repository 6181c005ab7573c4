"""The baseline arm (of a sweep and of ``select: auto``): a classical baseline
(``fit``/``predict_proba`` on the stacked inputs) trained on a cell's training items, scored
as a fine-tuning run is.

A baseline cell folder holds what a fine-tuning run's does, without the network: ``eval.json``
(with ``baseline``: its name and arguments), ``predictions/val.csv`` and ``test.csv``.

:func:`refit_baseline` fits a baseline on every labeled item of a budget (training and
validation part) once cross-validation has chosen it: a baseline needs no validation items
to stop on, so the ``auto`` arm ships it fitted on all the labels. Its threshold and its
"validation" numbers come from the cross-validation's out-of-fold scores of the same items.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ssl_domains.config import ComponentRef, RunConfig
from ssl_domains.engine import finetune as finetuning
from ssl_domains.engine import inference, segmentation
from ssl_domains.engine.assess import Counts, Predictions, finish_run
from ssl_domains.engine.build import build_backbone
from ssl_domains.engine.run_dir import RunDir
from ssl_domains.engine.runtime import keep_threads, seed_everything
from ssl_domains.errors import SSLDomainsError
from ssl_domains.registry import Registry

__all__ = ["stack_inputs", "run_baseline", "refit_baseline", "refit_note", "Arrays"]

#: Inputs ``[N, C, *spatial]``, labels ``[N]`` and item ids of a dataset.
Arrays = tuple[np.ndarray, np.ndarray, list[str]]


def stack_inputs(ds: Any, key: str) -> Arrays:
    """Inputs ``[N, C, *spatial]`` (float32, NaN kept), labels ``[N]`` and item ids of ``ds``.

    Raises:
        SSLDomainsError: Items without the input key or without labels.
    """
    x, y, ids = inference.stack_inputs(ds, key)
    if y is None:
        raise SSLDomainsError("baseline input: items have no labels")
    return x, y, ids


def _predicted(model: Any, ref: ComponentRef, registry: Registry, arrays: Arrays) -> Predictions:
    """``model``'s class probabilities of stacked ``arrays``, with their labels and ids.

    Raises:
        SSLDomainsError: ``predict_proba`` returned the wrong shape.
    """
    x, y, ids = arrays
    probs = np.asarray(model.predict_proba(x), dtype=np.float64)
    if probs.ndim != 2 or len(probs) != len(x):
        entry = registry.get("baseline", ref.name)
        raise SSLDomainsError(f"plugin {entry.plugin!r}: baseline {ref.name!r} predict_proba "
                              f"returned shape {probs.shape} for {len(x)} items; expected [N, K]")
    return Predictions(ids=ids, probs=probs, labels=y, loss=None)


@keep_threads()
def run_baseline(cfg: RunConfig, ref: ComponentRef, cell: Path, sources: dict[str, Any],
                 registry: Registry, cache: dict[int, Arrays] | None = None) -> dict[str, Any]:
    """Fit baseline ``ref`` on the cell's training items and assess it as fine-tuning is
    (:func:`~ssl_domains.engine.assess.finish_run`: threshold on validation, test only scored).

    Args:
        cfg: The cell's config (:func:`~ssl_domains.autoselect.arms.cell_config`).
        ref: The baseline and its arguments.
        cell: The cell folder.
        sources: The fine-tuning datasets, shared by every cell.
        registry: Where the backbone (for its input modality) and the baseline come from.
        cache: Stacked inputs of the shared validation and test sets, kept across cells.

    Returns:
        The ``eval.json`` content (with ``baseline``: its name and arguments).

    Raises:
        ImportError: The baseline's optional dependency is missing.
        SSLDomainsError: ``predict_proba`` returned the wrong shape.
    """
    assert cfg.finetune is not None
    fcfg = cfg.finetune
    start = time.perf_counter()
    seed_everything(cfg.seed, cfg.deterministic)
    run = RunDir(cell)
    run.create(cfg)
    backbone: Any = build_backbone(registry, cfg.backbone)
    key = str(backbone.input_spec.modality)
    if segmentation.is_dense(registry, fcfg.task.name):
        return _run_dense_baseline(cfg, ref, run, sources, registry, key, start)
    data = finetuning.prepare_finetune_data(cfg, fcfg, sources)
    cache = {} if cache is None else cache

    def arrays(ds: Any) -> Arrays:
        shared = any(ds is sources.get(k) for k in ("val", "test"))
        if shared and id(ds) in cache:
            return cache[id(ds)]
        got = stack_inputs(ds, key)
        if shared:
            cache[id(ds)] = got
        return got

    x_tr, y_tr, _ = arrays(data["train"])
    model = registry.create("baseline", ref.name, **ref.args)
    model.fit(x_tr, y_tr)
    val = _predicted(model, ref, registry, arrays(data["val"]))
    test = _predicted(model, ref, registry, arrays(data["test"])) \
        if data["test"] is not None else None
    assessment = finish_run(run.path, val, test, threshold_rule=fcfg.threshold_rule,
                            counts=finetuning.counts_of(data),
                            details={"baseline": ref.model_dump(mode="json"), "init": "baseline",
                                     "seconds": time.perf_counter() - start})
    run.close()
    return assessment.to_json()


def _run_dense_baseline(cfg: RunConfig, ref: ComponentRef, run: RunDir, sources: dict[str, Any],
                        registry: Registry, key: str, start: float) -> dict[str, Any]:
    """The baseline arm of a dense (segmentation) task: a classical segmenter (``dense = True``:
    ``fit(images, masks)``, ``predict_map(image)``) fitted on the cell's whole training cases
    and scored as the networks are (:func:`~ssl_domains.engine.segmentation.assess_dense`).

    Raises:
        SSLDomainsError: The baseline is not a dense one.
    """
    entry = registry.get("baseline", ref.name)
    if not getattr(entry.factory, "dense", False):
        raise SSLDomainsError(f"baseline {ref.name!r} classifies whole items; a segmentation task "
                              "needs a dense baseline (e.g. voxel_statistics)")
    data = segmentation.dense_cases(cfg, cfg.finetune, sources)  # type: ignore[arg-type]
    images, masks = segmentation.training_cases(data, key)
    model = registry.create("baseline", ref.name, **ref.args).fit(images, masks)
    assessment = segmentation.assess_dense(
        segmentation.MapModel(model, key), data, run.path, cfg,
        details={"baseline": ref.model_dump(mode="json"), "init": "baseline",
                 "seconds": time.perf_counter() - start})
    run.close()
    return assessment.to_json()


def refit_note(n_items: int, folds: int) -> str:
    """The sentence ``eval.json``'s ``refit`` holds for a baseline refitted on every label."""
    return (f"fitted on all {n_items} labeled items (training and validation part); threshold "
            f"and validation metrics from the {folds}-fold cross-validation's out-of-fold "
            "scores of those items")


@keep_threads()
def refit_baseline(cfg: RunConfig, ref: ComponentRef, cell: Path, labeled: Any,
                   oof: np.ndarray, folds: int, sources: dict[str, Any],
                   registry: Registry) -> dict[str, Any]:
    """Fit baseline ``ref`` on every item of ``labeled`` (a budget's training and validation
    items) and assess it: the threshold is chosen on ``oof``, the out-of-fold probabilities
    of the same items from a ``folds``-fold cross-validation (each scored by a fit that did
    not see it); the test set is only scored.

    Args:
        cfg: The baseline cell's config (:func:`~ssl_domains.autoselect.arms.cell_config`).
        ref: The baseline and its arguments.
        cell: Folder to write (``eval.json`` with ``refit``, predictions).
        labeled: The labeled items, in the order of ``oof``.
        oof: Out-of-fold probabilities ``[N, K]`` of ``labeled``.
        folds: How many folds ``oof`` came from.
        sources: The fine-tuning datasets (``test`` scored when present).
        registry: Where the backbone (for its input modality) and the baseline come from.

    Returns:
        The ``eval.json`` content.

    Raises:
        SSLDomainsError: ``oof`` does not match ``labeled``, or ``predict_proba`` returned the
            wrong shape.
    """
    assert cfg.finetune is not None
    start = time.perf_counter()
    seed_everything(cfg.seed, cfg.deterministic)
    backbone: Any = build_backbone(registry, cfg.backbone)
    key = str(backbone.input_spec.modality)
    x, y, ids = stack_inputs(labeled, key)
    probs = np.asarray(oof, dtype=np.float64)
    if probs.ndim != 2 or len(probs) != len(y):
        raise SSLDomainsError(f"refit {ref.name}: {len(probs)} out-of-fold scores for "
                              f"{len(y)} labeled items")
    model = registry.create("baseline", ref.name, **ref.args)
    model.fit(x, y)
    test = _predicted(model, ref, registry, stack_inputs(sources["test"], key)) \
        if sources.get("test") is not None else None
    counts = {str(k): int(v) for k, v in zip(*np.unique(y, return_counts=True))}
    label_counts = {"train": counts, "val": counts}
    if test is not None and test.labels is not None:
        label_counts["test"] = {str(k): int(v)
                                for k, v in zip(*np.unique(test.labels, return_counts=True))}
    pool = sources.get("pool")
    assessment = finish_run(
        cell, Predictions(ids=ids, probs=probs, labels=y, loss=None), test,
        threshold_rule=cfg.finetune.threshold_rule,
        counts=Counts(n_train=len(y), n_val=len(y), n_test=None if test is None else len(test.ids),
                      n_pool=None if pool is None else len(pool), n_labels=len(y),
                      label_counts=label_counts),
        details={"baseline": ref.model_dump(mode="json"), "init": "baseline",
                 "refit": refit_note(len(y), folds), "seconds": time.perf_counter() - start})
    return assessment.to_json()
