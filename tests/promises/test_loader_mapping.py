"""Promise: predictions and probability maps name inputs by opaque id only; ``--mapping FILE``
(as ``medical convert`` has) writes id -> input as given to a private file, refused inside (or
beside) the shareable output."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ssl_domains.cli import cli
from ssl_domains.config import parse_config
from ssl_domains.engine.finetune import finetune
from ssl_domains.errors import ConfigError
from tests.conftest import REPO

NIFTI = REPO / "sample_data" / "medical" / "nifti"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tumor patch detector fine-tuned for 2 steps on the sample cases."""
    tmp = tmp_path_factory.mktemp("mapping")
    patches = {"loader": "image_manifest", "patch_size": 16, "patches_per_case": 4, "min_overlap": 0.01,
               "loader_args": {"path": str(NIFTI / "train.csv"), "modality": "CT"}}
    cfg = parse_config({
        "name": "pm", "output_dir": str(tmp),
        "backbone": {"name": "resnet_encoder", "args": {"spatial_dims": 3, "depth": 10, "width": 4}},
        "finetune": {"data": {"train": {"name": "tumor_patches", "args": patches}, "batch_size": 8,
                              "val_fraction": 0.25},
                     "task": {"name": "tumor_patch_detection"}, "from_scratch": True,
                     "train": {"epochs": 1, "max_steps": 2, "progress": False}},
    })
    finetune(cfg, tmp / "pm")
    return tmp / "pm"


def _inputs(path: Path) -> dict[str, str]:
    return {e["id"]: e["input"] for e in json.loads(path.read_text())["items"]}


def test_predict_mapping_joins_opaque_ids_back_to_the_files(run: Path, tmp_path: Path) -> None:
    share, private = tmp_path / "share", tmp_path / "private"
    args = ["predict", str(run), "--loader", "image_manifest", "--arg", f"path={NIFTI / 'test.csv'}",
            "--arg", "modality=CT", "--out", str(share / "predictions.csv")]
    res = CliRunner().invoke(cli, [*args, "--mapping", str(private / "ids.json")])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((share / "predictions.csv").open()))
    assert len(rows) == 4 and not any("case_" in r["id"] for r in rows)  # shareable: opaque ids only
    inputs = _inputs(private / "ids.json")
    assert sorted(inputs) == sorted(r["id"] for r in rows)
    assert sorted(Path(v).name for v in inputs.values()) == [f"case_{i}.nii.gz" for i in (12, 13, 14, 15)]
    assert list(share.iterdir()) == [share / "predictions.csv"]  # nothing else beside the CSV

    res = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "again.csv"), "--mapping", str(tmp_path / "ids.json")])
    assert isinstance(res.exception, ConfigError)
    assert str(res.exception).startswith(f"--mapping {tmp_path / 'ids.json'}: beside {tmp_path / 'again.csv'}, "
                                         "which is meant for sharing")
    assert not (tmp_path / "again.csv").exists() and not (tmp_path / "ids.json").exists()


def test_probability_maps_mapping_names_each_case_and_is_refused_in_the_output(run: Path, tmp_path: Path) -> None:
    from ssl_domains_medical.commands import medical

    args = ["probability-maps", str(run), "--loader", "image_manifest", "--arg", f"path={NIFTI / 'test.csv'}",
            "--arg", "modality=CT", "--roi", "16", "--out", str(tmp_path / "maps")]
    res = CliRunner().invoke(medical, [*args, "--mapping", str(tmp_path / "maps" / "ids.json")])
    assert isinstance(res.exception, ConfigError) and "which is meant for sharing" in str(res.exception)
    assert not (tmp_path / "maps").exists()  # refused before anything is written

    res = CliRunner().invoke(medical, [*args, "--mapping", str(tmp_path / "ids.json")])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((tmp_path / "maps" / "scores.csv").open()))
    inputs = _inputs(tmp_path / "ids.json")
    assert sorted(inputs) == sorted(r["id"] for r in rows) and len(rows) == 4
    assert all(Path(inputs[r["id"]]).name.startswith("case_1") for r in rows)


def test_time_series_inputs_are_named_by_file_and_series_as_given(tmp_path: Path) -> None:
    from ssl_domains.plugins import get_host

    path = tmp_path / "SMITH_unit_log.csv"
    path.write_text("unit,t,x\n" + "".join(f"{u},{t},{t * 0.5}\n" for u in ("MRN1", "MRN2") for t in range(20)))
    ds = get_host().registry.create("loader", "csv", path=str(path), id_column="unit", time_column="t", window=10)
    assert sorted(ds.inputs_by_id.values()) == [f"{path} [MRN1]", f"{path} [MRN2]"]
    assert set(ds.inputs_by_id) == set(ds.groups)  # keyed by the opaque ids the rows carry
    assert "MRN" not in json.dumps([ds[i]["meta"] for i in range(len(ds))])
