"""Every signal backbone of this plugin builds from its registered examples and trains."""

from __future__ import annotations

import pytest
import torch
from ssl_domains_timeseries.backbones.patch_transformer import PatchTransformer
from ssl_domains_timeseries.backbones.tcn import TCN


@pytest.mark.parametrize("cls", [PatchTransformer, TCN])
def test_examples_forward_backward(cls: type) -> None:
    meta = cls.__ssl_component__
    assert meta["modalities"] == ("signal",) and meta["examples"]
    for example in meta["examples"]:
        model = cls(**example.args)
        x = torch.randn(2, *example.input_shape)
        x[0, 0, :3] = float("nan")
        feats = model.forward_features(x)
        assert feats.shape == (2, model.num_features)
        feats.sum().backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
