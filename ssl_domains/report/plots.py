"""Report figures (matplotlib figures drawn on the Agg canvas directly, so the user's pyplot
backend is never switched). Every function saves one PNG and returns its path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn import metrics as skm

from ssl_domains.files import write_guard
from ssl_domains.layout.predictions import Predictions
from ssl_domains.report.artifacts import summarize

DPI = 110
#: Fixed colours so an arm looks the same in every figure.
ARM_COLORS = {"ssl": "#1f77b4", "scratch": "#d62728", "linear_probe": "#2ca02c"}
_EXTRA_COLORS = ["#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#ff7f0e"]


def arm_color(arm: str, arms: Sequence[str] = ()) -> str:
    """Colour of an arm (fixed for the standard arms, cycled for baselines)."""
    if arm in ARM_COLORS:
        return ARM_COLORS[arm]
    others = [a for a in arms if a not in ARM_COLORS]
    index = others.index(arm) if arm in others else len(others)
    return _EXTRA_COLORS[index % len(_EXTRA_COLORS)]


def subplots(*grid: int, figsize: tuple[float, float], **kwargs: Any) -> tuple[Figure, Any]:
    """``pyplot.subplots`` without pyplot: a figure on its own Agg canvas and its axes."""
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(*grid, **kwargs)


def save(fig: Figure, out: Path) -> Path:
    """Write ``fig`` to ``out`` (PNG, parents created)."""
    with write_guard(out, out):  # a full disk: one line naming the file, no partial PNG
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=DPI, bbox_inches="tight")
    return out


def _save_unit_square(fig: Figure, ax: Any, out: Path, xlabel: str, ylabel: str,
                      legend: str) -> Path:
    """Finish a curve on the unit square (labels, limits, grid, legend) and save it."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(loc=legend, fontsize=8)
    fig.tight_layout()
    return save(fig, out)


def loss_curves(metrics: pd.DataFrame, out: Path) -> Path:
    """Training and validation loss against step, one panel per stage.

    Args:
        metrics: Records of ``metrics.jsonl`` (``stage``, ``step``, ``split``, ``loss``).
        out: PNG path.

    Raises:
        ValueError: When there is no ``loss`` to plot.
    """
    if "loss" not in metrics.columns or metrics["loss"].notna().sum() == 0:
        raise ValueError("metrics.jsonl has no 'loss' values to plot")
    df = metrics[metrics["loss"].notna()].copy()
    if "stage" not in df.columns:
        df["stage"] = "train"
    if "split" not in df.columns:
        df["split"] = "train"
    if "step" not in df.columns:
        df["step"] = np.arange(len(df))
    stages = [s for s in ("pretrain", "finetune") if s in set(df["stage"])]
    stages += sorted(set(df["stage"].astype(str)) - set(stages))
    fig, axes = subplots(1, len(stages), figsize=(5.2 * len(stages), 3.6), squeeze=False)
    for ax, stage in zip(axes[0], stages):
        part = df[df["stage"].astype(str) == stage]
        for split, style in (("train", {"color": "#1f77b4", "lw": 1.0, "alpha": 0.8}),
                             ("val", {"color": "#d62728", "lw": 1.8, "marker": "o", "ms": 3})):
            rows = part[part["split"] == split].sort_values("step")
            if len(rows):
                ax.plot(rows["step"], rows["loss"], label=split, **style)
        ax.set_title(f"{stage} loss")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return save(fig, out)


def _binary_or_raise(preds: Mapping[str, Predictions]) -> dict[str, Predictions]:
    usable = {k: p for k, p in preds.items() if p.binary and len(np.unique(p.known_labels)) == 2}
    if not usable:
        raise ValueError("no split has binary scores with both classes present")
    return usable


def roc_curves(preds: Mapping[str, Predictions], out: Path,
               threshold: float | Mapping[str, float] | None = None,
               colors: Mapping[str, str] | None = None) -> Path:
    """ROC curves, one per split or arm (binary), or one-vs-rest per class of the last split.

    Args:
        preds: Split name (``"val"``, ``"test"``) or arm name -> predictions.
        out: PNG path.
        threshold: Marks the operating point of this threshold on each binary curve (one
            threshold per name when a mapping).
        colors: Line colour per name (default: matplotlib's cycle).

    Raises:
        ValueError: When no split has both classes.
    """
    fig, ax = subplots(figsize=(4.6, 4.2))
    multi = [p for p in preds.values() if not p.binary]
    if multi:
        name, p = [(k, v) for k, v in preds.items() if not v.binary][-1]
        for c in range(p.scores.shape[1]):
            yc = (p.known_labels == c).astype(int)
            if 0 < yc.sum() < len(yc):
                fpr, tpr, _ = skm.roc_curve(yc, p.scores[:, c])
                ax.plot(fpr, tpr, label=f"class {c} vs rest (AUC {skm.auc(fpr, tpr):.3f})")
        ax.set_title(f"ROC, one-vs-rest ({name})")
    else:
        for name, p in _binary_or_raise(preds).items():
            fpr, tpr, _ = skm.roc_curve(p.known_labels, p.scores)
            line, = ax.plot(fpr, tpr, label=f"{name} (AUROC {skm.auc(fpr, tpr):.3f})",
                            **({"color": colors[name]} if colors and name in colors else {}))
            at = threshold.get(name) if isinstance(threshold, Mapping) else threshold
            if at is not None:
                pred = p.scores >= at
                pos, neg = p.known_labels == 1, p.known_labels == 0
                ax.plot(pred[neg].mean(), pred[pos].mean(), "o", color=line.get_color(), ms=7,
                        mec="black")
        ax.set_title("ROC" + (" (dots: thresholds)" if isinstance(threshold, Mapping) and threshold
                              else f" (dot: threshold {threshold:.3f})" if isinstance(threshold, float | int)
                              else ""))
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1)
    return _save_unit_square(fig, ax, out, "1 - specificity (false positive rate)",
                             "sensitivity (true positive rate)", "lower right")


def pr_curves(preds: Mapping[str, Predictions], out: Path) -> Path:
    """Precision-recall curves of the binary splits, with each split's prevalence as baseline.

    Raises:
        ValueError: When no split has binary scores with both classes.
    """
    fig, ax = subplots(figsize=(4.6, 4.2))
    for name, p in _binary_or_raise(preds).items():
        precision, recall, _ = skm.precision_recall_curve(p.known_labels, p.scores)
        ap = skm.average_precision_score(p.known_labels, p.scores)
        line, = ax.step(recall, precision, where="post", label=f"{name} (AP {ap:.3f})")
        ax.axhline(p.known_labels.mean(), ls=":", lw=1, color=line.get_color())
    ax.set_title("Precision-recall (dotted: prevalence)")
    return _save_unit_square(fig, ax, out, "recall (sensitivity)", "precision", "lower left")


def confusion_matrix(labels: np.ndarray, decisions: np.ndarray, out: Path,
                     title: str = "Confusion matrix") -> Path:
    """Confusion matrix (counts, with row percentages) of integer decisions."""
    classes = sorted(set(np.asarray(labels).tolist()) | set(np.asarray(decisions).tolist()))
    classes = classes if len(classes) > 1 else [0, 1]
    cm = skm.confusion_matrix(labels, decisions, labels=classes)
    row = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = 1.2 + 0.9 * len(classes)
    fig, ax = subplots(figsize=(size + 1.2, size))
    im = ax.imshow(row, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{cm[i, j]}\n{100 * row[i, j]:.0f}%", ha="center", va="center",
                    color="white" if row[i, j] > 0.5 else "black", fontsize=9)
    ax.set_xticks(range(len(classes)), [str(c) for c in classes])
    ax.set_yticks(range(len(classes)), [str(c) for c in classes])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="row fraction")
    fig.tight_layout()
    return save(fig, out)


def label_efficiency(results: pd.DataFrame, out: Path, metric: str = "auroc",
                     alpha: float = 0.05) -> Path:
    """Metric against number of labels (log x), one line per arm, bands of the intervals over
    seeds (:func:`~ssl_domains.report.artifacts.summarize`: in the metric's range).

    Args:
        results: Tidy sweep table (``arm, n_labels, fraction, seed, metric, value``).
        out: PNG path.
        metric: Which metric to plot.
        alpha: 1 - confidence level of the bands.

    Raises:
        ValueError: When ``metric`` is not in the table.
    """
    table = results[results["metric"] == metric]
    if table.empty:
        raise ValueError(f"metric {metric!r} not in results "
                         f"(have: {', '.join(sorted(map(str, results['metric'].unique())))})")
    summary = summarize(table, alpha=alpha, pairs=())
    summary = summary[summary["n_labels"] > 0]
    arms = list(dict.fromkeys(summary["arm"]))
    fig, ax = subplots(figsize=(6.4, 4.2))
    for arm in arms:
        rows = summary[summary["arm"] == arm].groupby("n_labels", as_index=False).first()
        color = arm_color(arm, arms)
        ax.plot(rows["n_labels"], rows["mean"], "o-", color=color, label=arm, lw=1.8, ms=4)
        band = rows["ci_low"].notna()
        if band.any():
            ax.fill_between(rows["n_labels"][band], rows["ci_low"][band], rows["ci_high"][band],
                            color=color, alpha=0.15, lw=0)
    ax.set_xscale("log")
    sizes = sorted(summary["n_labels"].unique())
    ax.set_xticks(sizes, [str(int(s)) for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel("number of labeled training items (log scale)")
    ax.set_ylabel(metric)
    ax.set_title(f"Label efficiency: {metric} (bands: {100 * (1 - alpha):.0f}% CI over seeds)",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best", framealpha=0.85)
    fig.tight_layout()
    return save(fig, out)


def difference_curve(summary: pd.DataFrame, out: Path, metric: str = "auroc",
                     arm: str = "ssl-scratch", alpha: float = 0.05) -> Path:
    """A paired difference (e.g. SSL minus scratch) against number of labels, with its CI.

    Args:
        summary: Output of :func:`ssl_domains.report.artifacts.summarize`.
        out: PNG path.
        metric: Which metric.
        arm: Name of the difference rows.
        alpha: 1 - confidence level the summary was computed with (for the title).

    Raises:
        ValueError: When the summary has no such difference rows.
    """
    rows = summary[(summary["kind"] == "difference") & (summary["arm"] == arm)
                   & (summary["metric"] == metric) & (summary["n_labels"] > 0)]
    if rows.empty:
        raise ValueError(f"no {arm!r} difference rows for metric {metric!r}")
    rows = rows.groupby("n_labels", as_index=False).first()
    fig, ax = subplots(figsize=(6.4, 3.4))
    ax.axhline(0, color="black", lw=1)
    ax.errorbar(rows["n_labels"], rows["mean"],
                yerr=[rows["mean"] - rows["ci_low"].fillna(rows["mean"]),
                      rows["ci_high"].fillna(rows["mean"]) - rows["mean"]],
                fmt="o-", color=ARM_COLORS["ssl"], capsize=4, lw=1.8)
    ax.set_xscale("log")
    ax.set_xticks(rows["n_labels"], [str(int(s)) for s in rows["n_labels"]])
    ax.minorticks_off()
    ax.set_xlabel("number of labeled training items (log scale)")
    ax.set_ylabel(f"{metric} difference")
    ax.set_title(f"{arm.replace('-', ' minus ')}: {metric} (paired by seed, "
                 f"{100 * (1 - alpha):.0f}% CI)",
                 fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, out)
