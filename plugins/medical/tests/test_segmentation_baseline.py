from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from ssl_domains_medical.segmentation_baseline import VoxelStatistics

FAST: dict[str, Any] = {"sigmas": (1.0, 2.0), "max_voxels": 6000}


def sphere_case(seed: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``([1, *shape] float32, [*shape] bool)``: a bright ball of radius 4-6 voxels somewhere
    in the volume (not centred) on Gaussian noise."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape, dtype=np.float32)
    centre = [rng.uniform(7, n - 7) for n in shape]
    radius = rng.uniform(4, 6)
    mask = sum((g - c) ** 2 for g, c in zip(grid, centre)) < radius**2
    image = rng.normal(0.0, 0.5, shape) + 1.0 * mask
    return image[None].astype(np.float32), mask


def dice(p: np.ndarray, m: np.ndarray) -> float:
    b = p >= 0.5
    return float(2 * (b & m).sum() / (b.sum() + m.sum()))


@pytest.mark.parametrize("classifier", [{}, {"classifier": "boosting", "max_iter": 30}],
                         ids=["logistic", "boosting"])
def test_segments_bright_spheres_from_two_cases(classifier: dict[str, Any]) -> None:
    cases = [sphere_case(s, shape) for s, shape in
             enumerate([(28, 24, 20), (24, 28, 22), (26, 26, 20)])]  # sizes differ
    model = VoxelStatistics(**classifier, **FAST).fit(
        [c[0] for c in cases[:2]], [c[1] for c in cases[:2]])
    image, mask = cases[2]
    p = model.predict_map(image)
    assert p.shape == mask.shape and p.dtype == np.float32
    assert 0.0 <= p.min() and p.max() <= 1.0
    assert dice(p, mask) > 0.8


def test_predict_proba_stacks_maps_and_masks_may_have_a_channel_dim() -> None:
    cases = [sphere_case(s, (20, 20, 16)) for s in range(4)]
    model = VoxelStatistics(**FAST).fit([c[0] for c in cases[:2]],
                                        [c[1][None].astype(np.uint8) for c in cases[:2]])
    x = np.stack([c[0] for c in cases[2:]])
    p = model.predict_proba(x)
    assert VoxelStatistics.dense is True
    assert p.shape == (2, 20, 20, 16) and p.dtype == np.float32
    assert np.isfinite(p).all() and 0.0 <= p.min() and p.max() <= 1.0
    np.testing.assert_array_equal(p[1], model.predict_map(cases[3][0]))


def test_same_seed_same_map_other_seed_other_sample() -> None:
    cases = [sphere_case(s, (20, 20, 16)) for s in range(3)]
    images, masks = [c[0] for c in cases[:2]], [c[1] for c in cases[:2]]
    maps = [VoxelStatistics(seed=seed, **FAST).fit(images, masks).predict_map(cases[2][0])
            for seed in (0, 0, 1)]
    np.testing.assert_array_equal(maps[0], maps[1])
    assert not np.array_equal(maps[0], maps[2])


def test_two_dimensional_images() -> None:
    cases = [sphere_case(s, (40, 36)) for s in range(3)]
    model = VoxelStatistics(**FAST).fit([c[0] for c in cases[:2]], [c[1] for c in cases[:2]])
    p = model.predict_map(cases[2][0])
    assert p.shape == (40, 36)
    assert dice(p, cases[2][1]) > 0.8
    assert model.predict_proba(np.stack([cases[2][0]] * 2)).shape == (2, 40, 36)


def test_features_per_channel_and_scale() -> None:
    x = np.random.default_rng(0).normal(size=(2, 6, 7, 5)).astype(np.float32)
    assert VoxelStatistics(sigmas=(1.0, 2.0)).features(x).shape == (6 * 7 * 5, 2 * 9)
    f = VoxelStatistics(sigmas=(1.0,), center_distance=True).features(x[:1])
    assert f.shape == (6 * 7 * 5, 6)
    r = f[:, -1].reshape(6, 7, 5)
    assert r[0, 0, 0] == pytest.approx(1.0) and r[0, 0, 0] > r[2, 3, 2]


def test_sample_keeps_every_lesion_voxel_when_few() -> None:
    masks = [np.zeros((10, 10, 10), bool), np.zeros((8, 8, 8), bool)]
    masks[0][0, 0, :4] = True
    masks[1][1, 1, :6] = True
    picks = VoxelStatistics(max_voxels=100)._sample(masks)
    assert sum(len(p) for p in picks) == 100
    assert sum(int(m.reshape(-1)[p].sum()) for m, p in zip(masks, picks)) == 10


def test_refuses_what_it_cannot_segment() -> None:
    image, mask = sphere_case(0, (16, 16, 16))
    with pytest.raises(ValueError, match="spatial shape"):
        VoxelStatistics().fit([image], [mask[:8]])
    with pytest.raises(ValueError, match="lesion .* and background"):
        VoxelStatistics().fit([image], [np.zeros_like(mask)])
    with pytest.raises(ValueError, match=r"expects an image \[C, \*spatial\]"):
        VoxelStatistics().fit([image[0, 0]], [mask[0]])
    with pytest.raises(ValueError, match="same number of channels"):
        VoxelStatistics().fit([image, np.concatenate([image, image])], [mask, mask])
    with pytest.raises(ValueError, match="classifier must be one of"):
        VoxelStatistics(classifier="forest")
    model = VoxelStatistics(**FAST).fit([image], [mask])
    with pytest.raises(ValueError, match="trained on"):
        model.predict_map(image[:, 0])
