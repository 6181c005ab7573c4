"""Promises of README "Safe with untrusted files and shared folders" -> "Identifiers" and "How
inputs are named": inputs named after a patient (the file `SMITH_JANE_MRN67890.csv`, series ids
that are record numbers) reach no log line and nothing shareable (`report/`, `export/`,
`predictions/`) and no data file of the run folder; ids are keyed opaque ids, stable under one
site key, different under another. `config.yaml` keeps the config as written (the README says
so); the report, the model cards and `export/config.json` show it with paths and id lists
replaced by opaque ids."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.promises.cli import Result, ssl_domains

NAME = "SMITH_JANE_MRN67890"
PATIENTS = [f"MRN{70000 + i}" for i in range(12)]
SECRETS = ("SMITH", "JANE", "MRN700", "MRN67890", "/private")
PICTURES = re.compile(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=]+")  # random letters


def _signals(folder: Path) -> Path:
    """``private/SMITH_JANE_MRN67890.csv``: one 160-point series per patient id, a third of
    the points of every other patient's series labelled 1 (their amplitude doubled)."""
    folder.mkdir(parents=True)
    path = folder / f"{NAME}.csv"
    rng = np.random.RandomState(0)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["patient", "value", "label"])
        for k, pid in enumerate(PATIENTS):
            ill = k % 2
            for t in range(160):
                flag = int(ill and t >= 100)
                out.writerow([pid, f"{rng.randn() * (3.0 if flag else 1.0):.4f}", flag])
    return path


def _config(tmp_path: Path, data: Path) -> Path:
    def loader(ids: list[str]) -> dict:
        return {"name": "csv", "args": {"path": str(data), "id_column": "patient", "label_column": "label",
                                        "ids": ids, "window": 32, "stride": 16}}

    cfg = {
        "name": "privacy", "output_dir": str(tmp_path / "runs"), "seed": 0,
        "backbone": {"name": "mlp", "args": {"input_shape": [1, 32], "hidden": 16}},
        "pretrain": {"data": {"train": loader(PATIENTS), "batch_size": 32}, "task": {"name": "denoising"},
                     "train": {"epochs": 1, "progress": False}},
        "finetune": {"data": {"train": loader(PATIENTS[:8]), "test": loader(PATIENTS[8:]), "batch_size": 16},
                     "task": {"name": "classification"},
                     "train": {"epochs": 2, "progress": False}},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _leaks(text: str) -> list[str]:
    text = PICTURES.sub("", text)
    return [s for s in SECRETS if s in text]


@pytest.fixture(scope="module")
def privacy_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Result]]:
    tmp = tmp_path_factory.mktemp("privacy")
    data = _signals(tmp / "private")
    cfg = _config(tmp, data)
    results = [ssl_domains("pretrain", str(cfg)), ssl_domains("finetune", str(cfg)),
               ssl_domains("report", str(tmp / "runs" / "privacy"))]
    for res in results:
        assert res.code == 0, res.err
    return tmp / "runs" / "privacy", results


def test_privacy_shareable_outputs_show_inputs_only_by_opaque_id(privacy_run: tuple[Path, list[Result]]) -> None:
    run, _ = privacy_run
    shared = [p for folder in ("report", "export", "predictions") for p in (run / folder).rglob("*")
              if p.is_file() and p.suffix in (".html", ".md", ".json", ".csv")]
    assert {p.name for p in shared} >= {"report.html", "README.md", "config.json", "test.csv"}
    for path in shared:
        assert _leaks(path.read_text(encoding="utf-8")) == [], path
    # the report shows the resolved config, its path and id list by opaque id
    html = (run / "report" / "report.html").read_text(encoding="utf-8")
    assert "path: opaque:" in html and "- opaque:" in html and "id_column: patient" in html
    # config.yaml keeps the config as written (README: keep identifiers out of folder names)
    assert NAME in (run / "config.yaml").read_text()


def test_privacy_run_folder_data_files_and_logs_never_name_an_input(privacy_run: tuple[Path, list[Result]]) -> None:
    run, results = privacy_run
    for name in ("metrics.jsonl", "eval.json", "environment.json", "init_report.json"):
        text = (run / name).read_text(encoding="utf-8")
        assert _leaks(text) == [], name
    for res in results:  # what the commands logged and printed
        assert _leaks(res.err) == [] and _leaks(res.out.replace(str(run), "")) == []


def test_privacy_ids_are_keyed_opaque_ids_stable_per_site_key(privacy_run: tuple[Path, list[Result]],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    run, _ = privacy_run
    data = run.parents[1] / "private" / f"{NAME}.csv"
    args = ["--loader", "csv", "--arg", f"path={data}", "--arg", "id_column=patient", "--arg", "label_column=label",
            "--arg", "window=32", "--arg", "stride=16"]

    def ids(out: Path) -> list[str]:
        res = ssl_domains("predict", str(run), *args, "--out", str(out))
        assert res.code == 0, res.err
        return [row["id"] for row in csv.DictReader(out.open())]

    first, again = ids(run.parent / "a.csv"), ids(run.parent / "b.csv")
    assert first == again and len(set(i.split(":")[0] for i in first)) == len(PATIENTS)
    assert all(_leaks(i) == [] for i in first)
    monkeypatch.setenv("SSL_DOMAINS_ID_KEY", "another-site-key-0123456789")
    other = ids(run.parent / "c.csv")
    assert len(other) == len(first) and not set(other) & set(first)
    # the test-set predictions of the run hold the same kind of ids as predict (no names)
    rows = list(csv.DictReader((run / "predictions" / "test.csv").open()))
    assert rows and set(r["id"] for r in rows) <= set(first)
    assert json.loads((run / "export" / "config.json").read_text())["backbone"]["name"] == "mlp"
