"""``ssl-domains demo``: pre-train, fine-tune the pre-trained backbone and the same backbone from
scratch on the same labeled split, and report the comparison.

The two fine-tuning runs are laid out like a one-size, one-seed sweep: ``sweep/results.csv`` in
the run folder (the tidy table of :mod:`ssl_domains.sweep.results`: arm, n_labels, fraction,
seed, metric, value), so the report's summary and label-efficiency sections show both arms.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ssl_domains.config import RunConfig, load_config, parse_config
from ssl_domains.engine.pretrain import pretrain
from ssl_domains.errors import ConfigError
from ssl_domains.finetune_stage import finetune
from ssl_domains.layout.numbers import fmt
from ssl_domains.layout.run import RunFolder
from ssl_domains.layout.sweep import SweepFolder, write_table
from ssl_domains.plugins import get_host
from ssl_domains.registry import Registry
from ssl_domains.report.pages import build_report
from ssl_domains.sweep.results import NOT_METRICS

__all__ = ["comparison_rows", "write_comparison", "run_demo", "find_demo_configs"]



def comparison_rows(arms: dict[str, dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Rows of ``results.csv`` for fine-tuning summaries (``finetune()``'s return value or
    ``eval.json``), one per arm and test metric."""
    rows = []
    for arm, summary in arms.items():
        n_labels = int(summary.get("n_labels", int(summary.get("n_train", 0)) + int(summary.get("n_val", 0))))
        n_pool = summary.get("n_pool")
        fraction = n_labels / n_pool if n_pool else math.nan
        for metric, value in (summary.get("test") or {}).items():
            if metric in NOT_METRICS:
                continue
            rows.append({"arm": arm, "n_labels": n_labels, "fraction": fraction, "seed": seed,
                         "metric": metric, "value": math.nan if value is None else float(value)})
    return rows


def write_comparison(run_path: Path, arms: dict[str, dict[str, Any]], seed: int) -> Path:
    """Write ``run_path/sweep/results.csv`` for the arms; returns its path.

    Raises:
        ConfigError: No arm has test metrics (the demo config needs a ``test`` loader).
    """
    rows = comparison_rows(arms, seed)
    if not rows:
        raise ConfigError("the demo config's finetune section needs test data (data.test) to compare the arms")
    return write_table(SweepFolder(RunFolder(run_path).sweep).results, rows)


def find_demo_configs(data_dir: Path, plugins: Sequence[str] = ()) -> list[Path]:
    """``<data_dir>/<plugin>/demo.yaml`` files, optionally only those of ``plugins``.

    Raises:
        ConfigError: None found.
    """
    configs = sorted(Path(data_dir).glob("*/demo.yaml"))
    if plugins:
        configs = [c for c in configs if c.parent.name in plugins]
    if not configs:
        raise ConfigError(f"{data_dir}: no */demo.yaml found; run from the repository root or pass --data-dir")
    return configs


def run_demo(config: Path, out: Path, overrides: Sequence[str], echo: Callable[[str], Any]) -> Path:
    """One plugin's demo into ``out/demo-<plugin>-<time>``; returns the report's path."""
    cfg = load_config(config, list(overrides))
    if cfg.finetune is None:
        raise ConfigError(f"{config}: a demo config needs a finetune section")
    run_path = Path(out) / f"demo-{config.parent.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    echo(f"== demo {config.parent.name} -> {run_path}")
    registry = get_host().registry  # one registry for the whole demo
    if cfg.pretrain is not None:
        ssl = pretrain(cfg, run_path, registry=registry)
        echo(f"pre-trained {ssl['steps']} steps, best val loss {ssl['best_val_loss']:.4g}")
    res = _finetune(cfg, run_path, registry)
    scratch_cfg = parse_config({**cfg.model_dump(mode="json"), "pretrain": None,
                                "finetune": {**cfg.finetune.model_dump(mode="json"), "from_scratch": True}})
    base = _finetune(scratch_cfg, run_path / "scratch", registry)
    arms = {"ssl": res, "scratch": base}
    write_comparison(run_path, arms, cfg.seed)
    report = build_report(run_path)
    n = res.get("n_labels")
    echo(f"test metrics on the same split ({n} labeled items, seed {cfg.seed}):")
    for name, r in arms.items():
        t = r.get("test", {})
        echo(f"  {name:8s} AUROC {fmt(t.get('auroc'))}  AUPRC {fmt(t.get('auprc'))}")
    echo(f"report: {report}")
    return report


def _finetune(cfg: RunConfig, run_path: Path, registry: Registry) -> dict[str, Any]:
    """Fine-tune (or, with ``finetune.select: auto``, choose among the candidates) into
    ``run_path`` (the engine writes the export's model card); returns the ``eval.json`` content."""
    assert cfg.finetune is not None
    return finetune(cfg, run_path, registry=registry)
