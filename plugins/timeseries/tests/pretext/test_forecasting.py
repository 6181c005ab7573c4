from __future__ import annotations

import pytest
import torch
from ssl_domains_timeseries.backbones.patch_transformer import PatchTransformer
from ssl_domains_timeseries.backbones.tcn import TCN
from ssl_domains_timeseries.pretext.forecasting import ForecastingTask

from ssl_domains.builtin.mlp import MLPBackbone


def backbones():
    return [
        PatchTransformer(in_channels=2, patch_len=8, stride=8, d_model=16, depth=1, heads=2),
        TCN(in_channels=2, width=8, depth=2, kernel_size=3),
        MLPBackbone([2, 40]),
    ]


@pytest.mark.parametrize("backbone", backbones(), ids=["patch", "tcn", "mlp"])
def test_outputs_and_gradients(backbone) -> None:
    task = ForecastingTask(backbone, horizon=8)
    x = torch.randn(3, 2, 40)
    x[0, 0, 35:] = float("nan")  # missing target points
    x[1, 1, :10] = float("nan")  # missing context points
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[2, 0, 0:4] = False
    out = task({"signal": x, "mask": mask})
    assert out["forecast"].shape == out["target"].shape == (3, 2, 8)
    assert torch.isfinite(out["loss"]) and torch.isfinite(out["forecast"]).all()
    assert out["score"].shape == (3,)
    assert torch.isnan(out["input"][2, 0, :4]).all()  # the mask was applied
    out["loss"].backward()
    grads = [p.grad for p in backbone.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_target_is_hidden_from_the_backbone() -> None:
    backbone = TCN(in_channels=1, width=8, depth=2, kernel_size=3)
    task = ForecastingTask(backbone, horizon=5).eval()
    x = torch.randn(2, 1, 30)
    y = x.clone()
    y[..., -5:] += 50.0  # change only the future
    a, b = task({"signal": x}), task({"signal": y})
    assert torch.allclose(a["forecast"], b["forecast"], atol=1e-5)
    assert (b["score"] > a["score"]).all()


def test_anomaly_scores_are_label_free_forecast_errors() -> None:
    task = ForecastingTask(TCN(in_channels=1, width=8, depth=2, kernel_size=3), horizon=6).eval()
    clean = torch.sin(torch.linspace(0, 12.56, 36)).repeat(4, 1, 1)
    spiky = clean.clone()
    spiky[:, 0, -3] += 100.0
    normal = task.anomaly_scores({"signal": clean})
    odd = task.anomaly_scores({"signal": spiky})
    assert normal.shape == (4,) and not normal.requires_grad
    assert (odd > normal).all()
    assert torch.allclose(normal, task({"signal": clean})["score"])


def test_figures() -> None:
    task = ForecastingTask(TCN(in_channels=2, width=8, depth=1, kernel_size=3), horizon=4)
    out = task({"signal": torch.randn(3, 2, 20)})
    figs = task.figures(out, max_items=2)
    assert list(figs) == ["forecast"] and len(figs["forecast"].axes) == 2


def test_bad_arguments() -> None:
    backbone = TCN(width=8, depth=1, kernel_size=3)
    with pytest.raises(ValueError, match="horizon must be >= 1"):
        ForecastingTask(backbone, horizon=0)
    with pytest.raises(ValueError, match="loss must be"):
        ForecastingTask(backbone, loss="huber")
    with pytest.raises(ValueError, match="must be shorter than the items"):
        ForecastingTask(backbone, horizon=10)({"signal": torch.randn(1, 1, 10)})
