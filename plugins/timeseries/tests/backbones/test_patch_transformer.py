from __future__ import annotations

import math

import pytest
import torch
from ssl_domains_timeseries.backbones._masking import scale_features
from ssl_domains_timeseries.backbones.patch_transformer import PatchTransformer

from ssl_domains.contracts import Backbone


def small(**kw) -> PatchTransformer:
    args = {"in_channels": 2, "patch_len": 8, "stride": 4, "d_model": 16, "depth": 1, "heads": 2}
    return PatchTransformer(**{**args, **kw})


def test_shapes_and_contract() -> None:
    m = small()
    assert isinstance(m, Backbone)
    assert m.input_spec.modality == "signal" and m.input_spec.channels == 2
    x = torch.randn(3, 2, 50)
    assert m.forward_features(x).shape == (3, 16)
    assert m.forward_patches(x).shape == (3, 2, m.num_patches(50), 16)
    assert m.num_patches(50) == 12  # ceil((50 - 8) / 4) + 1
    assert small(pool="concat").forward_features(x).shape == (3, 32)
    assert small(pool="concat").num_features == 32


def test_patchify_roundtrip_and_short_series() -> None:
    m = small(in_channels=1)
    x = torch.arange(50.0).view(1, 1, 50)
    patches = m.patchify(x)
    assert patches.shape == (1, 1, 12, 8)
    assert torch.isnan(patches[0, 0, -1, -2:]).all()  # padding is missing, not zero
    assert torch.equal(m.unpatchify(patches.nan_to_num(0.0), 50), x)
    assert m.forward_features(torch.randn(2, 1, 5)).shape == (2, 16)  # shorter than a patch


def test_missing_values_do_not_reach_gradients() -> None:
    m = small()
    x = torch.randn(4, 2, 40)
    x[0, 0, 3:20] = float("nan")
    x[1, 1] = float("nan")  # a whole channel missing
    m.forward_features(x).pow(2).sum().backward()
    grads = [p.grad for p in m.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_missing_values_change_nothing_else_when_observed() -> None:
    m = small(in_channels=1, dropout=0.0).eval()
    x = torch.randn(1, 1, 40)
    y = x.clone()
    y[0, 0, 30:] = float("nan")
    # Observed points unchanged, but the model sees the gap (mask channel): outputs differ.
    assert not torch.allclose(m.forward_features(x), m.forward_features(y))
    assert torch.isfinite(m.forward_features(y)).all()


def test_bad_arguments_and_inputs() -> None:
    with pytest.raises(ValueError, match="heads"):
        PatchTransformer(d_model=10, heads=4)
    with pytest.raises(ValueError, match="pool"):
        PatchTransformer(pool="max")
    with pytest.raises(ValueError, match="patch_len and stride"):
        PatchTransformer(patch_len=0)
    m = small()
    with pytest.raises(ValueError, match=r"expects \[B, 2, T\]"):
        m.forward_features(torch.randn(2, 3, 40))
    with pytest.raises(ValueError, match="max_patches"):
        small(max_patches=4).forward_features(torch.randn(1, 2, 40))


def test_instance_norm_keeps_level_and_scale_only_through_keep_scale() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 1, 40)
    y = 3 * x + 5
    blind = small(in_channels=1, dropout=0.0, keep_scale=False).eval()
    assert blind.scale_embed is None
    assert torch.allclose(blind.forward_features(x), blind.forward_features(y), atol=1e-4)
    m = small(in_channels=1, dropout=0.0).eval()
    assert m.keep_scale and m.num_features == 16
    assert (m.forward_features(x) - m.forward_features(y)).abs().max() > 0.01
    with torch.no_grad():  # the embedding is the only way level and scale get in
        m.scale_embed.weight.zero_()
    assert torch.allclose(m.forward_features(x), m.forward_features(y), atol=1e-4)
    # asinh(mean) and log(std) per channel, as the embedding sees them
    mean = torch.tensor([[[0.0]], [[5.0]]])
    std = torch.tensor([[[1.0]], [[3.0]]])
    got = scale_features(mean, std)
    assert got.shape == (2, 1, 2)
    assert torch.allclose(got[1, 0], torch.tensor([math.asinh(5.0), math.log(3.0)]))
    assert small(in_channels=1, instance_norm=False).scale_embed is None
