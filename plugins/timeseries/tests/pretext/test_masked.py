from __future__ import annotations

import pytest
import torch
from ssl_domains_timeseries.backbones.patch_transformer import PatchTransformer
from ssl_domains_timeseries.backbones.tcn import TCN
from ssl_domains_timeseries.pretext.masked import MaskedPatchTask

from ssl_domains.builtin.mlp import MLPBackbone


def test_hidden_mask_has_whole_segments_and_ratio() -> None:
    task = MaskedPatchTask(TCN(width=8, depth=1, kernel_size=3), mask_ratio=0.25, segment_len=4)
    hidden = task.sample_hidden(torch.Size([5, 3, 30]), torch.device("cpu"))
    assert hidden.shape == (5, 3, 30)
    segs = hidden[..., :28].reshape(5, 3, 7, 4)
    assert (segs.all(-1) | ~segs.any(-1)).all()  # each segment all-or-nothing
    per_item = torch.cat([segs[..., 0], hidden[..., 28:29]], -1).sum(-1)
    assert (per_item == 2).all()  # round(0.25 * 8 segments)


def test_default_segment_is_patch_len() -> None:
    pt = PatchTransformer(patch_len=12, stride=12, d_model=16, depth=1, heads=2)
    assert MaskedPatchTask(pt).segment_len == 12


@pytest.mark.parametrize(
    "backbone",
    [
        PatchTransformer(in_channels=2, patch_len=8, stride=4, d_model=16, depth=1, heads=2),
        TCN(in_channels=2, width=8, depth=2, kernel_size=3),
        MLPBackbone([2, 32]),
    ],
    ids=["patch", "tcn", "mlp"],
)
def test_loss_only_on_hidden_observed_points(backbone) -> None:
    torch.manual_seed(0)
    task = MaskedPatchTask(backbone, mask_ratio=0.5, segment_len=8)
    x = torch.randn(4, 2, 32)
    x[0, :, :] = float("nan")  # an item with nothing observed
    x[1, 0, 5:20] = float("nan")
    out = task({"signal": x})
    assert torch.isfinite(out["loss"])
    assert out["reconstruction"].shape == x.shape
    assert torch.isfinite(out["reconstruction"]).all()
    assert torch.equal(torch.isnan(out["corrupted"]), out["hidden"] | torch.isnan(x))
    out["loss"].backward()
    grads = [p.grad for p in backbone.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_visible_values_do_not_change_the_loss_target() -> None:
    # Changing a visible point changes inputs but never appears in the loss as a target:
    # with the same hidden mask, a huge visible value must not blow the loss up by itself.
    backbone = TCN(width=8, depth=1, kernel_size=3)
    task = MaskedPatchTask(backbone, mask_ratio=0.5, segment_len=5).eval()
    x = torch.randn(1, 1, 20)
    torch.manual_seed(1)
    hidden = task.sample_hidden(x.shape, x.device)
    visible_idx = (~hidden[0, 0]).nonzero()[0, 0]
    y = x.clone()
    y[0, 0, visible_idx] = 1e6
    torch.manual_seed(1)
    out = task({"signal": y})
    assert torch.equal(out["hidden"], hidden)
    assert torch.isfinite(out["loss"]) and out["loss"] < 1e3


def test_figures_and_errors() -> None:
    task = MaskedPatchTask(TCN(width=8, depth=1, kernel_size=3), segment_len=4)
    figs = task.figures(task({"signal": torch.randn(2, 1, 16)}), max_items=3)
    assert list(figs) == ["reconstruction"] and len(figs["reconstruction"].axes) == 2
    with pytest.raises(ValueError, match="mask_ratio must be in"):
        MaskedPatchTask(TCN(), mask_ratio=1.0)
    with pytest.raises(ValueError, match="segment_len must be >= 1"):
        MaskedPatchTask(TCN(), segment_len=0)
    with pytest.raises(ValueError, match="loss must be"):
        MaskedPatchTask(TCN(), loss="l1")
