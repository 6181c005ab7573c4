"""The model card states data, label counts, metrics with intervals, use and limits."""

from __future__ import annotations

from ssl_domains.report.model_card import model_card
from ssl_domains.scoring.intervals import Interval

CONFIG = {
    "backbone": {"name": "resnet", "args": {"depth": 18}},
    "pretrain": {"data": {"train": {"name": "dicom", "args": {"root": "/data/Doe_Jane",
                                                               "spacing": 1.5}}},
                 "task": {"name": "genesis"}},
    "finetune": {"data": {"train": {"name": "nifti", "args": {"path": "/x/y.csv",
                                                               "label_key": "tumor"}}},
                 "task": {"name": "tumor_detection"}},
}
EVAL = {"threshold": 0.4123, "threshold_rule": "youden", "val": {"auroc": 0.91},
        "test": {"auroc": 0.874, "sensitivity": 0.8}, "n_train": 40, "n_val": 20, "n_test": 200}


def test_card_content() -> None:
    card = model_card(CONFIG, EVAL, {"train": {"0": 30, "1": 10}, "test": {"0": 150, "1": 50}},
                      {"auroc": Interval(0.83, 0.91), "sensitivity": {"low": 0.7, "high": 0.9},
                       "method": "95% bootstrap over test cases (1000 resamples)"})
    for text in ("- backbone: `resnet`", "- pretext task: `genesis`",
                 "- fine-tuning task: `tumor_detection`",
                 "- pre-training data, train: loader `dicom` (spacing=1.5)",
                 "- fine-tuning data, train: loader `nifti` (label_key=tumor)",
                 "- items: train 40, val 20, test 200",
                 "| split | class 0 | class 1 |", "| train | 30 | 10 |", "| test | 150 | 50 |",
                 "Decision threshold 0.412 (rule `youden`)",
                 "| auroc | 0.910 | 0.874 | 0.830 to 0.910 |",
                 "| sensitivity | n/a | 0.800 | 0.700 to 0.900 |",
                 "Intervals: 95% bootstrap over test cases (1000 resamples).",
                 "## Intended use", "Not a medical device."):
        assert text in card, text
    assert "Doe_Jane" not in card and "/x/y.csv" not in card  # paths stay in config.json


def test_card_with_little_information() -> None:
    card = model_card({}, {}, {})
    assert "components: see `config.json`" in card
    assert "Not recorded." in card and "Not evaluated yet." in card
    assert "Not a medical device." in card


def test_flat_label_counts_and_nested_intervals() -> None:
    card = model_card({"backbone": "mlp"}, EVAL, {"0": 5, "1": 3},
                      {"test": {"auroc": [0.8, 0.9]}})
    assert "| all | 5 | 3 |" in card and "- backbone: `mlp`" in card
    assert "0.800 to 0.900" in card


def test_card_intervals_from_test_predictions() -> None:
    import numpy as np

    from ssl_domains.report.model_card import card_intervals

    rng = np.random.default_rng(0)
    y = (rng.random(150) < 0.4).astype(int)
    s = rng.random(150) + 0.5 * y
    ci = card_intervals(y, s, threshold=0.7, n=200)
    assert ci["method"].startswith("95% percentile bootstrap over test cases (200 class-")
    card = model_card({}, {"test": {"auroc": 0.8}}, {}, ci)
    low, high = ci["auroc"]
    assert f"| auroc | n/a | 0.800 | {low:.3f} to {high:.3f} |" in card
    assert "Intervals: 95% percentile bootstrap" in card
