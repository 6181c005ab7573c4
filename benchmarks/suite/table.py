"""The suite's table, ranks, target checks and figure, from the sweeps' ``results.csv`` files.

Input: a tidy frame with columns ``dataset, kind, arm, n_labels, fraction, seed, metric,
value`` (the sweeps' results with the dataset added). Output:

* :func:`cell_stats`: mean, sd and n over seeds per dataset x budget x arm;
* :func:`ranks`: each arm's rank by mean within every dataset x budget cell (1 = best, ties
  share the average rank) and the average rank per arm;
* :func:`preference_order`: ``auto``'s order of preference read off the cells (every arm,
  each baseline on its own, by average shortfall from the best arm of each cell);
* :func:`targets`: the issue's targets, checked on the means;
* :func:`markdown`, :func:`figure`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ssl_domains.autoselect.choice import PREFERENCE, candidate_kind

#: Column order of the arms; baselines (``baseline:<name>``) follow in name order.
ARM_ORDER = ("ssl", "scratch", "linear_probe", "ensemble", "auto")
#: Cells with at most this share of the pool labelled count as "few labels" for the targets.
FEW = 0.10 + 1e-9


def arm_order(arms: Sequence[str]) -> list[str]:
    present = list(dict.fromkeys(arms))
    first = [a for a in ARM_ORDER if a in present]
    return first + sorted(a for a in present if a not in first)


def cell_stats(results: pd.DataFrame, metric: str = "auroc") -> pd.DataFrame:
    """Mean, sd (ddof 1; NaN for one seed) and n over seeds per dataset x budget x arm."""
    r = results[results["metric"] == metric].dropna(subset=["value"])
    g = r.groupby(["dataset", "kind", "n_labels", "arm"], sort=False)
    out = g["value"].agg(mean="mean", sd="std", n="count").reset_index()
    out["fraction"] = g["fraction"].first().to_numpy()
    order = {d: i for i, d in enumerate(dict.fromkeys(r["dataset"]))}
    out = out.assign(_order=out["dataset"].map(order)).sort_values(
        ["_order", "n_labels"], kind="stable").drop(columns="_order").reset_index(drop=True)
    return out[["dataset", "kind", "n_labels", "fraction", "arm", "mean", "sd", "n"]]


def complete(stats: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The dataset x budget cells where every arm of that dataset finished the same number of
    seeds (an interrupted suite leaves partial cells, whose ranks would not compare), and how
    many cells were left out."""
    if stats.empty:
        return stats, 0
    arms = stats.groupby("dataset")["arm"].nunique()
    g = stats.groupby(["dataset", "n_labels"])
    ok = (g["arm"].transform("nunique").eq(stats["dataset"].map(arms))
          & g["n"].transform("nunique").eq(1))
    dropped = stats[~ok].groupby(["dataset", "n_labels"]).ngroups
    return stats[ok].reset_index(drop=True), int(dropped)


def ranks(stats: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Per-cell ranks (column ``rank``, 1 = highest mean; means equal to 6 decimals tie and
    share the average rank) and the average rank per arm over the cells it ran in."""
    ranked = stats.copy()
    ranked["rank"] = ranked["mean"].round(6).groupby(
        [ranked["dataset"], ranked["n_labels"]]).rank(ascending=False, method="average")
    avg = ranked.groupby("arm")["rank"].mean()
    return ranked, avg.reindex([a for a in arm_order(list(avg.index))])


def preference_order(stats: pd.DataFrame) -> list[str]:
    """``auto``'s order of preference that the cells of ``stats`` support: every arm but
    ``auto`` (each baseline on its own, ``baseline:<name>``) by its average shortfall from the
    best arm of each dataset x budget cell (mean test AUROC; smallest first: the arm that,
    shipped everywhere, loses least), ties in the order of
    :data:`~ssl_domains.autoselect.choice.PREFERENCE` (simplest first); the kinds of that order
    that ran in no cell (``baseline`` for any other baseline) come last. An average rank would
    put first an arm that is often just ahead and sometimes far behind."""
    s = stats[stats["arm"] != "auto"]
    best = s.groupby(["dataset", "n_labels"])["mean"].transform("max")
    short = (best - s["mean"]).round(6).groupby(s["arm"]).mean()
    ran = sorted((str(a) for a in short.index if candidate_kind(str(a)) in PREFERENCE),
                 key=lambda a: (short[a], PREFERENCE.index(candidate_kind(a)), a))
    return ran + [a for a in PREFERENCE if a not in ran]


def _few(stats: pd.DataFrame) -> pd.DataFrame:
    return stats[stats["fraction"] <= FEW]


def _wide(stats: pd.DataFrame) -> pd.DataFrame:
    return stats.pivot_table(index=["dataset", "kind", "n_labels"], columns="arm", values="mean")


def targets(stats: pd.DataFrame) -> list[dict[str, object]]:
    """The issue's targets on the cell means: each a dict with ``target``, ``value`` (a share
    of cells or an AUROC, ``unit``), ``met`` (None when there are no cells) and ``cells``."""
    out: list[dict[str, object]] = []
    few = _wide(_few(stats))

    def share(ok: pd.Series) -> float:
        return float(ok.mean()) if len(ok) else math.nan

    if {"ssl", "scratch"} <= set(few.columns):
        both = few[["ssl", "scratch"]].dropna()
        s = share(both["ssl"] >= both["scratch"])
        out.append({"target": "ssl >= scratch in >= 80 % of dataset x budget cells with <= 10 % "
                              "labels", "value": s, "met": bool(s >= 0.8) if len(both) else None,
                    "cells": len(both), "unit": "share"})
    base = [c for c in few.columns if str(c).startswith("baseline:")]
    sig = few[few.index.get_level_values("kind") == "signal"]
    if "ssl" in sig.columns and base:
        ours = sig[[c for c in ("ssl", "ensemble") if c in sig.columns]].max(axis=1)
        best = sig[base].max(axis=1)
        keep = ours.notna() & best.notna()
        s = share((ours >= best)[keep])
        out.append({"target": "ssl or ensemble >= the best classical baseline in >= half of the "
                              "signal cells with <= 10 % labels", "value": s,
                    "met": bool(s >= 0.5) if keep.any() else None, "cells": int(keep.sum()),
                    "unit": "share"})
    breast = stats[stats["dataset"] == "BreastMNIST"]
    for frac, goal, label in ((0.1, 0.85, "BreastMNIST 10 % (stretch)"),
                              (1.0, 0.92, "BreastMNIST 100 %")):
        at = breast[np.isclose(breast["fraction"], frac) & (breast["arm"] == "ssl")]
        if len(at):
            v = float(at["mean"].iloc[0])
            out.append({"target": f"{label}: ssl >= {goal}", "value": v, "met": v >= goal,
                        "cells": 1, "unit": "auroc"})
    return out


def _fmt(mean: float, sd: float, n: int) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:.3f}" if n < 2 or math.isnan(sd) else f"{mean:.3f} ± {sd:.3f}"


def markdown(stats: pd.DataFrame, avg_rank: pd.Series, goals: list[dict[str, object]]) -> str:
    """One table (rows dataset x budget, columns arms: mean ± sd test AUROC; the best mean in
    bold), a row of average ranks, and the targets."""
    arms = arm_order(list(stats["arm"]))
    head = ["dataset", "labels (share of pool)", *arms]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (ds, n), cell in stats.groupby(["dataset", "n_labels"], sort=False):
        by_arm = cell.set_index("arm")
        top = round(float(cell["mean"].max()), 6)
        row = [str(ds), f"{int(n)} ({float(cell['fraction'].iloc[0]):.0%})"]
        for arm in arms:
            if arm not in by_arm.index:
                row.append("–")
                continue
            r = by_arm.loc[arm]
            text = _fmt(float(r["mean"]), float(r["sd"]), int(r["n"]))
            row.append(f"**{text}**" if round(float(r["mean"]), 6) == top else text)
        lines.append("| " + " | ".join(row) + " |")
    lines.append("| **average rank** (1 = best) | | "
                 + " | ".join(f"{avg_rank[a]:.2f}" if a in avg_rank.index else "–" for a in arms)
                 + " |")
    if goals:
        lines += ["", "| target | value | met | cells |", "|---|---|---|---|"]
        for g in goals:
            v = float(g["value"])  # type: ignore[arg-type]
            shown = f"{v:.0%}" if g["unit"] == "share" else f"{v:.3f}"
            met = "n/a" if g["met"] is None else ("yes" if g["met"] else "no")
            lines.append(f"| {g['target']} | {shown} | {met} | {g['cells']} |")
    return "\n".join(lines)


def figure(stats: pd.DataFrame, path: Path) -> Path:
    """One panel per dataset: mean test AUROC (± sd) against the number of labels, per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(stats["dataset"]))
    arms = arm_order(list(stats["arm"]))
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, name in zip(axes.flat, names):
        d = stats[stats["dataset"] == name]
        for i, arm in enumerate(arms):
            a = d[d["arm"] == arm].sort_values("n_labels")
            if a.empty:
                continue
            ax.errorbar(a["n_labels"], a["mean"], yerr=a["sd"].fillna(0), marker="o", ms=3,
                        lw=1.2, capsize=2, color=colours(i % 10), label=arm)
        ax.set_xscale("log")
        ticks = sorted(int(n) for n in d["n_labels"].unique())
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xticks(ticks, [str(n) for n in ticks])
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("labels", fontsize=8)
        ax.set_ylabel("test AUROC", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    seen: dict[str, Any] = {}  # every arm of any panel (an image set has no MiniRocket)
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    labels = [a for a in arms if a in seen]
    handles = [seen[a] for a in labels]
    fig.legend(handles, labels, loc="lower center", ncol=min(len(arms), 8), fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
