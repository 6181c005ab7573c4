"""Run the suite: one ``ssl-domains sweep`` per dataset with its data kind's default recipe,
then one table, ranks, target checks and a figure over all of them.

Each dataset's sweep lives in ``<out>/<dataset>/`` (pre-trained once there, reused by every
budget and seed; finished cells are reused on a rerun, so an interrupted suite continues where
it stopped). The suite's own outputs::

    <out>/suite.json          what ran: command, datasets (done / skipped with the reason), times
    <out>/data/<dataset>/     what a dataset prepares before its sweep (LIDC: split manifests,
                              decoded-volume cache)
    <out>/suite_results.csv   every sweep's results.csv with dataset and kind added
    <out>/suite_table.csv     mean, sd, n and rank per dataset x budget x arm (test AUROC)
    <out>/suite_table.md      the table, the average rank per arm and the targets
    <out>/suite.png           one panel per dataset: AUROC against labels, per arm
"""

from __future__ import annotations

import copy
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from benchmarks.suite import table
from benchmarks.suite.datasets import Dataset

RECIPES = Path(__file__).resolve().parent / "recipes"
#: Budgets when none are given: 10, 20 and 50 labels, 10 % and 100 % of the pool.
DEFAULT_BUDGETS = "10,20,50,10%,100%"
QUICK_BUDGETS = "20,10%"
#: Smallest labelled set a fraction may give (a 10 % budget of a 40-item pool is not run).
MIN_LABELS = 10


def recipe(kind: str, recipes: Path | None = None) -> dict[str, Any]:
    """The recipe of a data kind (``signal``, ``image``, ``volume``) as a dict: from the folder
    ``recipes`` (``--recipes``, e.g. a variant) when it has one for ``kind``, else the default."""
    path = recipes / f"{kind}.yaml" if recipes is not None else None
    if path is None or not path.is_file():
        path = RECIPES / f"{kind}.yaml"
    return yaml.safe_load(path.read_text())


def merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overlay`` merged in, recursively for nested dicts (a copy)."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def work_dir(out: Path, ds: Dataset) -> Path:
    """Where ``ds.prepare`` writes under the suite folder ``out`` (the sweep folder
    ``out / ds.name`` holds only the sweep's own files): ``out/data/<name>``."""
    return out / "data" / ds.name


def dataset_config(ds: Dataset, root: Path, recipes: Path | None = None,
                   work: Path | None = None) -> dict[str, Any]:
    """The run config of ``ds``: its kind's recipe (:func:`recipe`) plus its data sections;
    ``work``: where what its ``prepare`` wrote lies (default :func:`work_dir` of
    ``runs/suite``)."""
    work = work if work is not None else work_dir(Path("runs") / "suite", ds)
    cfg = merge(recipe(ds.kind, recipes), ds.sections(root, work))
    cfg["name"] = f"suite-{ds.name}"
    return cfg


def parse_budgets(text: str) -> list[Any]:
    """``"10,20,50,10%,100%"`` -> sweep sizes (counts, and fractions for ``%``).

    Raises:
        ValueError: A budget that is not a whole number or a percentage in (0, 100].
    """
    from ssl_domains.autoselect.arms import Size

    sizes = []
    for raw in (p.strip() for p in text.split(",")):
        try:
            if raw.endswith("%"):
                f = float(raw[:-1]) / 100
                if not 0 < f <= 1:
                    raise ValueError
                sizes.append(Size(fraction=f))
            else:
                c = int(raw)
                if c < 2:
                    raise ValueError
                sizes.append(Size(count=c))
        except ValueError:
            raise ValueError(f"--budgets: {raw!r} is neither a number of labels >= 2 nor a "
                             "percentage in (0, 100], e.g. 10,20,50,10%,100%") from None
    return list(dict.fromkeys(sizes))


def budgets_for(sizes: Sequence[Any], n_pool: int) -> tuple[list[Any], list[str]]:
    """The sizes a pool of ``n_pool`` labelled items can give, and why others are left out:
    counts below the pool size; fractions giving at least :data:`MIN_LABELS` labels."""
    keep, dropped = [], []
    for s in sizes:
        if s.count is not None and s.count >= n_pool:
            dropped.append(f"{s.count} labels (pool has {n_pool})")
        elif s.fraction is not None and s.fraction < 1 and s.fraction * n_pool < MIN_LABELS:
            dropped.append(f"{s.fraction:.0%} (= {s.fraction * n_pool:.0f} labels of {n_pool})")
        else:
            keep.append(s)
    return keep, dropped


def arm_selected(arm: str, arms: str) -> bool:
    """Whether the results' ``arm`` (``ssl``, ``baseline:minirocket``...) is among the
    comma-separated sweep arms ``arms`` (``baseline`` stands for every baseline)."""
    names = {a.strip() for a in arms.split(",")}
    return arm in names or ("baseline" in names and arm.startswith("baseline:"))


def default_arms() -> list[str]:
    """Every arm the installed sweep knows: ssl, scratch, linear_probe, all baselines and,
    when present, the derived ensemble and auto arms."""
    from ssl_domains.autoselect.arms import DERIVED_ARMS
    from ssl_domains.sweep.grid import DEFAULT_ARMS

    return [*DEFAULT_ARMS, *DERIVED_ARMS]


def quick_arms() -> list[str]:
    """:func:`default_arms` without ``auto``: with the small validation sets of 10-50 labels
    ``auto`` chooses by 5-fold cross-validation, retraining every network arm five times (about
    five times the rest of the cell), which ``--quick`` cannot afford."""
    return [a for a in default_arms() if a != "auto"]


def run_dataset(ds: Dataset, root: Path, out: Path, sizes: Sequence[Any], seeds: Sequence[int],
                arms: Sequence[str], echo: Callable[[str], None], reports: bool = False,
                recipes: Path | None = None) -> dict[str, Any]:
    """One dataset's sweep into ``out / ds.name`` (its kind's recipe from ``recipes`` when that
    folder has one); returns its record for ``suite.json``."""
    from ssl_domains.config import parse_config
    from ssl_domains.data.datasets import labels_of
    from ssl_domains.engine.finetune import build_finetune_sources
    from ssl_domains.plugins import get_host
    from ssl_domains.report.pages import build_report
    from ssl_domains.sweep.run import SweepFailed, run_sweep

    record: dict[str, Any] = {"kind": ds.kind, "protocol": ds.protocol}
    missing = ds.missing(root)
    if missing:
        record.update(status="skipped", reason=f"missing under {root}: {', '.join(missing)}")
        echo(f"{ds.name}: skipped ({record['reason']})")
        return record
    if ds.prepare is not None:
        ds.prepare(root, work_dir(out, ds))
    cfg = parse_config(dataset_config(ds, root, recipes, work_dir(out, ds)),
                       source=f"suite {ds.name}")
    assert cfg.finetune is not None
    n_pool = len(labels_of(build_finetune_sources(cfg.finetune, get_host().registry)["pool"]) or [])
    keep, dropped = budgets_for(sizes, n_pool)
    record.update(n_pool=n_pool, budgets=[s.tag for s in keep], left_out=dropped)
    if dropped:
        echo(f"{ds.name}: budgets left out: {'; '.join(dropped)}")
    if not keep:
        record.update(status="skipped", reason="no budget fits the pool")
        return record
    start = time.perf_counter()
    echo(f"== {ds.name} ({ds.kind}, pool {n_pool}): {len(keep)} budget(s) x {len(seeds)} seed(s)")
    finished = False  # the sweep got to its tables (a report can be built)
    try:
        res = run_sweep(cfg, out / ds.name, sizes=keep, seeds=seeds, arms=arms, echo=echo)
        record.update(status="done", computed=len(res.computed), reused=len(res.reused),
                      skipped_arms=res.skipped)
        finished = True
    except Exception as err:  # one dataset's failure must not stop the others
        record.update(status="failed", reason=f"{type(err).__name__}: {err}")
        echo(f"{ds.name}: FAILED ({record['reason']})")
        finished = isinstance(err, SweepFailed)
    if reports and finished:
        echo(f"report: {build_report(out / ds.name)}")
    record["seconds"] = round(time.perf_counter() - start, 1)
    return record


def finished_cells(sweep_dir: Path) -> pd.DataFrame:
    """The tidy results of every finished cell (``eval.json``) of a sweep folder, as the
    sweep's ``results.csv`` holds them, also while (or after) the sweep was interrupted."""
    from ssl_domains.autoselect.arms import Arm, Size
    from ssl_domains.layout.sweep import parse_cell_name
    from ssl_domains.sweep.results import collect_results

    cells = []
    for cell in sorted((sweep_dir / "cells").glob("*/eval.json")):
        parsed = parse_cell_name(cell.parent.name)
        if parsed is None:
            continue
        arm, tag, seed = parsed
        cells.append((Arm.from_folder(arm), Size.from_tag(tag), int(seed)))
    return collect_results(sweep_dir, cells)


def collect(out: Path, datasets: Sequence[Dataset]) -> pd.DataFrame:
    """Every finished cell of every dataset's sweep under ``out``, with ``dataset`` and
    ``kind`` columns."""
    frames = []
    for ds in datasets:
        if (out / ds.name / "cells").is_dir():
            r = finished_cells(out / ds.name)
            if not r.empty:
                frames.append(r.assign(dataset=ds.name, kind=ds.kind))
    cols = ["dataset", "kind", "arm", "n_labels", "fraction", "seed", "metric", "value"]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


def write_outputs(out: Path, results: pd.DataFrame, metric: str = "auroc") -> dict[str, Path]:
    """``suite_results.csv``, ``suite_table.csv``/``.md`` and ``suite.png``; returns paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "suite_results.csv", "table_csv": out / "suite_table.csv",
             "table_md": out / "suite_table.md", "figure": out / "suite.png"}
    results.to_csv(paths["results"], index=False)
    stats, partial = table.complete(table.cell_stats(results, metric))
    if stats.empty:
        paths["table_md"].write_text("no finished cells yet\n")
        return paths
    ranked, avg = table.ranks(stats)
    ranked.to_csv(paths["table_csv"], index=False)
    note = (f"\n\n{partial} dataset x budget cell(s) left out: not every arm finished the same "
            "seeds there (interrupted)" if partial else "")
    paths["table_md"].write_text(table.markdown(stats, avg, table.targets(stats)) + note + "\n")
    table.figure(stats, paths["figure"])
    return paths


def run_suite(datasets: Sequence[Dataset], root: Path, out: Path, sizes: Sequence[Any],
              seeds: Sequence[int], arms: Sequence[str], echo: Callable[[str], None] = print,
              reports: bool = False, command: str | None = None, recipes: Path | None = None
              ) -> dict[str, Any]:
    """Run every dataset (skipping those whose files are missing) and write the suite outputs;
    ``recipes``: a folder of recipes used instead of the default ones for the kinds it has."""
    out.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"command": command or " ".join(sys.argv), "root": str(root),
                              "budgets": [s.tag for s in sizes], "seeds": list(seeds),
                              "arms": list(arms), "recipes": str(recipes or RECIPES),
                              "datasets": {}}
    start = time.perf_counter()
    for ds in datasets:
        record["datasets"][ds.name] = run_dataset(ds, root, out, sizes, seeds, arms, echo,
                                                  reports, recipes)
        (out / "suite.json").write_text(json.dumps(record, indent=2))
    record["seconds"] = round(time.perf_counter() - start, 1)
    (out / "suite.json").write_text(json.dumps(record, indent=2))
    paths = write_outputs(out, collect(out, datasets))
    echo(paths["table_md"].read_text())
    echo(f"suite: {record['seconds']:.0f} s; table {paths['table_md']}, figure {paths['figure']}")
    return record
