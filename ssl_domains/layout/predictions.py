"""``predictions/<split>.csv``: one row per item, ``id, label, score`` (binary: P(class 1)) or
``score_0..score_{K-1}``, then ``decision``. One class (:class:`Predictions`), one writer, one
parse (:func:`read_prediction_table`) that both readers build on."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ssl_domains.errors import DataError
from ssl_domains.files import write_guard

__all__ = ["PredictionTable", "Predictions", "read_labeled_predictions", "read_prediction_table",
           "read_predictions", "write_predictions"]


@dataclass
class Predictions:
    """Class probabilities ``[N, K]`` with item ids, true labels (or None), the mean loss and
    the decisions recorded with them (None when not read from a file that has them)."""

    ids: list[str]
    probs: np.ndarray
    labels: np.ndarray | None
    loss: float | None = None
    decisions: np.ndarray | None = None

    @classmethod
    def from_scores(cls, labels: np.ndarray | None, scores: np.ndarray,
                    decisions: np.ndarray | None = None, ids: Sequence[str] | None = None) -> Predictions:
        """From binary P(class 1) ``[N]`` or class scores ``[N, K]``."""
        s = np.asarray(scores, dtype=np.float64)
        probs = np.stack([1.0 - s, s], axis=1) if s.ndim == 1 else s
        return cls(ids=list(ids) if ids is not None else [str(i) for i in range(len(s))],
                   probs=probs, labels=labels, decisions=decisions)

    @property
    def scores(self) -> np.ndarray:
        """P(class 1) for binary tasks, else the probability matrix."""
        return self.probs[:, 1] if self.probs.shape[1] == 2 else self.probs

    @property
    def known_labels(self) -> np.ndarray:
        """The labels of predictions read with them (:func:`read_labeled_predictions`).

        Raises:
            ValueError: These predictions have no labels.
        """
        if self.labels is None:
            raise ValueError("these predictions have no labels")
        return self.labels

    @property
    def binary(self) -> bool:
        """Two classes."""
        return self.probs.shape[1] == 2

    def both_classes(self) -> bool:
        """Binary, with labels of both classes (a threshold or an AUROC is defined)."""
        return self.binary and self.labels is not None and len(set(self.labels.tolist())) == 2


def write_predictions(path: Path, preds: Predictions, threshold: float | None) -> None:
    """CSV: ``id, label, score`` (binary P(class 1)) or ``score_0..score_{K-1}``, ``decision``
    (binary: ``score >= threshold``, 0.5 without one; else the arg-max)."""
    with write_guard(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
    k = preds.probs.shape[1]
    header = ["id", "label"] + (["score"] if k == 2 else [f"score_{j}" for j in range(k)]) + ["decision"]
    tmp = path.with_name(f".{path.name}.tmp")
    with write_guard(path, tmp), tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i, item in enumerate(preds.ids):
            label = "" if preds.labels is None else int(preds.labels[i])
            if k == 2:
                s = float(preds.probs[i, 1])
                decision = int(s >= threshold) if threshold is not None else int(s >= 0.5)
                w.writerow([item, label, repr(s), decision])
            else:
                row = [repr(float(v)) for v in preds.probs[i]]
                w.writerow([item, label, *row, int(np.argmax(preds.probs[i]))])
    with write_guard(path, tmp):
        tmp.replace(path)


@dataclass(frozen=True)
class PredictionTable:
    """The columns of a predictions CSV as written (the one parse every reader builds on).

    Attributes:
        columns: The header.
        ids: The ``id`` column (None when the file has none).
        scores: P(class 1) [N] from a ``score`` column, else ``score_0..score_{K-1}`` [N, K].
        labels: The ``label`` column as floats [N], NaN where a row has none (None when the
            file has no ``label`` column).
        decisions: The ``decision`` column [N] (None when absent).
    """

    columns: list[str]
    ids: list[str] | None
    scores: np.ndarray
    labels: np.ndarray | None
    decisions: np.ndarray | None


def read_prediction_table(path: Path) -> PredictionTable:
    """The columns of a predictions CSV of :func:`write_predictions`, unfiltered.

    Raises:
        DataError: The file cannot be read, has no ``score`` or ``score_0..score_K-1``
            column, or a row is short or holds a non-numeric label, score or decision.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(path, f"not a readable CSV ({err})") from None
    header = rows[0] if rows else []
    if "score" in header:
        cols = [header.index("score")]
    else:
        ks = sorted(int(c[6:]) for c in header if c.startswith("score_") and c[6:].isdigit())
        cols = [header.index(f"score_{k}") for k in ks]
    if not cols:
        raise DataError(path, "no 'score' or 'score_0..score_K-1' column "
                              f"(columns: {', '.join(header) or 'none'})")
    body = [r for r in rows[1:] if r]
    at = {name: header.index(name) for name in ("id", "label", "decision") if name in header}
    try:
        scores = np.array([[float(r[c]) for c in cols] for r in body], dtype=np.float64)
        labels = np.array([float(v) if (v := r[at["label"]]).strip() else math.nan for r in body],
                          dtype=np.float64) if "label" in at else None
        decisions = np.array([int(float(r[at["decision"]])) for r in body], dtype=int) \
            if "decision" in at else None
        ids = [r[at["id"]] for r in body] if "id" in at else None
    except (ValueError, IndexError) as err:
        raise DataError(path, f"non-numeric label, score or decision, or a short row ({err})") from None
    scores = scores.reshape(len(body), len(cols))
    return PredictionTable(columns=header, ids=ids, scores=scores[:, 0] if "score" in header else scores,
                           labels=labels, decisions=decisions)


def read_predictions(path: Path) -> Predictions:
    """A predictions CSV of :func:`write_predictions` as class probabilities ``[N, K]`` with
    ids, labels (None unless every row has one) and decisions.

    Raises:
        DataError: The file is missing, or has no id or score columns, or a non-numeric value.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "missing (the run it belongs to did not finish)")
    table = read_prediction_table(path)
    if table.ids is None:
        raise DataError(path, f"no 'id' column (columns: {', '.join(table.columns)})")
    y = table.labels
    labels = y.astype(int) if y is not None and len(y) and not np.isnan(y).any() else None
    return Predictions.from_scores(labels, table.scores, table.decisions, table.ids)


def read_labeled_predictions(path: Path) -> Predictions | None:
    """The labeled rows of a predictions CSV (what a report scores); None when the file is
    absent. Ids are optional here.

    Raises:
        DataError: No ``label`` column, no score columns, or a non-numeric value.
    """
    path = Path(path)
    if not path.is_file():
        return None
    table = read_prediction_table(path)
    if table.labels is None:
        raise DataError(path, f"no 'label' column (columns: {', '.join(table.columns)})")
    keep = ~np.isnan(table.labels)
    ids = [i for i, k in zip(table.ids, keep) if k] if table.ids is not None else None
    return Predictions.from_scores(table.labels[keep].astype(int), table.scores[keep],
                                   table.decisions[keep] if table.decisions is not None else None, ids)
