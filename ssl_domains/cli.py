"""The ``ssl-domains`` command line (click). Plugins add their own groups.

Fast paths: ``--help``, ``--version``, ``plugins``, ``list`` and ``describe`` import no torch,
no MONAI and no component module: plugin command groups are registered lazily (a plugin's
``register_commands`` hook may call ``cli.add_lazy_command(name, "module:attr", help)``) and
component listings come from the cached catalog (:mod:`ssl_domains.catalog`).
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ssl_domains import __version__, console
from ssl_domains.errors import ConfigError, SSLDomainsError
from ssl_domains.files import to_json
from ssl_domains.kinds import KINDS

if TYPE_CHECKING:
    from ssl_domains.config import RunConfig

__all__ = ["cli", "main", "LazyGroup"]

log = logging.getLogger("ssl_domains")


class LazyGroup(click.Group):
    """A click group whose subcommands may be imported only when used.

    ``add_lazy_command("medical", "ssl_domains_medical.commands:medical", "Medical tools")``
    lists ``medical`` (with that help line) in ``--help`` without importing the module.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, tuple[str, str]] = {}

    def add_lazy_command(self, name: str, import_path: str, short_help: str = "") -> None:
        """Register ``module:attribute`` (a click command) under ``name``, imported on use."""
        if ":" not in import_path:
            raise ValueError(f"lazy command {name!r}: import path must be 'module:attribute', got {import_path!r}")
        self.lazy[name] = (import_path, short_help)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module, attr = self.lazy[cmd_name][0].split(":", 1)
            cmd = getattr(importlib.import_module(module), attr)
            if not isinstance(cmd, click.Command):
                raise click.ClickException(f"plugin command {cmd_name!r}: {module}:{attr} is not a click command")
            self.add_command(cmd, cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy and name not in self.commands:
                rows.append((name, self.lazy[name][1]))
                continue
            cmd = self.get_command(ctx, name)
            if cmd is None or cmd.hidden:
                continue
            rows.append((name, cmd.get_short_help_str(formatter.width - 6 - max(len(n) for n in self.list_commands(ctx)))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _host() -> Any:
    from ssl_domains.plugins import get_host

    return get_host()


def _init_overrides(init_path: str | None, init_source: str, overrides: tuple[str, ...]) -> list[str]:
    """``--init PATH --init-source S`` as the config's ``init`` section (so ``--set
    init.strict=true`` applies to it), before the ``--set`` overrides."""
    if not init_path:
        return list(overrides)
    # JSON strings are YAML strings: a path such as `2024` or `yes` stays a string
    return [f"init.path={json.dumps(init_path)}", f"init.source={json.dumps(init_source)}", *overrides]


def _resolve(config: str | None, overrides: tuple[str, ...], resume: str | None, out: str | None,
             init_path: str | None = None, init_source: str = "auto") -> tuple[RunConfig, Path]:
    from ssl_domains.config import load_config
    from ssl_domains.layout.run import RunFolder

    overrides = tuple(_init_overrides(init_path, init_source, overrides))
    if resume:
        rpath = Path(resume)
        if not RunFolder(rpath).config.is_file():
            raise ConfigError(f"{rpath}: not a run folder (no {RunFolder(rpath).config.name}) — nothing to resume")
        cfg = load_config(RunFolder(rpath).config, list(overrides))
        return cfg, rpath
    if config is None:
        raise ConfigError("give a CONFIG file (or --resume RUN_DIR)")
    cfg = load_config(config, list(overrides))
    return cfg, Path(out) if out else Path(cfg.output_dir) / cfg.name


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ssl-domains")
@click.option("--debug", is_flag=True, help="Full tracebacks on errors; every logger (third-party too) at DEBUG.")
@click.option("-v", "--verbose", is_flag=True, help="This project's DEBUG lines (third-party loggers stay at WARNING).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: bool) -> None:
    """Self-supervised pre-training and few-label fine-tuning, with domain plugins."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins_cmd(as_json: bool) -> None:
    """List loaded plugins, their versions and what each registered."""
    from ssl_domains.catalog import load_catalog

    info = load_catalog()["plugins"]
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"ssl-domains {info['host']['version']}")
    for p in info["plugins"]:
        click.echo(f"{p['name']} ({p['distribution']} {p['version']})")
        for kind, names in p["components"].items():
            click.echo(f"  {kind}: {', '.join(names)}")
    for name, why in info["skipped"].items():
        click.echo(f"{name}: skipped ({why})")


@cli.command("list")
@click.argument("kind", type=click.Choice(list(KINDS)))
def list_cmd(kind: str) -> None:
    """List registered components of KIND."""
    from ssl_domains.catalog import load_catalog

    for c in sorted((c for c in load_catalog()["components"] if c["kind"] == kind), key=lambda c: c["name"]):
        click.echo(f"{c['name']:<24} {c['plugin']:<12} {c['description']}")


@cli.command("describe")
@click.argument("kind", type=click.Choice(list(KINDS)))
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def describe_cmd(kind: str, name: str, as_json: bool) -> None:
    """Show a component's arguments, documentation and provenance."""
    from ssl_domains.catalog import component_info

    d = component_info(kind, name)
    if as_json:
        click.echo(json.dumps(d, indent=2))
        return
    click.echo(f"{kind} {name} — plugin {d['plugin']} {d['version']}")
    click.echo(f"{name}{d['signature']}")
    if d["modalities"]:
        click.echo(f"modalities: {', '.join(d['modalities'])}; dims: {d['dims']}")
    if d.get("prefer"):
        from ssl_domains.candidates import tolerance_words

        click.echo(f"select: auto prefers, among candidates within {tolerance_words()} of the "
                   f"best: {', '.join(d['prefer'])} (finetune.prefer overrides)")
    click.echo("")
    click.echo(d["doc"])


_common = [
    click.argument("config", required=False, type=click.Path(dir_okay=False)),
    click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key (repeatable)."),
    click.option("--init", "init_path", type=click.Path(), help="Start from an export, run folder, checkpoint or foreign weights."),
    click.option("--init-source", default="auto", show_default=True, help="Format of foreign --init weights."),
    click.option("--resume", type=click.Path(file_okay=False), help="Continue the run in this folder from its last checkpoint."),
    click.option("--out", type=click.Path(file_okay=False), help="Run folder (default: output_dir/name)."),
]


def _with_common(f: Any) -> Any:
    for deco in reversed(_common):
        f = deco(f)
    return f


def _refuse_overwrite(run_path: Path, stage: str, resume: str | None) -> None:
    """A new run writes only into a new or empty folder, or a run folder that holds no run of
    this stage (fine-tuning into its own pre-training run) and no later one."""
    from ssl_domains.files import refuse_foreign_folder
    from ssl_domains.layout.run import RUN_MARKERS, RunFolder

    if resume:
        return
    refuse_foreign_folder(run_path, RUN_MARKERS, "an ssl-domains run folder")
    run = RunFolder(run_path)
    if run.last_checkpoint(stage).is_file():
        raise ConfigError(
            f"{run_path} already holds a {stage} run; continue it with --resume {run_path} "
            "or choose another folder (--out, or --set name=...)"
        )
    if stage == "pretrain" and ((run.checkpoints / "finetune").is_dir() or run.eval.is_file()):
        raise ConfigError(f"{run_path} holds a fine-tuned run; pre-training there would replace its "
                          "export; choose another folder (--out, or --set name=...)")


_jobs_options = [
    click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
                 help="Cells (and select: auto's cross-validation folds) run side by side on this "
                      "machine as separate processes; same numbers as one at a time."),
    click.option("--threads-per-job", type=click.IntRange(min=1),
                 help="Intra-op threads of each job (default: the cores shared out)."),
    click.option("--gpus", help="GPUs for the jobs, one per job in turn, e.g. 0,1,2,3 "
                                "(default: every visible GPU)."),
]


def _with_jobs(f: Any) -> Any:
    for deco in reversed(_jobs_options):
        f = deco(f)
    return f


def _warm_workers(jobs: int, gpus: str | None) -> None:
    """With ``--jobs``/``--gpus``: start the workers' fork server now, so that it imports
    torch and the plugins while this process does (:mod:`ssl_domains.sweep.workers`)."""
    if jobs > 1 or gpus:
        from ssl_domains.sweep.workers import start_server

        start_server()


def _local_jobs(jobs: int, threads: int | None, gpus: str | None) -> Any:
    """``--jobs`` above 1 (or GPUs to share out): jobs on this machine; else None (one
    process, one cell after another)."""
    if jobs <= 1 and threads is None and gpus is None:
        return None
    from ssl_domains.sweep.jobs import LocalJobs

    return LocalJobs(jobs, threads, [g.strip() for g in gpus.split(",") if g.strip()]
                     if gpus else None)


@cli.command("pretrain")
@_with_common
def pretrain_cmd(config: str | None, overrides: tuple[str, ...], init_path: str | None, init_source: str,
                 resume: str | None, out: str | None) -> None:
    """(Continued) self-supervised pre-training from CONFIG's `pretrain` section."""
    from ssl_domains.engine.pretrain import pretrain

    cfg, run_path = _resolve(config, overrides, resume, out, init_path, init_source)
    _refuse_overwrite(run_path, "pretrain", resume)
    summary = pretrain(cfg, run_path, registry=_host().registry, init=cfg.init if init_path else None,
                       resume=bool(resume))
    click.echo(to_json(summary))


@cli.command("finetune")
@_with_common
@_with_jobs
def finetune_cmd(config: str | None, overrides: tuple[str, ...], init_path: str | None, init_source: str,
                 resume: str | None, out: str | None, jobs: int, threads_per_job: int | None,
                 gpus: str | None) -> None:
    """Fine-tune on labeled data from CONFIG's `finetune` section; evaluates and exports."""
    _warm_workers(jobs, gpus)
    from ssl_domains.finetune_stage import finetune

    cfg, run_path = _resolve(config, overrides, resume, out, init_path, init_source)
    _refuse_overwrite(run_path, "finetune", resume)
    summary = finetune(cfg, run_path, registry=_host().registry, init=cfg.init if init_path else None,
                       resume=bool(resume), jobs=_local_jobs(jobs, threads_per_job, gpus))
    click.echo(to_json({k: summary[k] for k in ("threshold", "val", "test") if k in summary}))


@cli.command("evaluate")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--loader", help="Evaluate on this loader instead of the run's test data.")
@click.option("--arg", "args", multiple=True, metavar="NAME=VALUE", help="Loader argument (repeatable).")
def evaluate_cmd(run_dir: str, loader: str | None, args: tuple[str, ...]) -> None:
    """Score the run's test data (or another labeled loader) with its stored threshold."""
    from ssl_domains.config import ComponentRef, parse_arg_pairs
    from ssl_domains.engine.evaluate import evaluate

    ref = ComponentRef(name=loader, args=parse_arg_pairs(args)) if loader else None
    click.echo(to_json(evaluate(run_dir, ref, registry=_host().registry)))


@cli.command("predict")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--loader", required=True, help="Loader for the inputs (see `ssl-domains list loader`).")
@click.option("--arg", "args", multiple=True, metavar="NAME=VALUE", help="Loader argument (repeatable).")
@click.option("--out", "out_csv", type=click.Path(dir_okay=False), default="predictions.csv", show_default=True)
@click.option("--batch-size", default=32, show_default=True)
@click.option("--mapping", type=click.Path(dir_okay=False),
              help="Also write each row's opaque id -> input as given to this local JSON file "
                   "(not next to the CSV; it holds the paths, keep it private).")
def predict_cmd(run_dir: str, loader: str, args: tuple[str, ...], out_csv: str, batch_size: int,
                mapping: str | None) -> None:
    """Write a CSV of scores and decisions (validation-chosen threshold) for every input,
    named by opaque id (``--mapping`` joins them back to your files)."""
    from ssl_domains.config import ComponentRef, parse_arg_pairs
    from ssl_domains.engine.evaluate import predict_data

    res = predict_data(run_dir, ComponentRef(name=loader, args=parse_arg_pairs(args)), Path(out_csv), batch_size,
                       registry=_host().registry,
                       mapping=Path(mapping) if mapping else None)
    click.echo(to_json(res))


@cli.command("report")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
def report_cmd(run_dir: str) -> None:
    """(Re)build RUN_DIR/report/report.html from what the run wrote."""
    from ssl_domains.report.pages import build_report

    click.echo(str(build_report(Path(run_dir))))


@cli.command("sweep")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--fractions", help="Labeled-set sizes as shares of the labeled pool, e.g. 0.01,0.05,0.1,1.")
@click.option("--counts", help="Labeled-set sizes as numbers of labeled items, e.g. 25,50,100.")
@click.option("--seeds", type=int, default=3, show_default=True, help="Seeds 0..S-1 per size.")
@click.option("--seed-list", help="Explicit seeds instead of --seeds, e.g. 0,3,7.")
@click.option("--arms", default="ssl,scratch,linear_probe,baseline", show_default=True,
              help="Arms: ssl, scratch, linear_probe, baseline (all baselines), baseline:<name>, "
                   "ensemble (ssl + strongest baseline), auto (best arm, chosen on validation data).")
@click.option("--out", type=click.Path(file_okay=False), help="Sweep folder (default: output_dir/<name>-sweep).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key (repeatable).")
@click.option("--init", "init_path", type=click.Path(), help="Pre-trained weights for ssl/linear_probe (skips pre-training).")
@click.option("--init-source", default="auto", show_default=True, help="Format of foreign --init weights.")
@click.option("--alpha", type=float, default=0.05, show_default=True, help="1 - confidence level of intervals.")
@_with_jobs
@click.option("--executor", type=click.Choice(["local", "slurm", "submitit-local"]), default="local",
              show_default=True, help="local: this machine (--jobs); slurm: job arrays on a Slurm "
              "cluster (pip install 'ssl-domains[cluster]'); submitit-local: the same jobs through "
              "submitit's local executor.")
@click.option("--resources", type=click.Path(dir_okay=False, exists=True),
              help="YAML file of cluster resources per job (partition, time_min, cpus_per_job, "
                   "gpus_per_job, mem_gb, account, qos, array_parallelism, setup, additional).")
@click.option("--partition", help="Slurm partition (overrides --resources).")
@click.option("--time-min", type=int, help="Time limit per job in minutes (overrides --resources).")
@click.option("--cpus-per-job", type=int, help="CPUs per cluster job (overrides --resources).")
@click.option("--gpus-per-job", type=int, help="GPUs per cluster job (overrides --resources).")
@click.option("--mem-gb", type=int, help="Memory per cluster job in GB (overrides --resources).")
@click.option("--wait", is_flag=True, help="With --executor slurm: stay until every job ended "
              "and show progress (by default the command returns once the jobs are submitted).")
@click.option("--cv-folds", type=click.IntRange(min=0), default=5, show_default=True,
              help="Folds of the auto arm's cross-validation when a validation set is small "
                   "(below 2: auto chooses on the validation set).")
def sweep_cmd(config: str, fractions: str | None, counts: str | None, seeds: int, seed_list: str | None,
              arms: str, out: str | None, overrides: tuple[str, ...], init_path: str | None,
              init_source: str, alpha: float, jobs: int, threads_per_job: int | None,
              gpus: str | None, executor: str, resources: str | None, partition: str | None,
              time_min: int | None, cpus_per_job: int | None, gpus_per_job: int | None,
              mem_gb: int | None, wait: bool, cv_folds: int) -> None:
    """Label-efficiency sweep: ssl, scratch, linear probe and baselines on the same labeled
    subsets, over sizes and seeds; results.csv, summary and report. Rerun to finish an
    interrupted sweep (finished cells are kept). --jobs N runs N cells side by side; --executor
    slurm submits them to a cluster."""
    if executor == "local":
        _warm_workers(jobs, gpus)
    from ssl_domains.config import InitConfig, load_config
    from ssl_domains.files import refuse_foreign_folder
    from ssl_domains.layout.names import CLUSTER_FILE, SWEEP_FILE
    from ssl_domains.layout.sweep import SweepFolder
    from ssl_domains.report.pages import build_report
    from ssl_domains.sweep.grid import parse_arms, parse_seeds, parse_sizes
    from ssl_domains.sweep.run import SweepFailed, run_sweep

    sizes = parse_sizes(fractions, counts)
    seed_values = parse_seeds(seeds, seed_list)
    arm_names = parse_arms(arms)
    if not 0 < alpha < 1:
        raise ConfigError(f"--alpha {alpha}: must be between 0 and 1, e.g. 0.05")
    cfg = load_config(config, list(overrides))
    out_path = Path(out) if out else Path(cfg.output_dir) / f"{cfg.name}-sweep"
    refuse_foreign_folder(out_path, (SWEEP_FILE,), "an ssl-domains sweep folder")
    init = InitConfig(path=init_path, source=init_source) if init_path else None
    runner: Any = _local_jobs(jobs, threads_per_job, gpus)
    if executor != "local":
        from ssl_domains.sweep.cluster import ClusterJobs, Resources

        res = Resources.load(resources, partition=partition, time_min=time_min,
                             cpus_per_job=cpus_per_job, gpus_per_job=gpus_per_job, mem_gb=mem_gb,
                             array_parallelism=jobs if executor == "submitit-local" else None)
        runner = ClusterJobs(executor, res, wait=wait, finish=build_report, init=init)
    failed: SweepFailed | None = None
    try:
        result = run_sweep(cfg, out_path, sizes=sizes, seeds=seed_values, arms=arm_names,
                           init=init, alpha=alpha, echo=click.echo, jobs=runner,
                           cv_folds=cv_folds)
        if result.submitted:
            for line in result.submitted:
                click.echo(f"submitted {line}")
            click.echo(f"the sweep goes on in {out_path} (jobs: {out_path / CLUSTER_FILE}, "
                       f"logs: {SweepFolder(out_path).logs}); its last job writes results.csv and the "
                       "report. Rerun the same command to see what failed and submit it again.")
            return
    except SweepFailed as err:  # the finished cells still get their report
        failed = err
    except KeyboardInterrupt:
        click.echo(f"Interrupted; rerun the same command to finish the sweep in {out_path} "
                   "(finished cells are kept).", err=True)
        sys.exit(130)
    click.echo(f"report: {build_report(out_path, alpha=alpha)}")
    if failed is not None:
        raise failed


@cli.command("plan")
@click.argument("config", type=click.Path(dir_okay=False, exists=True))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key (repeatable).")
@click.option("--steps", "measure_steps", default=3, show_default=True,
              help="Training steps timed per stage for the estimates (0: no measurement).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plan_cmd(config: str, overrides: tuple[str, ...], measure_steps: int, as_json: bool) -> None:
    """Before a run: what the data loaders found (items, classes, skipped inputs), steps per
    epoch, the model's parameters, and memory and time per epoch measured on this machine.
    Writes nothing."""
    from ssl_domains.config import load_config
    from ssl_domains.plan import format_plan, plan

    if measure_steps < 0:
        raise ConfigError(f"--steps {measure_steps}: must be 0 or more")
    result = plan(load_config(config, list(overrides)), measure_steps=measure_steps,
                  registry=_host().registry)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for line in format_plan(result):
        click.echo(line)


@cli.command("demo")
@click.option("--plugin", "plugins", multiple=True, help="Only these plugins' demos (default: all installed).")
@click.option("--data-dir", default="sample_data", show_default=True, type=click.Path(file_okay=False))
@click.option("--out", default="runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override keys of every demo config.")
def demo_cmd(plugins: tuple[str, ...], data_dir: str, out: str, overrides: tuple[str, ...]) -> None:
    """Pre-train, fine-tune (pre-trained and from scratch), evaluate and report on the bundled
    sample data."""
    from ssl_domains.demo import find_demo_configs, run_demo
    from ssl_domains.plugins import get_host

    configs = find_demo_configs(Path(data_dir), plugins)
    host = get_host(components=False)
    for path in configs:
        if path.parent.name not in host.plugins:
            click.echo(f"demo {path.parent.name}: plugin not installed, skipped")
            continue
        run_demo(path, Path(out), overrides, click.echo)


_commands_added = False


def _add_plugin_commands() -> None:
    """Plugin command groups (registration hooks of components are not run)."""
    global _commands_added
    if _commands_added:
        return
    from ssl_domains.plugins import get_host

    try:
        host = get_host(components=False)
    except SSLDomainsError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    host.pm.hook.register_commands(cli=cli)
    _commands_added = True


def main(argv: list[str] | None = None) -> None:
    """Entry point: one-line errors (non-zero exit); ``--debug`` shows the traceback; an
    end-of-run summary of repeated warnings and skipped inputs."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    console.setup(verbose="-v" in args or "--verbose" in args, debug=debug)
    _add_plugin_commands()
    try:
        _run(args, debug)
    finally:
        for line in console.summary_lines():
            click.echo(line, err=True)


def _run(args: list[str], debug: bool) -> None:
    try:
        cli.main(args=args, prog_name="ssl-domains", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except SSLDomainsError as exc:
        if debug:
            raise
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted; resume with --resume RUN_DIR.", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - one line unless --debug
        if debug:
            raise
        click.echo(f"Error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
