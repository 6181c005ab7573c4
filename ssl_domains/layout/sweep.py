"""The sweep folder: its files, cell folder names (``<arm>_<size>_<seed>``) and the tidy
``results.csv`` that the sweep, ``select: auto`` and the demo write and the report reads."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssl_domains.files import write_guard
from ssl_domains.layout.names import (
    CELLS_DIR,
    CLUSTER_DIR,
    CV_DIR,
    CV_OOF_FILE,
    LOCKS_DIR,
    LOGS_DIR,
    RESULTS_FILE,
    SELECTION_FILE,
    STABILITY_FILE,
    SUMMARY_CSV,
    SUMMARY_JSON,
    SWEEP_DIR,
    SWEEP_FILE,
)
from ssl_domains.layout.run import at
from ssl_domains.scoring.intervals import RESULT_COLUMNS

__all__ = ["SweepFolder", "cell_name", "find_sweep", "parse_cell_name", "write_table"]


def cell_name(arm_folder: str, size_tag: str, seed: int | str) -> str:
    """``<arm>_<size>_<seed>``: a cell's folder name, as :func:`parse_cell_name` reads it."""
    return f"{arm_folder}_{size_tag}_{seed}"


def parse_cell_name(name: str) -> tuple[str, str, str] | None:
    """``"<arm>_<size>_<seed>"`` -> ``(arm, size, seed)`` (arm names may contain ``_``)."""
    parts = name.rsplit("_", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


@dataclass(frozen=True)
class SweepFolder:
    """The paths of one sweep folder (nothing is read or made here)."""

    path: Path

    plan = at(SWEEP_FILE, "``sweep.json``: the grid, arms and resolved config")
    cells = at(CELLS_DIR)
    results = at(RESULTS_FILE, "``results.csv``: the tidy table of test metrics")
    stability = at(STABILITY_FILE, "``stability.csv``: collapse per cell")
    summary_csv = at(SUMMARY_CSV)
    summary_json = at(SUMMARY_JSON)
    cv = at(CV_DIR, "cross-validation records of ``select: auto``")
    locks = at(LOCKS_DIR, "``locks/<name>/``: the lock of each cell or job while it runs")
    logs = at(LOGS_DIR, "``logs/``: each job's log and outcome record")
    cluster = at(CLUSTER_DIR, "submitit's folder of a cluster submission (job scripts, output)")

    def job_log(self, job: str) -> Path:
        """``logs/<job>.log``: what job ``job`` said."""
        return self.logs / f"{job}.log"

    def job_record(self, job: str) -> Path:
        """``logs/<job>.json``: the outcome of job ``job``."""
        return self.logs / f"{job}.json"

    def cell(self, name: str) -> Path:
        """The folder of cell ``name`` (:func:`cell_name`)."""
        return self.cells / name

    def cell_folders(self, arm: str | None = None) -> list[Path]:
        """The cell folders (of ``arm`` only, when given), sorted by name."""
        if not self.cells.is_dir():
            return []
        return sorted(d for d in self.cells.iterdir() if d.is_dir() and (
            arm is None or ((p := parse_cell_name(d.name)) is not None and p[0] == arm)))

    @staticmethod
    def selection(cell: Path) -> Path:
        """An ``auto`` cell's ``selection.json``."""
        return cell / SELECTION_FILE

    @staticmethod
    def cv_oof(cell: Path) -> Path:
        """An ``auto`` cell's out-of-fold scores."""
        return cell / CV_OOF_FILE


def find_sweep(path: Path) -> Path | None:
    """The sweep folder (the one holding ``results.csv``) at or under ``path``, if any."""
    for candidate in (path, path / SWEEP_DIR):
        if SweepFolder(candidate).results.is_file():
            return candidate
    return None


def _cell_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(float(value)) if isinstance(value, float) else str(value)


def write_table(path: Path, rows: Iterable[Mapping[str, Any]],
                columns: Sequence[str] = RESULT_COLUMNS) -> Path:
    """A CSV of ``rows`` with ``columns`` (NaN and None empty, floats exact); by default the
    tidy results table (``arm, n_labels, fraction, seed, metric, value``)."""
    with write_guard(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with write_guard(path, tmp), tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for row in rows:
            w.writerow([_cell_text(row.get(c)) for c in columns])
    with write_guard(path, tmp):
        tmp.replace(path)
    return path
