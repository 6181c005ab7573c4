"""Readers of run-folder files: absent -> None, broken -> DataError naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ssl_domains.engine.assess import read_predictions as engine_read_predictions
from ssl_domains.errors import DataError
from ssl_domains.layout.predictions import read_labeled_predictions as read_predictions
from ssl_domains.layout.sweep import find_sweep, parse_cell_name
from ssl_domains.report.artifacts import read_json, read_metrics, read_results


def test_absent_files_are_none(tmp_path: Path) -> None:
    assert read_json(tmp_path / "x.json") is None
    assert read_metrics(tmp_path / "m.jsonl") is None
    assert read_predictions(tmp_path / "p.csv") is None
    assert read_results(tmp_path / "r.csv") is None
    assert find_sweep(tmp_path) is None


def test_multiclass_predictions(tmp_path: Path) -> None:
    path = tmp_path / "test.csv"
    path.write_text("id,label,score_0,score_1,score_2,decision\n"
                    "a,0,0.7,0.2,0.1,0\nb,2,0.1,0.1,0.8,2\n")
    p = read_predictions(path)
    assert not p.binary and p.scores.shape == (2, 3)
    assert p.labels.tolist() == [0, 2] and p.decisions.tolist() == [0, 2]
    np.testing.assert_allclose(p.scores[1], [0.1, 0.1, 0.8])


def test_unlabelled_rows_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "test.csv"
    path.write_text("id,label,score\na,1,0.9\nb,,0.3\n")
    p = read_predictions(path)
    assert p.labels.tolist() == [1] and p.scores.tolist() == [0.9]


def test_one_parse_two_rules_for_unlabelled_rows(tmp_path: Path) -> None:
    """The report reads the engine's parse: same scores; it drops unlabelled rows where the
    engine keeps every row and has no labels."""
    path = tmp_path / "test.csv"
    path.write_text("id,label,score,decision\na,1,0.9,1\nb,,0.3,0\nc,0,0.25,0\n")
    engine = engine_read_predictions(path)
    assert engine.ids == ["a", "b", "c"] and engine.labels is None
    np.testing.assert_array_equal(engine.probs[:, 1], [0.9, 0.3, 0.25])
    report = read_predictions(path)
    assert report.labels.tolist() == [1, 0] and report.decisions.tolist() == [1, 0]
    np.testing.assert_array_equal(report.scores, engine.probs[[0, 2], 1])


@pytest.mark.parametrize(("name", "content", "reader", "message"), [
    ("e.json", "[1, 2]", read_json, "e.json: expected a JSON object, got list"),
    ("e.json", "{", read_json, "e.json: not valid JSON"),
    ("m.jsonl", "garbage\n", read_metrics, "m.jsonl: no JSON records"),
    ("p.csv", "id,score\na,0.1\n", read_predictions, "p.csv: no 'label' column"),
    ("p.csv", "id,label\na,1\n", read_predictions, "p.csv: no 'score' or 'score_0"),
    ("p.csv", "id,label,score\na,1,high\n", read_predictions, "p.csv: non-numeric"),
    ("r.csv", "arm,seed\nssl,0\n", read_results, "r.csv: missing column\\(s\\) n_labels"),
])
def test_broken_files(tmp_path: Path, name: str, content: str, reader, message: str) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=message):
        reader(tmp_path / name)


def test_cell_names() -> None:
    assert parse_cell_name("linear_probe_50_3") == ("linear_probe", "50", "3")
    assert parse_cell_name("baseline:logistic_0.1_0") == ("baseline:logistic", "0.1", "0")
    assert parse_cell_name("ssl") is None
