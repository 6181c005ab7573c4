"""ssl_domains.layout owns every run, export and sweep file: no other module spells their
names; export configs are typed and checked on read; one writer of results.csv."""

from __future__ import annotations

import ast
import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from ssl_domains.errors import CheckpointError
from ssl_domains.layout import names
from ssl_domains.layout.export import (
    ExportConfig,
    ExportFolder,
    find_export,
    read_export_config,
    write_export,
)
from ssl_domains.layout.numbers import fmt, headline_metric
from ssl_domains.layout.sweep import SweepFolder, cell_name, parse_cell_name, write_table
from tests.conftest import REPO

FIXTURES = Path(__file__).parent / "fixtures"
SOURCES = [REPO / "ssl_domains", *sorted((REPO / "plugins").glob("*/ssl_domains_*"))]
LAYOUT = REPO / "ssl_domains" / "layout"


def _spelled_outside_layout() -> list[str]:
    """``file:line: name`` for each string literal equal to an artifact file name, and each
    path join (``x / "cells"``) with an artifact folder name, outside ssl_domains/layout."""
    found = []
    for root in SOURCES:
        for path in sorted(root.rglob("*.py")):
            if LAYOUT in path.parents:
                continue
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', '?')}"
                if isinstance(node, ast.Constant) and node.value in names.FILE_NAMES:
                    found.append(f"{where}: {node.value!r}")
                elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
                    for side in (node.left, node.right):
                        if isinstance(side, ast.Constant) and side.value in names.FOLDER_NAMES:
                            found.append(f"{where}: / {side.value!r}")
    return found


def test_artifact_names_are_spelled_only_in_the_layout_package() -> None:
    assert _spelled_outside_layout() == []


def test_the_check_finds_a_name_spelled_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "ssl_domains_fake"
    pkg.mkdir()
    (pkg / "x.py").write_text('from pathlib import Path\nP = Path("r") / "cells" / "eval.json"\n')
    monkeypatch.setattr(sys.modules[__name__], "SOURCES", [pkg])
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert sorted(_spelled_outside_layout()) == ["ssl_domains_fake/x.py:2: 'eval.json'",
                                                 "ssl_domains_fake/x.py:2: / 'cells'"]


def test_layout_imports_neither_torch_nor_pandas() -> None:
    code = ("import sys; import ssl_domains.layout.export, ssl_domains.layout.run, "
            "ssl_domains.layout.sweep, ssl_domains.layout.predictions, ssl_domains.layout.numbers; "
            "print(sorted(m for m in ('torch', 'pandas', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_export_written_by_the_earlier_version_reads_typed() -> None:
    configs = sorted(FIXTURES.rglob(names.EXPORT_CONFIG_FILE))
    kinds = {str(p.relative_to(FIXTURES)): read_export_config(p).kind for p in configs}
    assert kinds["run_finetune/export/config.json"] == "network"
    assert kinds["run_select_auto/export/config.json"] == "ensemble"
    assert kinds["run_select_auto/export/baseline/config.json"] == "baseline"
    assert kinds["run_select_auto/export/deep/config.json"] == "network"
    ens = read_export_config(FIXTURES / "run_select_auto" / "export")
    assert ens.weight == 0.5 and ens.members == {"deep": "ssl", "baseline": "baseline:signal_stats"}
    net = read_export_config(FIXTURES / "run_finetune" / "export")
    assert net.task is not None and net.task.name == "anomaly_classification"
    assert net.input_spec is not None and net.input_spec.channels == 3 and net.num_classes == 2
    # written again, an old export config is the same JSON
    raw = json.loads((FIXTURES / "run_finetune" / "export" / "config.json").read_text())
    assert net.to_json() == raw


@pytest.mark.parametrize(("content", "message"), [
    ("{", r"config\.json: not a readable export config \("),
    ('{"stage": "pretrain"}', r"config\.json: not an ssl-domains export config: backbone: Field required$"),
    ('{"format": "x/2", "stage": "pretrain", "backbone": {"name": "mlp"}}',
     r"config\.json: not an ssl-domains export config: format: Input should be 'ssl-domains-export/1'$"),
    ('{"stage": "finetune", "backbone": {"name": "mlp"}, "treshold": 0.5}',
     r"config\.json: not an ssl-domains export config: treshold: Extra inputs are not permitted$"),
])
def test_a_bad_export_config_is_one_line_naming_the_file(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(CheckpointError, match=message) as err:
        read_export_config(tmp_path)
    assert "\n" not in str(err.value) and str(tmp_path) in str(err.value)


def test_write_export_then_find_and_read_it(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    config = ExportConfig(stage="pretrain", backbone={"name": "mlp", "args": {"hidden": 4}}, steps=3)
    lin = torch.nn.Linear(2, 2)
    folder = write_export(tmp_path / "run" / "export", config, card="# card\n", backbone=lin.state_dict())
    assert sorted(p.name for p in folder.path.iterdir()) == ["README.md", "backbone.safetensors", "config.json"]
    assert find_export(tmp_path / "run") == folder and find_export(folder.path) == folder
    assert find_export(tmp_path) is None
    assert read_export_config(tmp_path / "run" / "export") == config
    assert json.loads(folder.config.read_text()) == {
        "format": "ssl-domains-export/1", "stage": "pretrain", "backbone": {"name": "mlp", "args": {"hidden": 4}},
        "steps": 3}
    assert torch.equal(load_file(str(folder.backbone))["weight"], lin.weight.detach())
    assert ExportFolder(tmp_path).deep.path == tmp_path / "deep"


def test_cell_names_round_trip_and_the_shared_format() -> None:
    name = cell_name("baseline-logistic", "0.05", 2)
    assert name == "baseline-logistic_0.05_2"
    assert parse_cell_name(name) == ("baseline-logistic", "0.05", "2")
    assert parse_cell_name("linear_probe_n50_0") == ("linear_probe", "n50", "0")
    assert parse_cell_name("junk") is None
    assert [fmt(0.81234), fmt(None), fmt(math.nan), fmt(3), fmt(0.1, signed=True), fmt("x")] == \
        ["0.812", "n/a", "n/a", "3", "+0.100", "x"]
    assert headline_metric(["f1", "auroc", "f1"]) == "auroc"
    assert headline_metric(["dice_mean"]) == "dice_mean" and headline_metric([]) is None


def test_one_results_table_writer(tmp_path: Path) -> None:
    """The sweep and the demo write results.csv with :func:`write_table`; the report reads it."""
    from ssl_domains.report.artifacts import read_results

    rows = [{"arm": "ssl", "n_labels": 40, "fraction": 0.1, "seed": 0, "metric": "auroc", "value": 0.75},
            {"arm": "scratch", "n_labels": 40, "fraction": math.nan, "seed": 0, "metric": "auroc",
             "value": None}]
    path = write_table(SweepFolder(tmp_path).results, rows)
    assert path == tmp_path / "results.csv"
    with path.open(newline="") as f:
        assert list(csv.reader(f)) == [["arm", "n_labels", "fraction", "seed", "metric", "value"],
                                       ["ssl", "40", "0.1", "0", "auroc", "0.75"],
                                       ["scratch", "40", "", "0", "auroc", ""]]
    df = read_results(path)
    assert df is not None and df["value"].iloc[0] == 0.75 and math.isnan(df["value"].iloc[1])
