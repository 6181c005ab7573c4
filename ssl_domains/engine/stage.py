"""The stage skeleton that pre-training and fine-tuning share, and ``plan`` runs up to the
loaders.

A stage: start (device and process group, seeds, the run folder, resume state) -> datasets ->
backbone -> initial weights -> the first item checked against the backbone -> the task ->
seeds of the data-side randomness -> loaders -> :class:`~ssl_domains.engine.loop.Trainer` ->
fit; the stage then assesses and exports. What differs between stages is a :class:`Recipe`
(:class:`ssl_domains.engine.pretrain.PretrainRecipe`,
:class:`ssl_domains.engine.finetune.FinetuneRecipe`). ``ssl-domains plan`` calls
:func:`prepare` with the same recipe, so the items, the split and the steps it reports are the
run's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from torch.utils.data import DataLoader

from ssl_domains.config import InitConfig, RunConfig, TrainConfig
from ssl_domains.data.datasets import make_loader
from ssl_domains.data.skipping import first_readable
from ssl_domains.engine.build import apply_init, build_backbone, check_first_item
from ssl_domains.engine.checkpoints import InitReport, check_resumable
from ssl_domains.engine.loop import FitResult, StageRun, Trainer, TrainOptions
from ssl_domains.engine.run_dir import RunDir
from ssl_domains.engine.runtime import Runtime, seed_everything
from ssl_domains.registry import Registry

__all__ = ["start_stage", "Recipe", "Prepared", "Trained", "prepare", "run_stage"]

log = logging.getLogger(__name__)


def start_stage(
    cfg: RunConfig, run_path: Path, stage: str, amp: str, resume: bool
) -> tuple[StageRun, dict[str, Any] | None]:
    """Set up a stage: runtime (joins torchrun's process group), seeds, the run folder with
    its resolved config, and the resume checkpoint when ``resume``.

    Raises:
        SSLDomainsError: ``resume`` without a checkpoint of ``stage``, or with one that is
            damaged or belongs to another backbone or task (CheckpointError).
    """
    rt = Runtime.create(cfg.device, amp)
    seed_everything(cfg.seed, cfg.deterministic)
    run = RunDir(run_path, enabled=rt.is_main)
    state = run.resume_state(stage) if resume else None
    resolved = cfg.model_dump(mode="json")
    if state is not None:  # before config.yaml is rewritten
        check_resumable(run.resume_file, state, resolved, stage)
    run.create(cfg)
    return StageRun(rt, run, stage, resolved, cfg.seed), state


class Recipe(Protocol):
    """What one stage builds its own way; the order is :func:`prepare`'s.

    Attributes:
        cfg: The run config.
        registry: Where every component of the run comes from.
        stage: ``"pretrain"`` or ``"finetune"``.
        data_cfg: The stage's data section (batch size, workers, ...).
        train_cfg: The stage's optimisation settings.
        loader_name: The training loader's name (for messages).
        where: The training data in words (``"fine-tuning data (csv)"``).
    """

    cfg: RunConfig
    registry: Registry
    stage: str
    data_cfg: Any
    train_cfg: TrainConfig
    loader_name: str
    where: str

    def datasets(self) -> dict[str, Any]:
        """The stage's datasets, ``train`` and ``val`` (None: no validation set) among them."""

    def initial_weights(self, init: InitConfig | None, export: Path) -> InitConfig | None:
        """The weights the backbone starts from (``init``: ``--init``; ``export``: the run's)."""

    def build_task(self, backbone: nn.Module, data: dict[str, Any], first: dict[str, Any]) -> nn.Module:
        """The pretext or fine-tuning task around ``backbone`` (``first``: the first readable
        training item)."""

    def options(self, prepared: Prepared, rt: Runtime) -> TrainOptions:
        """Parameter groups, validation, frozen modules, monitored metric, stop step."""


@dataclass
class Prepared:
    """A stage built up to its loaders: what ``plan`` reports and the run trains."""

    data: dict[str, Any]
    backbone: nn.Module
    task: nn.Module
    first: dict[str, Any]
    init_report: InitReport | None
    train_loader: DataLoader
    val_loader: DataLoader | None


@dataclass
class Trained:
    """A stage after :meth:`~ssl_domains.engine.loop.Trainer.fit`."""

    where: StageRun
    prepared: Prepared
    options: TrainOptions
    result: FitResult


def prepare(recipe: Recipe, *, init: InitConfig | None = None, where: StageRun | None = None) -> Prepared:
    """Datasets, backbone, initial weights (``init``; ``init_report.json`` into ``where``'s
    run folder), the first item checked, the task, the loaders. Without ``where`` (``plan``):
    one process, nothing written.

    Raises:
        SSLDomainsError: What the run stops with while building data and model.
    """
    cfg, registry = recipe.cfg, recipe.registry
    data = recipe.datasets()
    backbone = build_backbone(registry, cfg.backbone)
    first = first_readable(data["train"])
    main = where is None or where.runtime.is_main
    init_report = apply_init(registry, backbone, init,
                             where.run.path if where is not None and main else None)
    check_first_item(registry, backbone, cfg.backbone.name, recipe.loader_name, first, recipe.where)
    task = recipe.build_task(backbone, data, first)
    rank, world = (where.runtime.rank, where.runtime.world_size) if where is not None else (0, 1)
    # data-side randomness differs per rank; model init above is identical on every rank
    torch.manual_seed(cfg.seed + 1000 * rank)
    skipped_file = where.run.layout.skipped if where is not None and main else None
    train_loader = make_loader(data["train"], recipe.data_cfg, train=True, seed=cfg.seed, rank=rank,
                               world_size=world, role="training", stage=recipe.stage,
                               skipped_file=skipped_file)
    val_loader = None if data["val"] is None else make_loader(
        data["val"], recipe.data_cfg, train=False, seed=cfg.seed, role="validation",
        stage=recipe.stage, skipped_file=skipped_file)
    return Prepared(data, backbone, task, first, init_report, train_loader, val_loader)


def run_stage(recipe: Recipe, run_path: Path, *, init: InitConfig | None, resume: bool) -> Trained:
    """Start the stage in ``run_path``, :func:`prepare` it (the initial weights unless it
    resumes), train it (from the resume checkpoint when ``resume``); the caller assesses,
    exports and closes ``where.run``."""
    where, state = start_stage(recipe.cfg, run_path, recipe.stage, recipe.train_cfg.amp, resume)
    weights = recipe.initial_weights(init, where.run.layout.export) if state is None else None
    prepared = prepare(recipe, init=weights, where=where)
    options = recipe.options(prepared, where.runtime)
    trainer = Trainer(prepared.task, prepared.train_loader, recipe.train_cfg, where, options)
    if state is not None:
        trainer.load_state(state)
        log.info("resumed %s at step %d (epoch %d)", recipe.stage, trainer.step, trainer.epoch)
    return Trained(where, prepared, options, trainer.fit())
