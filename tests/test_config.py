"""Config schema: unknown keys, bad values and overrides give messages naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssl_domains.config import apply_overrides, dump_config, load_config, parse_config
from ssl_domains.errors import ConfigError

BASE = {
    "name": "r",
    "backbone": {"name": "mlp", "args": {"input_shape": [1, 8]}},
    "finetune": {"data": {"train": {"name": "arrays"}}, "task": {"name": "classification"}},
}


@pytest.mark.parametrize("overrides,message", [
    (["finetune.trian.lr=1"], "config: unknown config key 'finetune.trian'; allowed here: data, task, train, label_fraction"),
    (["finetune.train.lr=abc"], "config: config key 'finetune.train.lr': Input should be a valid number"),
    (["finetune.train.lr=-1"], "config: config key 'finetune.train.lr': Input should be greater than 0 (got -1)"),
    (["finetune.mode=partial"], "config: config key 'finetune.mode': must be 'full', 'linear' or 'frozen_then_unfrozen' (got 'partial')"),
    (["finetune.label_fraction=0.1", "finetune.label_count=10"], "config: config key 'finetune': give label_fraction or label_count, not both"),
    (["name=bad name"], "config: config key 'name': String should match pattern"),
    (["backbone=null"], "config: config key 'backbone'"),
    (["colour=red"], "config: unknown config key 'colour'; allowed here: name, output_dir, seed"),
])
def test_bad_values_name_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(apply_overrides(BASE, overrides))
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_overrides_parse_yaml_values_and_roundtrip(tmp_path: Path) -> None:
    data = apply_overrides(BASE, ["finetune.train.lr=1e-4", "finetune.train.early_stopping={metric: auroc}",
                                  "seed=3", "finetune.data.train.args.path=/x.npz"])
    cfg = parse_config(data)
    assert cfg.finetune.train.lr == 1e-4 and cfg.seed == 3
    assert cfg.finetune.train.early_stopping.metric == "auroc"
    assert cfg.finetune.data.train.args == {"path": "/x.npz"}
    path = tmp_path / "c.yaml"
    path.write_text(dump_config(cfg))
    assert load_config(path) == cfg


def test_override_and_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--set 'seed': expected KEY=VALUE"):
        apply_overrides(BASE, ["seed"])
    with pytest.raises(ConfigError, match="--set 'name.x=1': 'name' is not a mapping"):
        apply_overrides(BASE, ["name.x=1"])
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: line \d+ not valid YAML"):
        load_config(bad)
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="a run config must be a mapping, got list"):
        load_config(tmp_path / "list.yaml")
