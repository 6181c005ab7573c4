"""The fine-tuning stage whatever ``finetune.select`` says: one model, or ``select: auto``.

The CLI and the demo call :func:`finetune`. ``select: auto`` is :mod:`ssl_domains.autoselect`'s
(the choice, cross-validation, refit, the chosen model's export); its candidates train as a
sweep of one size and seed (:class:`~ssl_domains.sweep.run.SweepCandidates`, so that
``--jobs`` runs them and their folds side by side with the sweep's job machinery). That is why
this entry sits above :mod:`ssl_domains.sweep`, and :mod:`ssl_domains.autoselect` below it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ssl_domains.autoselect.run import select_finetune
from ssl_domains.config import InitConfig, RunConfig
from ssl_domains.engine import finetune as finetuning
from ssl_domains.errors import ConfigError
from ssl_domains.registry import Registry
from ssl_domains.sweep.run import CellRunner, SweepCandidates

__all__ = ["finetune"]


def finetune(cfg: RunConfig, run_path: Path, *, registry: Registry, init: InitConfig | None = None,
             resume: bool = False, jobs: CellRunner | None = None) -> dict[str, Any]:
    """Fine-tune ``cfg`` into ``run_path`` (components from ``registry``); returns the
    ``eval.json`` content. ``select: single`` trains one model
    (:func:`ssl_domains.engine.finetune.finetune`); ``select: auto`` trains the candidates,
    ``jobs`` side by side, and ships the one chosen on validation data
    (:func:`ssl_domains.autoselect.run.select_finetune`).

    Raises:
        ConfigError: ``jobs`` for a config that fine-tunes one model; what the stage raises.
    """
    if cfg.finetune is not None and cfg.finetune.select == "auto":
        return select_finetune(cfg, run_path, init=init, registry=registry,
                               candidates=SweepCandidates(jobs))
    if jobs is not None:
        raise ConfigError("--jobs/--gpus/--threads-per-job run select: auto's candidates and folds "
                          "side by side; "
                          "this config fine-tunes one model (finetune.select: single): use "
                          "torchrun for several processes, or --set finetune.select=auto")
    return finetuning.finetune(cfg, run_path, registry=registry, init=init, resume=resume)
