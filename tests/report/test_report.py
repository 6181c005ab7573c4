"""Reports of synthetic run and sweep folders: the numbers shown equal the files' numbers."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ssl_domains.errors import DataError
from ssl_domains.report.artifacts import summarize
from ssl_domains.report.htmlpage import fmt
from ssl_domains.report.pages import build_report, build_sweep_report

from .conftest import write_sweep


class Tables(HTMLParser):
    """Collects tables by id: rows of (text, data-value) cells, and every <img> src."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[tuple[str, str | None]]]] = {}
        self.images: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._value: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("id") or f"anon{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell, self._value = [], a.get("data-value")
        elif tag == "img":
            self.images.append(a.get("src", ""))

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table:
            self.tables[self._table][-1].append(("".join(self._cell), self._value))
            self._cell = None
        elif tag == "table":
            self._table = None

    def rows(self, table_id: str) -> list[list[tuple[str, str | None]]]:
        return self.tables[table_id][1:]  # skip the header row


def parse(path: Path) -> tuple[str, Tables]:
    text = path.read_text(encoding="utf-8")
    parser = Tables()
    parser.feed(text)
    return text, parser


def assert_number(shown: tuple[str, str | None], expected: float) -> None:
    text, exact = shown
    assert exact is not None, f"cell {text!r} has no data-value"
    if pd.isna(expected):
        assert exact == "nan" and text == "n/a"
    else:
        assert float(exact) == float(expected)  # exact value, not rounded
        assert text == fmt(expected)  # shown with 3 decimals (integers as is)


def assert_summary_table(parser: Any, summary: pd.DataFrame) -> None:
    """The report's summary table shows exactly the rows and values of the summary."""
    shown = parser.rows("summary-table")
    assert len(shown) == len(summary)
    for row, (_, expected) in zip(shown, summary.iterrows()):
        assert (row[0][0], row[1][0], row[4][0]) == (expected["kind"], expected["arm"],
                                                      expected["metric"])
        for i, col in enumerate(("mean", "std", "n", "ci_low", "ci_high"), start=5):
            assert_number(row[i], expected[col])


def assert_results_table(parser: Any, results: pd.DataFrame) -> None:
    """The report's results table shows exactly the rows and values of results.csv."""
    rows = parser.rows("results-table")
    assert len(rows) == len(results)
    for row, (_, expected) in zip(rows, results.iterrows()):
        assert [row[0][0], row[4][0]] == [expected["arm"], expected["metric"]]
        for i, col in ((1, "n_labels"), (2, "fraction"), (3, "seed"), (5, "value")):
            assert_number(row[i], expected[col])


def assert_self_contained(text: str, parser: Tables) -> None:
    assert parser.images and all(src.startswith("data:image/png;base64,")
                                 for src in parser.images)
    assert "<script" not in text and "<link" not in text and "@import" not in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", text)
    assert "url(" not in text


def test_run_report_numbers_equal_eval_json(run_dir: Path) -> None:
    html = build_report(run_dir)
    assert html == run_dir / "report" / "report.html"
    text, parser = parse(html)
    ev = json.loads((run_dir / "eval.json").read_text())
    rows = parser.rows("eval-metrics")
    assert [r[0][0] for r in rows] == list(ev["val"])
    for row in rows:
        name = row[0][0]
        assert_number(row[1], ev["val"][name])
        assert_number(row[2], ev["test"][name])
        low, high = float(row[3][1]), float(row[4][1])  # bootstrap interval contains the point
        assert low <= ev["test"][name] <= high or name in ("sensitivity_at_specificity",)
    info = {r[0][0]: r[1] for r in parser.rows("eval-info")}
    assert_number(info["threshold"], ev["threshold"])
    assert info["threshold_rule"][0] == "youden"
    assert_number(info["n_test"], ev["n_test"])
    assert_number(info["label_counts.test.1"], ev["label_counts"]["test"]["1"])
    assert_self_contained(text, parser)
    for name in ("roc.png", "pr.png", "confusion_matrix.png", "loss_curves.png",
                 "pretext_reconstruction.png"):
        assert (run_dir / "report" / name).stat().st_size > 1000, name
    assert "case0" not in text  # prediction ids never shown
    assert f"Test: auroc {fmt(ev['test']['auroc'])} [" in text  # with its bootstrap interval
    assert "demo &lt;run&gt; &amp; co" in text and "<run>" not in text  # config escaped
    assert "Label efficiency" in text and "no sweep results" in text
    env = {r[0][0]: r[1][0] for r in parser.rows("environment")}
    assert env["torch"] == "2.13.0" and env["plugins.medical"] == "0.1.0"


def test_sweep_report_numbers_equal_results_csv(sweep_dir: Path) -> None:
    text, parser = parse(build_sweep_report(sweep_dir))
    results = pd.read_csv(sweep_dir / "sweep" / "results.csv", float_precision="round_trip")
    assert_results_table(parser, results)
    summary = summarize(results)
    assert_summary_table(parser, summary)
    # the answer: ssl-scratch difference on auroc per size, equal to the summary rows
    diff = summary[(summary["kind"] == "difference") & (summary["metric"] == "auroc")]
    answer = parser.rows("answer-table")
    assert [int(r[0][1]) for r in answer] == sorted(diff["n_labels"])
    for row, (_, d) in zip(answer, diff.sort_values("n_labels").iterrows()):
        assert_number(row[4], d["mean"])
        assert_number(row[5], d["ci_low"])
        assert_number(row[6], d["ci_high"])
    assert "SSL beat scratch on auroc at 1 of 4" in text
    assert "2 of 3 cells finished. Unfinished: ssl_1000_1" in text
    for name in ("label_efficiency_auroc.png", "label_efficiency_balanced_accuracy.png",
                 "difference_auroc.png", "roc.png", "confusion_matrix.png",
                 "cell_loss_curves.png"):
        assert (sweep_dir / "report" / name).is_file(), name
    assert "From cell ssl_1000_0." in text
    assert_self_contained(text, parser)


def test_sweep_results_directly_in_folder(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "s", with_cells=False) / "sweep"
    html = build_report(sweep)
    assert html == sweep / "report" / "report.html"
    text = html.read_text()
    assert "answer-table" in text
    assert "no predictions/val.csv or predictions/test.csv in sweep" in text


def test_partial_folder_gets_notes(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("name: half\n")
    (tmp_path / "metrics.jsonl").write_text(
        '{"stage": "pretrain", "step": 0, "split": "train", "loss": 1.0}\n'
        '{"stage": "pretrain", "step": 1, "split": "train", "loss": 0.5}\n{"stage": "pre')
    (tmp_path / "predictions").mkdir()
    (tmp_path / "predictions" / "test.csv").write_text("id,score\na,0.5\n")
    (tmp_path / "environment.json").write_text("{not json")
    text, parser = parse(build_report(tmp_path))
    assert "1 unreadable line(s) of metrics.jsonl were skipped" in text
    assert "test predictions skipped" in text and "no &#x27;label&#x27; column" in text
    assert "environment skipped" in text and "not valid JSON" in text
    assert "no eval.json in this run folder" in text
    assert "ROC and PR curves skipped" in text
    assert "no figures/*.png from a pretext task" in text
    assert (tmp_path / "report" / "loss_curves.png").is_file()
    assert len(parser.images) == 1


def test_empty_folder_still_reports(tmp_path: Path) -> None:
    text, _ = parse(build_report(tmp_path))
    assert "no config.yaml in this folder" in text and "no metrics.jsonl" in text


def test_rebuild_removes_stale_pictures(run_dir: Path) -> None:
    build_report(run_dir)
    (run_dir / "predictions" / "val.csv").unlink()
    (run_dir / "predictions" / "test.csv").unlink()
    build_report(run_dir)
    assert not (run_dir / "report" / "roc.png").exists()


def test_errors_name_the_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no sweep/results.csv here; run `ssl-domains sweep`"):
        build_sweep_report(tmp_path)
    with pytest.raises(DataError, match="missing: not a folder"):
        build_report(tmp_path / "missing")


def test_multiclass_run(tmp_path: Path) -> None:
    import numpy as np

    from ssl_domains.scoring.metrics import classification_metrics

    rng = np.random.default_rng(0)
    y = np.arange(90) % 3
    s = rng.dirichlet(np.ones(3), 90)
    s[np.arange(90), y] += 1.0
    s /= s.sum(1, keepdims=True)
    (tmp_path / "predictions").mkdir()
    frame = pd.DataFrame({"id": range(90), "label": y, "decision": s.argmax(1),
                          **{f"score_{k}": s[:, k] for k in range(3)}})
    frame.to_csv(tmp_path / "predictions" / "test.csv", index=False)
    m = classification_metrics(y, s)
    (tmp_path / "eval.json").write_text(json.dumps(
        {"threshold": None, "threshold_rule": "argmax", "val": {}, "test": m,
         "label_counts": {"test": {"2": 30, "0": 30, "1": 30}}}))
    text, parser = parse(build_report(tmp_path))
    rows = {r[0][0]: r for r in parser.rows("eval-metrics")}
    assert_number(rows["auroc"][2], m["auroc"])
    assert "arg-max decision" in text
    assert [r[0][0] for r in parser.rows("eval-info")][2:5] == [
        "label_counts.test.0", "label_counts.test.1", "label_counts.test.2"]
    assert (tmp_path / "report" / "roc.png").is_file()
    assert "PR skipped: no split has binary scores" in text


def test_selection_is_shown_and_a_malformed_eval_json_is_a_note(run_dir: Path, sweep_dir: Path) -> None:
    record = {"chosen": "ensemble", "metric": "auroc", "score": 0.8123, "interval": [0.61, 0.93],
              "runner_up": "ssl", "runner_up_score": 0.7, "scores": {"ssl": 0.7, "ensemble": 0.8123},
              "method": "validation (120 items, chosen by validation AUROC)", "n_items": 120,
              "ensemble": {"members": ["ssl", "baseline:logistic"], "weight": 0.75, "weight_of": "ssl"}}
    ev = json.loads((run_dir / "eval.json").read_text())
    (run_dir / "eval.json").write_text(json.dumps({**ev, "selection": record}))
    text, _ = parse(build_report(run_dir))
    assert ("Model chosen by select: auto: ensemble, selection AUROC 0.812 (interval "
            "0.610 to 0.930, bootstrap), chosen by validation (120 items, chosen by validation AUROC); "
            "runner-up ssl (0.700); ensemble of ssl and baseline:logistic, weight 0.75 on ssl.") in text
    # a record that says its interval's level (select_alpha 0.1): the report says that level
    method = "90% percentile bootstrap over the selection items (1000 class-stratified resamples)"
    (run_dir / "eval.json").write_text(json.dumps({**ev, "selection": {**record, "interval_method": method}}))
    text, _ = parse(build_report(run_dir))
    assert f"selection AUROC 0.812 (interval 0.610 to 0.930, {method}), chosen by" in text
    assert "95%" not in text.split("Model chosen by")[1].split("chosen by validation")[0]
    auto = sweep_dir / "sweep" / "cells" / "auto_1000_0"
    auto.mkdir()
    (auto / "selection.json").write_text(json.dumps(record))
    bad = sweep_dir / "sweep" / "cells" / "auto_1000_1"
    bad.mkdir()
    (bad / "selection.json").write_text(json.dumps({"score": 0.5}))
    _, parser = parse(build_sweep_report(sweep_dir))
    rows = parser.rows("auto-table")
    assert [c[0] for c in rows[0]][:3] == ["1000", "0", "ensemble"] and len(rows) == 1
    assert_number(rows[0][3], 0.8123)
    assert_number(rows[0][4], 0.61)
    assert rows[0][-1][0] == "validation"
    (run_dir / "eval.json").write_text(json.dumps({**ev, "n_test": "many"}))
    text, _ = parse(build_report(run_dir))
    assert "eval.json skipped: " in text and "eval.json: not an eval.json: n_test: " in text
    assert "no eval.json in this run folder" in text
