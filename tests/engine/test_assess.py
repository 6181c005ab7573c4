"""The eval.json schema: what the tail writes, that it reads back unchanged, old files, bad files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from ssl_domains.config import ComponentRef
from ssl_domains.engine.assess import (
    Assessment,
    Counts,
    Predictions,
    finish_run,
    read_assessment,
    read_predictions,
    rescore,
    write_assessment,
)
from ssl_domains.errors import DataError
from ssl_domains.scoring.metrics import classification_metrics
from ssl_domains.scoring.thresholds import choose_threshold


def _preds(seed: int, n: int = 80, classes: int = 2, one_class: bool = False) -> Predictions:
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype=int) if one_class else rng.integers(0, classes, n)
    if not one_class:
        y[:classes] = np.arange(classes)
    logits = rng.normal(size=(n, classes)) + 1.5 * np.eye(classes)[y]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return Predictions([f"item{i}" for i in range(n)], probs, y, loss=0.5)


COUNTS = Counts(n_train=40, n_val=80, n_test=80, n_pool=400, n_labels=120,
                label_counts={"train": {"0": 20, "1": 20}, "val": {"0": 40, "1": 40}})


def test_tail_writes_threshold_metrics_intervals_and_csvs(tmp_path: Path) -> None:
    val, test = _preds(0), _preds(1)
    a = finish_run(tmp_path, val, test, threshold_rule="youden", counts=COUNTS,
                   warnings=["few labels"], details={"init": "scratch", "steps": 7})
    thr = choose_threshold(val.labels, val.scores, "youden")
    ev = json.loads((tmp_path / "eval.json").read_text())
    # the keys the report, the model card and the sweep read
    assert ev["threshold"] == thr and ev["threshold_rule"] == "youden"
    assert ev["test"]["auroc"] == pytest.approx(classification_metrics(test.labels, test.scores, thr)["auroc"])
    assert ev["val"]["loss"] == 0.5
    assert (ev["n_train"], ev["n_val"], ev["n_test"], ev["n_pool"], ev["n_labels"]) == (40, 80, 80, 400, 120)
    assert ev["label_counts"]["train"] == {"0": 20, "1": 20}
    assert ev["init"] == "scratch" and ev["steps"] == 7 and ev["warnings"] == ["few labels"]
    low, high = ev["test_intervals"]["auroc"]
    assert low < ev["test"]["auroc"] < high and "bootstrap" in ev["test_intervals"]["method"]
    assert "undefined_metrics" not in ev and "selection" not in ev
    rows = list(csv.DictReader((tmp_path / "predictions" / "test.csv").open()))
    assert [int(r["decision"]) for r in rows] == [int(float(r["score"]) >= thr) for r in rows]
    assert a.to_json() == ev


def test_round_trip_through_the_file(tmp_path: Path) -> None:
    a = finish_run(tmp_path, _preds(2), _preds(3), threshold_rule="f1", counts=COUNTS)
    a = rescore(a, "eval_other", _preds(4, n=30), a.threshold)
    record = {"chosen": "ensemble", "metric": "auroc", "score": 0.8, "interval": [0.6, 0.9],
              "runner_up": "ssl", "runner_up_score": None, "scores": {"ssl": 0.7, "ensemble": 0.8},
              "method": "validation (80 items)", "n_items": 80,
              "ensemble": {"members": ["ssl", "baseline:logistic"], "weight": 0.75, "weight_of": "ssl"}}
    a = a.updated(selection=record, baseline={"name": "logistic", "args": {"C": 1.0}},
                  candidates={"ssl": {"selection_auroc": 0.7, "test_auroc": None}})
    assert a.selection is not None and a.selection.ensemble is not None and a.selection.ensemble.weight == 0.75
    assert a.baseline is not None and a.baseline.args == {"C": 1.0}
    write_assessment(tmp_path, a)
    back = read_assessment(tmp_path)
    assert back == a and back.to_json() == a.to_json()
    raw = json.loads((tmp_path / "eval.json").read_text())
    assert raw["selection"] == record  # written as given: no keys added
    assert raw["candidates"] == {"ssl": {"selection_auroc": 0.7, "test_auroc": None}}
    assert a.updated(evaluations={}).evaluations == {} and "eval_other" not in a.updated(evaluations={}).to_json()
    with pytest.raises(ValueError, match="chosen"):
        a.updated(selection={"score": 0.8})  # a selection names what was chosen
    with pytest.raises(ValueError, match="selection"):  # unvalidated copies are checked on write
        write_assessment(tmp_path, a.model_copy(update={"selection": {"chosen": "ssl", "extra": 1}}))
    assert raw["n_eval_other"] == 30 and "auroc" in raw["eval_other"]
    assert back.evaluations["other"].n == 30 and back.metrics("eval_other") == raw["eval_other"]
    assert back.test_intervals is not None and back.test_intervals.get("auroc") == tuple(raw["test_intervals"]["auroc"])
    p = read_predictions(tmp_path / "predictions" / "val.csv")
    assert np.array_equal(p.probs[:, 1], _preds(2).probs[:, 1]) and np.array_equal(p.labels, _preds(2).labels)


def test_multiclass_and_one_class_test(tmp_path: Path) -> None:
    a = finish_run(tmp_path / "m", _preds(5, classes=3), _preds(6, classes=3), threshold_rule="youden",
                   counts=COUNTS)
    assert a.threshold is None and a.test_intervals is None and "accuracy" in (a.test or {})
    assert json.loads((tmp_path / "m" / "eval.json").read_text())["threshold"] is None
    assert list(read_predictions(tmp_path / "m" / "predictions" / "test.csv").probs.shape) == [80, 3]
    one = finish_run(tmp_path / "o", _preds(7), _preds(8, one_class=True), threshold_rule="youden",
                     counts=COUNTS)
    text = (tmp_path / "o" / "eval.json").read_text()
    ev = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert ev["test"]["auroc"] is None and one.test_intervals is None
    assert ev["undefined_metrics"]["test"]["auroc"] == "one class only (0) in the test labels"
    assert any(w.startswith("test: ") for w in ev["warnings"])


def test_old_files_read(tmp_path: Path) -> None:
    """A baseline cell of an earlier version (NaN written by json.dumps, no warnings) and a
    bare count file still read."""
    (tmp_path / "eval.json").write_text(
        '{"threshold": 0.4, "threshold_rule": "youden", "val": {"auroc": NaN}, "n_train": 3, "n_val": 4, '
        '"label_counts": {"train": {"0": 2, "1": 1}}, "baseline": {"name": "logistic", "args": {}}, '
        '"init": "baseline", "test": {"auroc": 0.7}, "n_test": 9, "seconds": 0.1}')
    a = read_assessment(tmp_path)
    assert a.baseline == ComponentRef(name="logistic") and a.warnings is None and a.test == {"auroc": 0.7}
    assert a.to_json()["val"] == {"auroc": None}
    (tmp_path / "eval.json").write_text('{"n_train": 60, "n_val": 30}')
    assert read_assessment(tmp_path).counts.n_val == 30


@pytest.mark.parametrize(("text", "problem"), [
    ("{", "not valid JSON"),
    ("[1, 2]", "expected a JSON object, got list"),
    ('{"val": 3}', "not an eval.json: val: "),
    ('{"n_train": "many"}', "not an eval.json: n_train: "),
    ('{"threshold": 0.5, "thresold_rule": "youden"}', "not an eval.json: thresold_rule: "),
])
def test_malformed_file_is_a_one_line_error(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "eval.json").write_text(text)
    with pytest.raises(DataError) as err:
        read_assessment(tmp_path)
    assert str(err.value).startswith(f"{tmp_path / 'eval.json'}: {problem}")
    assert "\n" not in str(err.value)


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"eval\.json: missing"):
        read_assessment(tmp_path)
    assert Assessment().to_json() == {"threshold": None, "val": {}}

