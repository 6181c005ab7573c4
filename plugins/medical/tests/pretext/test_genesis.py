from __future__ import annotations

import numpy as np
import pytest
import torch
from ssl_domains_medical.backbones import ResNetEncoder, UNetEncoder
from ssl_domains_medical.pretext import genesis as g


def ramp(shape: tuple[int, ...]) -> np.ndarray:
    x = np.linspace(0, 1, int(np.prod(shape))).reshape(1, *shape)
    return np.random.RandomState(0).permutation(x.ravel()).reshape(1, *shape)


def test_bezier_curve_ends_at_control_points() -> None:
    xs, ys = g.bezier_curve(np.array([[0, 0], [0.2, 0.9], [0.7, 0.1], [1, 1]]), 50)
    assert {round(xs[0], 6), round(xs[-1], 6)} == {0.0, 1.0}
    assert {round(ys[0], 6), round(ys[-1], 6)} == {0.0, 1.0}


def test_nonlinear_curve_keeps_range_and_is_monotonic() -> None:
    x = np.linspace(0, 1, 101)[None]
    seen = set()
    for seed in range(12):
        y = g.nonlinear_transformation(x, np.random.RandomState(seed), prob=1.0)
        assert y.min() >= -1e-9 and y.max() <= 1 + 1e-9
        d = np.diff(y[0])
        assert np.all(d >= -1e-9) or np.all(d <= 1e-9)
        seen.add(bool(d.sum() > 0))
    assert seen == {True, False}  # both increasing and inverted curves occur


def test_local_shuffling_permutes_values_locally() -> None:
    x = ramp((20, 20))
    y = g.local_pixel_shuffling(x, np.random.RandomState(0), prob=1.0, n_blocks=200)
    assert not np.array_equal(x, y)
    # windows are at most 2 pixels wide here, so every value moves by at most one pixel
    for i in range(20):
        for j in range(20):
            assert y[0, i, j] in x[0, max(0, i - 1):i + 2, max(0, j - 1):j + 2]
    assert g.local_pixel_shuffling(x, np.random.RandomState(0), prob=0.0) is x


@pytest.mark.parametrize("shape", [(24, 24), (16, 16, 16), (6, 6)])
def test_painting_changes_part_of_the_image(shape: tuple[int, ...]) -> None:
    x = np.full((1, *shape), 0.5)
    inp = g.in_painting(x, np.random.RandomState(1))
    out = g.out_painting(x, np.random.RandomState(1))
    for y in (inp, out):
        assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    kept_in, kept_out = (inp == 0.5).mean(), (out == 0.5).mean()
    assert 0 < kept_out < kept_in <= 1  # out-painting keeps less of the original
    assert (inp != 0.5).any()


def test_corrupt_with_zero_rates_is_identity() -> None:
    x = ramp((8, 8, 8))
    c, t = g.corrupt(x, np.random.RandomState(0), 0, 0, 0, 0, 0)
    assert np.array_equal(c, x) and np.array_equal(t, x)


def test_flip_applies_to_input_and_target() -> None:
    x = ramp((6, 7))
    a, b = g.flip(x, x.copy(), np.random.RandomState(2), prob=1.0)
    assert np.array_equal(a, b) and not np.array_equal(a, x)


def test_task_restores_original_units_reproducibly() -> None:
    task = g.GenesisRestoration(UNetEncoder(spatial_dims=2, base_channels=4, levels=2),
                                flip_rate=0.0)
    x = 100 + 50 * torch.rand(2, 1, 16, 16)
    torch.manual_seed(0)
    out = task({"image": x})
    torch.manual_seed(0)
    again = task({"image": x})
    assert torch.equal(out["corrupted"], again["corrupted"])
    assert torch.allclose(out["input"], x)
    assert out["corrupted"].min() >= 100 - 1e-4 and out["corrupted"].max() <= 150 + 1e-4
    assert not torch.equal(out["corrupted"], x)
    out["loss"].backward()
    assert task.backbone.down_tr[0].ops[0].conv1.weight.grad.abs().sum() > 0
    figs = task.figures({k: v.detach() for k, v in out.items()}, 1)
    assert len(figs["genesis_restoration"].axes) == 3


def test_probabilities_are_checked() -> None:
    with pytest.raises(ValueError, match=r"probabilities must be in \[0, 1\], got \{'paint_rate': 1.5\}"):
        g.GenesisRestoration(UNetEncoder(spatial_dims=2, base_channels=4, levels=1),
                             paint_rate=1.5)


def test_pooled_restoration_target_and_figures() -> None:
    task = g.GenesisRestoration(ResNetEncoder(spatial_dims=3, depth=10, width=4, stem_stride=2),
                                target_stride=2, decoder_min_width=4)
    x = torch.rand(2, 1, 8, 8, 8)
    out = task({"image": x})
    assert out["input"].shape == out["corrupted"].shape == x.shape
    assert out["reconstruction"].shape == out["target"].shape == (2, 1, 4, 4, 4)
    pooled = out["input"].reshape(2, 1, 4, 2, 4, 2, 4, 2).mean((3, 5, 7))
    assert torch.allclose(out["target"], pooled, atol=1e-6)
    assert out["loss"].item() == pytest.approx(
        torch.mean((out["reconstruction"] - pooled) ** 2).item(), rel=1e-5)
    figs = task.figures({k: v.detach() for k, v in out.items()}, 1)
    assert len(figs["genesis_restoration"].axes) == 3


def test_bad_target_stride() -> None:
    with pytest.raises(ValueError, match="target_stride must be a positive int, got 0"):
        g.GenesisRestoration(UNetEncoder(spatial_dims=2, base_channels=4, levels=1),
                             target_stride=0)
