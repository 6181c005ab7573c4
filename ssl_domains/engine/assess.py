"""A run's results: the :class:`Assessment` (the schema of ``eval.json``), how it is computed
from predictions, and the only code that writes ``eval.json`` and, through
:mod:`ssl_domains.layout.predictions` (whose :class:`Predictions` and readers are re-exported
here), ``predictions/*.csv``.

Every arm ends the same way (:func:`finish_run`): the decision threshold is chosen on the
validation predictions only (binary tasks with both classes in validation), the validation and
test predictions are scored at that threshold, the test metrics get bootstrap intervals over
test cases, undefined metrics get a reason, and the prediction CSVs and ``eval.json`` are
written. Fine-tuning, the sweep's baseline and ensemble arms, ``evaluate`` and ``select: auto``
all go through it; every reader loads ``eval.json`` with :func:`read_assessment`.

``eval.json`` keys (absent when not known, except ``threshold``, which is ``null`` when no
threshold applies)::

    threshold, threshold_rule      the validation-chosen threshold and its rule
    val, test                      metric -> value (null when undefined)
    n_train, n_val, n_test, n_pool, n_labels, label_counts   what the run saw
    test_intervals                 metric -> [low, high] plus "method" (a sentence)
    undefined_metrics              split -> metric -> why it is undefined
    warnings                       sentences the report shows
    init, steps, best_step, monitor, stopped_early, seconds  how the model was trained
    baseline, ensemble             the classical baseline / ensemble an arm used
    refit                          a model auto chose by cross-validation, fitted again on
                                   every label: how
    postprocessing                 a dense task's post-processing, chosen on validation cases
    selection, candidates, candidates_note                   what select: auto chose and why
    eval_<loader>, n_eval_<loader> ``ssl-domains evaluate`` on other data
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from ssl_domains.config import ComponentRef
from ssl_domains.engine.labels import undefined_reasons
from ssl_domains.errors import DataError
from ssl_domains.files import read_json_object, strict_json_value, write_json
from ssl_domains.layout.names import EVAL_FILE, PREDICTIONS_DIR
from ssl_domains.layout.predictions import (
    Predictions,
    PredictionTable,
    read_prediction_table,
    read_predictions,
    write_predictions,
)
from ssl_domains.layout.run import RunFolder
from ssl_domains.layout.schema import first_problem
from ssl_domains.scoring.intervals import bootstrap_metrics
from ssl_domains.scoring.metrics import classification_metrics
from ssl_domains.scoring.thresholds import choose_threshold

__all__ = [
    "EVAL_FILE",
    "PREDICTIONS_DIR",
    "INTERVAL_REPLICATES",
    "Assessment",
    "Candidate",
    "Counts",
    "Ensemble",
    "Evaluation",
    "Intervals",
    "Selection",
    "Metrics",
    "PredictionTable",
    "Predictions",
    "assess",
    "bootstrap_intervals",
    "finish_run",
    "read_assessment",
    "read_prediction_table",
    "read_predictions",
    "rescore",
    "score",
    "validation_threshold",
    "write_assessment",
    "write_predictions",
]

log = logging.getLogger(__name__)

#: Bootstrap replicates of the test-metric intervals.
INTERVAL_REPLICATES = 1000

#: Metric name -> value; ``None`` where the metric is undefined (e.g. AUROC of one class).
Metrics = dict[str, float | None]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Intervals(_Model):
    """Test-metric intervals over test cases and how they were computed.

    On disk (``test_intervals``): ``{metric: [low, high], ..., "method": sentence}``; a bound
    that could not be computed is ``null``.
    """

    method: str | None = None
    bounds: dict[str, tuple[float | None, float | None]] = {}

    @model_validator(mode="before")
    @classmethod
    def _from_disk(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "bounds" not in data:
            return {"method": data.get("method"),
                    "bounds": {k: v for k, v in data.items() if k != "method"}}
        return data

    def to_json(self) -> dict[str, Any]:
        """The on-disk form."""
        out: dict[str, Any] = {k: [_finite(lo), _finite(hi)] for k, (lo, hi) in self.bounds.items()}
        if self.method is not None:
            out["method"] = self.method
        return out

    def get(self, metric: str) -> tuple[float, float] | None:
        """``(low, high)`` of ``metric``; None when absent or not computed."""
        lo, hi = self.bounds.get(metric, (None, None))
        if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
            return None
        return float(lo), float(hi)


class Evaluation(_Model):
    """``ssl-domains evaluate`` on other data: ``eval_<loader>`` and ``n_eval_<loader>``."""

    metrics: Metrics = {}
    n: int | None = None


class Ensemble(_Model):
    """An ensemble arm: ``weight * weight_of + (1 - weight) * the other member`` (class
    probabilities), its baseline and weight chosen on ``chosen_on`` by ``metric``."""

    members: list[str]
    weight: float
    weight_of: str
    chosen_on: str = "validation"
    weights_tried: dict[str, float | None] = {}
    baseline_scores: dict[str, float | None] = {}
    metric: str = "auroc"


class Selection(_Model):
    """What ``auto`` / ``select: auto`` chose, on which items and how sure (also the
    ``selection.json`` of an ``auto`` cell)."""

    chosen: str
    metric: str = "auroc"
    score: float | None = None
    interval: tuple[float | None, float | None] | None = None
    interval_method: str | None = None
    runner_up: str | None = None
    runner_up_score: float | None = None
    scores: dict[str, float | None] = {}
    method: str = "validation"
    n_items: int | None = None
    best: str | None = None
    best_score: float | None = None
    rule: str | None = None
    preference: list[str] | None = None
    #: standard errors of tolerance of the rule (None: chosen before it was recorded, one)
    tolerance: float | None = None
    ensemble: Ensemble | None = None


class Candidate(_Model):
    """One ``select: auto`` candidate's scores (its test AUROC is reported, never used)."""

    selection_auroc: float | None = None
    val_auroc: float | None = None
    test_auroc: float | None = None


@dataclass(frozen=True)
class Counts:
    """What a run saw: item counts and label counts per split (``{"train": {"0": 40, ...}}``)."""

    n_train: int | None = None
    n_val: int | None = None
    n_test: int | None = None
    n_pool: int | None = None
    n_labels: int | None = None
    label_counts: dict[str, dict[str, int]] = field(default_factory=dict)


#: Fields written even when ``None``.
_ALWAYS = ("threshold",)


class Assessment(_Model):
    """The content of ``eval.json`` (see the module docstring for each key)."""

    threshold: float | None = None
    threshold_rule: str | None = None
    val: Metrics = {}
    test: Metrics | None = None
    n_train: int | None = None
    n_val: int | None = None
    n_test: int | None = None
    n_pool: int | None = None
    n_labels: int | None = None
    label_counts: dict[str, dict[str, int]] | None = None
    test_intervals: Intervals | None = None
    undefined_metrics: dict[str, dict[str, str]] | None = None
    warnings: list[str] | None = None
    init: str | None = None
    steps: int | None = None
    best_step: int | None = None
    #: the validation metric whose best weights were kept (``early_stopping.metric``, resolved)
    monitor: str | None = None
    stopped_early: bool | None = None
    seconds: float | None = None
    baseline: ComponentRef | None = None
    #: how a model ``auto`` chose by cross-validation was fitted again on every label (a
    #: sentence)
    refit: str | None = None
    #: a dense task's post-processing of the probability maps, chosen on validation cases
    #: (a sentence, with the validation Dice without and with it)
    postprocessing: str | None = None
    ensemble: Ensemble | None = None
    selection: Selection | None = None
    candidates: dict[str, Candidate] | None = None
    candidates_note: str | None = None
    evaluations: dict[str, Evaluation] = {}

    @model_validator(mode="before")
    @classmethod
    def _from_disk(cls, data: Any) -> Any:
        """``eval_<loader>`` / ``n_eval_<loader>`` keys into :attr:`evaluations`."""
        if not isinstance(data, Mapping) or "evaluations" in data:
            return data
        out: dict[str, Any] = {}
        evals: dict[str, dict[str, Any]] = {}
        for key, value in data.items():
            if key.startswith("n_eval_"):
                evals.setdefault(key[len("n_eval_"):], {})["n"] = value
            elif key.startswith("eval_"):
                evals.setdefault(key[len("eval_"):], {})["metrics"] = value
            else:
                out[key] = value
        if evals:
            out["evaluations"] = evals
        return out

    def to_json(self) -> dict[str, Any]:
        """The ``eval.json`` object (strict JSON values: NaN as ``null``)."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name == "evaluations":
                for loader, ev in value.items():
                    out[f"eval_{loader}"] = dict(ev.metrics)
                    if ev.n is not None:
                        out[f"n_eval_{loader}"] = ev.n
            elif isinstance(value, Intervals):
                out[name] = value.to_json()
            elif value is not None or name in _ALWAYS:
                out[name] = _dump(value)
        return dict(strict_json_value(out))

    def updated(self, **fields: Any) -> Assessment:
        """A copy with ``fields`` replaced, validated (``model_copy`` does not validate).

        Raises:
            pydantic.ValidationError: A field that does not exist or does not fit.
        """
        base = self.to_json()
        if "evaluations" in fields:  # replaced whole: drop their on-disk keys
            base = {k: v for k, v in base.items() if not k.startswith(("eval_", "n_eval_"))}
        return type(self).model_validate({**base, **{k: _dump(v) for k, v in fields.items()}})

    @property
    def counts(self) -> Counts:
        """Item and label counts (to give a derived arm the counts of the cells it is made of)."""
        return Counts(n_train=self.n_train, n_val=self.n_val, n_test=self.n_test,
                      n_pool=self.n_pool, n_labels=self.n_labels,
                      label_counts=dict(self.label_counts or {}))

    def metrics(self, split: str) -> Metrics:
        """``val``, ``test`` or ``eval_<loader>`` metrics (empty when absent)."""
        if split == "val":
            return dict(self.val)
        if split == "test":
            return dict(self.test or {})
        if split.startswith("eval_") and split[5:] in self.evaluations:
            return dict(self.evaluations[split[5:]].metrics)
        return {}


def _dump(value: Any) -> Any:
    """Plain JSON values of a field (sub-models without the keys they were not given)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


# ---------------------------------------------------------------- computing


def score(preds: Predictions, threshold: float | None) -> Metrics:
    """Metrics of ``preds`` at ``threshold`` (plus the mean ``loss`` when known); an undefined
    one is ``None``; empty without labels."""
    if preds.labels is None:
        return {}
    m: dict[str, float] = classification_metrics(preds.labels, preds.scores, threshold=threshold)
    if preds.loss is not None:
        m["loss"] = preds.loss
    return {k: _finite(float(v)) for k, v in m.items()}


def validation_threshold(val: Predictions, rule: str) -> float | None:
    """The decision threshold chosen by ``rule`` on VALIDATION predictions; None for a
    multi-class task or validation labels without both classes."""
    if not val.both_classes():
        return None
    assert val.labels is not None
    return float(choose_threshold(val.labels, val.scores, rule))


def bootstrap_intervals(test: Predictions, threshold: float | None, *, n: int = INTERVAL_REPLICATES,
                   alpha: float = 0.05, seed: int = 0) -> Intervals | None:
    """Bootstrap intervals of every test metric over test cases (class-stratified, threshold
    held fixed); None unless the test predictions are binary with both classes."""
    if not test.both_classes():
        return None
    assert test.labels is not None
    got = bootstrap_metrics(test.labels, test.scores, threshold, n=n, alpha=alpha, seed=seed)
    return Intervals(
        method=(f"{100 * (1 - alpha):.0f}% percentile bootstrap over test cases ({n} "
                "class-stratified resamples, threshold held fixed)"),
        bounds={k: (_finite(iv.low), _finite(iv.high)) for k, iv in got.items()})


_SPLIT_NAMES = {"val": "validation", "test": "test"}


def assess(val: Predictions, test: Predictions | None, *, threshold_rule: str, counts: Counts,
           warnings: Sequence[str] = (), details: Mapping[str, Any] | None = None) -> Assessment:
    """The assessment of a model from its validation and (optional) test predictions.

    Args:
        val: Validation predictions (choose the threshold).
        test: Test predictions (only scored), or None without test data.
        threshold_rule: Rule of :func:`~ssl_domains.scoring.thresholds.choose_threshold`.
        counts: What the run saw.
        warnings: Warnings found before (e.g. label checks); undefined metrics add theirs.
        details: More fields of :class:`Assessment` (``init``, ``steps``, ``baseline``, ...).

    Raises:
        pydantic.ValidationError: ``details`` names an unknown field or a wrong type.
    """
    threshold = validation_threshold(val, threshold_rule)
    fields: dict[str, Any] = {
        "threshold": threshold, "threshold_rule": threshold_rule, "val": score(val, threshold),
        "n_train": counts.n_train, "n_val": counts.n_val, "n_pool": counts.n_pool,
        "n_labels": counts.n_labels, "label_counts": dict(counts.label_counts),
    }
    if test is not None:
        fields["test"] = score(test, threshold)
        fields["n_test"] = counts.n_test if counts.n_test is not None else len(test.ids)
        fields["test_intervals"] = bootstrap_intervals(test, threshold)
    undefined = {split: reasons for split, preds in (("val", val), ("test", test))
                 if preds is not None and (reasons := undefined_reasons(
                     preds.labels, fields[split], _SPLIT_NAMES[split]))}
    notes = list(warnings)
    for split, reasons in undefined.items():
        why = sorted(set(reasons.values()))
        notes.append(f"{split}: {', '.join(sorted(reasons))} undefined ({'; '.join(why)})")
    fields["undefined_metrics"] = undefined or None
    fields["warnings"] = notes
    return Assessment.model_validate({**fields, **(details or {})})


def rescore(assessment: Assessment, split: str, preds: Predictions, threshold: float | None) -> Assessment:
    """``assessment`` with ``split`` (``"test"`` or ``"eval_<loader>"``) scored anew from
    ``preds`` at ``threshold`` (the export's validation-chosen one): its metrics, count,
    undefined-metric reasons and, for ``test``, intervals are replaced."""
    metrics = score(preds, threshold)
    update: dict[str, Any] = {}
    if split == "test":
        update.update(test=metrics, n_test=len(preds.ids),
                      test_intervals=bootstrap_intervals(preds, threshold))
    elif split.startswith("eval_"):
        update["evaluations"] = {**assessment.evaluations,
                                 split[5:]: Evaluation(metrics=metrics, n=len(preds.ids))}
    else:
        raise ValueError(f"rescore: split must be 'test' or 'eval_<loader>', got {split!r}")
    reasons = undefined_reasons(preds.labels, metrics, split)
    undefined = {k: v for k, v in (assessment.undefined_metrics or {}).items() if k != split}
    if reasons:
        undefined[split] = reasons
    update["undefined_metrics"] = undefined or None
    return assessment.model_copy(update=update)


# ---------------------------------------------------------------- files


def write_assessment(run_dir: Path, assessment: Assessment) -> Path:
    """Write ``run_dir/eval.json`` (atomically, strict JSON); returns its path.

    Raises:
        pydantic.ValidationError: ``assessment`` holds a value that does not fit the schema
            (e.g. set through ``model_copy``): it is checked before it is written.
    """
    path = Path(run_dir) / EVAL_FILE
    data = assessment.to_json()
    Assessment.model_validate(data)
    write_json(path, data)
    return path


def read_assessment(run_dir: Path) -> Assessment:
    """The :class:`Assessment` in ``run_dir/eval.json`` (or in the file ``run_dir``).

    Raises:
        DataError: The file is missing, not JSON, or does not fit the schema (one line
            naming the file and the first problem).
    """
    path = Path(run_dir)
    if path.is_dir() or path.suffix != ".json":
        path = path / EVAL_FILE
    if not path.is_file():
        raise DataError(path, "missing (the run has not finished fine-tuning or evaluation)")
    data = read_json_object(path)
    try:
        return Assessment.model_validate(data)
    except ValidationError as err:
        raise DataError(path, f"not an eval.json: {first_problem(err)}") from None


def finish_run(run_dir: Path, val: Predictions, test: Predictions | None, *, threshold_rule: str,
               counts: Counts, warnings: Sequence[str] = (),
               details: Mapping[str, Any] | None = None, write: bool = True) -> Assessment:
    """The tail every arm shares: :func:`assess`, then ``predictions/val.csv``, ``test.csv``
    (decisions at the validation-chosen threshold) and ``eval.json`` in ``run_dir``; its
    warnings are logged. ``write=False`` (a non-main process) computes without writing."""
    assessment = assess(val, test, threshold_rule=threshold_rule, counts=counts,
                        warnings=warnings, details=details)
    for w in assessment.warnings or []:
        log.warning("%s: %s", run_dir, w)
    if write:
        folder = RunFolder(run_dir)
        write_predictions(folder.prediction_file("val"), val, assessment.threshold)
        if test is not None:
            write_predictions(folder.prediction_file("test"), test, assessment.threshold)
        write_assessment(run_dir, assessment)
    return assessment
