"""The report's answer to the user's question, shaped by what was run.

First which model to ship at each label budget: the arm with the best test value of the headline
metric and, where the sweep ran ``select: auto``, what auto chose, each with its interval (over
seeds where there are several, else over test cases). Then SSL against scratch. A sweep of one
size (the demo: one size, one seed) gets one compact comparison, the arms' ROC curves overlaid
and their metrics with intervals, instead of label-efficiency "curves" of one point each.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ssl_domains.engine.assess import Assessment, read_prediction_table
from ssl_domains.errors import DataError
from ssl_domains.layout.predictions import Predictions
from ssl_domains.layout.run import RunFolder
from ssl_domains.layout.sweep import SweepFolder, parse_cell_name
from ssl_domains.report import htmlpage as hp
from ssl_domains.report import plots
from ssl_domains.report.artifacts import read_selection
from ssl_domains.scoring.intervals import Interval, paired_case_difference, verdict
from ssl_domains.scoring.metrics import LOWER_IS_BETTER

__all__ = ["ArmRun", "Estimate", "arm_folders", "budget_sizes", "case_differences", "estimates", "loader",
           "ship_summary", "one_size_comparison"]

AUTO = "auto"


class ArmRun(Protocol):
    """What the answer reads of an arm's run folder (:class:`ssl_domains.report.pages.Run`)."""

    predictions: dict[str, Predictions]
    eval: Assessment | None

    @property
    def threshold(self) -> float | None: ...

    def test_intervals(self, alpha: float = 0.05) -> dict[str, Interval]: ...


@dataclass(frozen=True)
class Estimate:
    """One arm's test value of one metric at one size: the mean over seeds and an interval
    (over seeds when ``n_seeds >= 2``; else over test cases, when the arm's predictions were
    found; else none)."""

    arm: str
    n_labels: Any
    fraction: Any
    metric: str
    mean: float
    low: float
    high: float
    n_seeds: int
    over: str  # "seeds", "test cases" or "" (no interval)

    def text(self, alpha: float) -> str:
        """``0.889 (95% CI 0.840 to 0.930 over test cases)``."""
        if self.over:
            return (f"{hp.fmt(self.mean)} ({100 * (1 - alpha):.0f}% CI {hp.fmt(self.low)} to "
                    f"{hp.fmt(self.high)} over {self.over})")
        return f"{hp.fmt(self.mean)} (no interval: {self.n_seeds} seed)"


def budget_sizes(results: pd.DataFrame) -> list[Any]:
    """The label budgets of a sweep (sizes above 0), ascending."""
    return sorted(n for n in results["n_labels"].unique() if n > 0)


def arm_folders(root: Path, sweep: Path, arms: Sequence[str], size: Any, seed: Any,
                fraction: Any = None) -> dict[str, Path]:
    """The run folder of each arm at ``size`` labels (drawn as ``fraction`` of the pool, when
    the sweep named fractions) and ``seed`` that exists: the sweep's cell
    ``cells/<arm>_<size or fraction>_<seed>`` (``baseline:x`` in folder ``baseline-x``); else a
    folder named after the arm in ``root`` (the demo's ``scratch/``); else ``root`` itself for
    the one arm left without a folder (the demo's SSL run, whose folder holds the others)."""
    found: dict[str, Path] = {}
    cells = {}
    for d in SweepFolder(sweep).cell_folders():
        parsed = parse_cell_name(d.name)
        if parsed is not None:
            cells[parsed] = d
    for arm in arms:
        folder = arm.replace(":", "-")
        cell = next((d for (a, n, s), d in cells.items() if a == folder and _same(s, seed)
                     and (_same(n, size) or (fraction is not None and _same(n, fraction)))), None)
        own = root / folder
        if cell is not None:
            found[arm] = cell
        elif RunFolder(own).eval.is_file():
            found[arm] = own
    left = [a for a in arms if a not in found]
    if len(left) == 1 and RunFolder(root).eval.is_file() and not cells:
        found[left[0]] = root
    return found


def _same(text: str, value: Any) -> bool:
    try:
        return float(text) == float(value)
    except (TypeError, ValueError):
        return str(text) == str(value)


def estimates(summary: pd.DataFrame, metric: str, alpha: float,
              folders: Mapping[Any, Mapping[str, Path]], load: Callable[[Path], ArmRun]) -> list[Estimate]:
    """Every arm's :class:`Estimate` of ``metric`` per size, from the summary's arm rows; an
    arm of one seed gets the bootstrap interval over its test cases (``load`` reads its folder
    from ``folders[size][arm]``)."""
    rows = summary[(summary["kind"] == "arm") & (summary["metric"] == metric) & (summary["n_labels"] > 0)]
    out = []
    for _, r in rows.iterrows():
        low, high, over = float(r["ci_low"]), float(r["ci_high"]), "seeds"
        if math.isnan(low):
            over = ""
            folder = folders.get(r["n_labels"], {}).get(str(r["arm"]))
            if folder is not None and int(r["n"]) == 1:
                interval = _case_interval(load(folder), metric, alpha)
                if interval is not None:
                    low, high, over = interval.low, interval.high, "test cases"
        out.append(Estimate(str(r["arm"]), r["n_labels"], r["fraction"], metric, float(r["mean"]),
                            low, high, int(r["n"]), over))
    return out


def _case_interval(run: ArmRun, metric: str, alpha: float) -> Interval | None:
    """The bootstrap interval over test cases of ``metric`` in one run: from its test
    predictions, else (a dense run: per-case scores) the 95 % one its eval.json holds."""
    interval = run.test_intervals(alpha).get(metric)
    if interval is not None and not math.isnan(interval.low):
        return interval
    stored = run.eval.test_intervals if run.eval is not None and abs(alpha - 0.05) < 1e-12 else None
    bounds = stored.get(metric) if stored is not None else None
    return Interval(*bounds) if bounds is not None else None


def case_differences(summary: pd.DataFrame, folders: Mapping[Any, Mapping[str, Path]], metric: str,
                     alpha: float, load: Callable[[Path], ArmRun]) -> str:
    """SSL against scratch where only one seed ran (the demo): the difference of ``metric`` on
    the test cases both arms scored, with a paired bootstrap over those cases."""
    diff = summary[(summary["kind"] == "difference") & (summary["arm"] == "ssl-scratch")
                   & (summary["metric"] == metric) & (summary["n_labels"] > 0)]
    lines = []
    for _, d in diff.sort_values("n_labels").iterrows():
        found = folders.get(d["n_labels"], {})
        if int(d["n"]) != 1 or "ssl" not in found or "scratch" not in found:
            continue
        pair = _same_cases(found["ssl"], found["scratch"])
        if pair is None:
            continue
        y, ssl, scratch = pair
        result = paired_case_difference(y, ssl, scratch, metric,
                                         (load(found["ssl"]).threshold, load(found["scratch"]).threshold),
                                         alpha=alpha)
        if math.isnan(result.low):
            continue
        lines.append(f"With {hp.fmt(d['n_labels'])} labels and one seed: {verdict(result, metric)}; "
                     f"{metric} difference {hp.fmt(result.mean, signed=True)} ({100 * (1 - alpha):.0f}% "
                     f"CI {hp.fmt(result.low, signed=True)} to {hp.fmt(result.high, signed=True)}, "
                     f"paired bootstrap over the {result.n} test cases both arms scored; it says "
                     "how sure this split is, not how another seed would go).")
    return '<div class="answer">' + "".join(hp.para(line) for line in lines) + "</div>" if lines else ""


def _same_cases(a: Path, b: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Labels and both runs' binary test scores on the test cases both scored (by id)."""
    tables = []
    for folder in (a, b):
        path = RunFolder(folder).prediction_file("test")
        try:
            table = read_prediction_table(path) if path.is_file() else None
        except DataError:
            table = None
        if table is None or table.ids is None or table.labels is None or table.scores.ndim != 1:
            return None
        tables.append({i: (label, score) for i, label, score in zip(table.ids, table.labels, table.scores)
                       if not math.isnan(label)})
    common = [i for i in tables[0] if i in tables[1] and tables[0][i][0] == tables[1][i][0]]
    if not common:
        return None
    y = np.array([tables[0][i][0] for i in common], dtype=int)
    if len(np.unique(y)) != 2:
        return None
    return (y, np.array([tables[0][i][1] for i in common]), np.array([tables[1][i][1] for i in common]))


def _auto_choices(sweep: Path, size: Any, fraction: Any = None) -> list[str]:
    """What the ``auto`` arm chose at ``size`` (or ``fraction``), one name per seed (its cells'
    selection.json)."""
    chosen = []
    for d in SweepFolder(sweep).cell_folders(AUTO):
        parsed = parse_cell_name(d.name)
        if parsed is None or not (_same(parsed[1], size)
                                  or (fraction is not None and _same(parsed[1], fraction))):
            continue
        try:
            rec = read_selection(SweepFolder.selection(d))
        except Exception:  # noqa: BLE001 - a malformed record is the auto table's note
            rec = None
        if rec is not None:
            chosen.append(rec.chosen)
    return chosen


def ship_summary(found: Sequence[Estimate], sweep: Path, metric: str, alpha: float) -> tuple[str, str]:
    """``(lines, table)``: per label budget, the arm to ship (best mean test ``metric``) and
    auto's choice, with intervals and the runner-up."""
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    lines, rows = [], []
    for size in sorted({e.n_labels for e in found}):
        here = sorted((e for e in found if e.n_labels == size and not math.isnan(e.mean)),
                      key=lambda e: (-sign * e.mean, e.arm == AUTO))  # a tie: the arm auto chose
        if not here:
            continue
        best = here[0]
        runner = next((e for e in here[1:] if e.arm != AUTO), None)  # auto is one of the others
        auto = next((e for e in here if e.arm == AUTO), None)
        choices = _auto_choices(sweep, size, best.fraction)
        text = (f"With {hp.fmt(size)} label{'' if size == 1 else 's'}: ship {best.arm}, test {metric} "
                f"{best.text(alpha)}")
        if runner is not None:
            text += f"; runner-up {runner.arm} {hp.fmt(runner.mean)}"
            overlap = best.low <= runner.high if sign > 0 else best.high >= runner.low
            if best.over and runner.over and overlap:
                text += " (the intervals overlap: not clearly better)"
        if auto is not None:
            what = _choice_text(choices)
            text += f". select: auto{what} scored {auto.text(alpha)}"
        lines.append(text + ".")
        rows.append([size, best.arm, best.mean, best.low, best.high, best.over or "none",
                     runner.arm if runner else None, runner.mean if runner else None,
                     _choice_text(choices).removeprefix(" chose ") if auto else None,
                     auto.mean if auto else None, auto.low if auto else None,
                     auto.high if auto else None])
    header = ["n_labels", "ship", f"test {metric}", "ci_low", "ci_high", "interval over",
              "runner-up", f"runner-up {metric}", "auto chose", f"auto {metric}", "auto ci_low",
              "auto ci_high"]
    keep = [i for i, h in enumerate(header) if not h.startswith("auto") or any(r[8] for r in rows)]
    table = hp.table([header[i] for i in keep], [[r[i] for i in keep] for r in rows],
                     table_id="ship-table")
    return "".join(hp.para(line) for line in lines), table


def _choice_text(choices: Sequence[str]) -> str:
    """`` chose minirocket (3 of 3 seeds)`` / `` chose ssl (2 of 3 seeds), scratch (1)``."""
    if not choices:
        return ""
    counts = pd.Series(list(choices)).value_counts()
    first = f"{counts.index[0]} ({counts.iloc[0]} of {len(choices)} seed{'s' if len(choices) > 1 else ''})"
    rest = ", ".join(f"{name} ({n})" for name, n in counts.iloc[1:].items())
    return " chose " + first + (f", {rest}" if rest else "")


def one_size_comparison(found: Sequence[Estimate], order: Sequence[str], folders: Mapping[str, Path],
                        load: Callable[[Path], ArmRun], out_dir: Path, alpha: float) -> str:
    """The arms at the one label budget (in ``order``): their test ROC curves overlaid (a dot
    at each arm's validation-chosen threshold) and every metric with its interval, one row per
    metric."""
    arms = [a for a in order if any(e.arm == a for e in found)]
    size = found[0].n_labels if found else None
    preds = {arm: p for arm in arms if arm in folders
             and (p := load(folders[arm]).predictions.get("test")) is not None}
    thresholds = {arm: t for arm in preds if (t := load(folders[arm]).threshold) is not None}
    html = ""
    if preds:
        try:
            png = plots.roc_curves(preds, out_dir / "roc_arms.png", thresholds,
                                   colors={a: plots.arm_color(a, arms) for a in preds})
            html += hp.figure(png, f"Test ROC curves of the arms at {hp.fmt(size)} labels "
                                   "(dot: each arm's threshold, chosen on validation data)", width=460)
        except ValueError as err:
            html += hp.note(f"ROC curves of the arms skipped: {err}")
    else:
        html += hp.note("no test predictions of the arms found (cells/<arm>_<size>_<seed>/"
                        "predictions/test.csv): ROC curves of the arms skipped")
    by_metric: dict[str, dict[str, Estimate]] = {}
    for e in found:
        by_metric.setdefault(e.metric, {})[e.arm] = e
    header = ["metric"] + [f"{arm} {col}" for arm in arms for col in ("", "ci_low", "ci_high")]
    header = [h.strip() for h in header]
    rows = [[metric] + [v for arm in arms for v in
                        ((lambda e: (e.mean, e.low, e.high))(per[arm]) if arm in per else (None,) * 3)]
            for metric, per in by_metric.items()]
    over = sorted({e.over for e in found if e.over})
    note = (f"{100 * (1 - alpha):.0f}% intervals over {' and '.join(over)}" if over
            else "no intervals (one seed and no test predictions found)")
    return (f'<div class="figs">{html}</div>'
            + hp.para(f"One label budget ({hp.fmt(size)} labels) was run, so there are no "
                      f"label-efficiency curves: the arms side by side instead ({note}; test "
                      "cases resampled within each class, threshold fixed).")
            + hp.table(header, rows, table_id="comparison-table"))


def loader(load: Callable[[Path], Any]) -> Callable[[Path], ArmRun]:
    """``load`` with each folder read once."""
    cache: dict[Path, Any] = {}

    def read(path: Path) -> ArmRun:
        if path not in cache:
            cache[path] = load(path)
        return cache[path]  # type: ignore[no-any-return]

    return read

