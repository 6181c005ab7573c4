"""The model card states data, label counts, metrics with intervals, use and limits."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ssl_domains.engine.assess import Assessment, Intervals, write_assessment
from ssl_domains.engine.model_card import (
    model_card,
    pretrain_card,
    write_model_card,
    write_pretrain_card,
)
from ssl_domains.errors import DataError
from ssl_domains.layout.export import ExportConfig

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
        "test": {"auroc": 0.874, "sensitivity": 0.8}, "n_train": 40, "n_val": 20, "n_test": 200,
        "label_counts": {"train": {"0": 30, "1": 10}, "test": {"0": 150, "1": 50}},
        "test_intervals": {"auroc": [0.83, 0.91], "sensitivity": [0.7, 0.9],
                           "method": "95% bootstrap over test cases (1000 resamples)"}}


def test_card_content() -> None:
    card = model_card(CONFIG, Assessment.model_validate(EVAL))
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
    assert "- fine-tuning:" not in card  # no steps recorded
    trained = Assessment.model_validate({**EVAL, "steps": 1080, "best_step": 320,
                                         "monitor": "auroc"})
    assert ("- fine-tuning: 1080 steps; the weights kept are those of step 320 (the best "
            "validation AUROC)") in model_card(CONFIG, trained)
    older = Assessment.model_validate({**EVAL, "steps": 60, "best_step": 20})
    assert "step 20 (the lowest validation loss)" in model_card(CONFIG, older)


def test_card_with_little_information() -> None:
    card = model_card({}, Assessment())
    assert "components: see `config.json`" in card
    assert "Not recorded." in card and "Not evaluated yet." in card
    assert "Not a medical device." in card


def test_intervals_from_test_predictions_and_not_computed_bounds() -> None:
    import numpy as np

    from ssl_domains.engine.assess import Predictions, bootstrap_intervals

    rng = np.random.default_rng(0)
    y = (rng.random(150) < 0.4).astype(int)
    s = rng.random(150) + 0.5 * y
    s = s / s.max()
    ci = bootstrap_intervals(Predictions(["i"] * 150, np.stack([1 - s, s], 1), y), threshold=0.7, n=200)
    assert ci is not None and ci.method is not None
    assert ci.method.startswith("95% percentile bootstrap over test cases (200 class-")
    card = model_card({"backbone": "mlp"}, Assessment(test={"auroc": 0.8}, test_intervals=ci))
    low, high = ci.bounds["auroc"]
    assert f"| auroc | n/a | 0.800 | {low:.3f} to {high:.3f} |" in card and "- backbone: `mlp`" in card
    assert "Intervals: 95% percentile bootstrap" in card
    none = Intervals(bounds={"auroc": (None, None)})
    card = model_card({}, Assessment(test={"auroc": 0.8}, test_intervals=none))
    assert "| auroc | n/a | 0.800 |  |" in card


def test_write_model_card_from_the_run_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="export: missing"):
        write_model_card(tmp_path)
    (tmp_path / "export").mkdir()
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    write_assessment(tmp_path, Assessment.model_validate(EVAL))
    card = write_model_card(tmp_path).read_text()
    assert card == model_card(CONFIG, Assessment.model_validate(EVAL))
    assert "| auroc | 0.910 | 0.874 | 0.830 to 0.910 |" in card
    (tmp_path / "eval.json").write_text('{"test": []}')
    with pytest.raises(DataError, match=r"eval\.json: not an eval\.json: test"):
        write_model_card(tmp_path)


def test_pretrain_card_from_the_run_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="config.json: missing"):
        write_pretrain_card(tmp_path)
    (tmp_path / "export").mkdir()
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"name": "ct", **CONFIG, "init": {"path": "w.pt"}}))
    (tmp_path / "export" / "config.json").write_text(
        '{"stage": "pretrain", "backbone": {"name": "resnet"}, "steps": 120, "n_train": 300, '
        '"best_val_loss": 0.25}')
    card = write_pretrain_card(tmp_path).read_text()
    assert card.startswith("# ct: pre-trained backbone\n")
    assert "- Backbone: `resnet` {'depth': 18}\n- Pretext task: `genesis` {}\n" in card
    assert "- Data: loader `dicom`, 300 unlabeled training items\n" in card
    assert "- Steps: 120; best validation pretext loss: 0.25\n- Continued from: existing weights (format `auto`; path not recorded here)\n" in card and "w.pt" not in card
    assert "random initialisation" in pretrain_card({**CONFIG, "init": None},
                                                   ExportConfig(stage="pretrain", backbone={"name": "resnet"}))
    (tmp_path / "export" / "config.json").write_text('{"stage": "finetune", "backbone": {"name": "resnet"}}')
    with pytest.raises(DataError, match="config.json: not a pre-training export"):
        write_pretrain_card(tmp_path)
    (tmp_path / "export" / "config.json").write_text('{"stage": "pretrain"}')
    with pytest.raises(DataError, match=r"config\.json: not an ssl-domains export config: backbone: Field required$"):
        write_pretrain_card(tmp_path)
