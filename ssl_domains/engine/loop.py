"""The training loop shared by pre-training and fine-tuning: plain PyTorch, top to bottom.

One optimiser step per batch; linear warm-up then cosine/linear/constant schedule; gradient
clipping; bf16 autocast on CUDA; resume checkpoints every ``checkpoint_every`` steps holding
everything needed to continue bit-for-bit (model, optimiser, scheduler, scaler, position in the
epoch, RNG states, early-stopping state); validation that never touches the training RNG.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from ssl_domains import console
from ssl_domains.config import TrainConfig
from ssl_domains.contracts import LOSS, start_epoch
from ssl_domains.data.sampler import EpochSampler
from ssl_domains.engine.checkpoints import mismatch_error, save_checkpoint
from ssl_domains.engine.run_dir import RunDir
from ssl_domains.engine.runtime import Runtime, rng_state, set_rng_state
from ssl_domains.errors import ConfigError, SSLDomainsError

__all__ = ["Trainer", "StageRun", "TrainOptions", "FitResult", "make_optimizer", "make_scheduler",
           "planned_steps"]

log = logging.getLogger(__name__)

Validate = Callable[[nn.Module], dict[str, float | None]]


def make_optimizer(groups: list[dict[str, Any]], cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW/Adam/SGD over parameter groups (each may carry an ``lr`` multiplier ``lr_scale``)."""
    for g in groups:
        g["lr"] = cfg.lr * g.pop("lr_scale", 1.0)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up for ``warmup_steps``, then the configured decay to 0 at ``total_steps``."""
    warm = cfg.warmup_steps

    def factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if cfg.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warm) / max(1, total_steps - warm))
        if cfg.schedule == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


@dataclass
class FitResult:
    """What :meth:`Trainer.fit` ends with."""

    step: int
    epoch: int
    best_metric: float | None = None
    best_step: int | None = None
    stopped_early: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class StageRun:
    """Where and as what a stage trains (:func:`ssl_domains.engine.stage.start_stage` makes it).

    Attributes:
        runtime: Device / distributed facts.
        run: Run folder (metrics and checkpoints).
        stage: ``"pretrain"`` or ``"finetune"`` (tags log lines and checkpoints).
        resolved_config: Stored in checkpoints so a resume knows what it resumes.
        seed: The run's seed (validation draws its randomness from it).
    """

    runtime: Runtime
    run: RunDir
    stage: str
    resolved_config: dict[str, Any] = field(default_factory=dict)
    seed: int = 0


@dataclass
class TrainOptions:
    """How a stage trains its model beyond the optimisation settings.

    Attributes:
        param_groups: Optimiser groups; default: all parameters.
        validate: Called on the bare model at each evaluation; returns metrics incl. ``loss``.
        on_epoch_start: Hook called with (model, epoch) before each epoch (e.g. unfreezing).
        frozen: Modules kept in eval mode while training (frozen backbone: BatchNorm stats too).
        monitor: The validation metric whose best weights are kept, when the caller resolved
            ``early_stopping.metric: auto`` (:func:`ssl_domains.engine.finetune.monitored_metric`);
            default: the config's metric, ``loss`` for ``auto``.
        stop_at: Stop after this many steps, the learning-rate schedule still laid out over
            the configured ``epochs``/``max_steps`` (a model refitted for the steps its
            cross-validation folds trained, :class:`ssl_domains.engine.finetune.Refit`).
    """

    param_groups: list[dict[str, Any]] | None = None
    validate: Validate | None = None
    on_epoch_start: Callable[[nn.Module, int], None] | None = None
    frozen: list[nn.Module] = field(default_factory=list)
    monitor: str | None = None
    stop_at: int | None = None


def planned_steps(cfg: TrainConfig, batches_per_epoch: int) -> int:
    """Steps the learning-rate schedule is laid out over: ``epochs`` times the batches of an
    epoch, at most ``max_steps``."""
    total = cfg.epochs * max(1, batches_per_epoch)
    return min(total, cfg.max_steps) if cfg.max_steps else total


class Trainer:
    """Trains ``model`` (whose ``forward(batch)`` returns ``{"loss": ...}``) on ``loader``.

    Args:
        model: The pretext or fine-tuning task module (not yet DDP-wrapped).
        loader: Training DataLoader using an :class:`EpochSampler`.
        cfg: Optimisation settings.
        where: The stage's runtime, run folder, name, resolved config and seed.
        options: Parameter groups, validation, frozen modules, monitored metric, stop step.
    """

    def __init__(self, model: nn.Module, loader: DataLoader, cfg: TrainConfig, where: StageRun,
                 options: TrainOptions | None = None) -> None:
        opts = options or TrainOptions()
        runtime = where.runtime
        self.model = model.to(runtime.device)
        self.loader = loader
        self.cfg = cfg
        self.rt = runtime
        self.run = where.run
        self.stage = where.stage
        self.validate = opts.validate
        self.on_epoch_start = opts.on_epoch_start
        self.resolved_config = where.resolved_config
        self.seed = where.seed
        #: modules kept in eval mode while training (frozen backbone: BatchNorm stats too)
        self.frozen: list[nn.Module] = opts.frozen  # the caller's list: it may change per epoch
        groups = opts.param_groups or [{"params": [p for p in model.parameters()]}]
        self.optimizer = make_optimizer(groups, cfg)
        self.total_steps = planned_steps(cfg, len(loader))
        self.scheduler = make_scheduler(self.optimizer, cfg, self.total_steps)
        #: where training stops (``stop_at``, else the schedule's end)
        self.stop_step = min(self.total_steps, opts.stop_at) if opts.stop_at else self.total_steps
        # bf16 needs no loss scaling; the scaler is kept (disabled) so checkpoints have one shape
        self.scaler = torch.amp.GradScaler(enabled=False)
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best_metric: float | None = None
        self.best_step: int | None = None
        self.bad_evals = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.history: list[dict[str, Any]] = []
        es = cfg.early_stopping
        #: the validation metric whose best weights are kept (``auto`` unresolved: loss)
        self.monitor = opts.monitor or (es.metric if es and es.metric != "auto" else "loss")
        mode = es.mode if es else "auto"
        self.maximize = (mode == "max") or (mode == "auto" and self.monitor != "loss")

    def _train_mode(self) -> None:
        self.model.train()
        for m in self.frozen:
            m.eval()

    # -- checkpoint state -------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "rng": rng_state(),
            "early": {"best_metric": self.best_metric, "best_step": self.best_step,
                      "bad_evals": self.bad_evals, "best_state": self.best_state},
            "history": self.history,
            "config": self.resolved_config,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from a resume checkpoint of the same stage."""
        if state.get("stage") != self.stage:
            raise SSLDomainsError(f"{self.run.resume_file or 'checkpoint'}: checkpoint is from stage "
                                  f"{state.get('stage')!r}, not {self.stage!r}")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError):  # torch's multi-line state-dict report
            raise mismatch_error(self.run.resume_file, state, self.resolved_config, self.stage,
                                 self.model) from None
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch = state["step"], state["epoch"]
        self.batch_in_epoch = state["batch_in_epoch"]
        early = state["early"]
        self.best_metric, self.best_step = early["best_metric"], early["best_step"]
        self.bad_evals, self.best_state = early["bad_evals"], early["best_state"]
        self.history = list(state.get("history", []))
        set_rng_state(state["rng"])
        self.run.truncate_log_after(self.stage, self.step)

    def _checkpoint(self) -> None:
        if self.rt.is_main:
            save_checkpoint(self.state(), self.run.layout.checkpoints / self.stage, self.step,
                            keep=self.cfg.keep_checkpoints)

    # -- evaluation ---------------------------------------------------------------------------
    def _evaluate(self) -> bool:
        """Validate, log, update early stopping; True when training should stop."""
        if self.validate is None:
            return False
        self.model.eval()
        # validation draws its own randomness (e.g. masks) from a fixed seed and leaves the
        # training RNG exactly as it was
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(self.seed + 7919)
            metrics = self.validate(self.model)
        self._train_mode()
        record = {"stage": self.stage, "split": "val", "step": self.step, "epoch": self.epoch, **metrics}
        self.history.append(record)
        self.run.log(record)
        if metrics and self.monitor not in metrics:  # e.g. f1 on a binary task's validation
            raise ConfigError(f"{self.stage}.train.early_stopping.metric {self.monitor!r}: this "
                              f"task's validation reports {', '.join(sorted(metrics))}; choose one")
        value = metrics.get(self.monitor)
        if value is None or not math.isfinite(value):
            return False
        better = (self.best_metric is None or
                  (value > self.best_metric if self.maximize else value < self.best_metric))
        if better:
            self.best_metric, self.best_step, self.bad_evals = value, self.step, 0
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            return False
        self.bad_evals += 1
        es = self.cfg.early_stopping
        return bool(es and es.patience is not None and self.bad_evals >= es.patience)

    # -- the loop -------------------------------------------------------------------------------
    def fit(self) -> FitResult:
        """Train until ``epochs``/``max_steps`` or early stopping; restores the best weights
        (by the monitored validation metric) at the end when validation ran."""
        cfg, rt = self.cfg, self.rt
        net: nn.Module = self.model
        if rt.distributed:
            net = DDP(self.model, device_ids=[rt.local_rank] if rt.device.type == "cuda" else None)
        sampler = self.loader.sampler
        assert isinstance(sampler, EpochSampler), "training loaders must use EpochSampler"
        bs = self.loader.batch_size or 1
        start = time.perf_counter()
        stopped = False
        # a tqdm bar on a terminal; one line every 20 % of the steps otherwise (CI logs)
        bar = console.progress(self.stop_step, initial=self.step, desc=self.stage,
                               enabled=bool(cfg.progress and rt.is_main))
        self._train_mode()
        items_seen = 0
        running = torch.zeros((), device=rt.device)
        running_n = 0
        while self.epoch < cfg.epochs and self.step < self.stop_step and not stopped:
            if self.on_epoch_start is not None:
                self.on_epoch_start(self.model, self.epoch)
                self._train_mode()
            sampler.set_epoch(self.epoch, skip=self.batch_in_epoch * bs)
            # items that vary by epoch (random patches) stay resumable
            start_epoch(self.loader.dataset, self.epoch)
            for batch in self.loader:
                batch = rt.to_device(batch)
                with rt.autocast():
                    out = net(batch)
                loss = out[LOSS]
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                self.optimizer.step()
                self.scheduler.step()
                self.step += 1
                self.batch_in_epoch += 1
                items_seen += bs
                running += loss.detach()
                running_n += 1
                if self.step % cfg.log_every == 0 or self.step == self.stop_step:
                    mean_loss = rt.all_reduce_mean(float(running) / running_n)
                    rate = items_seen * rt.world_size / max(1e-9, time.perf_counter() - start)
                    self.run.log({"stage": self.stage, "split": "train", "step": self.step,
                                  "epoch": self.epoch, "loss": mean_loss,
                                  "lr": self.scheduler.get_last_lr()[0], "items_per_s": rate})
                    bar.set_postfix(loss=f"{mean_loss:.4f}", items_s=f"{rate:.0f}")
                    running.zero_()
                    running_n = 0
                bar.update(1)
                if cfg.eval_every and self.step % cfg.eval_every == 0:
                    stopped = self._evaluate()
                if self.step % cfg.checkpoint_every == 0:
                    self._checkpoint()
                if stopped or self.step >= self.stop_step:
                    break
            else:
                # a full epoch: validate (unless done by step), then start the next one
                if not cfg.eval_every:
                    stopped = self._evaluate()
                self.epoch += 1
                self.batch_in_epoch = 0
                continue
            break
        bar.close()
        if not stopped and self.validate is not None and not cfg.eval_every and self.batch_in_epoch:
            stopped = self._evaluate()  # max_steps hit mid-epoch: one last validation
        self._checkpoint()
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return FitResult(self.step, self.epoch, self.best_metric, self.best_step, stopped,
                         self.history, time.perf_counter() - start)
