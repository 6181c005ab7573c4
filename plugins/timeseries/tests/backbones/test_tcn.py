from __future__ import annotations

import pytest
import torch
from ssl_domains_timeseries.backbones.tcn import TCN

from ssl_domains.contracts import Backbone


def test_shapes_and_contract() -> None:
    m = TCN(in_channels=3, width=8, depth=2, kernel_size=3)
    assert isinstance(m, Backbone)
    x = torch.randn(2, 3, 33)
    assert m.forward_sequence(x).shape == (2, 8, 33)
    assert m.forward_features(x).shape == (2, 8)
    mm = TCN(in_channels=3, width=8, depth=2, kernel_size=3, pool="meanmax")
    assert mm.num_features == 16 and mm.forward_features(x).shape == (2, 16)


def test_missing_values_stay_out_of_gradients() -> None:
    m = TCN(in_channels=1, width=8, depth=3, kernel_size=5)
    x = torch.randn(3, 1, 30)
    x[0, 0, :10] = float("nan")
    out = m.forward_features(x)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)


def test_instance_norm_keeps_level_and_scale_only_through_keep_scale() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 1, 30)
    y = 100 * x + 7
    blind = TCN(in_channels=1, width=8, depth=2, kernel_size=3, keep_scale=False).eval()
    assert blind.scale_embed is None
    assert torch.allclose(blind.forward_features(x), blind.forward_features(y), atol=1e-4)
    m = TCN(in_channels=1, width=8, depth=2, kernel_size=3).eval()
    assert m.keep_scale and m.num_features == 8
    assert (m.forward_features(x) - m.forward_features(y)).abs().max() > 0.01
    # without the level/scale embedding the two are the same again: it is the only way in
    with torch.no_grad():
        m.scale_embed.weight.zero_()
    assert torch.allclose(m.forward_features(x), m.forward_features(y), atol=1e-4)
    assert TCN(in_channels=1, width=8, instance_norm=False).scale_embed is None


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        TCN(kernel_size=4)
    with pytest.raises(ValueError, match="pool"):
        TCN(pool="max")
    with pytest.raises(ValueError, match="width and depth"):
        TCN(depth=0)
    with pytest.raises(ValueError, match=r"expects \[B, 1, T\]"):
        TCN().forward_features(torch.randn(2, 30))
