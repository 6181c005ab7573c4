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
from ssl_domains.data.datasets import Subset, build_dataset, groups_of, make_loader, with_stats
from ssl_domains.data.skipping import first_readable
from ssl_domains.data.splits import split_off
from ssl_domains.engine.build import apply_init, build_backbone, build_pretext, check_first_item
from ssl_domains.engine.exports import export_config, save_network_export
from ssl_domains.engine.loop import Trainer
from ssl_domains.engine.model_card import pretrain_card
from ssl_domains.engine.run_dir import RunDir, holding_run_lock
from ssl_domains.engine.runtime import Runtime
from ssl_domains.engine.stage import start_stage
from ssl_domains.errors import ConfigError, SSLDomainsError
from ssl_domains.files import write_guard
from ssl_domains.plugins import get_host

__all__ = ["pretrain"]

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


def pretrain_data(cfg: RunConfig) -> tuple[Any, Subset, Any]:
    """The pre-training data of ``cfg`` as the run uses it: ``(data, train, val)``, ``val``
    from the ``val`` loader or split off ``data`` (grouped, seeded). ``plan`` calls it too, so
    what it reports is what the run will do.

    Raises:
        DataError: A loader failed or found nothing; ConfigError: no split is possible.
    """
    assert cfg.pretrain is not None
    pcfg, registry = cfg.pretrain, get_host().registry
    data = build_dataset(registry, pcfg.data.train, "pre-training")
    if pcfg.data.val is not None:
        val_ref = with_stats(registry, pcfg.data.val, stats_of(data))
        return data, Subset(data, range(len(data)), train=True), build_dataset(registry, val_ref, "validation")  # type: ignore[arg-type]
    keep, held = split_off(len(data), pcfg.data.val_fraction, cfg.seed, groups=groups_of(data))  # type: ignore[arg-type]
    return data, Subset(data, keep, train=True), Subset(data, held)


@holding_run_lock
def pretrain(
    cfg: RunConfig, run_path: Path, *, init: InitConfig | None = None, resume: bool = False
) -> dict[str, Any]:
    """Run the ``pretrain`` stage of ``cfg`` into ``run_path``; returns a summary.

    Args:
        cfg: Run config with a ``pretrain`` section.
        run_path: The run folder.
        init: Weights to continue from (overrides ``cfg.init``).
        resume: Continue from the run folder's last pre-training checkpoint.

    Raises:
        ConfigError: No ``pretrain`` section.
    """
    if cfg.pretrain is None:
        raise ConfigError(f"{cfg.name}: the config has no 'pretrain' section")
    pcfg = cfg.pretrain
    rt, run, state = start_stage(cfg, run_path, "pretrain", pcfg.train.amp, resume)
    registry = get_host().registry

    data, train_ds, val_ds = pretrain_data(cfg)

    backbone = build_backbone(registry, cfg.backbone)
    first = first_readable(train_ds)
    if state is None:
        apply_init(backbone, init or cfg.init, run.path if rt.is_main else None)
    check_first_item(registry, backbone, cfg.backbone.name, pcfg.data.train.name, first,
                     f"pretrain data ({pcfg.data.train.name})")
    task = build_pretext(registry, pcfg.task, backbone, first)
    if not isinstance(getattr(task, "backbone", None), nn.Module):
        entry = registry.get("pretext", pcfg.task.name)
        raise SSLDomainsError(f"plugin {entry.plugin!r}: pretext {pcfg.task.name!r} must keep its backbone as .backbone")
    # data-side randomness differs per rank; model init above is identical on every rank
    torch.manual_seed(cfg.seed + 1000 * rt.rank)

    skipped_file = run.skipped if rt.is_main else None
    train_loader = make_loader(train_ds, pcfg.data, train=True, seed=cfg.seed, rank=rt.rank, world_size=rt.world_size,
                               role="training", stage="pretrain", skipped_file=skipped_file)
    val_loader = make_loader(val_ds, pcfg.data, train=False, seed=cfg.seed, role="validation", stage="pretrain",
                             skipped_file=skipped_file)
    trainer = Trainer(task, train_loader, pcfg.train, rt, run, "pretrain",
                      validate=_mean_loss(val_loader, rt), resolved_config=cfg.model_dump(mode="json"),
                      seed=cfg.seed)
    if state is not None:
        trainer.load_state(state)
        log.info("resumed pre-training at step %d (epoch %d)", trainer.step, trainer.epoch)
    result = trainer.fit()

    if rt.is_main:
        _save_figures(task, val_loader, rt, run, cfg.seed)
        stats = stats_of(data)
        exported = export_config(cfg, backbone, "pretrain", pretext=pcfg.task.model_dump(mode="json"),
                                 data_stats=stats, steps=result.step, n_train=len(train_ds),  # type: ignore[arg-type]
                                 best_val_loss=result.best_metric)
        save_network_export(
            run.export, exported, backbone=backbone, model=task,  # the whole pretext model: a
            # dense fine-tuning task starts from its decoder too
            card=pretrain_card(cfg.model_dump(mode="json"), exported))
    rt.barrier()
    summary = {"stage": "pretrain", "steps": result.step, "epochs": result.epoch,
               "best_val_loss": result.best_metric, "seconds": result.seconds,
               "n_train": len(train_ds), "n_val": len(val_ds), "export": str(run.export)}  # type: ignore[arg-type]
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
        png = run.figures / f"pretext_{name}.png"
        try:
            with write_guard(png, png):  # a full disk: one line naming the file, no partial PNG
                run.figures.mkdir(parents=True, exist_ok=True)
                fig.savefig(png, dpi=100, bbox_inches="tight")
        finally:
            pyplot = sys.modules.get("matplotlib.pyplot")  # loaded by the task, if it used it
            if pyplot is not None:
                pyplot.close(fig)

