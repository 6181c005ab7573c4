"""Self-supervised (continued) pre-training: a pretext task on unlabeled data."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from ssl_domains.config import InitConfig, RunConfig
from ssl_domains.contracts import LOSS, stats_of
from ssl_domains.data.datasets import Subset, build_dataset, groups_of, with_stats
from ssl_domains.data.splits import split_off
from ssl_domains.engine.build import build_pretext
from ssl_domains.engine.exports import export_config, save_network_export
from ssl_domains.engine.loop import TrainOptions
from ssl_domains.engine.model_card import pretrain_card
from ssl_domains.engine.run_dir import RunDir, holding_run_lock
from ssl_domains.engine.runtime import Runtime
from ssl_domains.engine.stage import Prepared, run_stage
from ssl_domains.errors import ConfigError, SSLDomainsError
from ssl_domains.files import write_guard
from ssl_domains.registry import Registry

__all__ = ["pretrain", "PretrainRecipe"]

log = logging.getLogger(__name__)


def _mean_loss(loader: DataLoader, rt: Runtime, max_batches: int = 50) -> Any:
    def validate(model: nn.Module) -> dict[str, float]:
        total, n = 0.0, 0
        for i, batch in enumerate(loader):
            if i >= max_batches:
                break
            batch = rt.to_device(batch)
            with rt.autocast():
                out = model(batch)
            total += float(out[LOSS])
            n += 1
        return {LOSS: rt.all_reduce_mean(total / max(n, 1))}

    return validate


class PretrainRecipe:
    """What pre-training builds its own way in the stage skeleton
    (:mod:`ssl_domains.engine.stage`): unlabeled data with its validation part, a pretext
    task, the mean validation loss."""

    stage = "pretrain"

    def __init__(self, cfg: RunConfig, registry: Registry) -> None:
        if cfg.pretrain is None:
            raise ConfigError(f"{cfg.name}: the config has no 'pretrain' section")
        self.cfg, self.registry, self.section = cfg, registry, cfg.pretrain
        self.data_cfg, self.train_cfg = cfg.pretrain.data, cfg.pretrain.train
        self.loader_name = cfg.pretrain.data.train.name
        self.where = f"pretrain data ({self.loader_name})"

    def datasets(self) -> dict[str, Any]:
        """``data`` (the training loader's dataset), ``train`` and ``val``: ``val`` from the
        ``val`` loader or split off ``data`` (grouped, seeded).

        Raises:
            DataError: A loader failed or found nothing; ConfigError: no split is possible.
        """
        pcfg, registry, seed = self.section, self.registry, self.cfg.seed
        data = build_dataset(registry, pcfg.data.train, "pre-training")
        if pcfg.data.val is not None:
            val_ref = with_stats(registry, pcfg.data.val, stats_of(data))
            return {"data": data, "train": Subset(data, range(len(data)), train=True),  # type: ignore[arg-type]
                    "val": build_dataset(registry, val_ref, "validation")}
        keep, held = split_off(len(data), pcfg.data.val_fraction, seed, groups=groups_of(data))  # type: ignore[arg-type]
        return {"data": data, "train": Subset(data, keep, train=True), "val": Subset(data, held)}

    def initial_weights(self, init: InitConfig | None, export: Path) -> InitConfig | None:
        return init or self.cfg.init

    def build_task(self, backbone: nn.Module, data: dict[str, Any], first: dict[str, Any]) -> nn.Module:
        """The pretext task; it must keep its backbone as ``.backbone``.

        Raises:
            SSLDomainsError: It does not.
        """
        task = build_pretext(self.registry, self.section.task, backbone, first)
        if not isinstance(getattr(task, "backbone", None), nn.Module):
            entry = self.registry.get("pretext", self.section.task.name)
            raise SSLDomainsError(f"plugin {entry.plugin!r}: pretext {self.section.task.name!r} "
                                  "must keep its backbone as .backbone")
        return task

    def options(self, prepared: Prepared, rt: Runtime) -> TrainOptions:
        assert prepared.val_loader is not None
        return TrainOptions(validate=_mean_loss(prepared.val_loader, rt))


@holding_run_lock
def pretrain(
    cfg: RunConfig, run_path: Path, *, registry: Registry, init: InitConfig | None = None,
    resume: bool = False
) -> dict[str, Any]:
    """Run the ``pretrain`` stage of ``cfg`` into ``run_path``; returns a summary.

    Args:
        cfg: Run config with a ``pretrain`` section.
        run_path: The run folder.
        registry: Where the run's components come from.
        init: Weights to continue from (overrides ``cfg.init``).
        resume: Continue from the run folder's last pre-training checkpoint.

    Raises:
        ConfigError: No ``pretrain`` section.
    """
    recipe = PretrainRecipe(cfg, registry)
    pcfg = recipe.section
    trained = run_stage(recipe, run_path, init=init, resume=resume)
    rt, run, result = trained.where.runtime, trained.where.run, trained.result
    prepared = trained.prepared
    data, train_ds, val_ds = prepared.data["data"], prepared.data["train"], prepared.data["val"]

    if rt.is_main:
        assert prepared.val_loader is not None
        _save_figures(prepared.task, prepared.val_loader, rt, run, cfg.seed)
        stats = stats_of(data)
        exported = export_config(cfg, prepared.backbone, "pretrain", pretext=pcfg.task.model_dump(mode="json"),
                                 data_stats=stats, steps=result.step, n_train=len(train_ds),
                                 best_val_loss=result.best_metric)
        save_network_export(
            run.layout.export, exported, backbone=prepared.backbone, model=prepared.task,  # the whole
            # pretext model: a dense fine-tuning task starts from its decoder too
            card=pretrain_card(cfg.model_dump(mode="json"), exported))
    rt.barrier()
    summary = {"stage": "pretrain", "steps": result.step, "epochs": result.epoch,
               "best_val_loss": result.best_metric, "seconds": result.seconds,
               "n_train": len(train_ds), "n_val": len(val_ds), "export": str(run.layout.export)}
    run.close()
    return summary


def _save_figures(task: nn.Module, loader: DataLoader, rt: Runtime, run: RunDir, seed: int) -> None:
    """Pretext pictures (e.g. input | corrupted | reconstruction) from one validation batch.

    The task draws them (``figures(out, max_items) -> {name: figure}``, objects with
    ``savefig``); the engine only saves them, and imports no plotting library: a figure the task
    made through ``matplotlib.pyplot`` is closed through the pyplot the task loaded.
    """
    figures_fn = getattr(task, "figures", None)
    if figures_fn is None:
        return
    task.eval()
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        batch = rt.to_device(next(iter(loader)))
        out = task(batch)
    out = {k: ((v.detach().cpu().float() if v.is_floating_point() else v.detach().cpu())
               if isinstance(v, torch.Tensor) else v) for k, v in out.items()}
    try:
        figs = figures_fn(out, max_items=4)
    except Exception as exc:  # noqa: BLE001 - pictures must not lose a finished run
        log.warning("pretext figures failed: %s: %s", type(exc).__name__, exc)
        return
    for name, fig in figs.items():
        png = run.layout.figures / f"pretext_{name}.png"
        try:
            with write_guard(png, png):  # a full disk: one line naming the file, no partial PNG
                run.layout.figures.mkdir(parents=True, exist_ok=True)
                fig.savefig(png, dpi=100, bbox_inches="tight")
        finally:
            pyplot = sys.modules.get("matplotlib.pyplot")  # loaded by the task, if it used it
            if pyplot is not None:
                pyplot.close(fig)

