"""The sweep's baseline arm: a classical baseline (``fit``/``predict_proba`` on the stacked
inputs) trained on a cell's training items, scored as a fine-tuning run is.

A baseline cell folder holds what a fine-tuning run's does, without the network: ``eval.json``
(with ``baseline``: its name and arguments), ``predictions/val.csv`` and ``test.csv``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ssl_domains.config import ComponentRef, RunConfig
from ssl_domains.engine import finetune as finetuning
from ssl_domains.engine import inference
from ssl_domains.engine.assess import Predictions, finish_run
from ssl_domains.engine.build import build_backbone
from ssl_domains.engine.run_dir import RunDir
from ssl_domains.engine.runtime import seed_everything
from ssl_domains.errors import SSLDomainsError
from ssl_domains.registry import Registry

__all__ = ["stack_inputs", "run_baseline", "Arrays"]

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


def run_baseline(cfg: RunConfig, ref: ComponentRef, cell: Path, sources: dict[str, Any],
                 registry: Registry, cache: dict[int, Arrays] | None = None) -> dict[str, Any]:
    """Fit baseline ``ref`` on the cell's training items and assess it as fine-tuning is
    (:func:`~ssl_domains.engine.assess.finish_run`: threshold on validation, test only scored).

    Args:
        cfg: The cell's config (:func:`~ssl_domains.sweep.plan.cell_config`).
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

    def predict(ds: Any) -> Predictions:
        x, y, ids = arrays(ds)
        probs = np.asarray(model.predict_proba(x), dtype=np.float64)
        if probs.ndim != 2 or len(probs) != len(x):
            entry = registry.get("baseline", ref.name)
            raise SSLDomainsError(f"plugin {entry.plugin!r}: baseline {ref.name!r} predict_proba "
                                  f"returned shape {probs.shape} for {len(x)} items; expected [N, K]")
        return Predictions(ids=ids, probs=probs, labels=y, loss=None)

    val = predict(data["val"])
    test = predict(data["test"]) if data["test"] is not None else None
    assessment = finish_run(run.path, val, test, threshold_rule=fcfg.threshold_rule,
                            counts=finetuning.counts_of(data),
                            details={"baseline": ref.model_dump(mode="json"), "init": "baseline",
                                     "seconds": time.perf_counter() - start})
    run.close()
    return assessment.to_json()
