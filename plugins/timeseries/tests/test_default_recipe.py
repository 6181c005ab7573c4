"""The default signal recipe keeps what separates classes when only amplitude or offset does.

The recipe is the one a user gets from the benchmark suite (``benchmarks/suite/recipes/
signal.yaml``: ``patch_transformer`` with per-item instance normalisation, ``masked_patches``
pre-training, ``anomaly_classification``), with data sections as the suite writes them for a
UCR-style file (a 50/50 stratified pool/test split, ``normalize: global``). Only the
pre-training length is shortened (100 steps instead of 500) to keep the test short.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from ssl_domains.autoselect.arms import Size
from ssl_domains.config import parse_config
from ssl_domains.sweep.run import run_sweep

RECIPE = Path(__file__).resolve().parents[3] / "benchmarks" / "suite" / "recipes" / "signal.yaml"


def two_class_series(kind: str, n: int = 600, length: int = 128, seed: int = 0) -> np.ndarray:
    """Rows ``[label, v1..vT]``: the same random multi-sine shapes (standardised per item) for
    both classes; class 1 has a larger amplitude (``kind="amplitude"``) or a higher level
    (``kind="offset"``) than class 0, and nothing else differs."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / length
    y = np.arange(n) % 2
    rng.shuffle(y)
    freqs = rng.uniform(1, 8, (n, 3))
    phase = rng.uniform(0, 2 * np.pi, (n, 3))
    weights = rng.normal(size=(n, 3))
    shape = (weights[:, :, None] * np.sin(2 * np.pi * freqs[:, :, None] * t + phase[:, :, None])).sum(1)
    shape += 0.3 * rng.normal(size=(n, length))
    shape = (shape - shape.mean(1, keepdims=True)) / shape.std(1, keepdims=True)
    if kind == "amplitude":
        x = shape * np.where(y == 1, rng.uniform(1.6, 3.0, n), rng.uniform(0.5, 1.2, n))[:, None]
    else:
        x = shape + np.where(y == 1, rng.uniform(0.8, 1.6, n), rng.uniform(-0.6, 0.2, n))[:, None]
    return np.concatenate([y[:, None], x], axis=1).astype(np.float32)


def recipe_config(path: Path, out: Path, **backbone_args: Any) -> Any:
    cfg = yaml.safe_load(RECIPE.read_text())
    split = {"loader": "ucr", "loader_args": {"path": str(path), "normalize": "global"},
             "test_size": 0.5, "seed": 0}
    cfg["name"] = path.stem
    cfg["output_dir"] = str(out)
    cfg["backbone"]["args"].update({"in_channels": 1, **backbone_args})
    cfg["pretrain"]["data"]["train"] = {"name": "holdout",
                                        "args": {**split, "part": "pool", "unlabeled": True}}
    cfg["pretrain"]["train"]["max_steps"] = 100
    cfg["finetune"]["data"]["train"] = {"name": "holdout", "args": {**split, "part": "pool"}}
    cfg["finetune"]["data"]["test"] = {"name": "holdout", "args": {**split, "part": "test"}}
    return parse_config(cfg, source=str(RECIPE))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["amplitude", "offset"])
def test_default_recipe_separates_classes_that_differ_only_in(kind: str, tmp_path: Path) -> None:
    if not RECIPE.is_file():
        pytest.skip(f"{RECIPE} not found (the plugin is installed without the repository)")
    data = tmp_path / f"{kind}.npy"
    np.save(data, two_class_series(kind))
    labels = [Size(count=50)]

    res = run_sweep(recipe_config(data, tmp_path), tmp_path / "sweep", sizes=labels, seeds=[0],
                    arms=["ssl", "scratch"], echo=lambda _: None)
    auroc = res.results[res.results["metric"] == "auroc"].set_index("arm")["value"]
    assert set(auroc.index) == {"ssl", "scratch"}
    assert res.results["n_labels"].eq(50).all()
    assert auroc["ssl"] >= 0.95, auroc.to_dict()
    assert auroc["scratch"] >= 0.95, auroc.to_dict()

    # the same recipe with the level/scale embedding off is blind to the difference
    blind = run_sweep(recipe_config(data, tmp_path, keep_scale=False), tmp_path / "blind",
                      sizes=labels, seeds=[0], arms=["scratch"], echo=lambda _: None)
    blind_auroc = blind.results.query("metric == 'auroc'")["value"].iloc[0]
    assert blind_auroc < 0.8, blind_auroc
