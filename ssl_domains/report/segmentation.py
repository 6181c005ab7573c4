"""Report sections of a dense (segmentation) run: FROC curves and overlays of test cases.

Reads only what the engine wrote into a run folder's ``segmentation/`` (see
:mod:`ssl_domains.engine.segmentation`): ``froc.csv`` and the ``slices/`` of the best, median
and worst test case by Dice (loaded with ``allow_pickle=False``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ssl_domains.engine.segmentation import THRESHOLD
from ssl_domains.layout.names import FROC_FILE, SEGMENTATION_DIR, SLICES_DIR
from ssl_domains.layout.sweep import parse_cell_name
from ssl_domains.report import htmlpage as hp
from ssl_domains.report import plots

__all__ = ["is_segmentation", "froc_figure", "overlay_figure", "segmentation_section"]

RANKS = ("best", "median", "worst")


def is_segmentation(run_path: Path) -> bool:
    """Whether the run folder holds a dense run's ``segmentation/`` folder."""
    return (Path(run_path) / SEGMENTATION_DIR).is_dir()


def _read_froc(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    if not path.is_file():
        return None
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return (np.array([float(r["fp_per_case"]) for r in rows]),
            np.array([float(r["sensitivity"]) for r in rows]))


def froc_figure(curves: dict[str, Path], out: Path) -> Path | None:
    """FROC curves (lesion sensitivity against false positives per case, log x axis), one per
    label; None when no curve could be read."""
    fig, ax = plots.subplots(figsize=(5.0, 3.8))
    drawn = 0
    for label, path in curves.items():
        got = _read_froc(path)
        if got is None:
            continue
        fp, sens = got
        order = np.argsort(fp, kind="stable")
        # from no detection at the left edge to the last operating point, held to the right
        xs = np.concatenate([[1 / 16], np.maximum(fp[order], 1 / 16), [16]])
        ys = np.concatenate([[0.0], np.maximum.accumulate(sens[order]) if len(sens) else [],
                             [sens.max() if len(sens) else 0.0]])
        ax.step(xs, ys, where="post", label=label,
                color=plots.arm_color(label.split(" ")[0], list(curves)))
        drawn += 1
    if not drawn:
        return None
    ax.set_xscale("log", base=2)
    ax.set_xlim(1 / 16, 16)
    ax.set_ylim(-0.01, 1.01)
    for rate in (0.125, 0.25, 0.5, 1, 2, 4, 8):
        ax.axvline(rate, color="0.85", lw=0.6, zorder=0)
    ax.set_xlabel("false positives per case")
    ax.set_ylabel("lesion sensitivity")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return plots.save(fig, out)


def overlay_figure(slices: Path, out: Path) -> Path | None:
    """The best, median and worst test case: one slice each, ground truth (green) and
    prediction at the decision threshold (red) as contours; None without slices."""
    found = [(rank, slices / f"{rank}.npz") for rank in RANKS if (slices / f"{rank}.npz").is_file()]
    if not found:
        return None
    fig, axes = plots.subplots(1, len(found), figsize=(3.2 * len(found), 3.4), squeeze=False)
    for ax, (rank, path) in zip(axes[0], found):
        with np.load(path, allow_pickle=False) as z:
            image, truth, prob, dice = z["image"], z["truth"], z["prob"], float(z["dice"])
        ax.imshow(image.T, cmap="gray", origin="lower")
        if truth.any():
            ax.contour(truth.T.astype(float), levels=[0.5], colors="#2ca02c", linewidths=1.2)
        if (prob >= THRESHOLD).any():
            ax.contour(prob.T, levels=[THRESHOLD], colors="#d62728", linewidths=1.2)
        ax.set_title(f"{rank} test case: Dice {dice:.2f}", fontsize=9)
        ax.set_axis_off()
    fig.tight_layout()
    return plots.save(fig, out)


def _sibling_cells(cell: Path) -> dict[str, Path]:
    """Every arm's cell of the same size and seed as ``cell`` in its sweep's ``cells/``."""
    parsed = parse_cell_name(cell.name)
    if parsed is None:
        return {}
    _, size, seed = parsed
    out = {}
    for other in sorted(cell.parent.iterdir()):
        got = parse_cell_name(other.name)
        if got is not None and got[1:] == (size, seed) and is_segmentation(other):
            out[got[0]] = other
    return out


def segmentation_section(run_path: Path, out_dir: Path, prefix: str = "") -> str:
    """HTML: FROC curves (every arm of the same size and seed when ``run_path`` is a sweep
    cell) and the overlays of ``run_path``'s test cases."""
    run_path = Path(run_path)
    cells = _sibling_cells(run_path) or {run_path.name: run_path}
    parsed = parse_cell_name(run_path.name)
    where = f" ({parsed[1]} labeled cases, seed {parsed[2]})" if parsed else ""
    figs = []
    froc = froc_figure({arm: p / SEGMENTATION_DIR / FROC_FILE for arm, p in cells.items()},
                       out_dir / f"{prefix}froc.png")
    figs.append(hp.figure(froc, f"FROC of the test cases{where}: lesions are components of the "
                          f"probability map at or above {THRESHOLD}, scored by their highest "
                          "probability", width=460) if froc is not None
                else hp.note("no FROC curve (segmentation/froc.csv) in this run"))
    overlay = overlay_figure(run_path / SEGMENTATION_DIR / SLICES_DIR,
                             out_dir / f"{prefix}overlays.png")
    figs.append(hp.figure(overlay, f"{run_path.name}: ground truth (green) and prediction (red) "
                          "on the slice of the largest lesion area", width=720)
                if overlay is not None else hp.note("no overlay slices (segmentation/slices/)"))
    return f'<div class="figs">{"".join(figs)}</div>'
