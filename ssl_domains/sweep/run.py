"""Label-efficiency sweeps: every arm on the same labeled subsets, over sizes and seeds.

For each labeled-set size (a fraction of the labeled pool or an absolute count) and each seed,
the arms below are trained on the SAME items (same seed and budget, so
:func:`~ssl_domains.engine.finetune.prepare_finetune_data` selects identical training and
validation items; the data sources are built once and shared):

* ``ssl``: fine-tuned from the pre-trained backbone with the config's ``mode``;
* ``scratch``: the same recipe from random weights (``from_scratch: true``; the backbone
  learns at the full learning rate: ``backbone_lr_scale`` is for pre-trained weights);
* ``linear_probe``: the pre-trained backbone frozen, only the head trained (``mode: linear``);
* ``baseline:<name>``: a classical baseline (``fit``/``predict_proba`` on the stacked inputs),
  one per ``baselines`` entry of the config, by default every baseline the backbone's plugin
  registers for its modality (the host's ``logistic`` when it registers none);
* ``ensemble``: the ``ssl`` cell and the strongest baseline cell (by validation AUROC),
  probabilities averaged with a weight chosen on validation data
  (:mod:`ssl_domains.autoselect.derived`);
* ``auto``: the best of the other arms, chosen on validation data only (k-fold
  cross-validation over the labeled subset when the validation set is small); its test
  numbers are the chosen cell's, or, chosen by cross-validation, those of the chosen arm
  fitted again on every labeled item (:mod:`ssl_domains.autoselect.refit`).

``ensemble`` and ``auto`` are derived from the other cells of the same size and seed, so they
run after them whatever their place in ``--arms``.

Thresholds are chosen on validation data only; test data is only scored. The sweep folder::

    <out>/config.yaml, environment.json, sweep.json   what was run
    <out>/pretrain/                                  the pre-training run (when it pre-trains)
    <out>/cells/<arm>_<size>_<seed>/                 one run folder per cell (eval.json when done)
    <out>/results.csv                                tidy: arm, n_labels, fraction, seed, metric, value
    <out>/summary.csv, summary.json                  mean, std, t-interval; ssl-scratch paired by seed;
                                                     collapsed: share of seeds that collapsed
    <out>/stability.csv                              per cell: validation AUROC, constant output,
                                                     collapsed (AUROC <= 0.55 or constant)
    <out>/locks/<cell>/.lock                         while a process runs the cell
    <out>/logs/<job>.log, <job>.json                 a job's lines and outcome (``jobs``)
    <out>/cluster.json, cluster/                     what a cluster submission submitted

``<size>`` is the fraction or the count (:func:`~ssl_domains.autoselect.arms.cell_name`). A cell is
finished when its ``eval.json`` exists: a restarted sweep skips finished cells and redoes
unfinished ones from scratch. A cell runs under its lock, so two processes never run it at
once; ``jobs`` (:mod:`ssl_domains.sweep.jobs`, :mod:`ssl_domains.sweep.cluster`) runs the
cells side by side, with the same numbers. The report (:mod:`ssl_domains.report`) is built from the folder by
the caller (``ssl-domains sweep`` does, after the sweep).

The pieces: :mod:`~ssl_domains.sweep.grid` (sizes, seeds and arms from the command line),
:mod:`~ssl_domains.sweep.results` (the tables), :mod:`~ssl_domains.sweep.jobs` and
:mod:`~ssl_domains.sweep.cluster` (cells as jobs); what each cell runs is
:mod:`ssl_domains.autoselect`'s: :mod:`~ssl_domains.autoselect.arms` (arms, cell names and
configs), :mod:`~ssl_domains.autoselect.baseline` (the baseline arm),
:mod:`~ssl_domains.autoselect.crossval` (the derived arms of a size and seed:
cross-validation, refit), :mod:`~ssl_domains.autoselect.derived` (the ensemble and auto
cells), :mod:`~ssl_domains.autoselect.choice` (the choice).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from ssl_domains.autoselect import derived
from ssl_domains.autoselect.arms import Arm, Size, cell_config, cell_name
from ssl_domains.autoselect.baseline import Arrays, run_baseline
from ssl_domains.autoselect.choice import (
    CV_FOLDS,
    PREFERENCE,
    TOLERANCE,
)
from ssl_domains.autoselect.crossval import preference, run_derived
from ssl_domains.config import InitConfig, RunConfig
from ssl_domains.data.datasets import labels_of
from ssl_domains.engine import finetune as finetuning
from ssl_domains.engine import pretrain as pretraining
from ssl_domains.engine.assess import (
    EVAL_FILE,
    Assessment,
    read_assessment,
)
from ssl_domains.engine.checkpoints import latest_checkpoint
from ssl_domains.engine.run_dir import RunFolderBusy, RunLock
from ssl_domains.engine.segmentation import is_dense
from ssl_domains.errors import ConfigError, RegistryError, SSLDomainsError
from ssl_domains.layout.names import BACKBONE_FILE
from ssl_domains.layout.numbers import fmt, headline_metric
from ssl_domains.layout.run import RunFolder
from ssl_domains.layout.sweep import SweepFolder
from ssl_domains.plugins import get_host
from ssl_domains.registry import Registry
from ssl_domains.sweep.grid import (
    DEFAULT_ARMS,
    check_same_sweep,
    distinct_sizes,
    resolve_arms,
    write_sweep_record,
)
from ssl_domains.sweep.results import summary_table, write_results

__all__ = ["SweepResult", "SweepFailed", "Sweep", "Outcome", "CellRunner", "SweepCandidates", "run_sweep",
           "run_cell", "locked", "finished_cell", "record_outcome", "finish_sweep", "progress_line",
           "pretrain_once", "busy_members", "BUSY"]


@dataclass
class SweepResult:
    """What a sweep produced.

    Attributes:
        out: The sweep folder.
        results: The tidy table written to ``results.csv``.
        summary: The table written to ``summary.csv``.
        computed: Cells trained in this call.
        reused: Cells found finished and not recomputed.
        skipped: Baselines skipped (name -> reason, e.g. a missing optional dependency).
        failed: Cells that failed (name -> reason); they stay unfinished.
        submitted: The jobs submitted to a cluster, one line each (the sweep goes on there).
    """

    out: Path
    results: pd.DataFrame
    summary: pd.DataFrame
    computed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    submitted: list[str] = field(default_factory=list)


class SweepFailed(SSLDomainsError):
    """Some cells failed and stay unfinished (the finished ones' tables are written);
    ``result`` holds what the sweep produced, so that a caller can still build the report."""

    def __init__(self, message: str, result: SweepResult) -> None:
        super().__init__(message)
        self.result = result


# ---------------------------------------------------------------- pre-training


def _pretrained(cfg: RunConfig, out: Path, init: InitConfig | None,
                echo: Callable[[str], None], registry: Registry) -> InitConfig | None:
    """The pre-trained weights of the ``ssl`` and ``linear_probe`` arms.

    ``init`` (``--init``) is used as is. Otherwise a config with a ``pretrain`` section is
    pre-trained once into ``<out>/pretrain`` (continuing from ``cfg.init`` when set; skipped when
    its export exists, resumed when it has a checkpoint but no export). Without ``pretrain``,
    ``cfg.init`` is the pre-trained backbone.
    """
    if init is not None or cfg.pretrain is None:
        return _pretrained_export(cfg, out, init)
    pdir = out / "pretrain"
    export = RunFolder(pdir).export
    if (export / BACKBONE_FILE).is_file():
        echo(f"pre-training: reusing {export}")
    else:
        resume = latest_checkpoint(RunFolder(pdir).checkpoints / "pretrain") is not None
        echo(f"pre-training into {pdir}" + (" (resuming from its checkpoint)" if resume else ""))
        start = time.perf_counter()
        summary = pretraining.pretrain(cfg, pdir, registry=registry, resume=resume)
        echo(f"pre-trained {summary['steps']} steps, best val loss "
             f"{fmt(summary['best_val_loss'])}, {time.perf_counter() - start:.1f} s")
    return InitConfig(path=str(export))


def _pretrained_export(cfg: RunConfig, out: Path, init: InitConfig | None) -> InitConfig | None:
    """The weights :func:`_pretrained` gives, without pre-training: what the cells of a sweep
    whose pre-training runs as a job of its own start from."""
    if init is not None:
        return init
    if cfg.pretrain is None:
        return cfg.init
    return InitConfig(path=str(RunFolder(out / "pretrain").export))


def pretrain_once(cfg: RunConfig, out: Path, init: InitConfig | None,
                  echo: Callable[[str], None], registry: Registry) -> InitConfig | None:
    """The sweep's pre-training (once, into ``<out>/pretrain``) and its artifacts shared with
    the sweep folder: the job every cell of a cluster sweep waits for."""
    pre = _pretrained(cfg, out, init, echo, registry)
    _share_pretrain_artifacts(out)
    return pre


def _no_pretraining(out: Path) -> InitConfig | None:
    """None: a sweep without pre-trained arms (it still shows the loss curves of a folder
    that pre-trained before)."""
    _share_pretrain_artifacts(out)
    return None


def _share_pretrain_artifacts(out: Path) -> None:
    """Copy the pre-training loss log and pretext pictures to the sweep folder, where the report
    looks for this folder's own loss curves and pictures."""
    pdir = out / "pretrain"
    if RunFolder(pdir).metrics.is_file():
        shutil.copyfile(RunFolder(pdir).metrics, RunFolder(out).metrics)
    pictures = sorted((pdir / "figures").glob("*.png")) if (pdir / "figures").is_dir() else []
    if pictures:
        (out / "figures").mkdir(exist_ok=True)
        for png in pictures:
            shutil.copyfile(png, out / "figures" / png.name)


# ---------------------------------------------------------------- derived arms


def _stale_choice(done: Assessment, order: tuple[str, ...]) -> bool:
    """A finished ``auto`` cell that chose under another rule: another order of preference
    than ``order`` (not part of the sweep's config check: it trains nothing), another
    tolerance than :data:`~ssl_domains.autoselect.choice.TOLERANCE` (a record without one chose
    within one standard error), or an arm chosen by cross-validation and shipped as its cell,
    before it was fitted again on every label."""
    record = done.selection
    if record is not None and record.metric == "dice":  # a segmentation choice: no tolerance
        return tuple(record.preference or PREFERENCE) != order
    return record is not None and (
        tuple(record.preference or PREFERENCE) != order
        or (record.tolerance or 1.0) != TOLERANCE
        or (done.refit is None and derived.chose_by_cross_validation(record)))


# ---------------------------------------------------------------- one cell


#: How a cell run by another process is filed among a sweep's unfinished cells.
BUSY = "running in another process"


@dataclass
class Sweep:
    """What every cell of a sweep shares: its config, folder, arms, pre-trained weights, data
    and baselines' registry (built once per process)."""

    cfg: RunConfig
    out: Path
    arms: list[Arm]
    pre: InitConfig | None
    sources: dict[str, Any]
    registry: Registry
    alpha: float = 0.05
    cv_folds: int = CV_FOLDS
    echo: Callable[[str], None] = print
    cache: dict[int, Arrays] = field(default_factory=dict)

    @property
    def order(self) -> tuple[str, ...]:
        return preference(self.cfg, self.registry)[0]

    @property
    def dense(self) -> bool:
        assert self.cfg.finetune is not None
        return is_dense(self.registry, self.cfg.finetune.task.name)


@dataclass
class Outcome:
    """What became of one cell (or job): ``status`` is ``computed``, ``reused``, ``skipped``
    (a baseline whose optional dependency is missing: ``message`` says which), ``failed``
    (``message``: the error; the cell stays unfinished), ``busy`` (another process holds its
    lock) or ``error`` (an error that stops the sweep: ``message``); ``value`` the test metric
    of the progress line, ``chosen`` an auto cell's choice, ``notes`` what it said on the way."""

    name: str
    status: str
    value: float | None = None
    chosen: str | None = None
    seconds: float = 0.0
    message: str = ""
    notes: list[str] = field(default_factory=list)


def progress_line(where: str, outcome: Outcome, dense: bool) -> str:
    """The progress line of a cell (``where``: its arm, size and seed)."""
    shown = "Dice" if dense else "AUROC"
    if outcome.status == "reused":
        return f"{where} test {shown} {fmt(outcome.value)}  (finished earlier)"
    if outcome.status in ("failed", "error"):
        return f"{where} FAILED: {outcome.message}"
    if outcome.status == "busy":
        return f"{where} not started: {outcome.message}"
    if outcome.status == "skipped":
        return f"{where} skipped ({outcome.message})"
    return (f"{where} test {shown} {fmt(outcome.value)}  {outcome.seconds:6.1f} s"
            + (f"  (chose {outcome.chosen})" if outcome.chosen else ""))


def finished_cell(sw: Sweep, arm: Arm, size: Size, seed: int) -> Outcome | None:
    """The ``reused`` outcome of a finished cell, None when it is to be (re)computed: not
    finished, or an ``auto`` cell that chose under another rule (said in ``notes``)."""
    name = cell_name(arm, size, seed)
    cell = SweepFolder(sw.out).cell(name)
    finished = read_assessment(cell) if (cell / EVAL_FILE).is_file() else None
    if finished is not None and arm.name == "auto" and finished.selection is None:
        return None  # interrupted between its refit's eval.json and the choice's record
    if finished is not None and arm.name == "auto" and _stale_choice(finished, sw.order):
        return None
    if finished is None:
        return None
    key = "dice" if sw.dense else "auroc"
    return Outcome(name, "reused", value=finished.metrics("test").get(key))


def run_cell(sw: Sweep, arm: Arm, size: Size, seed: int,
             skipped: Sequence[str] = ()) -> Outcome:
    """Run (or reuse) one cell under its lock; ``skipped``: baseline arms skipped for the whole
    sweep (left out of the derived arms' candidates).

    Raises:
        ConfigError, RegistryError: A wrong config or component name (stops the sweep).
        ImportError: A network arm's missing dependency.
        ValueError, RuntimeError, SSLDomainsError: A network arm's own error.
    """
    name = cell_name(arm, size, seed)
    cell = SweepFolder(sw.out).cell(name)
    return locked(sw.out, name, lambda: _run_locked(sw, arm, size, seed, cell, skipped))


def locked(out: Path, name: str, work: Callable[[], Outcome]) -> Outcome:
    """``work()`` under the lock of job ``name`` of sweep folder ``out``
    (``<out>/locks/<name>``); ``busy`` when another process holds it."""
    try:
        lock = RunLock(SweepFolder(out).locks / name).acquire()
    except RunFolderBusy as err:
        return Outcome(name, "busy", message=str(err))
    try:
        return work()
    finally:
        lock.release()


def _run_locked(sw: Sweep, arm: Arm, size: Size, seed: int, cell: Path,
                skipped: Sequence[str]) -> Outcome:
    name = cell.name
    reused = finished_cell(sw, arm, size, seed)
    if reused is not None:
        return reused
    notes: list[str] = []
    if (cell / EVAL_FILE).is_file() and arm.name == "auto":
        done = read_assessment(cell)
        if done.selection is not None:
            notes.append("chose under another rule (order of preference, tolerance, or "
                         "shipped without refitting on every label): choosing again")
            sw.echo(f"{arm.name} {size.label} seed {seed} {notes[-1]}")
    if cell.exists():
        shutil.rmtree(cell)  # an interrupted cell is redone from the start
    cfg, pre, registry = sw.cfg, sw.pre, sw.registry
    start = time.perf_counter()
    try:
        if arm.derived:
            summary = run_derived(cfg, arm, size, seed, sw.out,
                                  [a for a in sw.arms if a.name not in skipped],
                                  sw.sources, pre, registry, sw.alpha, sw.echo, sw.cv_folds)
        elif arm.baseline is not None:
            summary = run_baseline(cell_config(cfg, arm, size, seed, pre), arm.baseline, cell,
                                   sw.sources, registry, sw.cache)
        else:
            summary = finetuning.finetune(cell_config(cfg, arm, size, seed, pre), cell,
                                          registry=registry,
                                          init=None if arm.name == "scratch" else pre,
                                          sources=sw.sources)
    except ImportError as err:
        if arm.baseline is None:
            raise
        shutil.rmtree(cell, ignore_errors=True)
        return Outcome(name, "skipped", message=str(err), notes=notes)
    except (ValueError, RuntimeError, SSLDomainsError) as err:
        if (arm.baseline is None and not arm.derived) or isinstance(err, ConfigError
                                                                    | RegistryError):
            raise
        return Outcome(name, "failed", message=f"{type(err).__name__}: {err}", notes=notes)
    key = "dice" if sw.dense else "auroc"
    return Outcome(name, "computed", value=(summary.get("test") or {}).get(key),
                   chosen=(summary.get("selection") or {}).get("chosen"),
                   seconds=time.perf_counter() - start, notes=notes)


def record_outcome(result: SweepResult, arm: Arm, outcome: Outcome) -> None:
    """File ``outcome`` in ``result`` (computed, reused, skipped baselines, failed cells)."""
    if outcome.status == "computed":
        result.computed.append(outcome.name)
    elif outcome.status == "reused":
        result.reused.append(outcome.name)
    elif outcome.status == "skipped":
        result.skipped.setdefault(arm.name, outcome.message)
    elif outcome.status == "busy":
        result.failed[outcome.name] = f"{BUSY} ({outcome.message})"
    elif outcome.status in ("failed", "error"):
        result.failed[outcome.name] = outcome.message


Cell = tuple[Arm, Size, int]


def busy_members(result: SweepResult, arm: Arm, size: Size, seed: int) -> list[str]:
    """The cells of ``(size, seed)`` that another process is running, which the derived
    ``arm`` waits for (none for a plain arm)."""
    if not arm.derived:
        return []
    return [n for n, why in result.failed.items()
            if why.startswith(BUSY) and n.endswith(f"_{size.tag}_{seed}")]


class CellRunner(Protocol):
    """Runs a sweep's cells as jobs (:mod:`ssl_domains.sweep.jobs`): on local processes, or
    through a cluster engine (:mod:`ssl_domains.sweep.cluster`)."""

    #: The jobs outlive this process (a cluster): :meth:`submit` instead of pre-training here.
    detached: bool

    def prepare(self) -> None:
        """Get ready (start workers) while this process pre-trains."""

    def run(self, sw: Sweep, cells: Sequence[Cell], result: SweepResult) -> None:
        """Run every unfinished cell of ``cells`` (pre-training done), filing each outcome in
        ``result`` and showing progress through ``sw.echo``."""

    def submit(self, sw: Sweep, cells: Sequence[Cell], pretrain: bool,
               result: SweepResult) -> list[str]:
        """Submit the pre-training (when ``pretrain``), the cells and the tables as jobs that
        run without this process; returns what was submitted, one line each, or nothing when
        it waited for every job (``result`` filled: the tables are written here)."""


@dataclass
class SweepCandidates:
    """The candidates of ``select: auto`` as a sweep of one size and one seed
    (:class:`~ssl_domains.autoselect.run.CandidateRunner`): the cells one after another in this
    process, or ``jobs`` side by side (``--jobs``); the same numbers either way."""

    jobs: CellRunner | None = None

    def train(self, cfg: RunConfig, out: Path, *, size: Size, seed: int, arms: Sequence[str],
              init: InitConfig | None, sources: dict[str, Any], registry: Registry,
              echo: Callable[[str], None]) -> None:
        """:func:`run_sweep` of ``arms`` on ``size`` and ``seed``, without test data to require.

        Raises:
            ConfigError: A wrong config.
            SweepFailed: Cells failed (the finished ones are kept).
        """
        run_sweep(cfg, out, sizes=[size], seeds=[seed], arms=arms, init=init, echo=echo,
                  sources=sources, require_test=False, registry=registry, jobs=self.jobs)


# ---------------------------------------------------------------- the sweep


def run_sweep(
    cfg: RunConfig,
    out: Path,
    *,
    sizes: Sequence[Size],
    seeds: Sequence[int],
    arms: Sequence[str] = DEFAULT_ARMS,
    init: InitConfig | None = None,
    alpha: float = 0.05,
    echo: Callable[[str], None] = print,
    sources: dict[str, Any] | None = None,
    require_test: bool = True,
    cv_folds: int = CV_FOLDS,
    registry: Registry | None = None,
    jobs: CellRunner | None = None,
) -> SweepResult:
    """Run (or finish) a label-efficiency sweep into ``out``; see the module docstring.

    Args:
        cfg: Run config with a ``finetune`` section with test data (and usually ``pretrain``).
        out: The sweep folder.
        sizes: Labeled-set sizes.
        seeds: Seeds; each fixes the labeled subset, split and initialisation of every arm.
        arms: Arm names (``ssl``, ``scratch``, ``linear_probe``, ``baseline``,
            ``baseline:<name>``, ``ensemble``, ``auto``).
        init: Pre-trained weights for the ``ssl``/``linear_probe`` arms (skips pre-training).
        alpha: 1 - confidence level of the intervals.
        echo: Where progress lines go.
        sources: The fine-tuning datasets (:func:`~ssl_domains.engine.finetune.build_finetune_sources`)
            when already built.
        require_test: Refuse a config without test data (``finetune.select: auto`` runs its
            candidates as a sweep and has no test data to require).
        cv_folds: Folds of the ``auto`` arm's cross-validation when a validation set is small
            (every other arm is retrained per fold: the cost of those cells times this);
            below 2, ``auto`` always chooses on the validation set.
        registry: Where the baselines come from (the host's by default; jobs in other
            processes use the host's).
        jobs: Run the cells as jobs (:mod:`ssl_domains.sweep.jobs`): side by side on this
            machine, or on a cluster; each job builds the data from the config (``sources``
            is used by this process only). None runs them one after another here.

    Returns:
        A :class:`SweepResult`.

    Raises:
        ConfigError: No ``finetune`` section or test data, pre-trained arms without anything to
            pre-train from, a size the data cannot give, or a folder holding another sweep.
        SweepFailed: When cells failed (after the results are written).
    """
    if cfg.finetune is None:
        raise ConfigError(f"{cfg.name}: a sweep needs a 'finetune' section")
    if cfg.finetune.data.test is None and require_test:
        raise ConfigError(f"{cfg.name}: a sweep reports test metrics; give finetune.data.test "
                          "(a held-out labeled loader, never used to choose anything)")
    if not sizes or not seeds:
        raise ConfigError("a sweep needs at least one size and one seed")
    registry = registry if registry is not None else get_host().registry
    arm_list = resolve_arms(cfg, arms, registry)
    pretrained_arms = [a.name for a in arm_list if a.name in ("ssl", "linear_probe")]
    if pretrained_arms and init is None and cfg.init is None and cfg.pretrain is None:
        raise ConfigError(f"arms {', '.join(pretrained_arms)} need pre-trained weights: the config "
                          "has no 'pretrain' section and no 'init'; give --init PATH, or "
                          "--arms scratch,baseline")
    out = Path(out)
    check_same_sweep(out, cfg, init)

    sources = sources or finetuning.build_finetune_sources(cfg.finetune, registry)
    dense = is_dense(registry, cfg.finetune.task.name)
    # a dense task's budget counts cases (one "label" each), a classifier's labeled items
    pool_labels = [0] * len(sources["pool"].whole_cases()) if dense else labels_of(sources["pool"]) or []
    plan_sizes = distinct_sizes(sizes, pool_labels, echo)
    write_sweep_record(out, cfg, init, plan_sizes, seeds, arm_list)

    cells = [(arm, size, seed) for size in plan_sizes for seed in seeds for arm in arm_list]
    result = SweepResult(out, pd.DataFrame(), pd.DataFrame())
    echo(f"sweep: {len(plan_sizes)} size(s) x {len(seeds)} seed(s) x {len(arm_list)} arm(s) "
         f"= {len(cells)} cells in {SweepFolder(out).cells}")
    sw = Sweep(cfg, out, arm_list, None, sources, registry, alpha, cv_folds, echo)
    if jobs is not None and jobs.detached:
        sw.pre = _pretrained_export(cfg, out, init) if pretrained_arms else None
        result.submitted = jobs.submit(sw, cells, bool(pretrained_arms) and init is None
                                       and cfg.pretrain is not None, result)
        if result.submitted:
            return result
    elif jobs is not None:
        jobs.prepare()
        sw.pre = pretrain_once(cfg, out, init, echo, registry) if pretrained_arms else _no_pretraining(out)
        jobs.run(sw, cells, result)
    else:
        sw.pre = pretrain_once(cfg, out, init, echo, registry) if pretrained_arms else _no_pretraining(out)
        width = max(len(a.name) for a in arm_list)
        for i, (arm, size, seed) in enumerate(cells, start=1):
            if arm.baseline is not None and arm.name in result.skipped:
                continue
            busy = busy_members(result, arm, size, seed)
            if busy:  # chosen without a cell another process runs, it would leave it out
                result.failed[cell_name(arm, size, seed)] = f"{BUSY}: waits for {', '.join(busy)}"
                echo(f"{cell_name(arm, size, seed)}: not started, waits for {', '.join(busy)}")
                continue
            where = (f"[{i:>{len(str(len(cells)))}}/{len(cells)}] {arm.name:<{width}} "
                     f"{size.label:<8} seed {seed:<3}")
            outcome = run_cell(sw, arm, size, seed, list(result.skipped))
            record_outcome(result, arm, outcome)
            echo(f"{arm.name}: skipped for the whole sweep ({outcome.message})"
                 if outcome.status == "skipped" else progress_line(where, outcome, dense))
    return finish_sweep(sw, cells, result)


def finish_sweep(sw: Sweep, cells: Sequence[Cell], result: SweepResult) -> SweepResult:
    """Write the tables of the finished cells, show the summary, and raise
    :class:`SweepFailed` when cells failed."""
    out, echo, arm_list = sw.out, sw.echo, sw.arms
    done = [c for c in cells if c[0].name not in result.skipped]
    result.results, result.summary = write_results(out, done, sw.alpha)
    metric = headline_metric(result.results["metric"])
    if metric is not None:
        echo(summary_table(result.summary, metric,
                           [a.name for a in arm_list if a.name not in result.skipped]))
    echo(f"results: {SweepFolder(out).results} ({len(result.computed)} cell(s) trained, "
         f"{len(result.reused)} reused)")
    if result.failed:
        first = next(iter(result.failed.items()))
        raise SweepFailed(f"{len(result.failed)} cell(s) failed and stay unfinished (first: "
                          f"{first[0]}: {first[1]}); results.csv holds the finished ones, "
                          "rerun the same command to retry them", result)
    return result
