from __future__ import annotations

import pytest
import torch
from ssl_domains_timeseries.backbones.patch_transformer import PatchTransformer
from ssl_domains_timeseries.backbones.tcn import TCN
from ssl_domains_timeseries.pretext.decoder import SignalDecoder, masked_error, standardise

from ssl_domains.builtin.mlp import MLPBackbone
from ssl_domains.errors import IncompatibleError


@pytest.mark.parametrize(
    ("backbone", "mode"),
    [
        (PatchTransformer(in_channels=2, patch_len=8, stride=4, d_model=16, depth=1, heads=2),
         "patches"),
        (TCN(in_channels=2, width=8, depth=1, kernel_size=3), "sequence"),
        (MLPBackbone([2, 30]), "pooled"),
    ],
)
def test_decoder_modes(backbone, mode: str) -> None:
    dec = SignalDecoder(backbone)
    assert dec.mode == mode
    assert dec(backbone, torch.randn(3, 2, 30)).shape == (3, 2, 30)


def test_decoder_errors() -> None:
    image = MLPBackbone([1, 8, 8], modality="image")
    with pytest.raises(IncompatibleError, match="needs a 1-D signal backbone"):
        SignalDecoder(image, task="forecasting")
    bare = MLPBackbone([1, 16])
    del bare.input_shape
    with pytest.raises(IncompatibleError, match="pass input_length"):
        SignalDecoder(bare)
    dec = SignalDecoder(bare, input_length=16)
    with pytest.raises(IncompatibleError, match="built for length 16"):
        dec(bare, torch.randn(1, 1, 12))


def test_standardise_uses_visible_points_only() -> None:
    x = torch.tensor([[[1.0, 3.0, 100.0, float("nan")]]])
    visible = torch.tensor([[[True, True, False, True]]])
    xs, mean, std = standardise(x, visible)
    assert mean.item() == pytest.approx(2.0)
    assert std.item() == pytest.approx(1.0, abs=1e-4)
    assert torch.isnan(xs[0, 0, 3])


def test_masked_error_ignores_invalid_points() -> None:
    pred = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], requires_grad=True)
    target = torch.tensor([[1.0, float("nan"), 5.0], [float("nan")] * 3])
    valid = torch.isfinite(target)
    err = masked_error(pred, target, valid)
    assert err.tolist() == [2.0, 0.0]  # (0 + 4) / 2; no valid point -> 0
    assert masked_error(pred, target, valid, "mae").tolist() == [1.0, 0.0]
    err.sum().backward()
    assert torch.isfinite(pred.grad).all()
