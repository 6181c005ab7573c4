"""The run folder: where each file of a run lives, and its resolved config as outputs show it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssl_domains.config import read_yaml
from ssl_domains.errors import DataError
from ssl_domains.files import read_text
from ssl_domains.identifiers import shareable_config
from ssl_domains.layout.names import (
    CANDIDATES_DIR,
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    ENVIRONMENT_FILE,
    EVAL_FILE,
    EXPORT_DIR,
    FIGURES_DIR,
    INIT_REPORT_FILE,
    LAST_CHECKPOINT,
    LOCK_FILE,
    METRICS_FILE,
    PREDICTIONS_DIR,
    REPORT_DIR,
    REPORT_FILE,
    SEGMENTATION_DIR,
    SKIPPED_FILE,
    SWEEP_DIR,
)

__all__ = ["RUN_MARKERS", "RunFolder", "read_run_config"]

#: What every run folder holds from its start (how a run folder is recognised).
RUN_MARKERS = (CONFIG_FILE, ENVIRONMENT_FILE)


def at(name: str, doc: str = "") -> Any:
    """A read-only attribute of a folder class: its ``path / name``."""
    return property(lambda self: self.path / name, doc=doc or f"``{name}``")


@dataclass(frozen=True)
class RunFolder:
    """The paths of one run folder (nothing is read or made here)."""

    path: Path

    def __init__(self, path: str | Path) -> None:
        object.__setattr__(self, "path", Path(path))

    config = at(CONFIG_FILE, "``config.yaml``: the fully resolved config")
    environment = at(ENVIRONMENT_FILE, "``environment.json``: host, plugin and torch versions")
    metrics = at(METRICS_FILE, "``metrics.jsonl``: one JSON object per logged step")
    eval = at(EVAL_FILE, "``eval.json``: the Assessment")
    skipped = at(SKIPPED_FILE, "``skipped.json``: items skipped as unreadable")
    init_report = at(INIT_REPORT_FILE, "``init_report.json``: what --init loaded")
    lock = at(LOCK_FILE, "``.lock``: the writer's pid while a stage runs")
    checkpoints = at(CHECKPOINTS_DIR)
    export = at(EXPORT_DIR)
    figures = at(FIGURES_DIR)
    predictions = at(PREDICTIONS_DIR)
    report = at(REPORT_DIR)
    candidates = at(CANDIDATES_DIR, "``select: auto``'s sweep folder of candidates")
    sweep = at(SWEEP_DIR, "the demo's comparison of arms (a sweep folder)")
    segmentation = at(SEGMENTATION_DIR, "a dense run's case and lesion tables, FROC, slices")

    def last_checkpoint(self, stage: str) -> Path:
        """``checkpoints/<stage>/last.pt``."""
        return self.checkpoints / stage / LAST_CHECKPOINT

    def prediction_file(self, split: str) -> Path:
        """``predictions/<split>.csv`` (``val``, ``test``, ``eval_<loader>``)."""
        return self.predictions / f"{split}.csv"

    def case_table(self, split: str) -> Path:
        """A dense run's ``segmentation/<split>_cases.csv`` (one row per case)."""
        return self.segmentation / f"{split}_cases.csv"

    def lesion_table(self, split: str) -> Path:
        """A dense run's ``segmentation/<split>_lesions.csv`` (one row per lesion)."""
        return self.segmentation / f"{split}_lesions.csv"

    @property
    def report_page(self) -> Path:
        return self.report / REPORT_FILE

    def is_run(self) -> bool:
        """Whether the folder holds :data:`RUN_MARKERS`."""
        return all((self.path / m).is_file() for m in RUN_MARKERS)


def read_run_config(path: str | Path) -> dict[str, Any] | None:
    """A run folder's ``config.yaml`` (``path``: the folder or the file) as every shareable
    output shows it (paths and input ids replaced by opaque ids,
    :func:`~ssl_domains.identifiers.shareable_config`); None when absent.

    Raises:
        DataError: Unreadable, not YAML (a Python tag included) or not a mapping.
    """
    file: Path = RunFolder(path).config if Path(path).is_dir() else Path(path)
    if not file.is_file():
        return None
    config = read_yaml(file, read_text(file))  # a link planted in the run folder is refused
    if not isinstance(config, dict):
        raise DataError(file, f"expected a mapping, got {type(config).__name__}")
    return shareable_config(config)
