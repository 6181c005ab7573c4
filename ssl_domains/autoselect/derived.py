"""The derived arms (of a sweep and of ``select: auto``): ``ensemble`` and ``auto``, built
from the other arms' cells.

Both read the finished cells of the same labeled-set size and seed (same items, same split)
and never look at test labels to decide anything:

* ``ensemble``: the ``ssl`` cell and the strongest classical baseline (best validation AUROC
  among the baseline cells), probabilities averaged with the weight of
  :data:`~ssl_domains.autoselect.choice.WEIGHTS` that has the best validation AUROC; the
  threshold is chosen on the averaged validation scores.
* ``auto``: the best of the other arms (``ssl``, ``scratch``, ``linear_probe``, the baselines,
  ``ensemble``) on validation AUROC. When the validation set is small
  (:func:`~ssl_domains.autoselect.choice.small_validation`), validation AUROC is noise:
  the choice is made by stratified k-fold cross-validation over the labeled subset (training
  and validation items together). In each fold every candidate arm is trained exactly as its
  cell was (on the fold's training items minus an inner validation split for early stopping,
  the deep arms included) and scores the held-out fold; the out-of-fold probabilities choose
  the arm, and for the ensemble its baseline and weight. Chosen on validation, the chosen
  arm's model is the one of its cell (trained on the labeled subset's training part;
  validation part for early stopping and the threshold): ``auto``'s test numbers are that
  cell's. Chosen by cross-validation, a baseline or a network is fitted again on every
  labeled item (training and validation part; a network for the steps its folds trained), its
  threshold chosen on its out-of-fold scores (:mod:`~ssl_domains.autoselect.refit`;
  ``eval.json``'s ``refit`` says so); a chosen ensemble averages its two members so refitted
  (kept in ``members/``), with the weight chosen out of fold.

A derived cell folder holds ``eval.json`` (same keys as the others, plus ``ensemble`` or
``selection``), ``predictions/val.csv``, ``test.csv`` and, for ``auto``, ``selection.json``
(and ``cv_oof.csv`` when it cross-validated).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ssl_domains.autoselect import choice as sel
from ssl_domains.autoselect.arms import Arm
from ssl_domains.contracts import DatasetView
from ssl_domains.engine.assess import (
    EVAL_FILE,
    Assessment,
    Predictions,
    Selection,
    finish_run,
    read_assessment,
    read_predictions,
    write_assessment,
    write_predictions,
)
from ssl_domains.engine.exports import combine
from ssl_domains.errors import SSLDomainsError
from ssl_domains.files import write_json
from ssl_domains.layout.names import EXPORT_DIR, MEMBERS_DIR, SEGMENTATION_DIR
from ssl_domains.layout.run import RunFolder
from ssl_domains.layout.sweep import SweepFolder

__all__ = ["run_ensemble_cell", "run_auto_cell", "run_dense_auto_cell", "chose_by_cross_validation", "combined_cell",
           "labeled_set", "cross_validate", "fold_splits", "fold_sources"]


def _same_items(a: Predictions, b: Predictions, what: str) -> None:
    if a.ids != b.ids or a.labels is None or b.labels is None \
            or not np.array_equal(a.labels, b.labels):
        raise SSLDomainsError(f"{what}: the cells scored different items; ensembles and "
                              "selection need every arm on the same split")


def _val(cell: Path) -> Predictions:
    return read_predictions(RunFolder(cell).prediction_file("val"))


def combined_cell(cell: Path, deep_cell: Path, base_cell: Path, weight: float,
                  threshold_rule: str, details: dict[str, Any]) -> Assessment:
    """Write ``cell`` as ``weight * deep + (1 - weight) * baseline`` of two finished cells,
    assessed as any run (:func:`~ssl_domains.engine.assess.finish_run`: threshold chosen on
    the averaged validation scores; the counts of ``deep_cell``); returns its assessment
    (with ``details``)."""
    val_d, val_b = _val(deep_cell), _val(base_cell)
    _same_items(val_d, val_b, f"ensemble of {deep_cell.name} and {base_cell.name} (validation)")
    val = Predictions(val_d.ids, combine(val_d.probs, val_b.probs, weight), val_d.labels)
    test = None
    if (RunFolder(deep_cell).prediction_file("test")).is_file():
        t_d = read_predictions(RunFolder(deep_cell).prediction_file("test"))
        t_b = read_predictions(RunFolder(base_cell).prediction_file("test"))
        _same_items(t_d, t_b, f"ensemble of {deep_cell.name} and {base_cell.name} (test)")
        test = Predictions(t_d.ids, combine(t_d.probs, t_b.probs, weight), t_d.labels)
    cell.mkdir(parents=True, exist_ok=True)
    return finish_run(cell, val, test, threshold_rule=threshold_rule,
                      counts=read_assessment(deep_cell).counts, details=details)


def run_ensemble_cell(cell: Path, deep: tuple[str, Path], baselines: Mapping[str, Path],
                      threshold_rule: str, oof: Any = None) -> dict[str, Any]:
    """The ``ensemble`` cell: ``deep`` (``(arm, cell)``, the ``ssl`` arm) with the strongest of
    ``baselines`` (arm -> finished cell), weight and baseline chosen on validation AUROC, or
    on out-of-fold probabilities when ``oof`` (``(labels, {arm: probabilities}, folds)``, the
    ``auto`` arm's cross-validation) holds the deep arm and a baseline.

    Raises:
        SSLDomainsError: A member cell is missing or the cells scored different items.
    """
    deep_arm, deep_cell = deep
    val_d = _val(deep_cell)
    vals = {}
    for arm, path in baselines.items():
        vals[arm] = _val(path)
        _same_items(val_d, vals[arm], f"ensemble of {deep_cell.name} and {path.name}")
    assert val_d.labels is not None
    y, deep_p = val_d.labels, val_d.probs
    bases = {a: p.probs for a, p in vals.items()}
    chosen_on = "validation"
    if oof is not None and deep_arm in oof[1] and any(b in oof[1] for b in baselines):
        y, deep_p = oof[0], oof[1][deep_arm]
        bases = {b: oof[1][b] for b in baselines if b in oof[1]}
        chosen_on = (f"{oof[2]}-fold cross-validation over the {len(y)} labeled items "
                     f"(validation set too small: {len(val_d.labels)} items)")
    best, base_scores = sel.strongest_baseline(y, bases)
    weight, tried = sel.ensemble_weight(y, deep_p, bases[best])
    extra = {"init": "ensemble", "ensemble": {
        "members": [deep_arm, best], "weight": weight, "weight_of": deep_arm,
        "chosen_on": chosen_on, "weights_tried": {str(w): s for w, s in tried.items()},
        "baseline_scores": base_scores, "metric": "auroc"}}
    return combined_cell(cell, deep_cell, baselines[best], weight, threshold_rule,
                         extra).to_json()


# ---------------------------------------------------------------- cross-validation


def labeled_set(data: Mapping[str, Any]) -> DatasetView:
    """The labeled subset of a run (:func:`~ssl_domains.engine.finetune.prepare_finetune_data`'s
    training and validation items, possibly from two datasets) as one dataset, with ``labels``
    and ``groups``; training views augment through the first part's ``augment_item``."""
    return DatasetView.joined([_part(data["train"]), _part(data["val"])])


def _part(ds: Any) -> tuple[Any, list[int]]:
    """``(base, indices)`` of a one-dataset view (else the whole dataset)."""
    if isinstance(ds, DatasetView) and not ds.is_joined:
        return ds.base, list(ds.indices)
    return ds, list(range(len(ds)))


def fold_splits(labeled: DatasetView, seed: int, k: int = sel.CV_FOLDS
                ) -> list[tuple[np.ndarray, np.ndarray]]:
    """The seeded stratified (grouped, when items share a group) ``(train, held_out)`` splits
    of :func:`cross_validate` over ``labeled``.

    Raises:
        SSLDomainsError: A class with a single item.
    """
    y = np.asarray(labeled.labels, dtype=int)
    groups = labeled.groups or []  # a joined view groups every item
    return sel.cv_folds(y, seed, groups if len(set(groups)) < len(groups) else None, k)


def fold_sources(labeled: DatasetView, split: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """The data of one fold: its training part as the pool, its held-out part as the test set."""
    tr, held = split
    return {"pool": DatasetView(labeled, tr), "val": None, "test": DatasetView(labeled, held)}


def cross_validate(labeled: DatasetView, seed: int, folds_dir: Path, train_arm: Any,
                   k: int = sel.CV_FOLDS) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
    """Out-of-fold probabilities of every candidate arm over ``labeled``.

    Args:
        labeled: The labeled subset.
        seed: Seeds the folds (and the arms' runs).
        folds_dir: Scratch folder for the fold runs (removed afterwards).
        train_arm: ``train_arm(sources, k) -> {arm: Predictions on sources["test"]}`` trains
            every candidate on ``sources["pool"]`` (fold ``k``'s training part, from
            :func:`fold_sources`) exactly as its cell was trained and scores the held-out fold.
        k: Number of folds (fewer when a class has fewer items).

    Returns:
        ``(labels, {arm: probabilities [N, K]}, folds)`` in ``labeled``'s order.
    """
    y = np.asarray(labeled.labels, dtype=int)
    splits = fold_splits(labeled, seed, k)
    oof: dict[str, np.ndarray] = {}
    for k, split in enumerate(splits):
        held = split[1]
        got = train_arm(fold_sources(labeled, split), k)
        for arm, p in got.items():
            if arm not in oof:
                oof[arm] = np.full((len(y), p.probs.shape[1]), np.nan)
            oof[arm][held] = p.probs
    shutil.rmtree(folds_dir, ignore_errors=True)
    complete = {a: p for a, p in oof.items() if not np.isnan(p).any()}
    return y, complete, len(splits)


def chose_by_cross_validation(record: Selection) -> bool:
    """Whether an auto cell's choice was made on out-of-fold scores (:func:`run_auto_cell`
    starts that method's sentence with the number of folds)."""
    return record.method[:1].isdigit()


def run_auto_cell(cell: Path, candidates: Mapping[str, Path], threshold_rule: str, *,
                  ensemble: tuple[str, Sequence[str]] | None = None,
                  cv: Any = None, seed: int = 0, alpha: float = 0.05,
                  preference: Sequence[str] = sel.PREFERENCE,
                  preference_from: str = "",
                  refit: Callable[[str, Path, np.ndarray, int], bool] | None = None
                  ) -> dict[str, Any]:
    """The ``auto`` cell: the best candidate arm chosen on validation data only.

    Args:
        cell: The auto cell folder.
        candidates: Arm -> finished cell (``ensemble`` among them when the sweep has it).
        threshold_rule: For a cross-validated ensemble's threshold.
        ensemble: ``(deep arm, baseline arms)`` the ensemble candidate is made of (needed to
            redo the ensemble on out-of-fold probabilities).
        cv: ``cv() -> (labels, {arm: out-of-fold probabilities}, folds)``, run when the
            validation set is small; None never cross-validates.
        seed: Seeds the bootstrap of the interval.
        alpha: 1 - confidence level of the interval.
        preference: Order of preference of :func:`~ssl_domains.autoselect.choice.choose`.
        preference_from: Where that order came from, for the rule's sentence.
        refit: ``refit(arm, cell, out_of_fold_probabilities, folds) -> bool`` writes the
            assessment and predictions of ``arm`` fitted again on every labeled item into
            ``cell`` (False: it could not, nothing written); called when cross-validation
            chose a baseline or a network, and for both members of a chosen ensemble (into
            ``<cell>/members/``). None ships the chosen arm's cell.

    Raises:
        SSLDomainsError: No candidate finished, or cells scored different items.
    """
    vals = {a: _val(p) for a, p in candidates.items() if (p / EVAL_FILE).is_file()}
    if not vals:
        raise SSLDomainsError("auto: none of the candidate arms finished")
    first = next(iter(vals.values()))
    for arm, p in vals.items():
        _same_items(first, p, f"auto: {arm}")
    assert first.labels is not None
    ens_extra: dict[str, Any] | None = None
    crossfit = ("the ensemble is scored with its baseline and weight chosen on the other "
                "folds of the selection items")
    oof = None
    k = 0
    scored: dict[str, np.ndarray] = {}  # out-of-fold probabilities, when cross-validated
    fallback = ""
    if cv is not None and sel.small_validation(first.labels):
        y, oof_probs, k = cv()
        scored = {a: p for a, p in oof_probs.items() if a in vals}
        if not scored:  # e.g. a class with 1 item in every fold's training part
            fallback = (f"; the {k}-fold cross-validation over the {len(y)} labeled items "
                        "trained no candidate on every fold")
    if scored:
        if ensemble is not None and ensemble[0] in scored and any(b in scored for b in ensemble[1]):
            bases = {b: scored[b] for b in ensemble[1] if b in scored}
            best, base_scores = sel.strongest_baseline(y, bases)
            weight, tried = sel.ensemble_weight(y, scored[ensemble[0]], bases[best])
            honest = sel.crossfit_ensemble(y, scored[ensemble[0]], bases, seed)
            scored["ensemble"] = honest if honest is not None else \
                combine(scored[ensemble[0]], bases[best], weight)
            ens_extra = {"members": [ensemble[0], best], "weight": weight,
                         "weight_of": ensemble[0], "chosen_on": f"{k}-fold cross-validation",
                         "weights_tried": {str(w): s for w, s in tried.items()},
                         "baseline_scores": base_scores, "metric": "auroc"}
        method = (f"{k}-fold cross-validation over the {len(y)} labeled items (validation set "
                  f"too small: {len(first.labels)} items); each arm retrained per fold as in "
                  "its cell, scored on the held-out fold"
                  + (f"; {crossfit}" if "ensemble" in scored else ""))
        choice = sel.choose(y, scored, method, alpha=alpha, seed=seed, preference=preference,
                            preference_from=preference_from)
        oof = pd.DataFrame({f"{a}_{j}": p[:, j] for a, p in scored.items()
                            for j in range(p.shape[1])})
        oof.insert(0, "label", y)
    else:
        method = (f"validation ({len(first.labels)} items, chosen by validation AUROC; the "
                  f"fine-tuned arms also chose their best epoch on it){fallback}")
        on_val = {a: p.probs for a, p in vals.items()}
        if "ensemble" in on_val and ensemble is not None and ensemble[0] in on_val:
            honest = sel.crossfit_ensemble(first.labels, on_val[ensemble[0]],
                                           {b: on_val[b] for b in ensemble[1] if b in on_val},
                                           seed)
            if honest is not None:
                on_val["ensemble"] = honest
                method += f"; {crossfit}"
        choice = sel.choose(first.labels, on_val, method, alpha=alpha, seed=seed,
                            preference=preference, preference_from=preference_from)
    record = choice.as_dict()
    chosen = choice.chosen
    if chosen == "ensemble" and ens_extra is not None:
        record["ensemble"] = ens_extra
        deep, base = ens_extra["members"]
        sources = {deep: candidates[deep], base: candidates[base]}
        details: dict[str, Any] = {"init": "ensemble", "ensemble": ens_extra}
        refitted = cell / MEMBERS_DIR
        if refit is not None and refit(deep, refitted / Arm(deep).folder, scored[deep], k):
            refit(base, refitted / Arm(base).folder, scored[base], k)
            sources = {a: refitted / Arm(a).folder for a in (deep, base)}
            details["refit"] = "both members fitted again on every label: " + "; ".join(
                f"{a}: {read_assessment(sources[a]).refit}" for a in (deep, base))
        assessment = combined_cell(cell, sources[deep], sources[base], ens_extra["weight"],
                                   threshold_rule, details)
    elif refit is not None and scored and chosen in scored \
            and refit(chosen, cell, scored[chosen], k):
        assessment = read_assessment(cell)
    else:  # the chosen cell's assessment and predictions, as they are
        src = candidates[chosen]
        assessment = read_assessment(src)
        for split in ("val", "test"):
            if RunFolder(src).prediction_file(split).is_file():
                write_predictions(RunFolder(cell).prediction_file(split),
                                  read_predictions(RunFolder(src).prediction_file(split)),
                                  assessment.threshold)
        if chosen == "ensemble":
            record["ensemble"] = assessment.ensemble
    assessment = assessment.updated(selection=record)
    if oof is not None:
        oof.to_csv(SweepFolder.cv_oof(cell), index=False)
    write_json(SweepFolder.selection(cell), assessment.to_json()["selection"])
    write_assessment(cell, assessment)
    return assessment.to_json()


def run_dense_auto_cell(cell: Path, candidates: Mapping[str, Path],
                        preference: Sequence[str] = sel.PREFERENCE,
                        preference_from: str = "") -> dict[str, Any]:
    """The ``auto`` cell of a dense (segmentation) sweep: the arm with the highest mean Dice
    on the validation cases (the same cases for every arm of a size and seed; the networks
    also kept their best step on them), ties to the earlier arm of ``preference``. The chosen
    cell's ``eval.json`` (with ``selection``), its ``segmentation/`` folder and its export
    are copied into ``cell``; its test numbers are the chosen cell's.

    Raises:
        SSLDomainsError: No candidate finished, or the candidates validated on other cases.
    """
    scores: dict[str, float] = {}
    cases: dict[str, list[str]] = {}
    for arm, path in candidates.items():
        table = RunFolder(path).case_table("val")
        if not (path / EVAL_FILE).is_file() or not table.is_file():
            continue
        rows = pd.read_csv(table)
        cases[arm] = [str(i) for i in rows["id"]]
        scores[arm] = float(rows["dice"].mean()) if len(rows) else float("nan")
    if not scores:
        raise SSLDomainsError("auto: none of the candidate arms finished")
    first = next(iter(cases.values()))
    if any(sorted(c) != sorted(first) for c in cases.values()):
        raise SSLDomainsError("auto: the candidate arms validated on different cases")
    order = list(preference) + [a for a in scores if a not in preference]

    def rank(arm: str) -> int:
        base = "baseline" if arm.startswith("baseline:") else arm
        return order.index(arm) if arm in order else order.index(base) if base in order else len(order)

    finite = {a: s for a, s in scores.items() if np.isfinite(s)} or scores
    best = max(finite.values())
    chosen = min((a for a, s in finite.items() if s == best), key=rank)
    ranked = sorted(finite, key=lambda a: (-finite[a], rank(a)))
    runner = next((a for a in ranked if a != chosen), None)
    record = Selection(
        chosen=chosen, metric="dice", score=scores[chosen], runner_up=runner,
        runner_up_score=scores.get(runner) if runner else None, scores=scores,
        method=(f"validation ({len(first)} case(s), mean Dice at probability 0.5; the networks "
                "also kept their best step on them)"),
        n_items=len(first), best=chosen, best_score=scores[chosen],
        rule=("the highest mean validation Dice; ties to the earlier arm in the order of "
              f"preference{' (' + preference_from + ')' if preference_from else ''}"),
        preference=list(preference))
    src = candidates[chosen]
    if cell.exists():
        shutil.rmtree(cell)
    cell.mkdir(parents=True)
    for part in (SEGMENTATION_DIR, EXPORT_DIR):
        if (src / part).is_dir():
            shutil.copytree(src / part, cell / part)
    assessment = read_assessment(src).updated(selection=record)
    write_json(SweepFolder.selection(cell), assessment.to_json()["selection"])
    write_assessment(cell, assessment)
    return assessment.to_json()
