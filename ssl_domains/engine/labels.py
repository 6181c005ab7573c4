"""Label checks before fine-tuning, and why a metric could not be computed.

A fine-tuning run is refused before any training when its labels cannot give the model the user
meant: a binary task given three classes, a single class, or a validation set missing a class
(no threshold, no early stopping, a NaN AUROC). Softer problems become warnings that are logged
and written to ``eval.json`` (and so to the report).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ssl_domains.errors import ConfigError, DataError

__all__ = ["declared_classes", "check_labels", "undefined_reasons", "FEW"]

#: Fewer validation items of a class than this is warned about.
FEW = 3


def declared_classes(task_args: Mapping[str, Any], factory: Any) -> tuple[int | None, bool]:
    """``(num_classes, explicit)`` of a fine-tuning task: the ``num_classes`` argument the
    config gives, else the factory's default (2 for the shipped tasks), else ``None``."""
    if "num_classes" in task_args:
        return int(task_args["num_classes"]), True
    try:
        param = inspect.signature(factory).parameters.get("num_classes")
    except (TypeError, ValueError):
        param = None
    if param is not None and isinstance(param.default, int) and not isinstance(param.default, bool):
        return param.default, False
    return None, False


def _names(classes: Iterable[int]) -> str:
    return ", ".join(str(c) for c in sorted(classes))


def check_labels(
    *,
    task: str,
    num_classes: int | None,
    explicit: bool,
    pool: Sequence[int],
    train: Sequence[int],
    val: Sequence[int],
    where: str,
    val_where: str,
) -> tuple[int, list[str]]:
    """Refuse labels that do not fit the task; returns the number of classes to build and
    warnings (a class with fewer than :data:`FEW` validation items).

    Args:
        task: The fine-tuning task's registry name (for messages).
        num_classes: Classes the task is declared with (:func:`declared_classes`), or None to
            infer them from the labels.
        explicit: ``num_classes`` was set in the config (not the task's default).
        pool: Labels of the whole labeled pool.
        train: Labels of the training subset.
        val: Labels of the validation set.
        where: Names the training data in messages.
        val_where: Names the validation data in messages.

    Raises:
        ConfigError: More classes than the task is declared with (e.g. three labels for a
            binary task) or labels outside ``0..num_classes-1``.
        DataError: One class only, or a validation set missing a class.
    """
    found = sorted(set(int(v) for v in [*pool, *val]))
    if num_classes is None:
        num_classes = max(2, (max(found) + 1) if found else 2)
    bad = [c for c in found if not 0 <= c < num_classes]
    if bad:
        kind = "binary" if num_classes == 2 else f"{num_classes}-class"
        origin = "num_classes" if explicit else "num_classes, its default"
        raise ConfigError(
            f"{where}: the labels hold {len(found)} classes ({_names(found)}) but task {task!r} is "
            f"{kind} ({origin} = {num_classes}, labels 0..{num_classes - 1}); for a multi-class "
            f"model set finetune.task.args.num_classes: {max(found) + 1}, otherwise map the labels "
            f"to 0..{num_classes - 1}"
        )
    train_classes = sorted(set(int(v) for v in train))
    if len(train_classes) < 2:
        only = _names(train_classes) or "none"
        raise DataError(where, f"the labeled training items hold one class only ({only}); "
                               "fine-tuning needs at least two classes: check the label column")
    missing = [c for c in train_classes if c not in set(int(v) for v in val)]
    if missing:
        raise DataError(
            val_where,
            f"has no items of class(es) {_names(missing)} (it holds {_names(set(map(int, val))) or 'none'}); "
            "without every class there is no threshold, AUROC or early stopping: give a separate "
            "val loader with every class, more labeled cases, or a larger val_fraction",
        )
    counts = {c: sum(1 for v in val if int(v) == c) for c in train_classes}
    few = {c: k for c, k in counts.items() if k < FEW}
    warnings = [f"validation holds only {', '.join(f'{k} item(s) of class {c}' for c, k in few.items())}: "
                "its threshold and early stopping rest on very few cases"] if few else []
    return num_classes, warnings


def undefined_reasons(labels: np.ndarray | None, metrics: Mapping[str, Any], split: str) -> dict[str, str]:
    """Why each metric in ``metrics`` is missing (``None``/NaN): ``{metric: reason}``."""
    out: dict[str, str] = {}
    for name, value in metrics.items():
        if value is not None and not (isinstance(value, float) and not math.isfinite(value)):
            continue
        if labels is not None and len(np.unique(labels)) < 2:
            only = _names(np.unique(labels).tolist()) or "none"
            out[name] = f"one class only ({only}) in the {split} labels"
        else:
            out[name] = f"not defined on the {split} predictions"
    return out
