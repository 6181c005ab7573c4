"""MONAI preprocessing builders: windows, percentiles, resampling, 2-D, patch sampling."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor
from ssl_domains_medical.transforms import (
    CT_WINDOWS,
    patch_sampler,
    preprocessing,
    resolve_intensity,
)

from ssl_domains.errors import ConfigError


def _image(shape, values=None, spacing=1.0):
    data = values if values is not None else torch.zeros((1, *shape))
    affine = torch.eye(len(shape) + 1) * spacing
    affine[-1, -1] = 1
    return MetaTensor(data, affine=affine)


def test_ct_window_presets_map_to_unit_range():
    assert CT_WINDOWS["soft_tissue"] == (-160.0, 240.0) and CT_WINDOWS["lung"] == (-1000.0, 400.0)
    hu = torch.tensor([-1000.0, -160.0, 40.0, 240.0, 2000.0]).reshape(1, 5, 1, 1)
    out = preprocessing(intensity="soft_tissue")({"image": _image((5, 1, 1), hu)})["image"]
    assert out.flatten().tolist() == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.0])
    custom = preprocessing(intensity=[0, 100])({"image": _image((5, 1, 1), hu)})["image"]
    assert custom.flatten().tolist() == pytest.approx([0.0, 0.0, 0.4, 1.0, 1.0])


def test_percentile_normalisation_and_auto():
    assert resolve_intensity("auto", "CT") == "soft_tissue"
    assert resolve_intensity("auto", "MR") == "percentile"
    x = torch.arange(1000.0).reshape(1, 10, 10, 10)
    out = preprocessing(intensity="percentile", percentiles=(10, 90))({"image": _image((10, 10, 10), x)})
    img = out["image"]
    assert float(img.min()) == 0.0 and float(img.max()) == 1.0
    assert float((img == 0).float().mean()) == pytest.approx(0.101, abs=0.01)


def test_resampling_moves_mask_with_nearest_and_fixed_size():
    img = _image((8, 8, 8), torch.rand(1, 8, 8, 8), spacing=2.0)
    mask = _image((8, 8, 8), (torch.rand(1, 8, 8, 8) > 0.5).float(), spacing=2.0)
    out = preprocessing(mask_key="mask", spacing=1.0, spatial_size=[12, 12, 12])({"image": img, "mask": mask})
    assert out["image"].shape == (1, 12, 12, 12) and out["mask"].shape == (1, 12, 12, 12)
    assert set(out["mask"].unique().tolist()) <= {0.0, 1.0}
    assert out["image"].pixdim.tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_2d_pipeline_and_crop_foreground():
    x = torch.zeros(1, 20, 20)
    x[0, 5:10, 8:16] = 1.0
    out = preprocessing(dims=2, crop_foreground=True, spacing=[1.0, 1.0])({"image": _image((20, 20), x)})
    assert out["image"].shape == (1, 5, 8)
    resized = preprocessing(dims=2, spatial_size=10, resize_mode="resize")({"image": _image((20, 20), x)})
    assert resized["image"].shape == (1, 10, 10)


def test_patch_sampler_label_guided_and_seeded():
    img = _image((16, 16, 16), torch.rand(1, 16, 16, 16))
    mask = torch.zeros(1, 16, 16, 16)
    mask[0, 12:14, 12:14, 12:14] = 1
    sampler = patch_sampler(["image", "mask"], 4, num_samples=5, label_key="mask", pos=1, neg=0)
    sampler.set_random_state(seed=0)
    a = sampler({"image": img, "mask": _image((16, 16, 16), mask)})
    assert len(a) == 5 and all(p["mask"].sum() > 0 for p in a)
    uniform = patch_sampler(["image"], [4, 6, 8], num_samples=2)
    uniform.set_random_state(seed=3)
    first = uniform({"image": img})
    uniform.set_random_state(seed=3)
    again = uniform({"image": img})
    assert first[0]["image"].shape == (1, 4, 6, 8) and torch.equal(first[1]["image"], again[1]["image"])
    padded = patch_sampler(["image"], 20)({"image": img})  # smaller than the patch: zero-padded
    assert padded[0]["image"].shape == (1, 20, 20, 20)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"intensity": "lungs"}, "unknown intensity 'lungs'"),
        ({"intensity": [5, 1]}, "intensity window needs low < high"),
        ({"spatial_size": [8, 8]}, "spatial_size must be 3 positive integers for 3-D images"),
        ({"spacing": [1, 1]}, "spacing must be 3 positive numbers"),
        ({"spatial_size": 8, "resize_mode": "stretch"}, "resize_mode must be 'crop_or_pad' or 'resize'"),
        ({"dims": 4}, "dims must be 2 or 3"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        preprocessing(**kwargs)


def test_bad_patch_options():
    with pytest.raises(ConfigError, match="patch_size must be 2 positive integers"):
        patch_sampler(patch_size=[4, 4, 4], dims=2)
    with pytest.raises(ConfigError, match="num_samples must be >= 1"):
        patch_sampler(num_samples=0)
