"""The HTML report of a run folder or a sweep: ``<root>/report/report.html`` plus its PNGs.

The page is self-contained (PNGs inlined as base64 data URIs, CSS inline, no script, no
external fonts) and every PNG is also written next to it. Sections, in order: summary (the
answer: which model to ship at each label budget, then did SSL beat scratch, by how much, with
what interval; :mod:`ssl_domains.report.answer`), label-efficiency curves (or, for one label
budget, the arms side by side: ROC curves overlaid and metrics with intervals),
metric tables, ROC and PR curves, confusion matrix, loss curves, pretext pictures, resolved
config, environment. A section whose inputs are missing or unreadable is replaced by a note.

Only what the engine wrote is shown: prediction ids are never displayed.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ssl_domains.engine.assess import (
    EVAL_FILE,
    INTERVAL_REPLICATES,
    Assessment,
    Selection,
    read_assessment,
)
from ssl_domains.errors import DataError
from ssl_domains.files import atomic_write_text
from ssl_domains.layout.names import REPORT_DIR, REPORT_FILE
from ssl_domains.layout.numbers import headline_metric
from ssl_domains.layout.predictions import Predictions, read_labeled_predictions
from ssl_domains.layout.run import RunFolder, read_run_config
from ssl_domains.layout.sweep import SweepFolder, find_sweep, parse_cell_name
from ssl_domains.report import answer, plots
from ssl_domains.report import htmlpage as hp
from ssl_domains.report.artifacts import (
    read_json,
    read_metrics,
    read_results,
    read_selection,
    summarize,
)
from ssl_domains.report.segmentation import is_segmentation, segmentation_section
from ssl_domains.scoring.intervals import (
    Interval,
    PairedDifference,
    bootstrap_metrics,
    verdict,
)
from ssl_domains.scoring.metrics import LOWER_IS_BETTER

log = logging.getLogger(__name__)

#: Bootstrap replicates for the test-metric intervals of a single run (as eval.json's).
BOOTSTRAP_REPLICATES = INTERVAL_REPLICATES


@dataclass
class Run:
    """What the report found in one run folder (a field is None when its file is absent)."""

    path: Path
    config_text: str | None = None
    environment: dict[str, Any] | None = None
    eval: Assessment | None = None
    metrics: pd.DataFrame | None = None
    predictions: dict[str, Predictions] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    _intervals: dict[str, Interval] | None = None

    def test_intervals(self, alpha: float = 0.05) -> dict[str, Interval]:
        """Bootstrap intervals of the test metrics (binary test predictions; else empty)."""
        if self._intervals is None:
            p = self.predictions.get("test")
            self._intervals = {}
            if p is not None and p.binary and len(np.unique(p.known_labels)) == 2:
                self._intervals = bootstrap_metrics(p.known_labels, p.scores, self.threshold,
                                                    n=BOOTSTRAP_REPLICATES, alpha=alpha)
        return self._intervals

    @property
    def threshold(self) -> float | None:
        """The validation-chosen threshold from ``eval.json``."""
        value = self.eval.threshold if self.eval is not None else None
        return value if value is not None and math.isfinite(value) else None


def _try(run: Run, what: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except DataError as err:
        run.notes.append(f"{what} skipped: {err}")
        return None


def load_run(path: Path) -> Run:
    """Read every artifact of a run folder that exists; problems become notes."""
    run, folder = Run(path), RunFolder(path)
    if folder.config.is_file():
        shown = _try(run, "config", partial(read_run_config, folder.config))  # paths, ids: opaque
        run.config_text = None if shown is None else yaml.safe_dump(shown, sort_keys=False)
    run.environment = _try(run, "environment", lambda: read_json(folder.environment))
    if folder.eval.is_file():
        run.eval = _try(run, EVAL_FILE, lambda: read_assessment(path))
    metrics = _try(run, "loss curves", lambda: read_metrics(folder.metrics))
    if metrics is not None:
        run.metrics, skipped = metrics
        if skipped:
            run.notes.append(f"{skipped} unreadable line(s) of {folder.metrics.name} were skipped")
    for split in ("val", "test"):
        csv = folder.prediction_file(split)
        preds = _try(run, f"{split} predictions", partial(read_labeled_predictions, csv))
        if preds is not None and preds.labels is not None and len(preds.labels):
            run.predictions[split] = preds
    if folder.figures.is_dir():
        run.figures = sorted(folder.figures.glob("*.png"))
    return run


# ---------------------------------------------------------------- sections


def _section_notes(run: Run) -> str:
    return "".join(hp.note(n) for n in run.notes)


def _ci_text(low: float, high: float, alpha: float) -> str:
    if math.isnan(low):
        return "no interval"
    return f"{100 * (1 - alpha):.0f}% CI {hp.fmt(low, signed=True)} to {hp.fmt(high, signed=True)}"


def sweep_summary(summary: pd.DataFrame, metric: str, alpha: float) -> str:
    """The answer section: SSL vs scratch per labeled-set size on the headline metric."""
    diff = summary[(summary["kind"] == "difference") & (summary["arm"] == "ssl-scratch")
                   & (summary["metric"] == metric)]
    arms = summary[(summary["kind"] == "arm") & (summary["metric"] == metric)]
    if diff.empty:
        have = ", ".join(sorted(set(arms["arm"].astype(str))))
        return hp.note(f"no paired 'ssl' and 'scratch' results for {metric}; arms present: "
                       f"{have or 'none'}")
    lines, rows = [], []
    better = "lower" if metric in LOWER_IS_BETTER else "higher"
    for _, d in diff.sort_values("n_labels").iterrows():
        pd_ = PairedDifference(d["mean"], d["ci_low"], d["ci_high"], int(d["n"]), d["std"], "t")
        said = verdict(pd_, metric)
        size = int(d["n_labels"])
        ssl = arms[(arms["arm"] == "ssl") & (arms["n_labels"] == d["n_labels"])]["mean"]
        scr = arms[(arms["arm"] == "scratch") & (arms["n_labels"] == d["n_labels"])]["mean"]
        lines.append(f"With {size} labels: {said}; {metric} difference "
                     f"{hp.fmt(d['mean'], signed=True)} ({_ci_text(d['ci_low'], d['ci_high'], alpha)}, "
                     f"{int(d['n'])} paired seeds).")
        rows.append([size, d["fraction"], ssl.iloc[0] if len(ssl) else math.nan,
                     scr.iloc[0] if len(scr) else math.nan, d["mean"], d["ci_low"],
                     d["ci_high"], int(d["n"]), said])
    verdicts = [r[-1] for r in rows]
    won = [str(r[0]) for r in rows if r[-1].startswith("SSL beat")]
    lost = [str(r[0]) for r in rows if r[-1].startswith("scratch beat")]
    big = (f"SSL beat scratch on {metric} at {len(won)} of {len(rows)} labeled-set size(s)"
           + (f" ({', '.join(won)} labels)" if won else "")
           + (f"; scratch beat SSL at {len(lost)} ({', '.join(lost)} labels)" if lost else "")
           + (f"; no clear difference at {len(verdicts) - len(won) - len(lost)}"
              if len(verdicts) > len(won) + len(lost) else "") + ".")
    head = (f'<div class="answer"><p class="big">{hp.esc(big)}</p>'
            + "".join(hp.para(line) for line in lines)
            + hp.para(f"Headline metric: {metric} ({better} is better). Difference = SSL minus "
                      "scratch, paired by seed (each seed fixes the labeled subset and split "
                      "for both arms); Student-t interval over seeds, within the metric's "
                      "range.") + "</div>")
    table = hp.table(["n_labels", "fraction", f"ssl mean {metric}", f"scratch mean {metric}",
                      "difference", "ci_low", "ci_high", "paired seeds", "verdict"], rows,
                     table_id="answer-table")
    return head + table


def run_summary(run: Run, alpha: float = 0.05) -> str:
    """The answer section of a single run: test metrics at the validation threshold."""
    if run.eval is None:
        return hp.note("no eval.json in this run folder: nothing evaluated yet")
    test = run.eval.test or {}
    ci = run.test_intervals(alpha)
    parts = [f"{k} {hp.fmt(test[k])}"
             + (f" [{hp.fmt(ci[k].low)}, {hp.fmt(ci[k].high)}]" if k in ci else "")
             for k in ("auroc", "auprc", "balanced_accuracy", "sensitivity", "specificity")
             if k in test]
    text = "Test: " + (", ".join(parts) if parts else "no test metrics")
    if run.threshold is not None:
        text += (f" at threshold {hp.fmt(run.threshold)} (rule "
                 f"{run.eval.threshold_rule or 'unknown'}, chosen on validation data)")
    counts = ", ".join(f"{k} {v}" for k in ("n_train", "n_val", "n_test")
                       if (v := getattr(run.eval, k)) is not None)
    return (f'<div class="answer"><p class="big">{hp.esc(text)}.</p>'
            + (hp.para(selection_text(run.eval.selection, run.eval.refit))
               if run.eval.selection is not None else "")
            + (hp.para(f"Items: {counts}.") if counts else "")
            + (hp.para(f"Brackets: {100 * (1 - alpha):.0f}% bootstrap intervals over test "
                       "cases.") if ci else "") + "</div>"
            + "".join(hp.note(f"Warning: {w}") for w in run.eval.warnings or []))


def selection_text(rec: Selection, refit: str | None = None) -> str:
    """One sentence on what ``select: auto`` chose: the arm, its selection AUROC with its
    interval, how it was chosen, the runner-up, and how a model refitted on every label was fitted."""
    low, high = rec.interval or (None, None)
    text = f"Model chosen by select: auto: {rec.chosen}, selection AUROC {hp.fmt(rec.score)}"
    if hp.is_number(low) and hp.is_number(high):
        # the record says its own interval's level (it follows select_alpha); old ones do not
        text += (f" (interval {hp.fmt(low)} to {hp.fmt(high)}, "
                 f"{rec.interval_method or 'bootstrap'})")
    text += f", chosen by {rec.method}"
    if rec.rule:
        text += f", as {rec.rule}"
    if rec.runner_up:
        text += f"; runner-up {rec.runner_up} ({hp.fmt(rec.runner_up_score)})"
    ens = rec.ensemble
    if rec.chosen == "ensemble" and ens is not None:
        text += (f"; ensemble of {' and '.join(ens.members)}, weight {ens.weight} on "
                 f"{ens.weight_of}")
    if refit:
        text += f"; then {refit}"
    return text + "."


def _flatten(prefix: str, value: Any, sort: bool = False) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        out: list[tuple[str, Any]] = []
        items = sorted(value.items(), key=lambda kv: str(kv[0])) if sort else value.items()
        for k, v in items:
            out += _flatten(f"{prefix}.{k}" if prefix else str(k), v, sort)
        return out
    if isinstance(value, list):
        return [(prefix, ", ".join(map(str, value)))]
    return [(prefix, value)]


def eval_tables(run: Run, alpha: float = 0.05) -> str:
    """Validation and test metrics (exact numbers from eval.json), counts, test intervals."""
    if run.eval is None:
        return hp.note("no eval.json: metric tables skipped")
    ev = run.eval.to_json()
    val, test = run.eval.val, run.eval.test or {}
    names = list(dict.fromkeys([*val, *test]))
    intervals = run.test_intervals(alpha)
    rows = [[n, val.get(n), test.get(n),
             intervals[n].low if n in intervals else None,
             intervals[n].high if n in intervals else None] for n in names]
    html = "<h3>Metrics (eval.json)</h3>" + hp.table(
        ["metric", "val", "test", "test ci_low", "test ci_high"], rows, table_id="eval-metrics")
    if intervals:
        html += hp.para(f"Test intervals: {100 * (1 - alpha):.0f}% percentile bootstrap over test cases "
                        f"({BOOTSTRAP_REPLICATES} class-stratified resamples, threshold fixed).")
    info = [("threshold", ev.get("threshold")), ("threshold_rule", ev.get("threshold_rule"))]
    info += [(k, ev[k]) for k in ("n_train", "n_val", "n_test") if k in ev]
    info += _flatten("label_counts", ev.get("label_counts") or {}, sort=True)
    shown = {"threshold", "threshold_rule", "n_train", "n_val", "n_test", "label_counts",
             "val", "test"}
    info += [(k, v) for k, v in ev.items()
             if k not in shown and (v is None or isinstance(v, str | int | float | bool))]
    html += "<h3>Threshold and counts</h3>" + hp.table(["item", "value"], info,
                                                       table_id="eval-info",
                                                       cls="kv")
    return html


def sweep_tables(results: pd.DataFrame, summary: pd.DataFrame) -> str:
    """Summary over seeds and the full tidy results (exact numbers of results.csv)."""
    cols = ["kind", "arm", "n_labels", "fraction", "metric", "mean", "std", "n", "ci_low",
            "ci_high"]
    html = ("<h3>Summary over seeds</h3>"
            + hp.para("Arm rows: mean, standard deviation (ddof=1) and interval over seeds "
                      "(Student-t; on the logit scale for a metric in [0, 1], so it stays in "
                      "[0, 1]). Difference rows (ssl-scratch): Student-t over the per-seed paired "
                      "differences, within [-1, 1] for such a metric.")
            + hp.table(cols, summary[cols].itertuples(index=False), table_id="summary-table"))
    raw_cols = ["arm", "n_labels", "fraction", "seed", "metric", "value"]
    html += (f"<details><summary>All {len(results)} rows of results.csv</summary>"
             + hp.table(raw_cols, results[raw_cols].itertuples(index=False),
                        table_id="results-table") + "</details>")
    return html


def stability_table(sweep: Path, summary: pd.DataFrame, metric: str) -> str:
    """Per arm and size: mean ± sd of the headline metric next to the share of seeds whose
    fine-tuning collapsed (``stability.csv``: validation AUROC <= 0.55 or a constant output)."""
    try:
        st = pd.read_csv(SweepFolder(sweep).stability)
    except (OSError, ValueError, pd.errors.ParserError):
        return hp.note(f"no {SweepFolder(sweep).stability.name} in the sweep folder: collapse "
                       "shares not shown")
    if st.empty or not {"arm", "n_labels", "collapsed"} <= set(st.columns):
        return hp.note(f"{SweepFolder(sweep).stability.name} has no rows: collapse shares not shown")
    arms = summary[(summary["kind"] == "arm") & (summary["metric"] == metric)]
    rows = []
    for (arm, n), g in st.groupby(["arm", "n_labels"], sort=False):
        r = arms[(arms["arm"] == arm) & (arms["n_labels"] == n)]
        collapsed = g["collapsed"].astype(str).str.lower().isin(["true", "1", "1.0"])
        rows.append([arm, int(n), r["mean"].iloc[0] if len(r) else None,
                     r["std"].iloc[0] if len(r) else None, len(g), int(collapsed.sum()),
                     float(collapsed.mean())])
    rows.sort(key=lambda r: (r[1], str(r[0])))
    return ("<h3>Stability over seeds</h3>"
            + hp.para(f"Collapsed: the share of seeds whose validation AUROC was at most 0.55 or "
                      f"whose output was the same for every item; mean and sd of test {metric} "
                      "over the same seeds.")
            + hp.table(["arm", "n_labels", f"mean {metric}", f"sd {metric}", "seeds",
                        "collapsed seeds", "collapsed share"], rows, table_id="stability-table"))


def auto_table(sweep: Path) -> str:
    """What the ``auto`` arm chose per size and seed (its ``selection.json``), if it ran."""
    rows = []
    for d in SweepFolder(sweep).cell_folders("auto"):
        parsed = parse_cell_name(d.name)
        rec = _try(Run(d), "selection", partial(read_selection, SweepFolder.selection(d)))
        if parsed is None or rec is None:
            continue
        low, high = rec.interval or (None, None)
        rows.append([parsed[1], parsed[2], rec.chosen, rec.score, low, high, rec.runner_up,
                     rec.runner_up_score, rec.method.split(" (")[0]])
    if not rows:
        return ""
    return ("<h3>The auto arm's choices</h3>"
            + hp.para("Chosen on validation data only (cross-validation over the labeled subset "
                      "when the validation set is small); score: AUROC on the selection items "
                      "with a bootstrap interval.")
            + hp.table(["size", "seed", "chosen", "selection AUROC", "ci_low", "ci_high",
                        "runner-up", "runner-up AUROC", "method"], rows, table_id="auto-table"))


def efficiency_figures(results: pd.DataFrame, summary: pd.DataFrame, out_dir: Path,
                       headline: str, alpha: float) -> str:
    """Label-efficiency curves for every metric, headline first, plus the difference curve."""
    metrics = [headline] + [m for m in dict.fromkeys(results["metric"].astype(str))
                            if m != headline]
    figs = []
    for m in metrics:
        try:
            png = plots.label_efficiency(results, out_dir / f"label_efficiency_{m}.png", m, alpha)
            figs.append(hp.figure(png, f"{m} against number of labels, one line per arm",
                                  width=560))
        except ValueError as err:
            figs.append(hp.note(f"{m}: {err}"))
        if m == headline:
            try:
                png = plots.difference_curve(summary, out_dir / f"difference_{m}.png", m,
                                             alpha=alpha)
                figs.append(hp.figure(png, f"SSL minus scratch {m}, paired by seed", width=560))
            except ValueError as err:
                figs.append(hp.note(str(err)))
    return f'<div class="figs">{"".join(figs)}</div>'


def curve_figures(run: Run, out_dir: Path, prefix: str = "") -> str:
    """ROC and PR curves of the run's validation and test predictions."""
    if not run.predictions:
        return hp.note(f"no predictions/val.csv or predictions/test.csv in {run.path.name}: "
                       "ROC and PR curves skipped")
    figs = []
    for name, fn in (("roc", lambda o: plots.roc_curves(run.predictions, o, run.threshold)),
                     ("pr", lambda o: plots.pr_curves(run.predictions, o))):
        try:
            png = fn(out_dir / f"{prefix}{name}.png")
            figs.append(hp.figure(png, f"{name.upper()} curves ({', '.join(run.predictions)})",
                                  width=460))
        except ValueError as err:
            figs.append(hp.note(f"{name.upper()} skipped: {err}"))
    return f'<div class="figs">{"".join(figs)}</div>'


def confusion_figure(run: Run, out_dir: Path, prefix: str = "") -> str:
    """Confusion matrix of the test (else validation) predictions at the chosen threshold."""
    split = "test" if "test" in run.predictions else "val" if "val" in run.predictions else None
    if split is None:
        return hp.note("no predictions: confusion matrix skipped")
    p = run.predictions[split]
    if p.binary and run.threshold is not None:
        decisions = (p.scores >= run.threshold).astype(int)
        title = f"{split}, threshold {hp.fmt(run.threshold)}"
    elif not p.binary:
        decisions, title = p.scores.argmax(axis=1), f"{split}, arg-max decision"
    elif p.decisions is not None:
        decisions, title = np.asarray(p.decisions).astype(int), f"{split}, engine's decision"
    else:
        return hp.note("no threshold in eval.json and no decision column: confusion matrix "
                       "skipped")
    png = plots.confusion_matrix(p.known_labels, decisions, out_dir / f"{prefix}confusion_matrix.png",
                                 title=f"Confusion matrix ({title})")
    return f'<div class="figs">{hp.figure(png, f"Confusion matrix, {title}", width=380)}</div>'


def loss_figure(run: Run, out_dir: Path, name: str, caption: str) -> str:
    """Training and validation loss curves from metrics.jsonl."""
    if run.metrics is None:
        return hp.note(f"no metrics.jsonl in {run.path.name}: loss curves skipped")
    try:
        png = plots.loss_curves(run.metrics, out_dir / name)
    except ValueError as err:
        return hp.note(f"loss curves skipped: {err}")
    return hp.figure(png, caption)


def pretext_figures(run: Run, out_dir: Path) -> str:
    """The pretext task's pictures (figures/*.png), copied next to the report."""
    if not run.figures:
        return hp.note(f"no figures/*.png from a pretext task in {run.path.name}")
    figs = []
    for src in run.figures:
        dst = out_dir / f"pretext_{src.name}" if not src.name.startswith("pretext") else \
            out_dir / src.name
        shutil.copyfile(src, dst)
        figs.append(hp.figure(dst, src.stem.replace("_", " ")))
    return f'<div class="figs">{"".join(figs)}</div>'


def config_section(run: Run) -> str:
    """The resolved config, input paths and ids replaced by opaque ids (a report is shared)."""
    if run.config_text is None:
        return hp.note("config.yaml not shown: " + "; ".join(n for n in run.notes if n.startswith("config "))
                       if RunFolder(run.path).config.exists()
                       else f"no {RunFolder(run.path).config.name} in this folder")
    return f"<pre>{hp.esc(run.config_text)}</pre>"


def environment_section(run: Run) -> str:
    """Versions and device from environment.json."""
    if not run.environment:
        return hp.note("no environment.json in this folder")
    return hp.table(["item", "value"], _flatten("", run.environment), table_id="environment",
                    cls="kv")


# ---------------------------------------------------------------- sweep cells


def pick_cell(sweep: Path) -> Path | None:
    """A representative cell: the SSL arm at the largest size, lowest seed, with predictions
    (or, dense, with its ``segmentation/`` tables)."""
    cells = SweepFolder(sweep).cells
    if not cells.is_dir():
        return None
    found = []
    for d in cells.iterdir():
        parsed = parse_cell_name(d.name)
        if not d.is_dir() or parsed is None or not (RunFolder(d).predictions.is_dir()
                                                    or is_segmentation(d)):
            continue
        arm, size, seed = parsed
        try:
            key = (arm != "ssl", -float(size), float(seed))
        except ValueError:
            continue
        found.append((key, d))
    return min(found)[1] if found else None


def cell_status(sweep: Path) -> str:
    """How many cells finished (have eval.json) and which are partial."""
    cells = SweepFolder(sweep).cells
    if not cells.is_dir():
        return ""
    dirs = sorted(d for d in cells.iterdir() if d.is_dir())
    partial = [d.name for d in dirs if not RunFolder(d).eval.is_file()]
    text = f"{len(dirs) - len(partial)} of {len(dirs)} cells finished."
    if partial:
        text += " Unfinished: " + ", ".join(partial[:20]) + (" ..." if len(partial) > 20 else "")
    return hp.para(text)


# ---------------------------------------------------------------- entry points


def _prepare(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.png"):
        old.unlink()


def build_report(run_dir: Path, alpha: float = 0.05) -> Path:
    """Write ``run_dir/report/report.html`` (and its PNGs) for a run folder or a sweep.

    A folder holding ``sweep/results.csv`` (or ``results.csv``) gets the sweep sections
    (answer, label-efficiency curves, tables over seeds) with the ROC, confusion matrix and
    fine-tuning loss of a representative cell (the SSL arm at the largest size); the folder's
    own files (config, environment, pre-training loss, pretext figures, eval.json) are shown
    where present. Missing pieces become notes.

    Args:
        run_dir: The run (or sweep) folder.
        alpha: 1 - confidence level of the intervals.

    Returns:
        Path of ``report.html``.

    Raises:
        DataError: When ``run_dir`` is not a folder.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(run_dir, "not a folder; pass a run folder written by the engine")
    out_dir = run_dir / REPORT_DIR
    _prepare(out_dir)
    run = load_run(run_dir)
    sweep = find_sweep(run_dir)
    results = _try(run, "sweep results", lambda: read_results(SweepFolder(sweep).results)) \
        if sweep is not None else None
    cell = load_run(c) if sweep is not None and (c := pick_cell(sweep)) is not None else None
    if cell is not None and run.eval is None and not run.predictions:
        focus, focus_name = cell, f"cell {cell.path.name}"
    else:
        focus, focus_name = run, "this run"
    if results is not None and results.empty:
        run.notes.append("results.csv has no rows yet")
        results = None

    sections: list[tuple[str, str, str]] = []
    summary = summarize(results, alpha=alpha) if results is not None else None
    if results is not None and summary is not None and sweep is not None:
        headline = headline_metric(results["metric"]) or ""
        sizes = answer.budget_sizes(results)
        arms = list(dict.fromkeys(results["arm"].astype(str)))
        read = answer.loader(load_run)
        seed = min(results["seed"], key=lambda s: (not hp.is_number(s), s if hp.is_number(s) else 0))
        fraction = results.groupby("n_labels")["fraction"].first()
        folders = {size: answer.arm_folders(run_dir, sweep, arms, size, seed, fraction[size])
                   for size in sizes}
        lines, ship_table = answer.ship_summary(
            answer.estimates(summary, headline, alpha, folders, read), sweep, headline, alpha)
        sections.append(("summary", "Summary: which model to ship, and did SSL beat scratch?",
                         '<div class="answer"><p class="big">Which model to ship</p>' + lines
                         + "</div>" + ship_table + "<h3>SSL against scratch</h3>"
                         + sweep_summary(summary, headline, alpha)
                         + answer.case_differences(summary, folders, headline, alpha, read)
                         + cell_status(sweep)
                         + _section_notes(run)))
        if len(sizes) == 1:
            found = [e for m in dict.fromkeys(results["metric"].astype(str))
                     for e in answer.estimates(summary, m, alpha, folders, read)]
            sections.append(("label-efficiency", f"The arms at {hp.fmt(sizes[0])} labels",
                             answer.one_size_comparison(found, arms, folders[sizes[0]], read,
                                                        out_dir, alpha)))
        else:
            sections.append(("label-efficiency", "Label efficiency",
                             efficiency_figures(results, summary, out_dir, headline, alpha)))
        tables = sweep_tables(results, summary) + stability_table(sweep, summary, headline) \
            + auto_table(sweep)
        if focus.eval is not None:
            tables += f"<h3>Representative run: {hp.esc(focus_name)}</h3>" + \
                eval_tables(focus, alpha)
        sections.append(("tables", "Metric tables", tables))
    else:
        sections.append(("summary", "Summary", run_summary(run, alpha)
                         + _section_notes(run)))
        sections.append(("label-efficiency", "Label efficiency",
                         hp.note("no sweep results (sweep/results.csv) in this folder: run "
                                 "`ssl-domains sweep` for label-efficiency curves")))
        sections.append(("tables", "Metric tables", eval_tables(run, alpha)))

    where = "" if focus is run else hp.para(f"From {focus_name}." + (
        " " + "; ".join(focus.notes) if focus.notes else ""))
    if is_segmentation(focus.path):  # a dense run: lesions and overlays instead of ROC
        sections.append(("lesions", "Lesion detection and overlays",
                         where + segmentation_section(focus.path, out_dir)))
    else:
        sections.append(("roc-pr", "ROC and precision-recall", where + curve_figures(focus, out_dir)))
        sections.append(("confusion", "Confusion matrix", where + confusion_figure(focus, out_dir)))
    losses = loss_figure(run, out_dir, "loss_curves.png", "Loss curves of this folder") \
        if run.metrics is not None or focus is run else ""
    if focus is not run:
        losses += loss_figure(focus, out_dir, "cell_loss_curves.png",
                              f"Fine-tuning loss curves of {focus_name}")
    sections.append(("loss", "Loss curves", f'<div class="figs">{losses}</div>'))
    pretext_src = run if run.figures or cell is None else cell
    sections.append(("pretext", "Pretext-task pictures", pretext_figures(pretext_src, out_dir)))
    config_src = run if run.config_text is not None or cell is None else cell
    sections.append(("config", "Resolved config", config_section(config_src)))
    env_src = run if run.environment or cell is None else cell
    sections.append(("environment", "Environment", environment_section(env_src)))

    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    kind = "sweep" if results is not None else "run"
    html = hp.page(f"ssl-domains report: {run_dir.resolve().name}",
                   f"{kind} folder, built {stamp}", sections)
    target = out_dir / REPORT_FILE
    atomic_write_text(target, html)
    log.info("wrote %s", target)
    return target


def build_sweep_report(sweep_dir: Path, alpha: float = 0.05) -> Path:
    """Like :func:`build_report`, but requires sweep results.

    Args:
        sweep_dir: The sweep output folder (holding ``sweep/results.csv``) or the ``sweep``
            folder itself; the report goes to ``<sweep_dir>/report/``.
        alpha: 1 - confidence level of the intervals.

    Raises:
        DataError: When no ``results.csv`` is found.
    """
    sweep_dir = Path(sweep_dir)
    if find_sweep(sweep_dir) is None:
        raise DataError(sweep_dir, "no sweep/results.csv here; run `ssl-domains sweep` first "
                                   "or pass the folder it wrote")
    return build_report(sweep_dir, alpha=alpha)
