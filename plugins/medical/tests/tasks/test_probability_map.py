from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from ssl_domains_medical.tasks.probability_map import (
    case_score,
    probability_map,
    save_probability_map,
)


def bright_patch_score(patches: torch.Tensor) -> torch.Tensor:
    return (patches.flatten(1).mean(1) > 0.2).float()


def test_map_is_high_where_the_lesion_is() -> None:
    vol = torch.zeros(1, 32, 32, 32)
    vol[0, 4:12, 4:12, 4:12] = 1.0
    prob = probability_map(bright_patch_score, vol, roi_size=8, overlap=0.5)
    assert prob.shape == (32, 32, 32)
    assert prob[6:10, 6:10, 6:10].mean() > 0.9
    assert prob[20:, 20:, 20:].max() == 0
    assert case_score(prob, "max") > 0.99


def test_2d_map_and_bad_input() -> None:
    img = torch.zeros(2, 20, 16)
    assert probability_map(bright_patch_score, img, (8, 8)).shape == (20, 16)
    with pytest.raises(ValueError, match=r"one image \[C, \*spatial\].*got shape \(20,\)"):
        probability_map(bright_patch_score, torch.zeros(20), 8)
    with pytest.raises(ValueError, match=r"overlap must be in \[0, 1\), got 1.0"):
        probability_map(bright_patch_score, img, 8, overlap=1.0)


def test_case_score_methods() -> None:
    prob = torch.zeros(10, 10)
    prob[0, :5] = 1.0
    assert case_score(prob, "max") == 1.0
    assert case_score(prob, "topk_mean", top_fraction=0.1) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="'max' or 'topk_mean', got 'sum'"):
        case_score(prob, "sum")


def test_nifti_keeps_the_input_affine(tmp_path: Path) -> None:
    affine = np.array([[-0.8, 0, 0, 10], [0, 0.8, 0, -20], [0, 0, 2.5, 5], [0, 0, 0, 1]])
    prob = torch.rand(1, 6, 5, 4)
    path = save_probability_map(prob, affine, tmp_path / "sub" / "map.nii.gz")
    img = nib.load(str(path))
    assert img.shape == (6, 5, 4)
    assert np.allclose(img.affine, affine)
    assert np.allclose(img.get_fdata(), prob[0].numpy(), atol=1e-6)
    assert img.header.get_data_dtype() == np.float32


def test_nifti_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"affine must be 4x4, got \(3, 3\)"):
        save_probability_map(torch.rand(4, 4, 4), np.eye(3), tmp_path / "m.nii")
    with pytest.raises(ValueError, match=r"must be \[\*spatial\]"):
        save_probability_map(torch.rand(2, 4, 4, 4), np.eye(4), tmp_path / "m.nii")
