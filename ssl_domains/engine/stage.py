"""What every stage does first: device and process group, seeds, the run folder, resume state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ssl_domains.config import RunConfig
from ssl_domains.engine.checkpoints import check_resumable
from ssl_domains.engine.run_dir import RunDir
from ssl_domains.engine.runtime import Runtime, seed_everything

__all__ = ["start_stage"]


def start_stage(
    cfg: RunConfig, run_path: Path, stage: str, amp: str, resume: bool
) -> tuple[Runtime, RunDir, dict[str, Any] | None]:
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
    if state is not None:  # before config.yaml is rewritten
        check_resumable(run.resume_file, state, cfg.model_dump(mode="json"), stage)
    run.create(cfg)
    return rt, run, state
