"""Refitting what ``select: auto`` chose by cross-validation on every label.

When the validation part of a label budget is too small to choose on, ``auto`` chooses by
k-fold cross-validation over all labeled items (:mod:`ssl_domains.autoselect.derived`). The chosen
arm's own cell was trained on the budget's training part only: its validation part (a fifth
of the labels) served to stop and to keep weights. The chosen model is then fitted again on
every labeled item:

* a classical baseline needs nothing to stop on
  (:func:`~ssl_domains.autoselect.baseline.refit_baseline`);
* a network (``ssl``, ``scratch``, ``linear_probe``) is trained with its cell's recipe for
  as many steps as its fold runs trained (where the recipe's early stopping stopped them, or
  the end of its schedule), the median over the folds, scaled to the same number of epochs
  over the larger set (:func:`refit_steps`; the learning-rate schedule laid out as
  configured, as in the folds), and keeps its last weights (:func:`refit_network`). Not the
  step whose weights a fold kept: that is the minimum of a validation loss over the 2–10
  items of a fold's inner validation part, and refits stopped there tested worse on the
  suite's images and volumes (``benchmarks/HISTORY.md``, "Networks and ensembles refitted
  on every label").

Either way the threshold and the validation metrics come from the cross-validation's
out-of-fold scores of those items, and the test set is only scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ssl_domains.config import InitConfig, RunConfig
from ssl_domains.data.datasets import batches_per_epoch
from ssl_domains.engine import finetune as finetuning
from ssl_domains.engine.assess import Predictions
from ssl_domains.engine.inference import item_id
from ssl_domains.registry import Registry

__all__ = ["refit_steps", "refit_network", "network_note"]


def refit_steps(trained: Sequence[tuple[int, int]], n_items: int, batch_size: int,
                drop_last: bool = False) -> int | None:
    """Steps to train a network on ``n_items``: the median over the folds of the steps each
    fold run trained, scaled from that fold's training items to ``n_items`` at the same
    number of epochs (``trained``: ``(steps, training items)`` per fold; batches per epoch as
    the training loader counts them). None without folds."""
    if not trained:
        return None

    def batches(n: int) -> int:
        return batches_per_epoch(n, batch_size, drop_last)

    scaled = [step * batches(n_items) / batches(n_train) for step, n_train in trained]
    return max(1, int(round(float(np.median(scaled)))))


def network_note(n_items: int, steps: int, folds: int) -> str:
    """The sentence ``eval.json``'s ``refit`` holds for a network trained on every label."""
    return (f"trained again on all {n_items} labeled items (training and validation part) for "
            f"{steps} steps, the median the {folds} cross-validation folds trained (at the "
            "same number of epochs, the learning-rate schedule as configured), last weights "
            "kept; threshold and validation metrics from the out-of-fold scores of those items")


def refit_network(cfg: RunConfig, cell: Path, labeled: Any, oof: np.ndarray, folds: int,
                  steps: int, sources: dict[str, Any], init: InitConfig | None,
                  registry: Registry) -> dict[str, Any]:
    """Fine-tune the network arm of ``cfg`` (a cell config:
    :func:`~ssl_domains.autoselect.arms.cell_config`) on every item of ``labeled`` for ``steps``
    steps (its schedule as configured), no early stopping, into ``cell`` (a run folder with
    its export); ``oof`` (the out-of-fold probabilities ``[N, K]`` of ``labeled``, in its
    order) stands for the validation predictions. Returns the ``eval.json`` content.

    Raises:
        SSLDomainsError: ``oof`` does not match ``labeled``
            (:class:`~ssl_domains.engine.finetune.Refit`).
    """
    fcfg = cfg.finetune
    assert fcfg is not None
    probs = np.asarray(oof, dtype=np.float64)
    labels = np.asarray(labeled.labels, dtype=int)
    ids = [item_id(labeled[i].get("meta"), i) for i in range(len(labels))]
    train = fcfg.train.model_copy(update={"early_stopping": None})
    run_cfg = cfg.model_copy(update={"finetune": fcfg.model_copy(update={"train": train})})
    refit = finetuning.Refit(items=labeled,
                             scores=Predictions(ids=ids, probs=probs, labels=labels, loss=None),
                             steps=steps, note=network_note(len(labels), steps, folds))
    return finetuning.finetune(run_cfg, cell, registry=registry,
                               init=None if fcfg.from_scratch else init, sources=sources,
                               refit=refit)
