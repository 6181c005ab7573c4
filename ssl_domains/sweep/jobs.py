"""A sweep's cells (and ``auto``'s cross-validation folds) as independent jobs.

A job is one :class:`Task` of a sweep folder: a cell, one fold of the ``auto`` arm's
cross-validation for one arm, the pre-training, or the tables. It rebuilds what it needs from
a :class:`SweepSpec` (plain data: the resolved config, the folder, the arms, the pre-trained
weights), so any process can run it: a worker of this machine (:class:`LocalJobs`, processes
forked warm from the standard library's fork server: :mod:`ssl_domains.sweep.workers`), or a
cluster job (:mod:`ssl_domains.sweep.cluster`). The jobs run in phases, each waiting for the
one before::

    pre-training (once per sweep, before any cell)
    -> the ssl, scratch, linear_probe and baseline cells, and beside them the
       cross-validation folds of the sizes and seeds whose auto arm cross-validates (one job
       per fold and arm; whether it does is known from the data), the longest jobs first
    -> the ensemble cells -> the auto cells (their refit on every label)

(A cluster submission runs the folds after the cells, checking that each is needed.)

Every number is the one the sequential sweep computes: a cell's config, seed, split and data
do not depend on the process that runs it (each job builds the data from the config), and the
folds' probabilities meet in ``<out>/cv/`` where the derived cells read them. Each job holds its
cell's lock (``<out>/locks/``), so a cell never runs twice at once, writes its lines to
``<out>/logs/<job>.log`` and its outcome to ``<out>/logs/<job>.json``; a killed sweep is
resumed by running it again (finished cells and folds are kept, unfinished ones redone).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import torch

from ssl_domains.autoselect.arms import Arm, Size, cell_name
from ssl_domains.autoselect.choice import small_validation
from ssl_domains.autoselect.crossval import cell_data, cv_folder, cv_items, run_fold_arm
from ssl_domains.autoselect.derived import fold_sources, fold_splits, labeled_set
from ssl_domains.config import ComponentRef, InitConfig, RunConfig, parse_config
from ssl_domains.contracts import labels_of
from ssl_domains.engine import finetune as finetuning
from ssl_domains.engine.assess import EVAL_FILE, read_predictions
from ssl_domains.engine.runtime import keep_threads
from ssl_domains.errors import ConfigError, DataError, SSLDomainsError
from ssl_domains.files import append_line, read_json_object, write_json
from ssl_domains.layout.run import RunFolder
from ssl_domains.layout.sweep import SweepFolder
from ssl_domains.plugins import get_host
from ssl_domains.sweep.run import (
    BUSY,
    Cell,
    Outcome,
    Sweep,
    SweepFailed,
    SweepResult,
    busy_members,
    finish_sweep,
    finished_cell,
    locked,
    pretrain_once,
    progress_line,
    record_outcome,
    run_cell,
)
from ssl_domains.sweep.workers import Ended, Workers

__all__ = ["SweepSpec", "Task", "run_task", "LocalJobs", "JobMap", "run_phases", "fold_tasks",
           "previous_failures", "visible_gpus"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepSpec:
    """What a job needs to rebuild its sweep in another process (plain, picklable data)."""

    out: str
    config: dict[str, Any]
    arms: tuple[tuple[str, dict[str, Any] | None], ...]
    pre: dict[str, Any] | None
    init: dict[str, Any] | None = None
    alpha: float = 0.05
    cv_folds: int = 5
    threads: int | None = None
    finish: Callable[[Path], Any] | None = None

    @classmethod
    def of(cls, sw: Sweep, init: InitConfig | None = None, threads: int | None = None,
           finish: Callable[[Path], Any] | None = None) -> SweepSpec:
        """The spec of ``sw`` (``threads``: each job's intra-op threads, None: as started;
        ``finish``: called on the sweep folder after its tables, e.g. the report)."""
        return cls(str(sw.out), sw.cfg.model_dump(mode="json"),
                   tuple((a.name, a.baseline.model_dump(mode="json") if a.baseline else None)
                         for a in sw.arms),
                   sw.pre.model_dump(mode="json") if sw.pre is not None else None,
                   init.model_dump(mode="json") if init is not None else None,
                   sw.alpha, sw.cv_folds, threads, finish)

    def arm(self, name: str) -> Arm:
        """The arm called ``name``."""
        for arm, ref in self.arms:
            if arm == name:
                return Arm(arm, ComponentRef(**ref) if ref is not None else None)
        raise ConfigError(f"sweep {self.out}: no arm {name!r}")


#: This process's sweeps (a worker runs many jobs of one sweep: the data is built once).
_SWEEPS: dict[str, Sweep] = {}


def _key(spec: SweepSpec) -> str:
    return repr((spec.out, spec.config, spec.arms, spec.pre, spec.alpha, spec.cv_folds))


def _sweep(spec: SweepSpec, echo: Callable[[str], None]) -> Sweep:
    key = _key(spec)
    sw = _SWEEPS.get(key)
    if sw is None:
        cfg: RunConfig = parse_config(spec.config, source=f"sweep {spec.out}")
        assert cfg.finetune is not None
        registry = get_host().registry  # a worker process: the host's, one per process
        sw = Sweep(cfg, Path(spec.out), [spec.arm(a) for a, _ in spec.arms],
                   InitConfig(**spec.pre) if spec.pre is not None else None,
                   finetuning.build_finetune_sources(cfg.finetune, registry), registry,
                   spec.alpha, spec.cv_folds)
        _SWEEPS.clear()  # one sweep at a time per process
        _SWEEPS[key] = sw
    sw.echo = echo
    return sw


@dataclass(frozen=True)
class Task:
    """One job: ``kind`` is ``pretrain``, ``cell``, ``fold`` (fold ``fold`` of the
    cross-validation of ``(size, seed)`` for ``arm``) or ``tables`` (results.csv and the
    summary, after every cell); ``skipped``: baseline arms skipped for the whole sweep;
    ``check``: a fold job submitted before the cells ended checks that its fold is needed
    (:func:`fold_tasks`)."""

    kind: str
    arm: str = ""
    size: str = ""
    seed: int = 0
    fold: int = -1
    skipped: tuple[str, ...] = ()
    check: bool = False

    @property
    def name(self) -> str:
        """The job's name: its cell's, ``fold<k>_<arm>_<size>_<seed>``, or its kind."""
        if self.kind == "cell":
            return cell_name(Arm(self.arm), Size.from_tag(self.size), self.seed)
        if self.kind == "fold":
            return f"fold{self.fold}_{cell_name(Arm(self.arm), Size.from_tag(self.size), self.seed)}"
        return self.kind

    def where(self, width: int = 0) -> str:
        """For progress lines: arm, size and seed (and the fold)."""
        size = Size.from_tag(self.size).label if self.size else ""
        fold = f" fold {self.fold}" if self.kind == "fold" else ""
        return f"{self.arm:<{width}} {size:<8} seed {self.seed:<3}{fold}" if self.arm else self.kind


@contextmanager
def _job_log(out: Path, task: Task) -> Iterator[Callable[[str], None]]:
    """``echo`` into ``<out>/logs/<job>.log``, with this project's log records."""
    path = SweepFolder(out).job_log(task.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("ssl_domains")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    append_line(path, f"--- {task.name}: pid {os.getpid()}, {time.strftime('%Y-%m-%d %H:%M:%S')}")
    try:
        yield lambda line: append_line(path, line)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        handler.close()


def run_task(spec: SweepSpec, task: Task) -> Outcome:
    """Run one job in this process (a pool worker, a cluster job) and return its outcome,
    also written to ``<out>/logs/<job>.json``. Errors become outcomes (``error``), so that the
    caller decides; only an interrupt propagates."""
    out = Path(spec.out)
    threads = spec.threads or int(os.environ.get("SLURM_CPUS_PER_TASK", "0") or 0)
    if threads and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    with _job_log(out, task) as echo:
        try:
            outcome = _dispatch(spec, task, echo)
        except KeyboardInterrupt:
            raise
        except Exception as err:  # noqa: BLE001 - reported to the sweep, named and logged
            log.exception("%s failed", task.name)
            kind = "ConfigError" if isinstance(err, ConfigError) else type(err).__name__
            outcome = Outcome(task.name, "error", message=f"{kind}: {err}")
        if not outcome.seconds:
            outcome.seconds = time.perf_counter() - start
        echo(f"--- {task.name}: {outcome.status} {outcome.message}".rstrip())
    write_json(SweepFolder(out).job_record(task.name),
               {**asdict(outcome), "job": os.environ.get("SLURM_JOB_ID") or str(os.getpid())})
    return outcome


def _dispatch(spec: SweepSpec, task: Task, echo: Callable[[str], None]) -> Outcome:
    out = Path(spec.out)
    if task.kind == "pretrain":
        cfg = parse_config(spec.config, source=f"sweep {spec.out}")
        pretrain_once(cfg, out, InitConfig(**spec.init) if spec.init else None, echo,
                      get_host().registry)
        return Outcome("pretrain", "computed")
    sw = _sweep(spec, echo)
    if task.kind == "cell":
        return run_cell(sw, spec.arm(task.arm), Size.from_tag(task.size), task.seed, task.skipped)
    if task.kind == "fold":
        if task.check and (task.arm, task.size, task.seed, task.fold) not in {
                (t.arm, t.size, t.seed, t.fold)
                for t in fold_tasks(sw, Size.from_tag(task.size), task.seed, task.skipped)}:
            return Outcome(task.name, "skipped", message="not needed")
        return _run_fold(sw, spec.arm(task.arm), Size.from_tag(task.size), task.seed, task.fold,
                         task.name)
    if task.kind == "tables":
        return _tables(sw, spec)
    raise ConfigError(f"unknown job kind {task.kind!r}")


def _run_fold(sw: Sweep, arm: Arm, size: Size, seed: int, k: int, name: str) -> Outcome:
    """Fold ``k`` of the cross-validation of ``(size, seed)`` for ``arm``, under its lock."""

    def run() -> Outcome:
        labeled = cv_items(sw.cfg, arm, size, seed, sw.pre, sw.sources)
        split = fold_splits(labeled, seed, sw.cv_folds)[k]
        start = time.perf_counter()
        record = run_fold_arm(sw.cfg, arm, seed, sw.pre, sw.registry,
                              fold_sources(labeled, split), cv_folder(sw.out, size, seed), k,
                              sw.cv_folds, sw.echo)
        if record["left_out"] is not None:
            return Outcome(name, "skipped", message=f"left out: {record['left_out']}")
        return Outcome(name, "computed", seconds=time.perf_counter() - start)

    return locked(sw.out, name, run)


def _tables(sw: Sweep, spec: SweepSpec) -> Outcome:
    """The tables of every finished cell of the sizes and seeds ``sweep.json`` records (a
    cluster sweep's last job), then ``spec.finish``; unfinished cells are named in
    ``message``."""
    record = read_json_object(SweepFolder(sw.out).plan)
    cells = [(arm, Size.from_tag(tag), int(seed)) for tag in record.get("sizes", [])
             for seed in record.get("seeds", []) for arm in sw.arms]
    result = SweepResult(sw.out, pd.DataFrame(), pd.DataFrame())
    for arm, size, seed in cells:
        found = finished_cell(sw, arm, size, seed)
        if found is not None:
            result.reused.append(found.name)
        elif arm.baseline is None or any(finished_cell(sw, arm, s, d) is not None
                                         for _, s, d in cells):
            result.failed[cell_name(arm, size, seed)] = "unfinished"
        else:  # a baseline that finished nowhere: its optional dependency is missing
            result.skipped[arm.name] = "no cell finished"
    message = ""
    try:
        finish_sweep(sw, cells, result)
    except SweepFailed as err:
        message = str(err)
    if spec.finish is not None:
        spec.finish(sw.out)
    return Outcome("tables", "computed", message=message)


# ---------------------------------------------------------------- phases


class JobMap(Protocol):
    """Runs jobs and reports each outcome as it comes (:class:`LocalJobs`, a cluster's)."""

    def map(self, spec: SweepSpec, tasks: Sequence[Task],
            done: Callable[[Task, Outcome], None]) -> None:
        """Run ``tasks`` side by side; ``done(task, outcome)`` as each finishes."""


def fold_tasks(sw: Sweep, size: Size, seed: int, skipped: Sequence[str],
               before_cells: bool = False) -> list[Task]:
    """The fold jobs of ``(size, seed)``: one per fold and finished plain arm when its ``auto``
    arm will cross-validate (as :func:`~ssl_domains.autoselect.crossval.run_derived` decides: a small
    validation set, ``cv_folds`` of 2 or more) and has not chosen yet; none otherwise (a
    segmentation sweep's auto chooses on validation Dice, without folds).

    With ``before_cells``, decided before the plain cells ran: one per fold and plain arm,
    the validation set's labels taken from the data (the cells' validation split is the
    same), so that the folds run beside the cells. A fold of an arm whose cell then fails is
    not used (the choice is made among the finished cells)."""
    arms = [a for a in sw.arms if a.name not in skipped]
    if sw.dense or sw.cv_folds < 2 or not any(a.name == "auto" for a in arms):
        return []
    if all(finished_cell(sw, a, size, seed) is not None for a in arms if a.derived):
        return []
    cells = SweepFolder(sw.out).cells
    plain = [a for a in arms if not a.derived
             and (before_cells or (cells / cell_name(a, size, seed) / EVAL_FILE).is_file())]
    if not plain or (SweepFolder(sw.out).cv / f"{size.tag}_{seed}.json").is_file():
        return []
    try:  # before the cells, their datasets are built once: validation labels and folds
        data = cell_data(sw.cfg, plain[0], size, seed, sw.pre, sw.sources) if before_cells else None
        labels = labels_of(data["val"]) if data is not None else read_predictions(
            RunFolder(cells / cell_name(plain[0], size, seed)).prediction_file("val")).labels
        if labels is None or not small_validation(labels):
            return []
        labeled = labeled_set(data) if data is not None else \
            cv_items(sw.cfg, plain[0], size, seed, sw.pre, sw.sources)
        splits = fold_splits(labeled, seed, sw.cv_folds)
    except SSLDomainsError:  # the derived cells say why they cannot cross-validate
        return []
    return [Task("fold", a.name, size.tag, seed, k, tuple(skipped))
            for k in range(len(splits)) for a in plain]


def _folds_line(folds: Sequence[Task]) -> str:
    """The progress line announcing ``folds``."""
    return (f"cross-validation: {len(folds)} fold job(s) (fold x arm) for "
            f"{len({(t.size, t.seed) for t in folds})} size(s) and seed(s)")


def _longest_first(tasks: Sequence[Task], arms: dict[str, Arm]) -> list[Task]:
    """``tasks`` with the networks of the largest labeled sets first and the classical
    baselines last (stable otherwise), so that short jobs fill the gaps at the end instead of a
    long one running alone."""
    def cost(task: Task) -> tuple[bool, float]:
        size = Size.from_tag(task.size)
        return arms[task.arm].baseline is None, float(size.count or size.fraction or 0)

    return sorted(tasks, key=cost, reverse=True)


def run_phases(jobs: JobMap, sw: Sweep, spec: SweepSpec, cells: Sequence[Cell],
               result: SweepResult) -> None:
    """Run the unfinished ``cells`` of ``sw`` through ``jobs`` phase by phase (module
    docstring), filing outcomes in ``result`` and showing one progress line per job."""
    echo = sw.echo
    width = max(len(a.name) for a in sw.arms)
    total = len(cells)
    count, folds_done, folds_total = [0], [0], [0]
    arms = {a.name: a for a in sw.arms}
    errors: list[str] = []

    def done(task: Task, outcome: Outcome) -> None:
        if task.kind == "fold":
            folds_done[0] += 1
            where = f"  cv [{folds_done[0]:>{len(str(folds_total[0]))}}/{folds_total[0]}] " \
                    f"{task.where(width)}"
            # a fold that stopped with an error or is busy: the auto cell runs it itself
            echo(f"{where}  {outcome.seconds:6.1f} s" if outcome.status == "computed"
                 else f"{where}: {outcome.status} {outcome.message}".rstrip())
            return
        count[0] += 1
        arm = arms[task.arm]
        for note in outcome.notes:
            echo(f"{task.where(width)} {note}")
        record_outcome(result, arm, outcome)
        if outcome.status == "error":
            errors.append(f"{task.name}: {outcome.message}")
        if outcome.status == "skipped":
            if arm.name not in shown:
                shown.add(arm.name)
                echo(f"{arm.name}: skipped for the whole sweep ({outcome.message})")
            return
        where = f"[{count[0]:>{len(str(total))}}/{total}] {task.where(width)}"
        echo(progress_line(where, outcome, sw.dense))

    shown: set[str] = set()
    for line in previous_failures(sw.out, cells):
        echo(line)
    todo: list[Cell] = []
    for arm, size, seed in cells:
        reused = finished_cell(sw, arm, size, seed)
        if reused is None:
            todo.append((arm, size, seed))
        else:
            done(Task("cell", arm.name, size.tag, seed), reused)
    plain = [Task("cell", a.name, s.tag, seed) for a, s, seed in todo if not a.derived]
    # the folds of a small validation set do not wait for the cells: they run beside them
    groups = list(dict.fromkeys((s, seed) for a, s, seed in todo if a.derived))
    early = [t for s, seed in groups for t in fold_tasks(sw, s, seed, (), before_cells=True)]
    if early:
        folds_total[0] = len(early)
        echo(_folds_line(early) + ", beside the cells")
    if plain or early:
        jobs.map(spec, _longest_first(plain, arms) + _longest_first(early, arms), done)
    if errors:
        raise SSLDomainsError(f"{len(errors)} job(s) stopped with an error (first: {errors[0]}); "
                              f"see {SweepFolder(sw.out).logs}")
    skipped = tuple(result.skipped)
    todo = [c for c in todo if not _waits(c, result, echo)]
    ran = {(Size.from_tag(t.size), t.seed) for t in early}
    groups = [g for g in dict.fromkeys((s, seed) for a, s, seed in todo if a.derived)
              if g not in ran]
    folds = [t for s, seed in groups for t in fold_tasks(sw, s, seed, skipped)]
    if folds:
        folds_done[0] = 0
        folds_total[0] = len(folds)
        echo(_folds_line(folds))
        jobs.map(spec, folds, done)
    for name in ("ensemble", "auto"):
        derived = [Task("cell", a.name, s.tag, seed, skipped=skipped) for a, s, seed in todo
                   if a.name == name]
        if derived:
            jobs.map(spec, derived, done)
    if errors:
        raise SSLDomainsError(f"{len(errors)} job(s) stopped with an error (first: {errors[0]}); "
                              f"see {SweepFolder(sw.out).logs}")


def _waits(cell: Cell, result: SweepResult, echo: Callable[[str], None]) -> bool:
    """Whether derived ``cell`` waits for a cell of its size and seed that another process
    is running (:func:`~ssl_domains.sweep.run.busy_members`); filed as unfinished."""
    busy = busy_members(result, *cell)
    if busy:
        name = cell_name(*cell)
        result.failed[name] = f"{BUSY}: waits for {', '.join(busy)}"
        echo(f"{name}: not started, waits for {', '.join(busy)}")
    return bool(busy)


# ---------------------------------------------------------------- this machine


def visible_gpus() -> list[str]:
    """The GPUs this process may use (``CUDA_VISIBLE_DEVICES``, else every device)."""
    if not torch.cuda.is_available():
        return []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed:
        return [g.strip() for g in listed.split(",") if g.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


def _start_worker(slot: int, threads: int, gpus: Sequence[str]) -> None:
    """A worker's setup: its slot's GPU (before CUDA starts), its thread count, and the
    plugins loaded (what every job needs first; the fork server has them loaded already)."""
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    get_host().registry  # noqa: B018 - the plugins' components


def _run_here(spec: SweepSpec, task: Task) -> Outcome:
    """A job in the sweep's own process (its torch thread count kept)."""
    with keep_threads():
        return run_task(spec, task)


class LocalJobs:
    """Jobs on this machine: ``jobs`` at a time, each with ``threads`` intra-op threads
    (default: the cores shared out) and, when GPUs are given or visible, one GPU
    (``CUDA_VISIBLE_DEVICES``: worker ``i`` gets GPU ``i mod len(gpus)``). The workers
    (:class:`~ssl_domains.sweep.workers.Workers`) are forked from a fork server that has
    imported torch and the plugins once, and each takes job after job; on CPU this process
    runs jobs too, as one of the ``jobs`` (it has the data and the plugins loaded already),
    taking them from the same queue as the workers, so no worker waits for it."""

    detached = False

    def __init__(self, jobs: int, threads: int | None = None,
                 gpus: Sequence[str] | None = None) -> None:
        if jobs < 1:
            raise ConfigError(f"--jobs {jobs}: give 1 or more")
        self.jobs = jobs
        self.threads = threads or max(1, (os.cpu_count() or 1) // jobs)
        self.gpus = list(gpus) if gpus is not None else visible_gpus()
        self.here = not self.gpus  # a GPU each: every job in a worker of its own
        self.workers = jobs - 1 if self.here else jobs
        self._workers: Workers | None = None

    def describe(self) -> str:
        """One line: the jobs, their threads and GPUs."""
        where = f", GPUs {','.join(self.gpus)}" if self.gpus else ""
        return f"{self.jobs} job(s) on this machine, {self.threads} thread(s) each{where}"

    def prepare(self) -> None:
        """Start the workers (they start while this process goes on, e.g. pre-trains)."""
        if self._workers is not None or self.workers == 0:
            return
        self._workers = Workers(self.workers, partial(_start_worker, threads=self.threads,
                                                      gpus=tuple(self.gpus)))
        self._workers.start()

    def run(self, sw: Sweep, cells: Sequence[Cell], result: SweepResult) -> None:
        sw.echo(f"jobs: {self.describe()}; logs in {SweepFolder(sw.out).logs}")
        self.prepare()
        spec = SweepSpec.of(sw, threads=self.threads)
        if self.here:  # this process's jobs use its data and plugins (its own echo kept)
            _SWEEPS.clear()
            _SWEEPS[_key(spec)] = replace(sw)
        try:
            run_phases(self, sw, spec, cells, result)
        finally:
            _SWEEPS.clear()
            if self._workers is not None:
                self._workers.close()
                self._workers = None

    def map(self, spec: SweepSpec, tasks: Sequence[Task],
            done: Callable[[Task, Outcome], None]) -> None:
        if self._workers is None:  # one job at a time, here
            for task in tasks:
                done(task, _run_here(spec, task))
            return

        def finished(task: Task, got: Outcome | Ended) -> None:
            done(task, _ended(spec, task, got) if isinstance(got, Ended) else got)

        self._workers.map(partial(run_task, spec), tasks, finished,
                          here=partial(_run_here, spec) if self.here else None)

    def submit(self, sw: Sweep, cells: Sequence[Cell], pretrain: bool,
               result: SweepResult) -> list[str]:
        raise ConfigError("jobs on this machine run while the sweep runs; nothing to submit")


def _ended(spec: SweepSpec, task: Task, ended: Ended) -> Outcome:
    """The outcome of a job whose worker process ended during it (killed, out of memory, a
    crash), recorded in ``<out>/logs/<job>.json`` as the job would have."""
    out = Path(spec.out)
    outcome = Outcome(task.name, "error", message=ended.message)
    write_json(SweepFolder(out).job_record(task.name), {**asdict(outcome), "job": str(ended.pid)})
    return outcome


def previous_failures(out: Path, cells: Sequence[Cell]) -> list[str]:
    """Lines naming the cells of an earlier run that failed (their error and log) or ended
    without an outcome (killed); they are run again."""
    lines = []
    for arm, size, seed in cells:
        name = cell_name(arm, size, seed)
        if (SweepFolder(out).cell(name) / EVAL_FILE).is_file():
            continue
        record, log = SweepFolder(out).job_record(name), SweepFolder(out).job_log(name)
        if record.is_file():
            try:
                got = read_json_object(record)
            except DataError:
                got = {}
            if got.get("status") in ("failed", "error"):
                lines.append(f"{name}: failed earlier ({got.get('message')}); log {log}; "
                             "running it again")
        elif log.is_file():
            lines.append(f"{name}: did not finish earlier (killed? see {log}); running it again")
    return lines
