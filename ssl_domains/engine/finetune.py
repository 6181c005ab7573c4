"""Supervised fine-tuning on a (small) labeled set, then thresholds, test metrics and export.

The labeled budget (``label_fraction``/``label_count``) is drawn stratified from the training
pool with the run's seed; the decision threshold is chosen on validation data only; the test
set is used once, at the end, for reporting.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from ssl_domains.config import EarlyStopping, FinetuneConfig, InitConfig, RunConfig
from ssl_domains.contracts import stats_of
from ssl_domains.data.datasets import (
    Subset,
    build_dataset,
    groups_of,
    labels_of,
    make_loader,
    with_stats,
)
from ssl_domains.data.splits import label_subset, split_off
from ssl_domains.engine.assess import Counts, Predictions, finish_run, score
from ssl_domains.engine.build import finetune_init
from ssl_domains.engine.exports import export_config, save_network_export
from ssl_domains.engine.inference import predict
from ssl_domains.engine.labels import check_labels, declared_classes
from ssl_domains.engine.loop import TrainOptions
from ssl_domains.engine.model_card import model_card
from ssl_domains.engine.run_dir import holding_run_lock
from ssl_domains.engine.runtime import Runtime
from ssl_domains.engine.segmentation import finetune_dense, is_dense
from ssl_domains.engine.stage import Prepared, run_stage
from ssl_domains.errors import ConfigError, DataError, SSLDomainsError
from ssl_domains.layout.names import BACKBONE_FILE
from ssl_domains.layout.run import RunFolder
from ssl_domains.registry import Registry
from ssl_domains.scoring.metrics import fewest_per_class

__all__ = ["finetune", "FinetuneRecipe", "build_finetune_sources", "prepare_finetune_data", "counts_of",
           "Refit"]

log = logging.getLogger(__name__)


def build_finetune_sources(fcfg: FinetuneConfig, registry: Registry) -> dict[str, Any]:
    """The labeled pool, and the validation/test datasets when configured (built once; a sweep
    reuses them across cells), from the loaders of ``registry``.

    Raises:
        DataError: Training or validation data without labels (a dense task's labels are its
            masks, checked per case).
    """
    dense = is_dense(registry, fcfg.task.name)
    pool = build_dataset(registry, fcfg.data.train, "fine-tuning")
    if not dense and labels_of(pool) is None:
        raise DataError(f"fine-tuning data ({fcfg.data.train.name})", "has no labels; give a labeled loader (e.g. a label column)")
    stats = stats_of(pool)
    val_ds = None
    if fcfg.data.val is not None:
        val_ds = build_dataset(registry, with_stats(registry, fcfg.data.val, stats), "validation")
        if not dense and labels_of(val_ds) is None:
            raise DataError(f"validation data ({fcfg.data.val.name})", "has no labels")
    test_ds = (build_dataset(registry, with_stats(registry, fcfg.data.test, stats), "test")
               if fcfg.data.test is not None else None)
    return {"pool": pool, "val": val_ds, "test": test_ds}


def prepare_finetune_data(cfg: RunConfig, fcfg: FinetuneConfig, sources: dict[str, Any]) -> dict[str, Any]:
    """Training subset (label budget), validation and test datasets, all seeded by ``cfg.seed``.

    Without a ``val`` loader, validation is split off the label budget (stratified), so the
    budget counts every label the run sees. With a ``val`` loader, that set is used whole, or
    (``val_budget: same_fraction``) the budget's share of it is drawn, stratified: the protocol
    of benchmarks with an official validation split (10 % of train and 10 % of val labels).
    The same (data, seed, budget) always selects the same items, whatever the arm
    (``sources``: :func:`build_finetune_sources`).
    """
    src = sources
    pool = src["pool"]
    pool_labels = labels_of(pool) or []
    # the label budget is drawn first, from the whole pool: without a separate validation
    # loader, validation comes out of that budget, so "25 labels" means 25 labels in all
    budget = label_subset(pool_labels, cfg.seed, fraction=fcfg.label_fraction, count=fcfg.label_count)
    if src["val"] is not None:
        train_ds, val_ds = Subset(pool, budget, train=True), src["val"]
        if fcfg.val_budget == "same_fraction" and len(budget) < len(pool_labels):
            val_labels = labels_of(val_ds) or []
            share = len(budget) / len(pool_labels)
            count = max(len(set(val_labels)), round(share * len(val_labels)))  # every class validates
            val_ds = Subset(val_ds, label_subset(val_labels, cfg.seed, count=count))
    else:
        groups = groups_of(pool)
        keep, held = split_off(len(budget), fcfg.data.val_fraction, cfg.seed,
                               labels=[pool_labels[i] for i in budget],
                               groups=None if groups is None else [groups[i] for i in budget])
        train_ds, val_ds = Subset(pool, budget[keep], train=True), Subset(pool, budget[held])
    return {"pool": pool, "train": train_ds, "val": val_ds, "test": src["test"],
            "n_pool": len(pool), "n_budget": len(budget)}


@dataclass(frozen=True)
class Refit:
    """Fine-tune on every labeled item, with no validation part: a model chosen by
    cross-validation, trained again on the items the folds shared out (``select: auto``).

    Attributes:
        items: The labeled items (a budget's training and validation items), all trained on.
        scores: Out-of-fold predictions of ``items`` from that cross-validation, each by a fold
            model that did not see it: they stand for the validation predictions (threshold,
            validation metrics).
        steps: Nothing is left to stop on: training stops after these steps (the learning-rate
            schedule laid out as configured) and keeps the last weights.
        note: What was done, in a sentence (``eval.json``'s ``refit``).
    """

    items: Any
    scores: Predictions
    steps: int
    note: str


def _refit_data(refit: Refit, sources: dict[str, Any]) -> dict[str, Any]:
    """:func:`prepare_finetune_data`'s datasets for a :class:`Refit`: every item trains, no
    validation set (``val`` None: the training items stand for it, scored out of fold).

    Raises:
        SSLDomainsError: The out-of-fold scores are not one row per item, with its label.
    """
    src = sources
    scores, items = refit.scores, refit.items
    if scores.probs.ndim != 2 or len(scores.probs) != len(items) or scores.labels is None \
            or list(map(int, scores.labels)) != list(map(int, labels_of(items) or [])):
        raise SSLDomainsError(f"refit: {len(scores.probs)} out-of-fold scores do not match the "
                              f"{len(items)} labeled items and their labels")
    return {"pool": src["pool"], "train": Subset(items, range(len(items)), train=True),
            "val": None, "test": src["test"], "n_pool": len(src["pool"]),
            "n_budget": len(items)}


def counts_of(data: Mapping[str, Any]) -> Counts:
    """Item and label counts of :func:`prepare_finetune_data`'s datasets (for the assessment);
    a refit's "validation" items are its training items, scored out of fold."""
    if data.get("val") is None:
        data = {**data, "val": data["train"]}
    splits = [(k, data[k]) for k in ("train", "val", "test") if data.get(k) is not None]
    return Counts(
        n_train=len(data["train"]), n_val=len(data["val"]),
        n_test=len(data["test"]) if data.get("test") is not None else None,
        n_pool=data["n_pool"], n_labels=data["n_budget"],
        label_counts={k: dict(Counter(map(str, labels_of(ds) or []))) for k, ds in splits},
    )


#: ``early_stopping.metric: auto`` keeps the weights of the best validation AUROC when every
#: class has at least this many validation items, else of the lowest validation loss. Measured
#: on the benchmark suite (benchmarks/HISTORY.md, "Which checkpoint fine-tuning keeps"): with
#: 21-270 items a class the AUROC's checkpoint tested better (BreastMNIST, PneumoniaMNIST and,
#: held out, AdrenalMNIST3D at 100 % of the labels); with 2-14 it tested worse (with a handful
#: of items the AUROC is 1.0 at the first evaluation and the earliest weights are kept).
AUROC_MONITOR_MIN_PER_CLASS = 20


def monitored_metric(early: EarlyStopping | None, val_labels: Sequence[int]) -> str:
    """The validation metric whose best weights fine-tuning keeps: the config's; for ``auto``
    the AUROC when every class of ``val_labels`` has :data:`AUROC_MONITOR_MIN_PER_CLASS` items,
    else the loss."""
    if early is None or early.metric == "loss":
        return "loss"
    if early.metric != "auto":
        return early.metric
    return "auroc" if fewest_per_class(val_labels) >= AUROC_MONITOR_MIN_PER_CLASS else "loss"


class FinetuneRecipe:
    """What fine-tuning builds its own way in the stage skeleton
    (:mod:`ssl_domains.engine.stage`): the label budget (or a :class:`Refit`'s items), the
    labels checked against the task, the head and its parameter groups, the validation
    predictions as metrics."""

    stage = "finetune"

    def __init__(self, cfg: RunConfig, registry: Registry, sources: dict[str, Any] | None = None,
                 refit: Refit | None = None) -> None:
        if cfg.finetune is None:
            raise ConfigError(f"{cfg.name}: the config has no 'finetune' section")
        fcfg = cfg.finetune
        self.cfg, self.registry, self.section, self.refit = cfg, registry, fcfg, refit
        self.sources = sources
        self.data_cfg, self.train_cfg = fcfg.data, fcfg.train
        self.loader_name = fcfg.data.train.name
        self.where = f"fine-tuning data ({self.loader_name})"
        #: what :meth:`build_task` found: classes, label warnings
        self.n_classes = 0
        self.label_warnings: list[str] = []

    def datasets(self) -> dict[str, Any]:
        """:func:`prepare_finetune_data`'s datasets (a :class:`Refit`'s without validation)."""
        if self.sources is None:
            self.sources = build_finetune_sources(self.section, self.registry)
        if self.refit is not None:
            return _refit_data(self.refit, self.sources)
        return prepare_finetune_data(self.cfg, self.section, self.sources)

    def initial_weights(self, init: InitConfig | None, export: Path) -> InitConfig | None:
        return finetune_init(self.cfg, init, export)

    def build_task(self, backbone: nn.Module, data: dict[str, Any], first: dict[str, Any]) -> nn.Module:
        """The fine-tuning task, its classes checked against the labels.

        Raises:
            ConfigError: Labels that do not fit the task; DataError: one class only, or a
                validation set missing a class.
        """
        fcfg, registry = self.section, self.registry
        train_labels, val_labels = _labels(data)
        declared, explicit = declared_classes(fcfg.task.args, registry.get("finetune", fcfg.task.name).factory)
        self.n_classes, self.label_warnings = check_labels(
            task=fcfg.task.name, num_classes=declared, explicit=explicit,
            pool=labels_of(data["pool"]) or [], train=train_labels, val=val_labels,
            where=self.where,
            val_where=(f"validation data ({fcfg.data.val.name})" if fcfg.data.val is not None
                       else f"the validation carve ({fcfg.data.val_fraction:.0%} of the labeled items)"),
        )
        args = {k: v for k, v in fcfg.task.args.items() if k != "num_classes"}
        task = registry.create("finetune", fcfg.task.name, backbone, num_classes=self.n_classes, **args)
        if hasattr(task, "observe_labels"):
            task.observe_labels(train_labels)
        return task

    def options(self, prepared: Prepared, rt: Runtime) -> TrainOptions:
        """The head and (unless frozen) the backbone at ``backbone_lr_scale``; validation
        metrics from its predictions; the monitored metric; a refit's stop step."""
        fcfg, task, backbone = self.section, prepared.task, prepared.backbone
        head_params = [p for n, p in task.named_parameters() if not n.startswith("backbone.")]
        groups: list[dict[str, Any]] = [{"params": head_params}]
        frozen: list[nn.Module] = []
        if fcfg.mode == "linear":
            backbone.requires_grad_(False)
            frozen.append(backbone)
        else:
            groups.append({"params": list(backbone.parameters()), "lr_scale": fcfg.backbone_lr_scale})

        def on_epoch_start(model: nn.Module, epoch: int) -> None:
            if fcfg.mode != "frozen_then_unfrozen":
                return
            frozen_now = epoch < fcfg.unfreeze_epoch
            backbone.requires_grad_(not frozen_now)
            frozen[:] = [backbone] if frozen_now else []  # the trainer's list

        val_loader = prepared.val_loader

        def validate(model: nn.Module) -> dict[str, float | None]:
            assert val_loader is not None
            return score(predict(model, val_loader, rt), None)

        return TrainOptions(param_groups=groups, validate=None if val_loader is None else validate,
                            on_epoch_start=on_epoch_start, frozen=frozen,
                            monitor=monitored_metric(fcfg.train.early_stopping, _labels(prepared.data)[1]),
                            stop_at=self.refit.steps if self.refit is not None else None)


def _labels(data: Mapping[str, Any]) -> tuple[list[int], list[int]]:
    """Training and validation labels (a refit's training items stand for validation)."""
    train, val = data["train"], data["val"]
    return labels_of(train) or [], labels_of(val if val is not None else train) or []


@holding_run_lock
def finetune(
    cfg: RunConfig,
    run_path: Path,
    *,
    registry: Registry,
    init: InitConfig | None = None,
    resume: bool = False,
    sources: dict[str, Any] | None = None,
    refit: Refit | None = None,
) -> dict[str, Any]:
    """Run the ``finetune`` stage of ``cfg`` into ``run_path``; returns the ``eval.json`` content
    (:meth:`~ssl_domains.engine.assess.Assessment.to_json`). ``finetune.select: auto`` is run
    by :func:`ssl_domains.finetune_stage.finetune` instead (which calls this one
    for ``select: single``).

    Initial weights, in order: ``init`` (``--init``), ``cfg.init``, then this run's own
    pre-training export when the config also pre-trains; none when ``from_scratch``.

    ``registry`` gives every component (and converts foreign weights); ``sources`` (from
    :func:`build_finetune_sources`) skips rebuilding the datasets. ``refit`` trains on its
    items instead of the label budget, without validation (:class:`Refit`).

    Raises:
        ConfigError: No ``finetune`` section; ``select: auto``; no weights to start from (no init, no export of
            this run's pre-training) without ``from_scratch: true``; labels that do not fit the
            task (e.g. three classes for a binary task).
        DataError: One class only, or a validation set missing a class.
        RunFolderBusy: Another process is writing into ``run_path``.
    """
    if cfg.finetune is None:
        raise ConfigError(f"{cfg.name}: the config has no 'finetune' section")
    fcfg = cfg.finetune
    if fcfg.select == "auto":
        raise ConfigError(f"{cfg.name}: finetune.select: auto trains several candidates; run it with "
                          "`ssl-domains finetune` or ssl_domains.finetune_stage.finetune")
    own_export = RunFolder(run_path).export
    dense = is_dense(registry, fcfg.task.name)
    if not (fcfg.from_scratch or resume or init or cfg.init
            or (cfg.pretrain is not None and (own_export / BACKBONE_FILE).is_file())):
        raise ConfigError(
            f"{cfg.name}: fine-tuning has no pre-trained weights to start from (no --init, no "
            f"'init' in the config, no pre-training export in {own_export}); run "
            "`ssl-domains pretrain` into this run folder first, pass --init PATH, or set "
            "finetune.from_scratch: true to train from random weights"
        )
    if dense:
        if refit is not None:
            raise ConfigError(f"{cfg.name}: a dense task is not refitted by select: auto")
        return finetune_dense(cfg, Path(run_path), registry=registry, init=init, resume=resume,
                              sources=sources or build_finetune_sources(fcfg, registry))
    recipe = FinetuneRecipe(cfg, registry, sources, refit)
    trained = run_stage(recipe, run_path, init=init, resume=resume)
    rt, run, result = trained.where.runtime, trained.where.run, trained.result
    prepared = trained.prepared
    data, task = prepared.data, prepared.task
    test_ds = data["test"]

    if refit is not None:
        val_preds = refit.scores
    else:
        assert prepared.val_loader is not None
        val_preds = predict(task, prepared.val_loader, rt)
    test_preds = None
    skipped_file = run.layout.skipped if rt.is_main else None
    if test_ds is not None:
        test_preds = predict(task, make_loader(test_ds, fcfg.data, train=False, seed=cfg.seed, role="test",
                                               stage="finetune", skipped_file=skipped_file), rt)
    init_report = prepared.init_report
    details = {"steps": result.step, "best_step": result.best_step,
               "monitor": trained.options.monitor if refit is None else None,
               "stopped_early": result.stopped_early,
               **({"refit": refit.note} if refit is not None else {}),
               "init": init_report.summary() if init_report else ("scratch" if fcfg.from_scratch else "none"),
               "seconds": result.seconds}
    assessment = finish_run(run.path, val_preds, test_preds, threshold_rule=fcfg.threshold_rule,
                            counts=counts_of(data), warnings=recipe.label_warnings, details=details,
                            write=rt.is_main)
    if rt.is_main:
        export_cfg = export_config(
            cfg, prepared.backbone, "finetune", task=fcfg.task.model_dump(mode="json"), num_classes=task.num_classes,
            threshold=assessment.threshold, threshold_rule=fcfg.threshold_rule,
            data_stats=stats_of(data["pool"]),
        )
        save_network_export(run.layout.export, export_cfg, backbone=prepared.backbone, model=task,
                            card=model_card(cfg.model_dump(mode="json"), assessment))
    rt.barrier()
    run.close()
    return assessment.to_json()
