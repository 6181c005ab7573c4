"""``finetune.select: auto``: train the candidates, choose on validation data only, export
the chosen model.

The candidates are the arms of a one-size, one-seed sweep on the run's own label budget and
seed, in ``<run>/candidates/``, trained by the :class:`CandidateRunner` the caller passes
(the sweep's, :class:`ssl_domains.sweep.run.SweepCandidates`): the pre-trained model
fine-tuned as configured (``ssl``), the same recipe from scratch, a linear probe, every
classical baseline and the ``ensemble`` of ``ssl`` with the strongest baseline; without
pre-trained weights, only scratch and the baselines. The ``auto`` arm chooses among them on
validation AUROC, or by cross-validation over the labeled subset when the validation set is
small (:mod:`ssl_domains.autoselect.derived`). The test split is only scored.

The run folder then holds the chosen model's ``eval.json`` (with ``selection``: the chosen
arm, its selection AUROC with a bootstrap interval, the runner-up, every candidate's score,
and ``candidates``: each one's test AUROC, reported, never used), its predictions and its
export:

* a fine-tuned network: that candidate's export, as any fine-tuning run's; chosen by
  cross-validation, the network trained again on every labeled item for the steps its folds
  trained (``eval.json``'s ``refit``; :mod:`ssl_domains.autoselect.refit`);
* a classical baseline (``kind: baseline``): ``config.json`` names it and its arguments,
  ``baseline.safetensors`` holds its training inputs and labels, and loading refits it
  (baselines are deterministic; the export is checked to reproduce the candidate's
  validation scores). Chosen by cross-validation, the baseline is fitted on every labeled
  item, validation part included (``eval.json``'s ``refit``; checked against the auto
  cell's test scores). Nothing is pickled; the export contains the training inputs;
* the ensemble (``kind: ensemble``): ``deep/`` and ``baseline/`` exports and the weight;
  chosen by cross-validation, both members fitted again on every labeled item.

``ssl-domains evaluate`` and ``predict`` use whichever was chosen
(:func:`~ssl_domains.engine.exports.load_model`). The export's model card is written with
it.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ssl_domains.autoselect.arms import STANDARD_ARMS, Arm, Size, cell_config, cell_name
from ssl_domains.autoselect.baseline import stack_inputs
from ssl_domains.autoselect.derived import labeled_set
from ssl_domains.config import InitConfig, RunConfig, dump_config
from ssl_domains.contracts import stats_of
from ssl_domains.engine import finetune as finetuning
from ssl_domains.engine.assess import (
    EVAL_FILE,
    Assessment,
    read_assessment,
    read_predictions,
    write_assessment,
    write_predictions,
)
from ssl_domains.engine.build import build_backbone
from ssl_domains.engine.exports import SelectedModel, export_config, save_baseline_export
from ssl_domains.engine.model_card import model_card
from ssl_domains.engine.run_dir import environment_info
from ssl_domains.engine.segmentation import is_dense
from ssl_domains.errors import ConfigError, SSLDomainsError
from ssl_domains.files import atomic_write_text, write_json
from ssl_domains.layout.export import (
    ExportFolder,
    find_export,
    read_export_config,
    write_card,
    write_export,
)
from ssl_domains.layout.names import BACKBONE_FILE, EXPORT_DIR, MEMBERS_DIR, SEGMENTATION_DIR
from ssl_domains.layout.run import RunFolder
from ssl_domains.layout.sweep import SweepFolder
from ssl_domains.registry import Registry

__all__ = ["select_finetune", "CandidateRunner"]

log = logging.getLogger(__name__)


class CandidateRunner(Protocol):
    """Trains the candidates of ``select: auto`` and its ``auto`` arm (the choice,
    :func:`~ssl_domains.autoselect.crossval.run_derived`) as a sweep of one labeled-set size and
    one seed into a sweep folder: ``cells/<arm>_<size>_<seed>``
    (:func:`~ssl_domains.autoselect.arms.cell_name`), ``cv/``, and the sweep's tables. The
    sweep implements it (:class:`ssl_domains.sweep.run.SweepCandidates`: one cell after
    another, or side by side with ``--jobs``)."""

    def train(self, cfg: RunConfig, out: Path, *, size: Size, seed: int, arms: Sequence[str],
              init: InitConfig | None, sources: dict[str, Any], registry: Registry,
              echo: Callable[[str], None]) -> None:
        """Train ``arms`` of ``cfg`` (a ``select: single`` config) on ``size`` with ``seed``
        into ``out`` from ``init``; progress lines go to ``echo``.

        Raises:
            ConfigError: A wrong config.
            SSLDomainsError: Candidates failed (the finished ones are still chosen among).
        """


# ---------------------------------------------------------------- select: auto


def _pretrained(cfg: RunConfig, run: Path, init: InitConfig | None) -> InitConfig | None:
    """The pre-trained weights of the ``ssl`` candidates, as :func:`finetune` resolves them;
    the run's own pre-training export is copied to ``candidates/init`` first (the chosen
    model's export replaces it)."""
    if init is not None or cfg.init is not None:
        return init or cfg.init
    keep = RunFolder(run).candidates / "init"
    if (keep / BACKBONE_FILE).is_file():
        return InitConfig(path=str(keep))
    export = ExportFolder(RunFolder(run).export)
    if cfg.pretrain is not None and export.backbone.is_file():
        stage = read_export_config(export.path).stage if export.exists() else None
        if stage == "pretrain":
            keep.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(export.path, keep, dirs_exist_ok=True)
            return InitConfig(path=str(keep))
    return None


def select_finetune(cfg: RunConfig, run_path: Path, *, registry: Registry,
                    candidates: CandidateRunner, init: InitConfig | None = None,
                    sources: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train the candidates of ``select: auto`` through ``candidates``, choose on validation
    data only, and write the chosen model's eval.json, predictions and export into
    ``run_path`` (see the module docstring). Returns the ``eval.json`` content (with
    ``selection`` and ``candidates``). The runner may train the candidates and the
    cross-validation folds side by side; the numbers are those of one after another.

    Raises:
        ConfigError: No ``finetune`` section, or several processes (torchrun).
        SSLDomainsError: The choice could not be made (e.g. every candidate failed).
    """
    if cfg.finetune is None:
        raise ConfigError(f"{cfg.name}: the config has no 'finetune' section")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("finetune.select: auto trains its candidates one after another in one "
                          "process; run it without torchrun (or use select: single)")
    fcfg = cfg.finetune
    run = Path(run_path)
    run.mkdir(parents=True, exist_ok=True)
    pre = None if fcfg.from_scratch else _pretrained(cfg, run, init)
    arms = ["ssl", "scratch", "linear_probe", "baseline", "ensemble", "auto"] if pre is not None \
        else ["scratch", "baseline", "auto"]
    dense = is_dense(registry, fcfg.task.name)
    if dense:  # segmentation: no ensemble of probability maps
        arms = [a for a in arms if a != "ensemble"]
    if pre is None and not fcfg.from_scratch:
        log.warning("select: auto: no pre-trained weights (no --init, no init, no pre-training "
                    "export in %s): the candidates are scratch and the classical baselines", run)
    size = Size(fraction=fcfg.label_fraction) if fcfg.label_fraction is not None else \
        Size(count=fcfg.label_count) if fcfg.label_count is not None else Size(fraction=1.0)
    single = cfg.model_copy(update={"finetune": fcfg.model_copy(update={"select": "single"})})
    sources = sources or finetuning.build_finetune_sources(fcfg, registry)
    out = RunFolder(run).candidates
    log.info("select: auto: training %s into %s", ", ".join(arms[:-1]), out)
    try:
        candidates.train(single, out, size=size, seed=cfg.seed, arms=arms, init=pre,
                         sources=sources, registry=registry, echo=log.info)
    except SSLDomainsError as err:
        if isinstance(err, ConfigError):
            raise
        log.warning("select: auto: %s", err)  # a failed baseline leaves the others to choose

    def cell(arm: str) -> Path:
        return SweepFolder(out).cell(cell_name(Arm(arm), size, cfg.seed))

    auto_cell = cell("auto")
    if not (auto_cell / EVAL_FILE).is_file():
        raise SSLDomainsError(f"select: auto: no choice was made (see {out}); every candidate "
                              "must train for the choice to be made")
    assessment = read_assessment(auto_cell)
    choice = assessment.selection
    if choice is None:
        raise SSLDomainsError(f"{auto_cell / EVAL_FILE}: the auto cell holds no selection")
    chosen = choice.chosen
    if dense:
        return _ship_dense(cfg, run, auto_cell, assessment, {n: cell(n) for n in choice.scores})
    scored: dict[str, dict[str, float | None]] = {}
    for name, selection_auroc in choice.scores.items():
        ev = read_assessment(cell(name)) if (cell(name) / EVAL_FILE).is_file() else None
        scored[name] = {
            "selection_auroc": selection_auroc,
            "val_auroc": ev.metrics("val").get("auroc") if ev is not None else None,
            "test_auroc": ev.metrics("test").get("auroc") if ev is not None else None}
    assessment = assessment.updated(
        candidates=scored,
        candidates_note=("test_auroc of every candidate is reported for honesty; the choice "
                         "used validation data only"))
    record = assessment.to_json()["selection"]  # as eval.json holds it

    def baseline_export(arm: str, folder: Path, every_label: bool = False,
                        refitted: Path = auto_cell) -> None:
        """The baseline of ``arm``'s cell, refitted on load from its training items, or with
        ``every_label`` from the training and validation items (as auto's cell refitted it
        into ``refitted``)."""
        ref = read_assessment(cell(arm)).baseline
        if ref is None:
            raise SSLDomainsError(f"{cell(arm) / EVAL_FILE}: names no baseline")
        arm_cfg = cell_config(single, Arm(arm, ref), size, cfg.seed, pre)
        assert arm_cfg.finetune is not None
        data = finetuning.prepare_finetune_data(arm_cfg, arm_cfg.finetune, sources)
        backbone: Any = build_backbone(registry, cfg.backbone)
        key = str(backbone.input_spec.modality)
        fitted_on = labeled_set(data) \
            if every_label else data["train"]
        x, y, _ = stack_inputs(fitted_on, key)
        save_baseline_export(folder, meta, ref=ref, key=key, x=x, y=y)
        if every_label:
            _check_reproduces(folder, data["test"], refitted, "test", registry)
        else:
            _check_reproduces(folder, data["val"], cell(arm), "val", registry)

    tmp = run / ".export.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    meta = export_config(cfg, build_backbone(registry, cfg.backbone), "finetune",
                         threshold=assessment.threshold, threshold_rule=fcfg.threshold_rule,
                         data_stats=stats_of(sources["pool"]), selection=record)
    if chosen in STANDARD_ARMS:  # refitted on every label: auto's cell holds that network
        shutil.copytree(RunFolder(auto_cell if assessment.refit is not None else cell(chosen)).export,
                        tmp)
        deep_cfg = read_export_config(tmp).model_copy(update={"selection": record})
        write_export(tmp, deep_cfg, card=None)
    elif chosen.startswith("baseline"):
        baseline_export(chosen, tmp, every_label=assessment.refit is not None)
    else:
        ens = choice.ensemble or assessment.ensemble
        if ens is None:
            raise SSLDomainsError(f"{auto_cell / EVAL_FILE}: chose the ensemble but holds no "
                                  "ensemble record")
        deep_arm, base_arm = ens.members
        members = auto_cell / MEMBERS_DIR  # refitted on every label, when chosen by CV
        refit = assessment.refit is not None
        shutil.copytree(RunFolder(members / Arm(deep_arm).folder if refit else cell(deep_arm)).export,
                        ExportFolder(tmp).deep.path)
        baseline_export(base_arm, ExportFolder(tmp).baseline.path, every_label=refit,
                        refitted=members / Arm(base_arm).folder)
        write_export(tmp, meta.model_copy(update={
            "kind": "ensemble", "weight": ens.weight, "weight_of": deep_arm,
            "members": {"deep": deep_arm, "baseline": base_arm}}), card=None)
    write_card(ExportFolder(tmp), model_card(cfg.model_dump(mode="json"), assessment))
    target = RunFolder(run)
    shutil.rmtree(target.export, ignore_errors=True)
    tmp.replace(target.export)
    for split in ("val", "test"):
        if RunFolder(auto_cell).prediction_file(split).is_file():
            write_predictions(target.prediction_file(split),
                              read_predictions(RunFolder(auto_cell).prediction_file(split)),
                              assessment.threshold)
    atomic_write_text(target.config, dump_config(cfg))
    write_json(target.environment, environment_info())
    write_assessment(run, assessment)
    log.info("select: auto chose %s (selection AUROC %.3f, runner-up %s)", chosen,
             choice.score if choice.score is not None else math.nan, choice.runner_up)
    return assessment.to_json()


def _ship_dense(cfg: RunConfig, run: Path, auto_cell: Path, assessment: Assessment,
                cells: dict[str, Path]) -> dict[str, Any]:
    """``select: auto`` of a segmentation task: the auto cell's choice (best validation Dice)
    becomes the run: its ``eval.json`` (every candidate's validation and test Dice in
    ``candidates_note``), ``segmentation/`` and export (a chosen classical segmenter has none:
    it is refitted from its training cases, said in the note)."""
    notes = []
    for name, folder in cells.items():
        ev = read_assessment(folder) if (folder / EVAL_FILE).is_file() else None
        if ev is not None:
            val, test = ev.metrics("val").get("dice"), ev.metrics("test").get("dice")
            notes.append(f"{name}: validation Dice {'n/a' if val is None else f'{val:.3f}'}, "
                         f"test Dice {'n/a' if test is None else f'{test:.3f}'}")
    chosen = assessment.selection.chosen if assessment.selection is not None else "?"
    note = ("test Dice of every candidate is reported for honesty; the choice used validation "
            "cases only. " + "; ".join(notes))
    if not RunFolder(auto_cell).export.is_dir():
        note += (f". The chosen {chosen} is a classical segmenter: it has no export yet (refit it "
                 f"from its training cases, {cells.get(chosen, auto_cell)})")
    for part in (SEGMENTATION_DIR, EXPORT_DIR):
        shutil.rmtree(run / part, ignore_errors=True)
        if (auto_cell / part).is_dir():
            shutil.copytree(auto_cell / part, run / part)
    assessment = assessment.updated(candidates_note=note)
    atomic_write_text(RunFolder(run).config, dump_config(cfg))
    write_json(RunFolder(run).environment, environment_info())
    write_assessment(run, assessment)
    shipped = find_export(run)
    if shipped is not None and shipped.path != Path(run):  # the run's card, not the cell's
        write_card(shipped, model_card(cfg.model_dump(mode="json"), assessment))
    log.info("select: auto chose %s (validation Dice %s)", chosen,
             assessment.selection.score if assessment.selection is not None else None)
    return assessment.to_json()


def _check_reproduces(folder: Path, ds: Any, cell: Path, split: str, registry: Registry) -> None:
    """A baseline export must reproduce the ``split`` scores ``cell`` holds: its candidate
    cell's validation scores; refitted on every label, the auto cell's test scores (there are
    no held-out validation scores of that fit to compare; without a test set there is nothing
    to compare).

    Raises:
        SSLDomainsError: It does not (a baseline that is not deterministic).
    """
    path = RunFolder(cell).prediction_file(split)
    if split == "test" and (ds is None or not path.is_file()):
        return
    model = SelectedModel(folder, read_export_config(folder), registry)
    want = read_predictions(path).probs
    got = model.baseline_probs(ds).probs
    if got.shape != want.shape or not np.allclose(got, want, rtol=0, atol=1e-6):
        scores = "test" if split == "test" else "validation"
        raise SSLDomainsError(f"{folder}: the refitted baseline does not reproduce the {scores} "
                              f"scores of {cell.name} (not deterministic?); give it a fixed "
                              "random_state")
