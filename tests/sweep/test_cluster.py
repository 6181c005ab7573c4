"""``ssl-domains sweep --executor slurm|submitit-local``: the sweep's jobs through submitit.

CI runs the submitit tests with the ``[cluster]`` extra installed (its second pass); without
it they are skipped with the install line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from ssl_domains.autoselect.arms import Size
from ssl_domains.cli import cli
from ssl_domains.config import load_config
from ssl_domains.errors import ConfigError
from ssl_domains.sweep.cluster import Resources, dependency
from ssl_domains.sweep.run import SweepFailed, run_sweep
from tests.conftest import make_config, write_arrays, write_config


def test_slurm_dependencies_wait_for_whole_arrays() -> None:
    assert dependency("afterany", ["812_0", "812_1", "812_2"]) == "afterany:812"
    assert dependency("afterok", ["7"]) == "afterok:7"
    assert dependency("afterany", ["9_0", "10_0"]) == "afterany:9:10"
    assert dependency("afterany", []) is None


def test_resources_from_a_file_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "slurm.yaml"
    path.write_text("partition: gpu\ntime_min: 90\ngpus_per_job: 1\nsetup: [module load cuda]\n")
    res = Resources.load(path, time_min=30, mem_gb=None)
    assert (res.partition, res.time_min, res.gpus_per_job, res.setup) == ("gpu", 30, 1,
                                                                          ["module load cuda"])
    path.write_text("partitoin: gpu\n")
    with pytest.raises(ConfigError, match=r"slurm.yaml: unknown resource key\(s\) partitoin; "):
        Resources.load(path)
    with pytest.raises(ConfigError, match="cpus_per_job must be a whole number >= 1, got 0"):
        Resources.load(None, cpus_per_job=0)


def test_submitit_local_executor_gives_the_sequential_numbers_and_resubmits_failed_cells(
        tmp_path: Path) -> None:
    """Through submitit's local executor: the numbers of the sequential sweep, one log per
    cell; a cell that failed is named (error and log) and submitted again on the rerun, the
    finished one is not."""
    pytest.importorskip("submitit", reason="the cluster executor needs submitit: "
                                           "pip install 'ssl-domains[cluster]'")
    cfg = make_config(tmp_path, write_arrays(tmp_path), pretrain=None,
                      baselines=[{"name": "logistic", "args": {"C": -1.0}}],  # fails to fit
                      **{"finetune.train.epochs": 2})
    config = write_config(tmp_path / "c.yaml", cfg)
    with pytest.raises(SweepFailed):
        run_sweep(load_config(config), tmp_path / "seq", sizes=[Size(count=40)], seeds=[0],
                  arms=["scratch", "baseline"], echo=lambda _: None)
    out = tmp_path / "out"
    argv = ["sweep", str(config), "--counts", "40", "--seeds", "1", "--arms", "scratch,baseline",
            "--out", str(out), "--executor", "submitit-local", "--jobs", "2",
            "--cpus-per-job", "1", "--time-min", "5"]
    res = CliRunner().invoke(cli, argv)
    assert res.exit_code == 1 and "1 cell(s) failed and stay unfinished (first: " \
        "baseline-logistic_40_0: InvalidParameterError: " in str(res.exception)
    assert "jobs: submitit-local, 1 CPU(s) per job; logs in " in res.output
    assert "baseline:logistic n=40     seed 0   FAILED: InvalidParameterError: " in res.output
    assert (out / "results.csv").read_bytes() == (tmp_path / "seq" / "results.csv").read_bytes()
    assert set(pd.read_csv(out / "results.csv")["arm"]) == {"scratch"}
    for cell in ("scratch_40_0", "baseline-logistic_40_0"):
        assert (out / "logs" / f"{cell}.log").is_file() and (out / "logs" / f"{cell}.json").is_file()
    jobs = {p.name for p in (out / "cluster").iterdir() if p.suffix == ".out"}
    assert len(jobs) == 2  # one submitit job per cell, each its own process
    res = CliRunner().invoke(cli, argv)
    assert res.exit_code == 1
    assert ("baseline-logistic_40_0: failed earlier (InvalidParameterError: " in res.output
            and f"; log {out / 'logs' / 'baseline-logistic_40_0.log'}; running it again"
            in res.output)
    assert "scratch           n=40     seed 0   test AUROC" in res.output
    assert "(finished earlier)" in res.output
    again = {p.name for p in (out / "cluster").iterdir() if p.suffix == ".out"}
    assert len(again - jobs) == 1  # only the failed cell was submitted again


def test_submitit_slurm_job_file_holds_the_resources_and_the_dependency(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sbatch file submitit would submit for a phase: the resources of ``--resources``
    and the wait for the phase before. (No Slurm here: submitit refuses to start without
    ``srun`` on the PATH, so this test lets it believe there is one; nothing is submitted.)"""
    submitit = pytest.importorskip("submitit", reason="the cluster executor needs submitit: "
                                                      "pip install 'ssl-domains[cluster]'")
    import shutil

    from ssl_domains.sweep.cluster import ClusterJobs

    which = shutil.which
    monkeypatch.setattr(submitit.slurm.slurm.shutil, "which",
                        lambda name, *a, **k: "/usr/bin/srun" if name == "srun"
                        else which(name, *a, **k))
    res = Resources(partition="gpu", time_min=120, cpus_per_job=8, gpus_per_job=1, mem_gb=32,
                    account="lab", setup=["module load cuda"], additional={"constraint": "a100"})
    executor = ClusterJobs("slurm", res).executor(tmp_path, dependency("afterany", ["81235_0"]),
                                                  name="sweep-cell")
    text = executor._executor._make_submission_file_text("python -m job", "uid")
    for line in ("#SBATCH --partition=gpu", "#SBATCH --time=120", "#SBATCH --cpus-per-task=8",
                 "#SBATCH --gpus-per-node=1", "#SBATCH --mem=32GB", "#SBATCH --account=lab",
                 "#SBATCH --constraint=a100", "#SBATCH --dependency=afterany:81235",
                 "#SBATCH --kill-on-invalid-dep=yes", "#SBATCH --job-name=sweep-cell",
                 "module load cuda"):
        assert line in text.splitlines(), line
    assert f"#SBATCH --output={tmp_path / 'cluster'}/%j_0_log.out" in text.splitlines()
