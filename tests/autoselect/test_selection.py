"""Choosing on validation data only: ensemble weights, collapse, the choice, derived cells."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ssl_domains.autoselect import choice as sel
from ssl_domains.autoselect import derived as auto
from ssl_domains.engine.assess import Predictions, read_predictions, write_predictions
from ssl_domains.errors import ContractError, SSLDomainsError
from ssl_domains.scoring.metrics import classification_metrics


def _two(p: np.ndarray) -> np.ndarray:
    return np.stack([1 - p, p], axis=1)


def test_ensemble_weight_is_the_best_validation_auroc() -> None:
    y = np.array([0, 0, 0, 1, 1, 1])
    deep = _two(np.array([0.1, 0.2, 0.9, 0.3, 0.8, 0.7]))    # AUROC 6/9
    base = _two(np.array([0.4, 0.5, 0.1, 0.45, 0.35, 0.55]))  # AUROC 6/9
    w, tried = sel.ensemble_weight(y, deep, base)
    assert set(tried) == set(sel.WEIGHTS)
    assert tried[1.0] == pytest.approx(6 / 9) and tried[0.0] == pytest.approx(6 / 9)
    assert tried[0.25] == tried[0.5] == pytest.approx(8 / 9)  # the average beats both parts
    assert w == 0.5  # of the tied best weights, the even average
    # a perfect baseline and a useless deep model: the baseline alone
    w, _ = sel.ensemble_weight(y, _two(np.full(6, 0.5)), _two(y * 0.8 + 0.1))
    assert w in (0.0, 0.25, 0.5, 0.75) and sel.auroc(y, sel.combine(_two(np.full(6, 0.5)),
                                                                    _two(y * 0.8 + 0.1), w)) == 1
    # ties go to the even average
    w, _ = sel.ensemble_weight(y, _two(y * 0.8 + 0.1), _two(y * 0.6 + 0.2))
    assert w == 0.5
    with pytest.raises(SSLDomainsError, match="same items and classes"):
        sel.combine(deep, base[:3], 0.5)


def test_collapse_detection() -> None:
    y = np.array([0, 1] * 10)
    good = _two(np.where(y == 1, 0.8, 0.2) + np.linspace(0, 0.01, 20))
    assert sel.collapse(y, good) == {"val_auroc": 1.0, "constant": False, "collapsed": False}
    flat = _two(np.full(20, 0.37))
    assert sel.collapse(y, flat)["constant"] and sel.collapse(y, flat)["collapsed"]
    # constant on test only
    assert sel.collapse(y, good, flat)["collapsed"] and not sel.collapse(y, good, good)["collapsed"]
    # AUROC at the limit collapses, just above does not
    rng = np.random.RandomState(0)
    s = rng.rand(20)
    r = sel.collapse(y, _two(s))
    assert r["collapsed"] == (r["val_auroc"] <= sel.COLLAPSE_AUROC)
    inverted = _two(np.where(y == 1, 0.2, 0.8))
    assert sel.collapse(y, inverted) == {"val_auroc": 0.0, "constant": False, "collapsed": True}
    # multi-class: macro AUROC, constant when every row is the same
    y3 = np.array([0, 1, 2] * 5)
    assert sel.collapse(y3, np.tile([0.2, 0.3, 0.5], (15, 1)))["constant"]
    assert not sel.collapse(y3, np.eye(3)[y3] * 0.7 + 0.1)["collapsed"]


def test_small_validation_and_folds() -> None:
    assert sel.small_validation([0, 1] * 9)            # 18 items
    assert sel.small_validation([0] * 40 + [1] * 9)    # 9 positives
    assert not sel.small_validation([0] * 30 + [1] * 10)
    assert sel.small_validation([1] * 50)              # one class
    y = np.array([0] * 12 + [1] * 8)
    folds = sel.cv_folds(y, seed=3)
    assert len(folds) == 5
    held = np.concatenate([h for _, h in folds])
    assert sorted(held.tolist()) == list(range(20))  # every item held out exactly once
    for tr, h in folds:
        assert not set(tr) & set(h) and (y[h] == 1).sum() in (1, 2)  # stratified
    assert [h.tolist() for _, h in folds] == [h.tolist() for _, h in sel.cv_folds(y, seed=3)]
    assert [h.tolist() for _, h in folds] != [h.tolist() for _, h in sel.cv_folds(y, seed=4)]
    assert len(sel.cv_folds([0, 0, 0, 1, 1, 1], seed=0)) == 3  # k drops to the smallest class
    groups = [f"case{i // 2}" for i in range(20)]
    for tr, h in sel.cv_folds(y, 0, groups):
        assert not {groups[i] for i in tr} & {groups[i] for i in h}
    with pytest.raises(SSLDomainsError, match="at least 2 labeled items"):
        sel.cv_folds([0, 0, 1], seed=0)


def test_choose_best_interval_runner_up_and_ties() -> None:
    y = np.array([0, 1] * 15)
    rng = np.random.RandomState(1)
    perfect = _two(np.where(y == 1, 0.9, 0.1))
    noisy = _two(np.clip(y * 0.3 + rng.rand(30) * 0.7, 0, 1))
    c = sel.choose(y, {"ssl": noisy, "baseline:logistic": perfect}, "validation")
    assert c.chosen == "baseline:logistic" and c.score == 1.0
    assert c.rule == "the best selection AUROC, and no candidate is simpler"
    assert c.runner_up == "ssl" and c.runner_up_score == pytest.approx(sel.auroc(y, noisy))
    assert c.low <= c.score <= c.high and c.high == 1.0
    d = c.as_dict()
    assert d["interval"] == [c.low, c.high] and d["method"] == "validation"
    # a tie goes to the simplest arm: a baseline (the config's first), the linear probe, ssl,
    # scratch, the ensemble last
    c = sel.choose(y, {"ensemble": perfect, "ssl": perfect, "baseline:x": perfect,
                       "baseline:y": perfect}, "validation")
    assert (c.chosen, c.runner_up) == ("baseline:x", "baseline:y")
    c = sel.choose(y, {"ensemble": perfect, "scratch": perfect, "ssl": perfect,
                       "linear_probe": perfect}, "validation")
    assert (c.chosen, c.runner_up) == ("linear_probe", "ssl")
    assert sel.rank_by_score({"ssl": 1.0, "ensemble": 1.0, "baseline:a": 0.9, "scratch": math.nan,
                              "baseline:b": 1.0}) == ["baseline:b", "ssl", "ensemble", "baseline:a"]
    with pytest.raises(SSLDomainsError, match="no candidate"):
        sel.choose(y, {}, "validation")


# ---------------------------------------------------------------- derived cells


def _cell(path: Path, val: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
          ) -> Path:
    """A finished cell folder: predictions (binary P(1)) and an eval.json."""
    for split, (y, p) in (("val", val), ("test", test)):
        write_predictions(path / "predictions" / f"{split}.csv",
                          Predictions([f"i{j}" for j in range(len(y))], _two(p), y, None), 0.5)
    ev = {"threshold": 0.5, "n_train": 40, "n_val": len(val[0]), "n_labels": 40 + len(val[0]),
          "n_pool": 400, "n_test": len(test[0]),
          "val": classification_metrics(val[0], val[1], 0.5),
          "test": classification_metrics(test[0], test[1], 0.5)}
    (path / "eval.json").write_text(json.dumps(ev))
    return path


@pytest.fixture
def cells(tmp_path: Path) -> dict[str, Path]:
    """An ssl cell and two baselines on the same 40 validation and 60 test items."""
    rng = np.random.RandomState(0)
    yv, yt = np.array([0, 1] * 20), np.array([0, 1] * 30)

    def scores(y: np.ndarray, signal: float) -> np.ndarray:
        return 1 / (1 + np.exp(-(signal * (2 * y - 1) + rng.randn(len(y)))))

    return {
        "ssl": _cell(tmp_path / "ssl", (yv, scores(yv, 1.0)), (yt, scores(yt, 1.0))),
        "baseline:a": _cell(tmp_path / "a", (yv, scores(yv, 0.2)), (yt, scores(yt, 0.2))),
        "baseline:b": _cell(tmp_path / "b", (yv, scores(yv, 1.2)), (yt, scores(yt, 1.2))),
    }


def _flip_test_labels(cells: dict[str, Path]) -> None:
    """Alter every cell's test labels (as if the test set were different)."""
    for path in cells.values():
        csv = path / "predictions" / "test.csv"
        df = pd.read_csv(csv, dtype={"id": str})
        df["label"] = 1 - df["label"]
        df.to_csv(csv, index=False)


def test_ensemble_cell_is_chosen_on_validation_only(cells: dict[str, Path], tmp_path: Path) -> None:
    ev = auto.run_ensemble_cell(tmp_path / "ens", ("ssl", cells["ssl"]),
                                {"baseline:a": cells["baseline:a"], "baseline:b": cells["baseline:b"]},
                                "youden")
    info = ev["ensemble"]
    val = {a: read_predictions(p / "predictions" / "val.csv") for a, p in cells.items()}
    y = val["ssl"].labels
    assert info["members"][1] == max(("baseline:a", "baseline:b"),
                                     key=lambda b: sel.auroc(y, val[b].probs))
    w, tried = sel.ensemble_weight(y, val["ssl"].probs, val[info["members"][1]].probs)
    assert info["weight"] == w and info["weights_tried"] == {str(k): v for k, v in tried.items()}
    # the written predictions are the weighted average; the metrics are theirs
    got = read_predictions(tmp_path / "ens" / "predictions" / "test.csv")
    t_ssl = read_predictions(cells["ssl"] / "predictions" / "test.csv")
    t_b = read_predictions(cells[info["members"][1]] / "predictions" / "test.csv")
    np.testing.assert_allclose(got.probs, w * t_ssl.probs + (1 - w) * t_b.probs, rtol=1e-12)
    assert ev["test"]["auroc"] == pytest.approx(sel.auroc(got.labels, got.probs))
    # test labels altered: the same baseline, weight and threshold (test never seen)
    _flip_test_labels(cells)
    again = auto.run_ensemble_cell(tmp_path / "ens2", ("ssl", cells["ssl"]),
                                   {"baseline:a": cells["baseline:a"],
                                    "baseline:b": cells["baseline:b"]}, "youden")
    assert again["ensemble"] == info and again["threshold"] == ev["threshold"]
    assert again["val"] == ev["val"]
    assert again["test"]["auroc"] == pytest.approx(1 - ev["test"]["auroc"])


def test_auto_cell_on_validation_only(cells: dict[str, Path], tmp_path: Path) -> None:
    ev = auto.run_auto_cell(tmp_path / "auto", cells, "youden")
    chosen = ev["selection"]["chosen"]
    val = {a: read_predictions(p / "predictions" / "val.csv") for a, p in cells.items()}
    scores = {a: sel.auroc(p.labels, p.probs) for a, p in val.items()}
    assert chosen == max(scores, key=lambda a: scores[a])
    assert ev["selection"]["runner_up"] == sorted(scores, key=lambda a: -scores[a])[1]
    assert ev["selection"]["method"].startswith("validation")
    assert ev["test"] == json.loads((cells[chosen] / "eval.json").read_text())["test"]
    assert json.loads((tmp_path / "auto" / "selection.json").read_text()) == ev["selection"]
    _flip_test_labels(cells)
    again = auto.run_auto_cell(tmp_path / "auto2", cells, "youden")
    assert again["selection"] == ev["selection"]


def test_auto_cell_cross_validates_a_small_validation_set(tmp_path: Path) -> None:
    """8 validation items: the out-of-fold probabilities choose, not the validation set."""
    yv, yt = np.array([0, 1] * 4), np.array([0, 1] * 10)
    good, bad = np.where(yv == 1, 0.8, 0.2), np.where(yv == 1, 0.2, 0.8)
    cells = {"ssl": _cell(tmp_path / "ssl", (yv, good), (yt, np.full(20, 0.5) + yt * 0.1)),
             "baseline:a": _cell(tmp_path / "a", (yv, bad), (yt, np.full(20, 0.5) - yt * 0.1))}
    y_oof = np.array([0, 1] * 10)
    oof = {"ssl": _two(np.where(y_oof == 1, 0.3, 0.7)),          # AUROC 0 out of fold
           "baseline:a": _two(np.where(y_oof == 1, 0.9, 0.1))}   # AUROC 1 out of fold
    calls = []

    def cv() -> tuple[np.ndarray, dict[str, np.ndarray], int]:
        calls.append(1)
        return y_oof, oof, 5

    ev = auto.run_auto_cell(tmp_path / "auto", cells, "youden", cv=cv)
    assert calls and ev["selection"]["chosen"] == "baseline:a"
    assert ev["selection"]["method"].startswith("5-fold cross-validation")
    assert ev["selection"]["scores"] == {"ssl": 0.0, "baseline:a": 1.0}
    assert ev["selection"]["n_items"] == 20
    df = pd.read_csv(tmp_path / "auto" / "cv_oof.csv")
    np.testing.assert_array_equal(df["label"], y_oof)
    # with an ensemble candidate its baseline and weight are chosen out of fold too
    ens = _cell(tmp_path / "ens", (yv, good), (yt, np.full(20, 0.5)))
    ev = auto.run_auto_cell(tmp_path / "auto2", {**cells, "ensemble": ens}, "youden",
                            ensemble=("ssl", ["baseline:a"]), cv=cv)
    assert ev["selection"]["scores"]["ensemble"] == 1.0
    assert ev["selection"]["chosen"] == "baseline:a"  # tie with the ensemble: the simpler arm
    assert not math.isnan(ev["selection"]["interval"][0])


def test_multiclass_ensemble_and_auto(tmp_path: Path) -> None:
    """Three classes: probabilities averaged per class, no threshold, macro AUROC chooses."""
    rng = np.random.RandomState(2)
    y = np.repeat([0, 1, 2], 10)

    def cell(path: Path, signal: float) -> Path:
        for split in ("val", "test"):
            logits = signal * np.eye(3)[y] + rng.randn(30, 3)
            p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
            write_predictions(path / "predictions" / f"{split}.csv",
                              Predictions([f"i{j}" for j in range(30)], p, y, None), None)
        (path / "eval.json").write_text(json.dumps({"n_train": 60, "n_val": 30}))
        return path

    cells = {"ssl": cell(tmp_path / "ssl", 0.5), "baseline:b": cell(tmp_path / "b", 3.0)}
    ev = auto.run_ensemble_cell(tmp_path / "ens", ("ssl", cells["ssl"]),
                                {"baseline:b": cells["baseline:b"]}, "youden")
    assert ev["threshold"] is None and ev["ensemble"]["members"] == ["ssl", "baseline:b"]
    got = read_predictions(tmp_path / "ens" / "predictions" / "test.csv")
    w = ev["ensemble"]["weight"]
    parts = [read_predictions(c / "predictions" / "test.csv").probs for c in cells.values()]
    np.testing.assert_allclose(got.probs, w * parts[0] + (1 - w) * parts[1], rtol=1e-12)
    choice = auto.run_auto_cell(tmp_path / "auto", cells, "youden")["selection"]
    assert choice["chosen"] == "baseline:b" and choice["runner_up"] == "ssl"


def test_crossfit_ensemble_is_not_flattered_by_its_own_choice() -> None:
    """On pure noise, choosing the weight on the scored items inflates the ensemble's AUROC;
    choosing it on the other folds does not."""
    rng = np.random.RandomState(5)
    y = np.array([0, 1] * 20)
    inside, crossfit = [], []
    for _ in range(40):
        deep, base = _two(rng.rand(40)), _two(rng.rand(40))
        w, tried = sel.ensemble_weight(y, deep, base)
        inside.append(tried[w])
        honest = sel.crossfit_ensemble(y, deep, {"baseline:b": base}, seed=0)
        assert honest is not None
        crossfit.append(sel.auroc(y, honest))
        # each fold's items: the weight chosen on the other folds
        for tr, held in sel.cv_folds(y, 0):
            wk, _ = sel.ensemble_weight(y[tr], deep[tr], base[tr])
            np.testing.assert_allclose(honest[held], sel.combine(deep[held], base[held], wk))
    assert np.mean(inside) > np.mean(crossfit) + 0.03
    assert abs(np.mean(crossfit) - 0.5) < 0.05
    assert sel.crossfit_ensemble([0, 0, 1], _two(rng.rand(3)), {"b": _two(rng.rand(3))}) is None


def test_auroc_equals_the_metrics_module() -> None:
    rng = np.random.RandomState(3)
    y = rng.randint(0, 2, 50)
    s = np.round(rng.rand(50), 1)  # ties
    assert sel.auroc(y, _two(s)) == pytest.approx(classification_metrics(y, s)["auroc"], abs=1e-12)
    y3 = rng.randint(0, 3, 60)
    p3 = rng.dirichlet([1, 1, 1], 60)
    assert sel.auroc(y3, p3) == pytest.approx(classification_metrics(y3, p3)["auroc"], abs=1e-12)
    assert math.isnan(sel.auroc([1, 1], _two(np.array([0.2, 0.3]))))


def test_choose_takes_the_simplest_candidate_within_two_standard_errors() -> None:
    # 20 items: a network ranking every item right (1.0) and a baseline with one pair swapped
    # (0.99) differ by less than their paired bootstrap standard error: the baseline is chosen
    y = np.array([0, 1] * 10)
    perfect = _two(np.where(y == 1, 0.9, 0.1) + np.linspace(0, 0.05, 20))
    score = np.where(y == 1, 0.7, 0.3) + np.linspace(0, 0.05, 20)
    score[0], score[1] = 0.65, 0.6  # one negative above one positive
    near = _two(score)
    c = sel.choose(y, {"ssl": perfect, "baseline:minirocket": near}, "cross-validation")
    assert sel.auroc(y, near) < 1.0 == sel.auroc(y, perfect)
    assert (c.chosen, c.best, c.runner_up) == ("baseline:minirocket", "ssl", "ssl")
    # another order of simplicity (to study the rule) takes the network within the same error
    c2 = sel.choose(y, {"ssl": perfect, "baseline:minirocket": near}, "cross-validation",
                    preference=("ssl", "baseline"))
    assert (c2.chosen, c2.best) == ("ssl", "ssl") and c2.rule.startswith("the best selection AUROC")
    assert c.score == pytest.approx(sel.auroc(y, near)) and c.best_score == 1.0
    assert c.rule is not None and "within two standard errors of the best (ssl, 1.000" in c.rule
    d = c.as_dict()
    assert (d["best"], d["best_score"]) == ("ssl", 1.0) and d["rule"] == c.rule
    # a baseline far below (chance) is not within two standard errors: the network is chosen
    rng = np.random.RandomState(0)
    chance = _two(rng.rand(20))
    c = sel.choose(y, {"ssl": perfect, "baseline:minirocket": chance}, "cross-validation")
    assert (c.chosen, c.best) == ("ssl", "ssl") and c.rule.startswith("the best selection AUROC")
    # on 400 items the same small difference is no longer noise
    y4 = np.tile(y, 20)
    p4 = _two(np.where(y4 == 1, 0.9, 0.1) + rng.rand(400) * 0.05)
    s4 = np.where(y4 == 1, 0.7, 0.3) + rng.rand(400) * 0.05
    s4[:40] = rng.rand(40)  # a tenth of the items scored at random
    c = sel.choose(y4, {"ssl": p4, "baseline:minirocket": _two(s4)}, "validation")
    assert 0.9 < sel.auroc(y4, _two(s4)) < 1.0 and c.chosen == "ssl"


def test_choose_tolerance_and_an_order_that_names_one_baseline() -> None:
    """A candidate first in the order that falls short of the best by between one and two
    standard errors is chosen (two is the default tolerance), not with a tolerance of one; a
    baseline named in the order (``baseline:x``) has its own place, apart from ``baseline``."""
    y = np.array([0, 1] * 20)
    best = _two(np.where(y == 1, 0.9, 0.1) + np.linspace(0, 0.05, 40))  # AUROC 1.0
    score = np.where(y == 1, 0.7, 0.3) + np.linspace(0, 0.05, 40)
    score[[1, 3]] = 0.2, 0.21  # two of 20 positives below every negative: AUROC 0.90
    weaker = _two(score)
    reps = sel.bootstrap_replicates(y, [best, weaker])
    se = float(np.nanstd(reps[0] - reps[1], ddof=1))
    assert 1.2 * se < sel.auroc(y, best) - sel.auroc(y, weaker) < 1.8 * se
    cands = {"ssl": best, "baseline:x": weaker}
    assert sel.choose(y, cands, "validation").chosen == "baseline:x"
    one = sel.choose(y, cands, "validation", tolerance=1.0)
    assert one.chosen == "ssl" and "within one standard error" in one.rule
    # named apart: baseline:y (a copy of the best) comes after ssl, baseline:x before it
    cands = {"ssl": best, "baseline:x": weaker, "baseline:y": best}
    order = ("baseline:x", "ssl", "baseline")
    assert sel.choose(y, cands, "validation", preference=order).chosen == "baseline:x"
    assert sel.choose(y, cands, "validation", preference=("ssl", "baseline:x", "baseline")
                      ).chosen == "ssl"
    # without a named baseline both go by the kind's place, then by score
    assert sel.choose(y, cands, "validation", preference=("baseline", "ssl")).chosen == "baseline:y"
    assert sel.checked_preference(["baseline:minirocket", "ssl", "baseline"], "t") == (
        "baseline:minirocket", "ssl", "baseline")
    for bad in (["baseline:"], ["baseline:MiniRocket"], ["ssl", "deep"]):
        with pytest.raises(ContractError, match="unknown candidate"):
            sel.checked_preference(bad, "t")
