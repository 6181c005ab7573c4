from __future__ import annotations

import pytest
import torch
from matplotlib.figure import Figure
from ssl_domains_medical.backbones import ResNetEncoder
from ssl_domains_medical.pretext.contrastive import ContrastiveViews, nt_xent

from ssl_domains.builtin.mlp import MLPBackbone
from ssl_domains.errors import IncompatibleError


def test_nt_xent_is_low_for_matching_views_and_high_for_swapped() -> None:
    z = torch.eye(4) * 5
    matched = nt_xent(z, z.clone(), temperature=0.1)
    shuffled = nt_xent(z, z[[1, 2, 3, 0]], temperature=0.1)
    assert matched.item() < 0.01
    assert shuffled.item() > 5


def test_nt_xent_uniform_embeddings_give_log_of_candidates() -> None:
    z = torch.ones(3, 2)
    # all 2B-1 candidates equally similar: loss = log(2B - 1)
    assert nt_xent(z, z, 0.5).item() == pytest.approx(torch.log(torch.tensor(5.0)).item(), 1e-5)


@pytest.mark.parametrize("dims", [2, 3])
def test_forward_gives_views_and_a_trainable_loss(dims: int) -> None:
    torch.manual_seed(0)
    backbone = ResNetEncoder(spatial_dims=dims, depth=10, width=4, stem_stride=1)
    task = ContrastiveViews(backbone, projection_dim=8, projection_hidden=16)
    x = torch.rand((4, 1) + (12,) * dims)
    out = task({"image": x})
    assert out["view_1"].shape == x.shape and out["view_2"].shape == x.shape
    assert not torch.allclose(out["view_1"], out["view_2"])
    out["loss"].backward()
    assert all(p.grad is not None for p in backbone.parameters() if p.requires_grad)
    figs = task.figures(out, max_items=2)
    assert isinstance(figs["contrastive_views"], Figure)


def test_training_pulls_views_together() -> None:
    torch.manual_seed(0)
    backbone = ResNetEncoder(spatial_dims=2, depth=10, width=8, stem_stride=1)
    task = ContrastiveViews(backbone, projection_dim=16, projection_hidden=32, noise=0.0)
    x = torch.rand(16, 1, 16, 16) * torch.linspace(0, 1, 16).view(16, 1, 1, 1)
    opt = torch.optim.Adam(task.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = task({"image": x})["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5


def test_refuses_signal_backbones_tiny_batches_and_bad_temperature() -> None:
    with pytest.raises(IncompatibleError, match="image backbone"):
        ContrastiveViews(MLPBackbone(input_shape=[1, 8]))
    task = ContrastiveViews(ResNetEncoder(spatial_dims=2, depth=10, width=4))
    with pytest.raises(ValueError, match="at least 2"):
        task({"image": torch.rand(1, 1, 8, 8)})
    with pytest.raises(ValueError, match="temperature"):
        ContrastiveViews(ResNetEncoder(spatial_dims=2, depth=10, width=4), temperature=0)
