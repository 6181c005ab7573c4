"""Intervals: hand-computed t-interval, coverage sanity, pairing, summary table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ssl_domains.scoring.intervals import (
    SUMMARY_COLUMNS,
    bootstrap_ci,
    bootstrap_metrics,
    logit_t_interval,
    paired_case_difference,
    paired_difference_ci,
    summary_rows,
    t_interval,
    verdict,
)


def test_paired_t_interval_by_hand() -> None:
    a, b = [0.80, 0.82, 0.84], [0.70, 0.71, 0.75]  # differences 0.10, 0.11, 0.09
    d = paired_difference_ci(a, b)
    half = 4.302652729911275 * 0.01 / math.sqrt(3)  # t(0.975, df=2) * sd / sqrt(n)
    assert (d.mean, d.n, d.method) == (pytest.approx(0.10), 3, "t")
    assert d.std == pytest.approx(0.01)
    assert (d.low, d.high) == (pytest.approx(0.10 - half), pytest.approx(0.10 + half))
    assert verdict(d, "auroc") == "SSL beat scratch"
    assert verdict(d, "loss") == "scratch beat SSL"  # lower loss is better


def test_pairing_by_seed_keys() -> None:
    a = {0: 0.9, 1: 0.8, 2: 0.7, 5: 0.1}
    b = {2: 0.6, 1: 0.7, 0: 0.8}
    d = paired_difference_ci(a, b)
    assert d.n == 3 and d.mean == pytest.approx(0.1) and d.std == pytest.approx(0.0)


def test_paired_bootstrap_over_seeds() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 1.0, 30)
    d = paired_difference_ci(a, a - 0.5, method="bootstrap", seed=3)
    assert d.method == "bootstrap" and d.low == pytest.approx(0.5) and d.high == pytest.approx(0.5)
    d2 = paired_difference_ci(a, rng.normal(0, 1, 30), method="bootstrap")
    assert d2.low < d2.mean < d2.high


def test_too_few_pairs_give_nan() -> None:
    d = paired_difference_ci([0.9], [0.8])
    assert d.n == 1 and math.isnan(d.low) and math.isnan(d.high)
    assert "not enough paired seeds" in verdict(d, "auroc")
    assert math.isnan(t_interval([1.0]).low)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: paired_difference_ci([1, 2], [1, 2, 3]), "same number of seeds, got 2 and 3"),
    (lambda: paired_difference_ci([1, 2], [1, 2], method="z"), "unknown interval method 'z'"),
    (lambda: bootstrap_ci([0, 1], [0.3, 0.4]), "needs both scores and metric_fn"),
    (lambda: bootstrap_ci([0, 1], [0.3], roc_auc_score), "2 labels but 1 scores"),
    (lambda: summary_rows([{"arm": "ssl"}]), "lacks column"),
])
def test_error_messages(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_t_interval_coverage() -> None:
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(2000):
        ci = t_interval(rng.normal(3.0, 2.0, 5))
        hits += ci.low <= 3.0 <= ci.high
    assert 0.93 <= hits / 2000 <= 0.97


def test_bootstrap_mean_coverage() -> None:
    rng = np.random.default_rng(1)
    hits = sum(
        (ci := bootstrap_ci(rng.normal(0.0, 1.0, 60), n=400, seed=i)).low <= 0.0 <= ci.high
        for i in range(300))
    assert 0.89 <= hits / 300 <= 0.98  # percentile bootstrap runs slightly narrow


def test_bootstrap_metric_form() -> None:
    rng = np.random.default_rng(2)
    y = (rng.random(200) < 0.3).astype(int)
    s = rng.random(200) + 0.4 * y
    point = roc_auc_score(y, s)
    ci = bootstrap_ci(y, s, roc_auc_score, n=100)
    assert ci.low < point < ci.high and ci.high - ci.low < 0.3
    assert bootstrap_ci((y, s, roc_auc_score), n=100) == ci  # tuple form, same seed
    every = bootstrap_metrics(y, s, threshold=0.6, n=50)
    assert every["auroc"].low < point < every["auroc"].high
    assert {"sensitivity", "specificity", "sens_at_spec90"} <= set(every)


def _results() -> pd.DataFrame:
    rows = []
    for seed, (ssl, scratch) in enumerate([(0.80, 0.70), (0.84, 0.71), (0.82, 0.75)]):
        rows += [("ssl", 10, 0.1, seed, "auroc", ssl), ("scratch", 10, 0.1, seed, "auroc", scratch)]
    rows += [("baseline:logistic", 10, 0.1, 0, "auroc", 0.6)]
    return pd.DataFrame(rows, columns=["arm", "n_labels", "fraction", "seed", "metric", "value"])


def summarize(results: pd.DataFrame, **kw: object) -> pd.DataFrame:
    return pd.DataFrame(summary_rows(results.to_dict("records"), **kw),  # type: ignore[arg-type]
                        columns=list(SUMMARY_COLUMNS))


def test_summarize_arm_and_difference_rows() -> None:
    out = summarize(_results())
    ssl = out[(out["kind"] == "arm") & (out["arm"] == "ssl")].iloc[0]
    assert ssl["mean"] == pytest.approx(0.82) and ssl["n"] == 3
    assert ssl["std"] == pytest.approx(0.02)
    assert ssl["ci_low"] < 0.82 < ssl["ci_high"]
    base = out[out["arm"] == "baseline:logistic"].iloc[0]
    assert base["n"] == 1 and math.isnan(base["std"]) and math.isnan(base["ci_low"])
    diff = out[out["kind"] == "difference"].iloc[0]
    expected = paired_difference_ci([0.80, 0.84, 0.82], [0.70, 0.71, 0.75])
    assert diff["arm"] == "ssl-scratch"
    assert (diff["mean"], diff["ci_low"], diff["ci_high"]) == pytest.approx(
        (expected.mean, expected.low, expected.high))


def test_summarize_without_fraction_column() -> None:
    out = summarize(_results().drop(columns="fraction"))
    assert out["fraction"].isna().all() and len(out) == 4


def test_summary_rows_equal_a_pandas_group_by() -> None:
    """Means, standard deviations and t-intervals per arm x size x metric, and the differences
    paired by seed (seeds out of order, a missing value, a seed only one arm has)."""
    rng = np.random.default_rng(4)
    rows = []
    for seed in (2, 0, 1, 3):
        for arm in ("ssl", "scratch", "linear_probe"):
            for n_labels, fraction in ((10, 0.1), (50, 0.5)):
                for metric in ("auroc", "f1"):
                    if arm == "scratch" and seed == 3:
                        continue
                    value = float("nan") if (seed, arm, metric) == (1, "ssl", "f1") else rng.random()
                    rows.append((arm, n_labels, fraction, seed, metric, value))
    df = pd.DataFrame(rows, columns=["arm", "n_labels", "fraction", "seed", "metric", "value"])
    out = summarize(df, method="bootstrap")
    assert list(out.columns) == list(SUMMARY_COLUMNS)
    arms = out[out["kind"] == "arm"]
    assert len(arms) == 3 * 2 * 2
    for _, r in arms.iterrows():
        g = df[(df["arm"] == r["arm"]) & (df["n_labels"] == r["n_labels"]) & (df["metric"] == r["metric"])]
        ci = logit_t_interval(g["value"].to_numpy())  # auroc and f1: in [0, 1]
        assert r["n"] == g["value"].notna().sum() and r["fraction"] == g["fraction"].iloc[0]
        assert (r["mean"], r["std"], r["ci_low"], r["ci_high"]) == pytest.approx(
            (g["value"].mean(), g["value"].std(), ci.low, ci.high))
    diffs = out[out["kind"] == "difference"]
    assert set(diffs["arm"]) == {"ssl-scratch"} and len(diffs) == 4
    for _, r in diffs.iterrows():
        g = df[(df["n_labels"] == r["n_labels"]) & (df["metric"] == r["metric"])]
        a, b = (g[g["arm"] == arm].groupby("seed")["value"].mean() for arm in ("ssl", "scratch"))
        expected = paired_difference_ci(a, b, method="bootstrap")
        assert r["n"] == expected.n == (3 if r["metric"] == "auroc" else 2)
        assert (r["mean"], r["ci_low"], r["ci_high"]) == pytest.approx((expected.mean, expected.low, expected.high))
    # sorted by metric, size, kind, arm
    keys = list(zip(out["metric"], out["n_labels"], out["kind"], out["arm"]))
    assert keys == sorted(keys)



def test_intervals_over_seeds_stay_in_the_metrics_range_and_cover_its_mean() -> None:
    """Three seeds near 1 (or spread over [0, 1]): a Student-t interval runs past the range, the
    logit-scale one the summary uses does not, and still covers the true mean ~95 % of the time
    (Beta-distributed seeds, 95 % intervals)."""
    high = [1.0, 0.98, 0.9]
    assert t_interval(high).high > 1.0
    spread = [0.0, 0.5, 1.0]
    assert t_interval(spread).low < 0.0 and t_interval(spread).high > 1.0
    for values in (high, spread, [0.2, 0.25, 0.21]):
        ci = logit_t_interval(values)
        assert 0.0 <= ci.low <= float(np.mean(values)) <= ci.high <= 1.0
    assert logit_t_interval([0.9, 0.9, 0.9]) == (0.9, 0.9)
    assert logit_t_interval([1.5, 2.0]) == t_interval([1.5, 2.0])  # not in [0, 1]: plain t
    rng = np.random.default_rng(0)
    for mean, concentration in ((0.95, 40), (0.7, 20)):
        draws = rng.beta(mean * concentration, (1 - mean) * concentration, size=(1000, 3))
        covered = [ci.low <= mean <= ci.high for ci in map(logit_t_interval, draws)]
        assert 0.92 <= float(np.mean(covered)) <= 0.98

    results = pd.DataFrame([("scratch", 10, 0.1, seed, metric, value)
                            for metric, values in (("f1", spread), ("loss", [0.2, 1.4, 3.0]))
                            for seed, value in enumerate(values)],
                           columns=["arm", "n_labels", "fraction", "seed", "metric", "value"])
    rows = summarize(results).set_index("metric")
    assert (rows.loc["f1", "ci_low"], rows.loc["f1", "ci_high"]) == pytest.approx(logit_t_interval(spread))
    assert rows.loc["loss", "ci_low"] == pytest.approx(t_interval([0.2, 1.4, 3.0]).low)  # unbounded
    assert rows.loc["loss", "ci_low"] < 0


def test_paired_case_difference_resamples_both_models_on_the_same_cases() -> None:
    rng = np.random.default_rng(1)
    y = np.arange(200) % 2
    good = y + rng.normal(0, 0.6, 200)
    weak = y + rng.normal(0, 2.0, 200)
    d = paired_case_difference(y, good, weak, "auroc", n=400)
    assert d.mean == pytest.approx(roc_auc_score(y, good) - roc_auc_score(y, weak))
    assert 0 < d.low < d.mean < d.high and d.n == 200 and d.method == "bootstrap over cases"
    same = paired_case_difference(y, good, good, "auroc", n=50)
    assert (same.mean, same.low, same.high) == (0.0, 0.0, 0.0)  # paired: no spread of its own
    f1 = paired_case_difference(y, good, weak, "f1", (0.5, 0.5), n=50)
    assert -1 <= f1.low <= f1.mean <= f1.high <= 1
