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
    SKIPPED_FILE,
    SWEEP_DIR,
)

__all__ = ["RUN_MARKERS", "RunFolder", "read_run_config"]

#: What every run folder holds from its start (how a run folder is recognised).
RUN_MARKERS = (CONFIG_FILE, ENVIRONMENT_FILE)


@dataclass(frozen=True)
class RunFolder:
    """The paths of one run folder (nothing is read or made here)."""

    path: Path

    def __init__(self, path: str | Path) -> None:
        object.__setattr__(self, "path", Path(path))

    @property
    def config(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def environment(self) -> Path:
        return self.path / ENVIRONMENT_FILE

    @property
    def metrics(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def eval(self) -> Path:
        return self.path / EVAL_FILE

    @property
    def skipped(self) -> Path:
        return self.path / SKIPPED_FILE

    @property
    def init_report(self) -> Path:
        return self.path / INIT_REPORT_FILE

    @property
    def lock(self) -> Path:
        return self.path / LOCK_FILE

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS_DIR

    def last_checkpoint(self, stage: str) -> Path:
        """``checkpoints/<stage>/last.pt``."""
        return self.checkpoints / stage / LAST_CHECKPOINT

    @property
    def export(self) -> Path:
        return self.path / EXPORT_DIR

    @property
    def figures(self) -> Path:
        return self.path / FIGURES_DIR

    @property
    def predictions(self) -> Path:
        return self.path / PREDICTIONS_DIR

    def prediction_file(self, split: str) -> Path:
        """``predictions/<split>.csv`` (``val``, ``test``, ``eval_<loader>``)."""
        return self.predictions / f"{split}.csv"

    @property
    def report(self) -> Path:
        return self.path / REPORT_DIR

    @property
    def report_page(self) -> Path:
        return self.report / REPORT_FILE

    @property
    def candidates(self) -> Path:
        """``select: auto``'s sweep folder of candidates."""
        return self.path / CANDIDATES_DIR

    @property
    def sweep(self) -> Path:
        """The demo's comparison of arms (a sweep folder)."""
        return self.path / SWEEP_DIR

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
    path = Path(path)
    if path.is_dir():
        path = RunFolder(path).config
    if not path.is_file():
        return None
    config = read_yaml(path, read_text(path))  # a link planted in the run folder is refused
    if not isinstance(config, dict):
        raise DataError(path, f"expected a mapping, got {type(config).__name__}")
    return shareable_config(config)
