"""A sweep's tables: the finished cells' test metrics, their stability, the summary over seeds.

Written into the sweep folder by :func:`write_results`::

    results.csv      tidy: arm, n_labels, fraction, seed, metric, value (each cell's test metrics)
    stability.csv    per cell: validation AUROC, constant output, collapsed
                     (AUROC <= 0.55 or constant; :func:`~ssl_domains.autoselect.choice.collapse`)
    summary.csv      mean, std, t-interval per arm and size; ssl-scratch paired by seed;
    summary.json     collapsed: share of seeds that collapsed
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ssl_domains.autoselect.arms import Arm, Size, cell_name
from ssl_domains.autoselect.choice import COLLAPSE_AUROC, collapse
from ssl_domains.engine.assess import (
    EVAL_FILE,
    Assessment,
    read_assessment,
    read_predictions,
)
from ssl_domains.errors import DataError
from ssl_domains.files import write_json
from ssl_domains.layout.numbers import fmt
from ssl_domains.layout.run import RunFolder
from ssl_domains.layout.sweep import SweepFolder, write_table
from ssl_domains.scoring.intervals import RESULT_COLUMNS, SUMMARY_COLUMNS, summary_rows

__all__ = [
    "NOT_METRICS",
    "STABILITY_COLUMNS",
    "collect_results",
    "cell_stability",
    "collect_stability",
    "with_stability",
    "summary_table",
    "write_results",
]

#: eval.json "test" entries kept out of results.csv: the loss (baselines have none) and the
#: unnamed alias of ``sens_at_spec90`` (same value).
NOT_METRICS = ("loss", "sensitivity_at_specificity")
STABILITY_COLUMNS = ["arm", "n_labels", "fraction", "seed", "val_auroc", "constant", "collapsed"]

Cells = Sequence[tuple[Arm, Size, int]]


#: A finished cell: its arm, size, seed, folder and assessment.
Finished = tuple[Arm, Size, int, Path, Assessment]


def _finished(out: Path, cells: Cells) -> list[Finished]:
    """The finished cells (``eval.json`` written) with their folder and assessment."""
    found = []
    for arm, size, seed in cells:
        cell = SweepFolder(out).cell(cell_name(arm, size, seed))
        if (cell / EVAL_FILE).is_file():
            found.append((arm, size, seed, cell, read_assessment(cell)))
    return found


def _size_of(ev: Assessment, size: Size) -> tuple[int, float]:
    """``(n_labels, fraction)`` of a cell (the fraction of the pool for a count size)."""
    n_labels = ev.n_labels if ev.n_labels is not None else (ev.n_train or 0) + (ev.n_val or 0)
    fraction = size.fraction if size.fraction is not None else \
        (n_labels / ev.n_pool if ev.n_pool else math.nan)
    return int(n_labels), fraction


def collect_results(out: Path, cells: Cells) -> pd.DataFrame:
    """The tidy table of the finished cells' test metrics (``eval.json`` "test")."""
    return _results_table(_finished(out, cells))


def _results_table(finished: list[Finished]) -> pd.DataFrame:
    rows = []
    for arm, size, seed, _, ev in finished:
        n_labels, fraction = _size_of(ev, size)
        for metric, value in ev.metrics("test").items():
            if metric in NOT_METRICS:
                continue
            rows.append({"arm": arm.name, "n_labels": n_labels, "fraction": fraction,
                         "seed": seed, "metric": metric,
                         "value": math.nan if value is None else float(value)})
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def cell_stability(cell: Path) -> dict[str, Any] | None:
    """:func:`~ssl_domains.autoselect.choice.collapse` of a finished cell's validation
    predictions (test predictions checked for a constant output too); None when it has no
    validation predictions."""
    try:
        val = read_predictions(RunFolder(cell).prediction_file("val"))
    except DataError:
        return None
    if val.labels is None:
        return None
    other = []
    if (RunFolder(cell).prediction_file("test")).is_file():
        other.append(read_predictions(RunFolder(cell).prediction_file("test")).probs)
    return collapse(val.labels, val.probs, *other)


def collect_stability(out: Path, cells: Cells) -> pd.DataFrame:
    """Per finished cell: validation AUROC, whether its output was constant, and whether it
    collapsed (:func:`~ssl_domains.autoselect.choice.collapse`)."""
    return _stability_table(_finished(out, cells))


def _stability_table(finished: list[Finished]) -> pd.DataFrame:
    rows = []
    for arm, size, seed, cell, ev in finished:
        st = cell_stability(cell)
        if st is None:
            continue
        n_labels, fraction = _size_of(ev, size)
        rows.append({"arm": arm.name, "n_labels": n_labels, "fraction": fraction,
                     "seed": seed, "val_auroc": math.nan if st["val_auroc"] is None
                     else st["val_auroc"], "constant": st["constant"],
                     "collapsed": st["collapsed"]})
    return pd.DataFrame(rows, columns=STABILITY_COLUMNS)


def with_stability(summary: pd.DataFrame, stability: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with ``collapsed`` (share of seeds that collapsed) and ``n_collapsed`` on
    its arm rows (NaN on difference rows and where no cell could be checked)."""
    out = summary.copy()
    out["collapsed"], out["n_collapsed"] = math.nan, math.nan
    if stability.empty or out.empty:
        return out
    per = stability.groupby(["arm", "n_labels"])["collapsed"].agg(["mean", "sum"])
    for i, row in out.iterrows():
        key = (row["arm"], row["n_labels"])
        if row["kind"] == "arm" and key in per.index:
            out.at[i, "collapsed"] = float(per.loc[key, "mean"])
            out.at[i, "n_collapsed"] = float(per.loc[key, "sum"])
    return out


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in df.to_dict(orient="records")]


def summary_table(summary: pd.DataFrame, metric: str, arms: Sequence[str]) -> str:
    """Plain-text table: mean ± std per arm and size (with ``[k/n collapsed]`` when some seeds
    collapsed), and the ssl-scratch difference [CI]."""
    rows = summary[summary["metric"] == metric]
    sizes = sorted(rows["n_labels"].dropna().unique())
    head = [f"{metric} (test)", "n_labels", *arms, "ssl-scratch [95% CI]"]
    lines = []
    for n in sizes:
        at = rows[rows["n_labels"] == n]
        cells = []
        for arm in arms:
            r = at[(at["kind"] == "arm") & (at["arm"] == arm)]
            text = "" if r.empty else \
                f"{fmt(r['mean'].iloc[0])}±{fmt(r['std'].iloc[0])}".replace("±n/a", "")
            if not r.empty and "n_collapsed" in r and r["n_collapsed"].iloc[0] > 0:
                text += f" [{int(r['n_collapsed'].iloc[0])}/{int(r['n'].iloc[0])} collapsed]"
            cells.append(text)
        d = at[at["kind"] == "difference"]
        diff = "" if d.empty else (f"{d['mean'].iloc[0]:+.3f} [{d['ci_low'].iloc[0]:+.3f}, "
                                   f"{d['ci_high'].iloc[0]:+.3f}]")
        lines.append(["", str(int(n)), *cells, diff])
    widths = [max(len(head[i]), *(len(line[i]) for line in lines)) if lines else len(head[i])
              for i in range(len(head))]
    line_fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([line_fmt.format(*head), *(line_fmt.format(*line) for line in lines)])


def write_results(out: Path, cells: Cells, alpha: float = 0.05
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write ``results.csv``, ``stability.csv``, ``summary.csv`` and ``summary.json`` of the
    finished ``cells`` into the sweep folder ``out``; returns ``(results, summary)``.

    Args:
        out: The sweep folder.
        cells: ``(arm, size, seed)`` of every cell (unfinished ones are left out).
        alpha: 1 - confidence level of the intervals.
    """
    finished = _finished(out, cells)  # each eval.json read once for both tables
    results = _results_table(finished)
    folder = SweepFolder(out)
    write_table(folder.results, results.to_dict("records"))
    stability = _stability_table(finished)
    write_table(folder.stability, stability.to_dict("records"), STABILITY_COLUMNS)
    summary = pd.DataFrame(summary_rows(results.to_dict("records"), alpha=alpha),
                           columns=list(SUMMARY_COLUMNS))
    summary = with_stability(summary, stability)
    write_table(folder.summary_csv, summary.to_dict("records"), list(summary.columns))
    write_json(folder.summary_json, (
        {"alpha": alpha, "interval": "Student-t over seeds; ssl-scratch paired by seed",
         "collapsed": f"share of seeds whose validation AUROC was <= {COLLAPSE_AUROC} or whose "
                      "output was constant (stability.csv per cell)",
         "rows": _records(summary)}))
    return results, summary
