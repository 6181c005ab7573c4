"""spacing / patch_size "auto": the grid and patch planned from the data (nnU-Net's rules within
a compute budget), and the plan passed from the training data to the test data."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from ssl_domains_medical.fingerprint import median_shape, plan_patch, plan_spacing
from ssl_domains_medical.loaders.manifest import ImageManifestDataset

from ssl_domains.config import ComponentRef
from ssl_domains.data.datasets import with_stats
from ssl_domains.errors import ConfigError
from ssl_domains.plugins import get_host


def test_spacing_is_the_median_with_the_anisotropy_rule_and_the_budget() -> None:
    # isotropic enough: the median per axis
    assert plan_spacing([[1, 1, 2], [1, 1, 2.5], [2, 2, 2]], [[40] * 3] * 3) == [1.0, 1.0, 2.0]
    # thick slices (median 5 mm vs 0.8 mm): that axis takes its 10th percentile, as nnU-Net does
    sp = [[0.8, 0.8, z] for z in (5, 5, 5, 5, 5, 5, 5, 5, 5, 1.5)]
    assert plan_spacing(sp, [[60, 60, 20]] * 10)[2] == pytest.approx(np.percentile([z for *_, z in sp], 10))
    # over the budget: the finest axes coarsen first, never past the coarsest
    got = plan_spacing([[0.5, 0.5, 3.0]] * 3, [[400, 400, 40]] * 3, max_voxels=64 ** 3)
    assert got[2] == 3.0 and 0.5 < got[0] == got[1] <= 3.0
    assert math.prod(median_shape([[0.5, 0.5, 3.0]], [[400, 400, 40]], got)) <= 64 ** 3
    # isotropic and over the budget: all axes together
    got = plan_spacing([[1, 1, 1]], [[200, 200, 200]], max_voxels=50 ** 3)
    assert got[0] == got[1] == got[2] > 1 and math.prod(median_shape([[1, 1, 1]], [[200] * 3], got)) <= 50 ** 3
    with pytest.raises(ValueError, match="positive"):
        plan_spacing([[0, 1, 1]], [[10, 10, 10]])


def test_patch_covers_the_median_case_within_the_budget() -> None:
    assert plan_patch([30, 28, 12]) == [32, 32, 16]  # small cases: the whole case, rounded up to 8
    big = plan_patch([140, 120, 60])
    assert big == [32, 32, 32] and all(v % 8 == 0 for v in big)
    assert math.prod(plan_patch([45, 44, 8], patch_voxels=32 ** 3)) <= 32 ** 3
    # the largest axis is cut first, down to the others, then each in turn
    assert plan_patch([200, 50, 50], patch_voxels=64 * 32 * 32) == [40, 40, 40]
    assert plan_patch([200, 20, 20], patch_voxels=48 * 24 * 24) == [48, 24, 24]
    with pytest.raises(ValueError, match="smallest"):
        plan_patch([40, 40, 40], patch_voxels=100)


def _cases(folder: Path, n: int, zooms: tuple[float, float, float], shape: tuple[int, int, int]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        image = np.random.RandomState(i).normal(100, 10, shape).astype(np.float32)
        mask = np.zeros(shape, np.uint8)
        mask[tuple(slice(s // 3, s // 2 + 1) for s in shape)] = 1
        affine = np.diag([*zooms, 1.0])
        nib.save(nib.Nifti1Image(image, affine), str(folder / f"c{i}.nii.gz"))
        nib.save(nib.Nifti1Image(mask, affine), str(folder / f"c{i}_mask.nii.gz"))
        rows.append([f"c{i}", f"c{i}.nii.gz", f"c{i}_mask.nii.gz"])
    with open(folder / "cases.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["case_id", "image", "mask"], *rows])
    return folder / "cases.csv"


def test_auto_plans_the_training_data_and_the_test_data_takes_its_plan(tmp_path: Path) -> None:
    # 0.5 x 0.5 x 2.5 mm cases of 120 x 100 x 12: over a 24^3 budget, so the grid coarsens
    train = ImageManifestDataset(str(_cases(tmp_path / "train", 3, (0.5, 0.5, 2.5), (120, 100, 12))),
                                 spacing="auto", patch_size="auto", patches_per_volume=2,
                                 max_voxels=24 ** 3, patch_voxels=16 ** 3, intensity="percentile")
    plan = train.stats
    assert plan is not None and plan["cases"] == 3
    assert plan["spacing"][2] == 2.5 and 0.5 < plan["spacing"][0] <= 2.5
    assert plan["patch_size"] == [16, 16, 16]
    item = train[0]
    assert tuple(item["image"].shape[1:]) == (16, 16, 16) == tuple(item["mask"].shape[1:])
    assert item["meta"]["spacing"] == pytest.approx(plan["spacing"], abs=1e-3)
    whole = train.whole_cases()[0]["image"]  # whole cases on the planned grid
    assert whole.shape[1] == round(120 * 0.5 / plan["spacing"][0])
    # the test loader says "auto" too, but is resampled to the TRAINING plan (passed as stats),
    # not to a plan of its own finer cases
    registry = get_host().registry
    ref = with_stats(registry, ComponentRef(name="image_manifest", args={
        "path": str(_cases(tmp_path / "test", 2, (0.25, 0.25, 2.5), (160, 160, 12))),
        "spacing": "auto", "intensity": "percentile"}), plan)
    test = registry.create("loader", "image_manifest", **ref.args)
    assert test[0]["meta"]["spacing"] == pytest.approx(plan["spacing"], abs=1e-3)
    assert test.patch_size is None  # whole cases: the test loader asked for no patches


def test_fixed_values_are_untouched_and_bad_words_refused(tmp_path: Path) -> None:
    path = _cases(tmp_path / "c", 1, (1.0, 1.0, 1.0), (20, 20, 20))
    fixed = ImageManifestDataset(str(path), spacing=[2, 2, 2], patch_size=8)
    assert fixed.stats is None and fixed.spacing == [2, 2, 2] and fixed.patch_size == 8
    with pytest.raises(ConfigError, match="spacing must be a size, None or 'auto'"):
        ImageManifestDataset(str(path), spacing="median")


def test_the_plan_reads_nifti_headers_only_and_agrees_with_the_loaded_volumes(tmp_path: Path) -> None:
    # an oblique-free but permuted and flipped orientation (axes stored S, A, L with 2.5, 0.7,
    # 0.9 mm voxels): the header's geometry must come out on the loader's RAS axes
    folder = tmp_path / "c"
    folder.mkdir()
    affine = np.array([[0, 0, -0.9, 10], [0, 0.7, 0, -5], [2.5, 0, 0, 3], [0, 0, 0, 1]], float)
    rows = [["case_id", "image"]]
    for i, shape in enumerate([(12, 40, 50), (14, 44, 52), (10, 38, 48)]):
        nib.save(nib.Nifti1Image(np.ones(shape, np.float32), affine), str(folder / f"c{i}.nii.gz"))
        rows.append([f"c{i}", f"c{i}.nii.gz"])
    with open(folder / "cases.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    ds = ImageManifestDataset(str(folder / "cases.csv"), spacing="auto", patch_size="auto")
    for record in ds.records:
        loaded = ds.load_record(record)["image"]
        spacing, shape = ds.record_geometry(record)
        assert shape == [int(v) for v in loaded.shape[1:]]
        assert spacing == pytest.approx([float(v) for v in loaded.pixdim])
    spacing, shape = ds.record_geometry(ds.records[0])
    assert shape == [50, 40, 12] and spacing == pytest.approx([0.9, 0.7, 2.5])

    # planning never loads a volume: a plan made while loading is impossible is the header's
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the plan loaded a volume")

    fresh = ImageManifestDataset(str(folder / "cases.csv"), spacing="auto", patch_size="auto")
    fresh.load_record = refuse  # type: ignore[method-assign]
    plan = fresh.plan()
    assert plan["cases"] == 3 and plan["spacing"] == pytest.approx([0.9, 0.7, 2.5])


def test_dicom_geometry_for_the_plan_comes_from_headers_and_matches_the_loaded_volume(tmp_path: Path) -> None:
    from ssl_domains_medical.loaders.dicom import DicomDataset
    from ssl_domains_medical.loaders.synthetic import write_ct_series

    # a sagittal stack (rows run to posterior, columns to feet) of 12 x 20 x 16: the DICOM
    # loader keeps the native axes; a case folder turns them to RAS like a NIfTI file
    volume = np.random.RandomState(0).normal(0, 100, (12, 20, 16))
    write_ct_series(tmp_path / "case" / "ct", volume, spacing=(2.5, 0.8, 0.6),
                    orientation=(0, 1, 0, 0, 0, -1))
    dicom = DicomDataset(root=str(tmp_path / "case"))
    manifest = tmp_path / "cases.csv"
    with open(manifest, "w", newline="") as fh:
        csv.writer(fh).writerows([["case_id", "image"], ["c0", str(tmp_path / "case" / "ct")]])
    folders = ImageManifestDataset(str(manifest))
    for ds in (dicom, folders):
        record = ds.records[0]
        loaded = ds.load_record(record)["image"]
        spacing, shape = ds.record_geometry(record)
        assert shape == [int(v) for v in loaded.shape[1:]]
        assert spacing == pytest.approx([float(v) for v in loaded.pixdim], abs=1e-4)
        assert sorted(spacing) == pytest.approx([0.6, 0.8, 2.5], abs=1e-4)
    # RAS axes of the case folder: 12 slices left-right, 16 columns front-back, 20 rows up-down
    assert folders.record_geometry(folders.records[0])[1] == [12, 16, 20]

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the geometry loaded the pixels")

    # headers only: the geometry never decodes pixels (the DICOM loader: native column, row,
    # slice axes)
    for ds, shape in ((dicom, [16, 20, 12]), (folders, [12, 16, 20])):
        ds.load_record = refuse  # type: ignore[method-assign]
        assert ds.record_geometry(ds.records[0])[1] == shape
