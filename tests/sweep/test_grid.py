"""What a sweep runs (:mod:`ssl_domains.sweep.grid`, :mod:`ssl_domains.autoselect.arms`):
sizes, seeds, arms, cell names and configs. No training here."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssl_domains.autoselect.arms import Arm, Size, cell_config, cell_name
from ssl_domains.config import parse_config
from ssl_domains.errors import ConfigError
from ssl_domains.layout.sweep import parse_cell_name
from ssl_domains.plugins import get_host
from ssl_domains.sweep import grid as plan
from ssl_domains.sweep.grid import parse_sizes
from tests.conftest import make_config


def test_sizes_and_names() -> None:
    sizes = parse_sizes("0.05,1,0.05", "25")
    assert [s.tag for s in sizes] == ["0.05", "1.0", "25"]
    assert [s.label for s in sizes] == ["f=0.05", "f=1", "n=25"]
    arm = Arm("baseline:image_logistic")
    assert cell_name(arm, sizes[0], 3) == "baseline-image_logistic_0.05_3"
    assert parse_cell_name("baseline-image_logistic_0.05_3") == ("baseline-image_logistic", "0.05", "3")
    for a in (arm, Arm("ssl"), Arm("linear_probe")):  # a folder name read back
        for size in sizes:
            folder, tag, seed = parse_cell_name(cell_name(a, size, 3)) or ("", "", "")
            assert (Arm.from_folder(folder), Size.from_tag(tag), int(seed)) == (a, size, 3)
    with pytest.raises(ValueError):
        Size.from_tag("ten")


def test_default_baselines_come_from_the_backbones_plugin(tmp_path: Path) -> None:
    pytest.importorskip("ssl_domains_timeseries")
    cfg = parse_config(make_config(tmp_path, tmp_path / "x.npz"))
    registry = get_host().registry
    assert [b.name for b in plan.default_baselines(cfg, registry)] == ["logistic"]
    ts = cfg.model_copy(update={"backbone": cfg.backbone.model_copy(
        update={"name": "tcn", "args": {}})})
    names = [b.name for b in plan.default_baselines(ts, registry)]
    assert set(names) >= {"signal_stats"} and "image_logistic" not in names


def test_scratch_cells_train_the_backbone_at_the_full_learning_rate(tmp_path: Path) -> None:
    cfg = parse_config(make_config(tmp_path, tmp_path / "x.npz",
                                   **{"finetune.backbone_lr_scale": 0.1}))
    size = Size(fraction=0.5)
    cells = {a: cell_config(cfg, Arm(a), size, 1, None)
             for a in ("ssl", "scratch", "linear_probe")}
    assert cells["ssl"].finetune.backbone_lr_scale == 0.1
    assert not cells["ssl"].finetune.from_scratch
    assert cells["scratch"].finetune.backbone_lr_scale == 1.0
    assert cells["scratch"].finetune.from_scratch
    assert cells["linear_probe"].finetune.mode == "linear"


def test_derived_arms_need_their_members(tmp_path: Path) -> None:
    cfg = parse_config(make_config(tmp_path, tmp_path / "x.npz"))
    registry = get_host().registry
    with pytest.raises(ConfigError, match="'ensemble' averages the 'ssl' arm"):
        plan.resolve_arms(cfg, ["scratch", "baseline", "ensemble"], registry)
    with pytest.raises(ConfigError, match="'auto' chooses among the other arms"):
        plan.resolve_arms(cfg, ["ssl", "auto"], registry)
    arms = plan.resolve_arms(cfg, plan.parse_arms("auto,ensemble,ssl,baseline"), registry)
    assert [a.name for a in arms] == ["ssl", "baseline:logistic", "ensemble", "auto"]
    with pytest.raises(ConfigError, match="ensemble, auto"):
        plan.parse_arms("ssl,best")


def test_sizes_giving_the_same_number_of_labels_run_once() -> None:
    labels = [0, 1] * 50  # a pool of 100 labeled items
    said: list[str] = []
    sizes = plan.distinct_sizes([Size(count=50), Size(fraction=0.1), Size(fraction=0.5)],
                                labels, said.append)
    assert sizes == [Size(fraction=0.1), Size(count=50)]  # by number of labels
    assert said == ["size f=0.5 gives the same 50 labels as n=50: skipped"]
    with pytest.raises(ConfigError, match=r"^size n=1000: label budget 1000 is larger"):
        plan.distinct_sizes([Size(count=1000)], labels, said.append)
