"""A sweep on a cluster: its jobs (:mod:`ssl_domains.sweep.jobs`) submitted through submitit.

``ssl-domains sweep ... --executor slurm`` submits the sweep as Slurm job arrays, one per phase
(pre-training, cells, cross-validation folds, ensemble cells, auto cells, tables), each
phase's array starting when the one before has ended (``--dependency``; the cells need the
pre-training to have succeeded). The submitting command returns once everything is submitted:
the sweep goes on without it. What it submitted is kept in ``<out>/cluster.json``, each job's
lines in ``<out>/logs/<job>.log`` (submitit's own in ``<out>/cluster/``). Running the same
command again shows the jobs still pending or running and submits nothing, or, once they
ended, lists the cells that failed (their error and log) and submits every unfinished cell
again (finished cells are kept).

``--executor submitit-local`` runs the same jobs through submitit's local executor, phase after
phase, while the command waits (the tests use it; it is also a way to try a cluster setup on a
workstation); ``--wait`` makes a Slurm submission wait the same way.

submitit is an optional dependency: ``pip install "ssl-domains[cluster]"``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ssl_domains.config import InitConfig
from ssl_domains.errors import ConfigError, DataError, SSLDomainsError
from ssl_domains.files import read_json_object, write_json
from ssl_domains.layout.export import ExportFolder
from ssl_domains.layout.names import CLUSTER_FILE
from ssl_domains.layout.run import RunFolder
from ssl_domains.layout.sweep import SweepFolder
from ssl_domains.sweep.jobs import (
    SweepSpec,
    Task,
    previous_failures,
    run_phases,
    run_task,
)
from ssl_domains.sweep.run import Cell, Outcome, Sweep, SweepResult, finished_cell

__all__ = ["Resources", "ClusterJobs", "EXECUTORS", "STATE_FILE", "dependency"]

#: ``--executor`` values served by this module.
EXECUTORS = ("slurm", "submitit-local")
#: What a cluster submission submitted (job ids per phase), in the sweep folder.
STATE_FILE = CLUSTER_FILE
#: Slurm states of a job that has not ended.
_ALIVE = ("PENDING", "RUNNING", "REQUEUED", "RESIZING", "SUSPENDED", "CONFIGURING",
          "COMPLETING", "UNKNOWN")


@dataclass
class Resources:
    """What each job asks the scheduler for (a ``--resources`` YAML file holds the same keys;
    flags override it)."""

    partition: str | None = None
    time_min: int = 60
    cpus_per_job: int = 2
    gpus_per_job: int = 0
    mem_gb: int | None = None
    account: str | None = None
    qos: str | None = None
    array_parallelism: int = 32
    setup: list[str] = field(default_factory=list)
    additional: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None, **flags: Any) -> Resources:
        """The resources of ``path`` (YAML) with ``flags`` (None: not given) over them.

        Raises:
            ConfigError: Unknown keys or values of the wrong type.
        """
        data: dict[str, Any] = {}
        if path is not None:
            try:
                raw = yaml.safe_load(Path(path).read_text())
            except (OSError, yaml.YAMLError) as err:
                raise ConfigError(f"{path}: not a readable YAML file ({type(err).__name__})") \
                    from None
            if not isinstance(raw, dict):
                raise ConfigError(f"{path}: resources must be a mapping of keys "
                                  f"({', '.join(f.name for f in fields(cls))})")
            data = dict(raw)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{path}: unknown resource key(s) {', '.join(unknown)}; allowed: "
                              f"{', '.join(sorted(known))}")
        data.update({k: v for k, v in flags.items() if v is not None and v != ()})
        try:
            res = cls(**data)
        except TypeError as err:
            raise ConfigError(f"{path or 'resources'}: {err}") from None
        for name in ("time_min", "cpus_per_job", "array_parallelism"):
            if not isinstance(getattr(res, name), int) or getattr(res, name) < 1:
                raise ConfigError(f"{path or 'resources'}: {name} must be a whole number >= 1, "
                                  f"got {getattr(res, name)!r}")
        return res


def dependency(kind: str, job_ids: Sequence[str]) -> str | None:
    """Slurm's ``--dependency`` for waiting on ``job_ids`` (array tasks ``123_4`` wait as
    their array ``123``): ``afterok`` (all succeeded) or ``afterany`` (all ended)."""
    arrays = list(dict.fromkeys(str(j).split("_")[0] for j in job_ids))
    return f"{kind}:{':'.join(arrays)}" if arrays else None


def _submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise ConfigError("--executor slurm needs submitit (not installed): "
                          'pip install "ssl-domains[cluster]"') from None
    return submitit


class ClusterJobs:
    """A sweep's jobs through submitit (see the module docstring).

    Args:
        kind: ``slurm`` or ``submitit-local``.
        resources: What each job asks for.
        wait: Stay until every job ended (always for ``submitit-local``).
        finish: Called on the sweep folder after the tables (the report), in the last job.
        init: ``--init`` weights (passed to the pre-training job).
    """

    detached = True

    def __init__(self, kind: str, resources: Resources | None = None, wait: bool = False,
                 finish: Callable[[Path], Any] | None = None,
                 init: InitConfig | None = None) -> None:
        if kind not in EXECUTORS:
            raise ConfigError(f"--executor {kind}: unknown; allowed: local, {', '.join(EXECUTORS)}")
        self.kind = kind
        self.resources = resources or Resources()
        self.wait = wait or kind == "submitit-local"
        self.finish = finish
        self.init = init
        self._executor: Any = None

    def prepare(self) -> None:
        """Nothing to start ahead: each job is a process of its own."""

    # ------------------------------------------------------------ submitit

    def executor(self, out: Path, dependency_on: str | None = None, name: str = "sweep") -> Any:
        """The submitit executor writing into ``<out>/cluster``, with the resources and,
        for Slurm, ``dependency_on``."""
        submitit = _submitit()
        res = self.resources
        if self._executor is None:
            cluster = "local" if self.kind == "submitit-local" else "slurm"
            self._executor = submitit.AutoExecutor(folder=SweepFolder(out).cluster, cluster=cluster)
        params: dict[str, Any] = {"timeout_min": res.time_min, "cpus_per_task": res.cpus_per_job,
                                  "name": name}
        if res.gpus_per_job:
            params["gpus_per_node"] = res.gpus_per_job
        if res.mem_gb is not None:
            params["mem_gb"] = res.mem_gb
        if self.kind == "slurm":
            extra = dict(res.additional)
            if dependency_on:
                extra.update({"dependency": dependency_on, "kill-on-invalid-dep": "yes"})
            params.update({"slurm_partition": res.partition, "slurm_account": res.account,
                           "slurm_qos": res.qos, "slurm_setup": list(res.setup),
                           "slurm_array_parallelism": res.array_parallelism,
                           "slurm_additional_parameters": extra})
            params = {k: v for k, v in params.items() if v is not None}
        else:
            params["local_setup"] = list(res.setup)
        self._executor.update_parameters(**params)
        return self._executor

    def _submit(self, spec: SweepSpec, tasks: Sequence[Task], after: str | None = None) -> list[Any]:
        ex = self.executor(Path(spec.out), after, name=f"sweep-{tasks[0].kind}")
        return list(ex.map_array(run_task, [spec] * len(tasks), list(tasks)))

    def _outcome(self, task: Task, job: Any) -> Outcome:
        try:
            got = job.result()
        except Exception as err:  # noqa: BLE001 - killed, timed out, out of memory
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            return Outcome(task.name, "error",
                           message=f"job {job.job_id} ended without a result ({first}); "
                                   f"log: {job.paths.stderr}")
        return got if isinstance(got, Outcome) else Outcome(task.name, "error",
                                                            message=f"job {job.job_id}: {got!r}")

    # ------------------------------------------------------------ waiting (JobMap)

    def map(self, spec: SweepSpec, tasks: Sequence[Task],
            done: Callable[[Task, Outcome], None]) -> None:
        """Submit ``tasks`` (at most ``array_parallelism`` at a time on this machine) and
        report each outcome as its job ends."""
        limit = self.resources.array_parallelism if self.kind == "submitit-local" else len(tasks)
        queue = list(tasks)
        running: list[tuple[Task, Any]] = []
        while queue or running:
            if queue and len(running) < limit:
                batch, queue = queue[:limit - len(running)], queue[limit - len(running):]
                running += list(zip(batch, self._submit(spec, batch)))
            for task, job in [r for r in running if r[1].done()]:
                running.remove((task, job))
                done(task, self._outcome(task, job))
            time.sleep(0.2)

    def run(self, sw: Sweep, cells: Sequence[Cell], result: SweepResult) -> None:
        run_phases(self, sw, SweepSpec.of(sw, init=self.init, finish=self.finish), cells, result)

    # ------------------------------------------------------------ submitting (CellRunner)

    def submit(self, sw: Sweep, cells: Sequence[Cell], pretrain: bool,
               result: SweepResult) -> list[str]:
        """Submit the sweep; waiting (:attr:`wait`), run it phase by phase and return nothing
        (``result`` filled); otherwise return one line per submitted array."""
        out = sw.out
        spec = SweepSpec.of(sw, init=self.init, finish=self.finish)
        state = _read_state(out)
        alive = self._alive(out, state) if state else []
        if alive:
            raise SSLDomainsError(
                f"{out}: {len(alive)} job(s) of the last submission are still pending or "
                f"running ({', '.join(alive[:5])}{', ...' if len(alive) > 5 else ''}); nothing "
                f"submitted. Watch them with squeue; rerun this command once they ended")
        pre_done = ExportFolder(RunFolder(out / "pretrain").export).backbone.is_file()
        if self.wait:
            if pretrain and not pre_done:
                sw.echo(f"pre-training: one job ({self.kind}); every cell waits for it")
                outcomes: list[Outcome] = []
                self.map(spec, [Task("pretrain")], lambda _t, o: outcomes.append(o))
                if outcomes[0].status != "computed":
                    raise SSLDomainsError(f"pre-training job: {outcomes[0].message}; see "
                                          f"{SweepFolder(out).job_log('pretrain')}")
            sw.echo(f"jobs: {self.kind}, {self.resources.cpus_per_job} CPU(s)"
                    f"{f' and {self.resources.gpus_per_job} GPU(s)' if self.resources.gpus_per_job else ''}"
                    f" per job; logs in {SweepFolder(out).logs}")
            self.run(sw, cells, result)
            return []
        return self._submit_all(sw, spec, cells, pretrain and not pre_done)

    def _submit_all(self, sw: Sweep, spec: SweepSpec, cells: Sequence[Cell],
                    pretrain: bool) -> list[str]:
        """Every phase at once, each depending on the one before (Slurm)."""
        out = sw.out
        for line in previous_failures(out, cells):
            sw.echo(line)
        todo = [c for c in cells if finished_cell(sw, *c) is None]
        groups = list(dict.fromkeys((s, seed) for a, s, seed in todo if a.derived))
        plain_arms = [a for a in sw.arms if not a.derived]
        phases: list[tuple[str, list[Task]]] = [
            ("pretrain", [Task("pretrain")] if pretrain else []),
            ("cells", [Task("cell", a.name, s.tag, seed) for a, s, seed in todo if not a.derived]),
            ("folds", [Task("fold", a.name, s.tag, seed, k, check=True) for s, seed in groups
                       for k in range(sw.cv_folds if sw.cv_folds >= 2 else 0)
                       for a in plain_arms
                       if any(x.name == "auto" for x in sw.arms)]),
            ("ensemble", [Task("cell", a.name, s.tag, seed) for a, s, seed in todo
                          if a.name == "ensemble"]),
            ("auto", [Task("cell", a.name, s.tag, seed) for a, s, seed in todo
                      if a.name == "auto"]),
            ("tables", [Task("tables")]),
        ]
        lines: list[str] = []
        state: dict[str, Any] = {"executor": self.kind, "submitted": time.strftime(
            "%Y-%m-%d %H:%M:%S"), "resources": asdict(self.resources), "jobs": {}}
        before: list[str] = []
        for name, tasks in phases:
            if not tasks:
                continue
            after = dependency("afterok" if before and name == "cells" and pretrain
                               else "afterany", before)
            jobs = self._submit(spec, tasks, after)
            before = [str(j.job_id) for j in jobs]
            state["jobs"].update({t.name: str(j.job_id) for t, j in zip(tasks, jobs)})
            lines.append(f"{name}: {len(tasks)} job(s), array {before[0].split('_')[0]}"
                         + (f" (after {after})" if after else ""))
            write_json(out / STATE_FILE, state)
        return lines

    def _alive(self, out: Path, state: dict[str, Any]) -> list[str]:
        """The jobs of the last submission that have not ended (Slurm only: local jobs end
        with the command that waits for them)."""
        if state.get("executor") != "slurm" or self.kind != "slurm":
            return []
        submitit = _submitit()
        alive = []
        for name, job_id in state.get("jobs", {}).items():
            job = submitit.SlurmJob(SweepFolder(out).cluster, job_id)
            if str(job.state).upper().split()[0] in _ALIVE:
                alive.append(f"{name} ({job_id})")
        return alive


def _read_state(out: Path) -> dict[str, Any]:
    path = out / STATE_FILE
    if not path.is_file():
        return {}
    try:
        return read_json_object(path)
    except DataError:
        return {}

