"""tumor_segmentation: the task on its own, and a whole fine-tuning run through the engine's dense
path on synthetic volumes with lesions (maps on the case's own grid, tables, counts in cases)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
import yaml
from ssl_domains_medical.backbones import UNetEncoder
from ssl_domains_medical.pretext.masked import MaskedInpainting
from ssl_domains_medical.tasks.segmentation import TumorSegmentation

from ssl_domains.config import load_config
from ssl_domains.engine.finetune import finetune
from ssl_domains.plugins import get_host


def _task(**kw: object) -> TumorSegmentation:
    torch.manual_seed(0)
    return TumorSegmentation(UNetEncoder(spatial_dims=3, base_channels=4, levels=3), decoder_width=16, **kw)


def test_dense_logits_loss_and_sliding_window() -> None:
    task = _task()
    x = torch.randn(2, 1, 16, 16, 16)
    mask = (x[:, :1] > 1).float()
    out = task({"image": x, "mask": mask})
    assert out["logits"].shape == (2, 2, 16, 16, 16)
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    assert task.roi_size == [16, 16, 16]  # set by the first training batch
    prob = task.segment(torch.randn(1, 20, 37, 23))  # larger and odd-sized: windows blend
    assert prob.shape == (20, 37, 23)
    assert float(prob.min()) >= 0.0 and float(prob.max()) <= 1.0
    assert task.training  # the previous mode is restored


def test_spatial_augmentation_moves_image_and_mask_together() -> None:
    from ssl_domains_medical.augment import augmentation_from

    torch.manual_seed(1)
    image = torch.zeros(4, 1, 16, 16, 16)
    image[:, :, 2:9, 3:12, 5:14] = 1.0  # an off-centre box: any flip or turn moves it
    mask = image.clone().to(torch.uint8)
    flips = augmentation_from({"flip_axes": [0, 1, 2], "rotate": 0.0, "scale": [1.0, 1.0],
                               "translate": 0.0})
    warped, warped_mask = flips.warp_with_mask(image, mask)
    assert warped_mask is not None and warped_mask.dtype == torch.uint8
    assert torch.equal((warped > 0.5).to(torch.uint8), warped_mask)  # flips: exactly aligned
    assert not torch.equal(warped, image)  # and something was flipped
    turns = augmentation_from({"rotate": 25.0, "scale": [0.8, 1.2], "flip_axes": []})
    warped, warped_mask = turns.warp_with_mask(image, mask)
    agree = ((warped > 0.5).to(torch.uint8) == warped_mask).float().mean()
    assert agree > 0.97  # bilinear vs nearest differ only on the box's boundary
    assert not torch.equal(warped_mask, mask)
    # the task trains on the warped pair: a finite loss, logits of the patch's shape
    task = _task(augment={"flip_axes": [0, 1, 2], "rotate": 15, "brightness": 0.1})
    out = task({"image": image, "mask": mask})
    assert out["logits"].shape == (4, 2, 16, 16, 16) and torch.isfinite(out["loss"])


def test_flip_tta_averages_the_mirrored_passes() -> None:
    task = _task(roi_size=16, tta_flip=True)
    volume = torch.randn(1, 16, 16, 16)
    prob = task.segment(volume)
    plain = _task(roi_size=16)
    plain.load_state_dict(task.state_dict())
    # by hand: each mirror's probability, mirrored back, averaged over the 8 axis combinations
    want = torch.zeros(16, 16, 16)
    for axes in ([], [0], [1], [2], [0, 1], [0, 2], [1, 2], [0, 1, 2]):
        want += plain.segment(volume.flip([a + 1 for a in axes])).flip(axes) if axes else plain.segment(volume)
    assert torch.allclose(prob, want / 8, atol=1e-5)
    assert not torch.allclose(prob, plain.segment(volume), atol=1e-4)  # the mirrors changed it


def test_pretext_decoder_is_reused_when_it_fits() -> None:
    torch.manual_seed(0)
    backbone = UNetEncoder(spatial_dims=3, base_channels=4, levels=3)
    pretext = MaskedInpainting(backbone, decoder_width=16, target_stride=1)
    task = TumorSegmentation(UNetEncoder(spatial_dims=3, base_channels=4, levels=3), decoder_width=16)
    taken = task.load_pretext_state(pretext.state_dict())
    assert taken and not any(k.startswith("head.") for k in taken)
    for k in taken:
        assert torch.equal(task.decoder.state_dict()[k], pretext.decoder.state_dict()[k])
    # a decoder that stopped at half resolution has no full-resolution steps to give
    coarse = MaskedInpainting(backbone, decoder_width=16, target_stride=2)
    assert task.load_pretext_state(coarse.state_dict()) == []


def _cases(folder: Path, n: int, seed: int) -> Path:
    """``n`` volumes 24x20x16 (2 x 2 x 3 mm, oblique-free but offset) with a bright ball each."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    affine[:3, 3] = [-20.0, 10.0, 5.0]
    grid = np.indices((24, 20, 16)).astype(np.float32)
    rows = []
    for i in range(n):
        c = rng.uniform([8, 7, 5], [16, 13, 11])
        r = rng.uniform(3, 5)
        ball = (((grid - c[:, None, None, None]) ** 2).sum(0) <= r * r)
        image = rng.normal(100, 20, ball.shape).astype(np.float32) + 200 * ball
        nib.save(nib.Nifti1Image(image, affine), str(folder / f"c{i}.nii.gz"))
        nib.save(nib.Nifti1Image(ball.astype(np.uint8), affine), str(folder / f"c{i}_mask.nii.gz"))
        rows.append([f"PATIENT_{seed}_{i}", f"c{i}.nii.gz", f"c{i}_mask.nii.gz"])
    with open(folder / "cases.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["case_id", "image", "mask"])
        w.writerows(rows)
    return folder / "cases.csv"


def _config(tmp_path: Path, label_count: int) -> Path:
    loader = {"modality": "MR", "intensity": "percentile"}
    cfg = {
        "name": "seg", "output_dir": str(tmp_path / "runs"), "seed": 0,
        "backbone": {"name": "unet_encoder", "args": {"spatial_dims": 3, "base_channels": 4, "levels": 3}},
        "finetune": {
            "data": {"train": {"name": "image_manifest", "args": {
                         "path": str(_cases(tmp_path / "pool", 4, 0)), **loader,
                         "patch_size": 16, "patches_per_volume": 4, "pos_fraction": 0.67}},
                     "test": {"name": "image_manifest", "args": {
                         "path": str(_cases(tmp_path / "test", 2, 1)), **loader}},
                     "batch_size": 4},
            "label_count": label_count, "from_scratch": True,
            "task": {"name": "tumor_segmentation", "args": {"decoder_width": 16}},
            "train": {"epochs": 100, "max_steps": 60, "lr": 0.01, "eval_every": 20, "progress": False},
        },
    }
    path = tmp_path / "seg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_finetune_segments_whole_cases(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, label_count=1))
    run = tmp_path / "runs" / "seg"
    result = finetune(cfg, run, registry=get_host().registry)
    # one training case, and a second case validates (the budget counts cases)
    assert (result["n_train"], result["n_val"], result["n_test"], result["n_pool"]) == (1, 1, 2, 4)
    assert result["monitor"] == "dice" and result["threshold"] == 0.5
    assert result["test"]["dice"] > 0.5  # bright balls on noise: learnt from one case
    assert result["test"]["lesion_sensitivity"] == 1.0
    lo, hi = result["test_intervals"]["dice"]
    assert lo <= result["test"]["dice"] <= hi
    assert json.loads((run / "eval.json").read_text())["test"]["dice"] == result["test"]["dice"]

    seg = run / "segmentation"
    cases = list(csv.DictReader(open(seg / "test_cases.csv")))
    assert len(cases) == 2 and {"dice", "hd95", "lesion_sensitivity", "false_positives"} <= set(cases[0])
    assert abs(np.mean([float(c["dice"]) for c in cases]) - result["test"]["dice"]) < 1e-4
    lesions = list(csv.DictReader(open(seg / "test_lesions.csv")))
    assert lesions and {"volume_ml", "centroid_mm", "max_prob", "mean_prob"} <= set(lesions[0])
    # maps on the case's own grid, named by opaque id; no patient identifier anywhere
    source = nib.load(str(tmp_path / "test" / "c0.nii.gz"))
    case_id = cases[0]["id"]
    prob = nib.load(str(seg / "maps" / f"{case_id}_prob.nii.gz"))
    label = nib.load(str(seg / "maps" / f"{case_id}_label.nii.gz"))
    assert prob.shape == source.shape == label.shape
    assert np.allclose(prob.affine, source.affine)
    assert set(np.unique(np.asarray(label.dataobj))) <= {0, 1}
    for path in run.rglob("*"):
        if path.is_file() and path.suffix in (".csv", ".json", ".md", ".yaml"):
            assert "PATIENT_" not in path.read_text(), path
    assert (run / "export" / "model.safetensors").is_file()

    # predict segments other cases with the export: the same cases give the same scores, and a
    # case without a mask is segmented (maps, lesions) but not scored
    from click.testing import CliRunner

    from ssl_domains.cli import cli

    with open(tmp_path / "test" / "cases.csv") as fh:
        new_cases = fh.read().replace("PATIENT_1_1,c1.nii.gz,c1_mask.nii.gz", "PATIENT_1_1,c1.nii.gz,")
    (tmp_path / "test" / "new.csv").write_text(new_cases)
    out = tmp_path / "pred" / "scans.csv"
    res = CliRunner().invoke(cli, ["predict", str(run), "--loader", "image_manifest",
                                   "--arg", f"path={tmp_path / 'test' / 'new.csv'}", "--arg", "modality=MR",
                                   "--arg", "intensity=percentile", "--out", str(out),
                                   "--mapping", str(tmp_path / "private" / "ids.json")])
    assert res.exit_code == 0, res.output
    rows = {r["id"]: r for r in csv.DictReader(open(out))}
    assert set(rows) == {c["id"] for c in cases}
    scored = [r for r in rows.values() if r.get("dice")]
    assert len(scored) == 1  # the case with a mask
    assert float(scored[0]["dice"]) == pytest.approx(
        float(next(c["dice"] for c in cases if c["id"] == scored[0]["id"])), abs=1e-5)
    for r in rows.values():
        assert float(r["case_score"]) > 0.5 and int(r["lesions"]) >= 1 and float(r["lesion_ml"]) > 0
        assert (out.parent / "scans_maps" / f"{r['id']}_prob.nii.gz").is_file()
    assert {r["id"] for r in csv.DictReader(open(out.parent / "scans_lesions.csv"))} == set(rows)
    ids = json.loads((tmp_path / "private" / "ids.json").read_text())["items"]
    assert sorted(Path(i["input"]).name for i in ids) == ["c0.nii.gz", "c1.nii.gz"]
    assert "PATIENT_" not in out.read_text()


def test_budget_larger_than_the_pool_leaves_a_validation_case(tmp_path: Path) -> None:
    from ssl_domains.engine.finetune import build_finetune_sources
    from ssl_domains.engine.segmentation import dense_cases

    cfg = load_config(_config(tmp_path, label_count=10))
    assert cfg.finetune is not None
    data = dense_cases(cfg, cfg.finetune, build_finetune_sources(cfg.finetune, registry=get_host().registry))
    assert (data["n_train_cases"], data["n_val_cases"]) == (3, 1)
    assert not set(data["train_case_index"]) & set(data["val_case_index"])


def test_dense_task_needs_whole_cases(tmp_path: Path) -> None:
    from ssl_domains.engine.segmentation import _whole

    with pytest.raises(Exception, match="whole cases"):
        _whole(object(), "somewhere")


def test_sweep_and_auto_in_cases_with_report(tmp_path: Path) -> None:
    from ssl_domains.autoselect.arms import Size
    from ssl_domains.report.pages import build_report
    from ssl_domains.sweep.run import run_sweep

    cfg = load_config(_config(tmp_path, label_count=1), ["finetune.train.max_steps=20"])
    out = tmp_path / "sweep"
    result = run_sweep(cfg, out, sizes=[Size(count=1), Size(count=2)], seeds=[0],
                       arms=["scratch", "baseline", "auto"], echo=lambda _: None)
    dice = result.results[result.results["metric"] == "dice"]
    assert set(dice["arm"]) == {"scratch", "baseline:voxel_statistics", "auto"}
    assert sorted(dice["n_labels"].unique()) == [1, 2]  # counted in cases
    for n in (1, 2):
        auto = json.loads((out / "cells" / f"auto_{n}_0" / "eval.json").read_text())
        chosen = auto["selection"]["chosen"]
        assert auto["selection"]["metric"] == "dice"
        scores = auto["selection"]["scores"]
        assert scores[chosen] == max(scores.values())
        folder = "baseline-voxel_statistics" if chosen.startswith("baseline") else chosen
        own = json.loads((out / "cells" / f"{folder}_{n}_0" / "eval.json").read_text())
        assert auto["test"]["dice"] == own["test"]["dice"]  # the chosen cell's test numbers
    html = build_report(out).read_text()
    assert "Lesion detection" in html and (out / "report" / "froc.png").is_file()
    assert (out / "report" / "overlays.png").is_file()


def test_plan_counts_cases_as_the_run_does(tmp_path: Path) -> None:
    from ssl_domains.plan import format_plan, plan

    cfg = load_config(_config(tmp_path, label_count=2))
    info = plan(cfg, measure_steps=0)["stages"]["finetune"]["data"]
    # 2 training cases x 4 patches, and one further case validates, whole
    assert (info["label_budget"], info["train"]["items"], info["val"]["items"]) == (2, 8, 1)
    assert any("2 training case(s)" in line for line in format_plan(plan(cfg, measure_steps=0)))


def test_unreadable_and_maskless_cases_are_skipped_or_left_unscored(tmp_path: Path) -> None:
    from ssl_domains.engine.segmentation import segment_cases
    from ssl_domains.errors import DataError

    class Cases(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 30

        def __getitem__(self, i: int) -> dict:
            if i == 1:
                raise DataError(f"case{i}.nii.gz", "truncated gzip stream")
            item = {"image": torch.zeros(1, 8, 8, 8), "meta": {"id": f"c{i}", "spacing": [1, 1, 1]}}
            if i != 2:
                mask = torch.zeros(1, 8, 8, 8)
                mask[0, 2:5, 2:5, 2:5] = 1
                item["mask"] = mask
            return item

    class Ones:
        key = "image"

        def segment(self, volume: torch.Tensor) -> torch.Tensor:
            prob = torch.zeros(volume.shape[1:])
            prob[2:5, 2:5, 2:5] = 0.9
            return prob

    got = segment_cases(Ones(), Cases(), "test cases", want_lesions=True,
                        skipped_file=tmp_path / "skipped.json")
    assert got.unscored == ["c2"]  # segmented (its lesion row is there), not scored
    assert len(got.rows) == 28 and all(r["dice"] == 1.0 for r in got.rows)
    assert "c1" not in {r["id"] for r in got.lesions} and "c2" in {r["id"] for r in got.lesions}
    assert got.index[:2] == [0, 3]
    assert "truncated" in (tmp_path / "skipped.json").read_text()


def test_scoring_many_cases_does_not_hold_their_maps() -> None:
    import tracemalloc

    from ssl_domains.engine.segmentation import segment_cases
    from ssl_domains.scoring import lesions

    side, n = 48, 40

    class Cases(torch.utils.data.Dataset):
        def __init__(self, n: int) -> None:
            self.n = n

        def __len__(self) -> int:
            return self.n

        def __getitem__(self, i: int) -> dict:
            mask = torch.zeros(1, side, side, side)
            mask[0, 10:20 + i % 5, 10:20, 10:20] = 1
            return {"image": mask.clone(), "mask": mask, "meta": {"id": f"c{i}", "spacing": [1, 1, 1]}}

    class Blob:
        key = "image"

        def segment(self, volume: torch.Tensor) -> torch.Tensor:
            prob = torch.zeros(volume.shape[1:])
            prob[11:21, 10:20, 10:20] = 0.8  # the lesion shifted by a voxel
            prob[30:33, 30:33, 30:33] = 0.6  # and one false positive
            return prob

    def peak(cases: int) -> int:
        tracemalloc.start()
        segment_cases(Blob(), Cases(cases), "test cases", largest=True)
        used = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return used

    assert peak(n) < 1.25 * peak(10)  # 4x the cases, not 4x the memory: no map is held
    got = segment_cases(Blob(), Cases(n), "test cases", slices=True, largest=True)
    # the pooled scores equal those computed from all the maps at once
    pairs = [(Blob().segment(Cases(n)[i]["image"]).numpy(), Cases(n)[i]["mask"][0].numpy() > 0)
             for i in range(n)]
    want = lesions.segmentation_metrics(pairs, spacing=[1, 1, 1])
    assert got.metrics() == pytest.approx(want, nan_ok=True)
    assert got.tally.froc().sensitivity.tolist() == lesions.froc(pairs).sensitivity.tolist()
    assert want["fp_per_case"] == 1.0 and got.largest is not None
    assert got.largest.metrics()["fp_per_case"] == 0.0  # the largest lesion only: no false positive
    assert len(got.slices) == n and got.slices[0][0].shape == (side, side)


def test_evaluate_scores_a_segmentation_run_again(tmp_path: Path) -> None:
    from ssl_domains.config import ComponentRef
    from ssl_domains.engine.evaluate import evaluate
    from ssl_domains.errors import CheckpointError

    cfg = load_config(_config(tmp_path, label_count=1), ["finetune.train.max_steps=4"])
    run = tmp_path / "runs" / "seg"
    first = finetune(cfg, run, registry=get_host().registry)
    again = evaluate(run, registry=get_host().registry)  # the run's own cases, its export, the same numbers
    assert again["n"] == first["n_test"] == 2
    assert again["metrics"]["dice"] == pytest.approx(first["test"]["dice"])
    after = json.loads((run / "eval.json").read_text())
    assert after["steps"] == first["steps"] and after["init"] == first["init"]  # kept
    with pytest.raises(CheckpointError, match="segmentation model"):
        evaluate(run, ComponentRef(name="image_manifest", args={"path": "x.csv"}), registry=get_host().registry)


def test_largest_lesion_postprocessing() -> None:
    from ssl_domains.engine.segmentation import largest_lesion

    prob = np.zeros((12, 12, 12), np.float32)
    prob[1:5, 1:5, 1:5] = 0.9   # 64 voxels: kept
    prob[8:10, 8:10, 8:10] = 0.7  # 8 voxels: removed
    prob[6, 6, 6] = 0.3          # below the threshold: untouched
    out = largest_lesion(prob)
    assert out[2, 2, 2] == pytest.approx(0.9) and out[9, 9, 9] == 0.0 and out[6, 6, 6] == pytest.approx(0.3)
    assert largest_lesion(np.zeros((4, 4, 4), np.float32)).sum() == 0
