"""The benchmark suite's machinery (benchmarks/suite): budgets, recipes, table, ranks, targets,
and a tiny end-to-end run of one synthetic dataset."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ssl_domains.config import parse_config
from ssl_domains.plugins import get_host

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.suite import datasets, run, table  # noqa: E402


def test_budgets_parse_and_fit_the_pool() -> None:
    sizes = run.parse_budgets("10,20,50,10%,100%")
    assert [s.tag for s in sizes] == ["10", "20", "50", "0.1", "1.0"]
    keep, dropped = run.budgets_for(sizes, 40)
    assert [s.tag for s in keep] == ["10", "20", "1.0"]
    assert dropped == ["50 labels (pool has 40)", "10% (= 4 labels of 40)"]
    keep, _ = run.budgets_for(sizes, 546)
    assert [s.tag for s in keep] == ["10", "20", "50", "0.1", "1.0"]
    for bad in ("1", "0%", "150%", "ten"):
        with pytest.raises(ValueError, match="--budgets"):
            run.parse_budgets(bad)


def test_every_dataset_is_its_kinds_recipe_plus_data(tmp_path: Path) -> None:
    """Datasets of one kind differ only in data sections, channels and the validation protocol."""
    def training_part(cfg: dict) -> dict:
        cfg = json.loads(json.dumps(cfg))
        cfg.pop("name")
        cfg["backbone"]["args"].pop("in_channels", None)
        for stage in ("pretrain", "finetune"):
            for split in ("train", "val", "test"):
                cfg[stage]["data"].pop(split, None)
        cfg["finetune"].pop("val_budget", None)
        return cfg

    names = [d.name for d in datasets.DATASETS]
    assert {"ECG5000", "GunPoint", "ItalyPowerDemand", "ArrowHead", "OSULeaf", "ACSF1",
            "BasicMotions", "BreastMNIST", "PneumoniaMNIST", "AdrenalMNIST3D", "LIDC"} == set(names)
    for kind in datasets.KINDS:
        members = [d for d in datasets.DATASETS if d.kind == kind]
        assert members, kind
        recipe = training_part({**run.recipe(kind), "name": "x"})
        for ds in members:
            raw = run.dataset_config(ds, tmp_path)
            assert training_part(raw) == recipe, ds.name
            cfg = parse_config(raw, source=ds.name)  # a valid run config
            assert cfg.finetune is not None and cfg.finetune.data.test is not None
            assert cfg.pretrain is not None
    motions = run.dataset_config(datasets.by_name(["basicmotions"])[0], tmp_path)
    assert motions["backbone"]["args"]["in_channels"] == 6
    assert [d.name for d in datasets.by_name(quick=True)] == [
        "ECG5000", "GunPoint", "ItalyPowerDemand", "BasicMotions"]
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.by_name(["NoSuchSet"])


DATA = REPO.parent / "shared" / "data"


@pytest.mark.parametrize("ds", [d for d in datasets.DATASETS if d.kind == "signal"],
                         ids=lambda d: d.name)
def test_signal_datasets_give_binary_pools_and_test_sets(ds: datasets.Dataset) -> None:
    from ssl_domains.data.datasets import labels_of
    from ssl_domains.engine.finetune import build_finetune_sources

    if ds.missing(DATA):
        pytest.skip(f"{ds.name}: {ds.missing(DATA)} not under {DATA}")
    cfg = parse_config(run.dataset_config(ds, DATA), source=ds.name)
    assert cfg.finetune is not None
    sources = build_finetune_sources(cfg.finetune, registry=get_host().registry)
    pool, test = labels_of(sources["pool"]), labels_of(sources["test"])
    assert pool is not None and test is not None
    assert set(pool) == set(test) == {0, 1}
    assert abs(len(pool) - len(test)) <= 1  # 50/50
    assert abs(np.mean(pool) - np.mean(test)) < 0.02  # stratified
    channels = sources["pool"][0]["signal"].shape[0]
    assert channels == cfg.backbone.args.get("in_channels", 1)


def test_lidc_splits_by_patient_as_the_segmentation_benchmark(tmp_path: Path) -> None:
    """LIDC nodules: the segmentation benchmark's patient split (every 4th sorted patient
    tests), benign/malignant from Diagnosis, indeterminate (malignancy 3) out of fine-tuning
    and test, pre-training on every pool nodule without labels; 1 mm, 32^3, lung window."""
    import csv

    from benchmarks.segmentation.lidc import write_split
    from ssl_domains.data.datasets import groups_of, labels_of
    from ssl_domains.engine.finetune import build_finetune_sources

    ds = datasets.by_name(["lidc"])[0]
    if ds.missing(DATA):
        pytest.skip(f"LIDC: {ds.missing(DATA)} not under {DATA}")
    assert ds.prepare is not None
    ds.prepare(DATA, tmp_path / "work")
    cfg = parse_config(run.dataset_config(ds, DATA, work=tmp_path / "work"), source=ds.name)
    assert cfg.finetune is not None and cfg.pretrain is not None

    def rows(path: Path) -> list[dict[str, str]]:
        with open(path, newline="") as fh:
            return list(csv.DictReader(fh))

    with open(DATA / "lidc_nodules" / "nodules.csv", newline="") as fh:
        truth = {f"{r['patient_id']}_{r['nodule_id']}": r for r in csv.DictReader(fh)}
    seg = write_split(DATA, tmp_path / "seg")
    split = tmp_path / "work" / "split"
    for part in ("pool", "test"):  # the segmentation benchmark's nodules, less the 3s
        cases = [r["case_id"] for r in rows(seg[part])]
        mine = rows(split / f"{part}.csv")
        assert [r["case_id"] for r in mine] == [
            c for c in cases if truth[c]["Malignancy_value"] != "3"]
        assert all(int(r["label"]) == int(truth[r["case_id"]]["Diagnosis_value"]) for r in mine)
    assert [r["case_id"] for r in rows(split / "pretrain.csv")] == [
        r["case_id"] for r in rows(seg["pool"])]
    sources = build_finetune_sources(cfg.finetune, registry=get_host().registry)
    pool, test = sources["pool"], sources["test"]
    assert (len(pool), len(test)) == (470, 160)
    assert sorted(set(labels_of(pool) or [])) == [0, 1] and sum(labels_of(test) or []) == 80
    assert not set(groups_of(pool) or []) & set(groups_of(test) or [])  # patients apart
    assert len(set(groups_of(test) or [])) < len(test)  # groups are patients, not nodules
    item = test[0]
    assert item["image"].shape == (1, 32, 32, 32) and item["meta"]["spacing"] == [1.0, 1.0, 1.0]
    assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0


def _results() -> pd.DataFrame:
    """Two datasets x two budgets; seeds 0 and 1."""
    rows = []
    values = {  # (dataset, kind, n, fraction): {arm: (seed0, seed1)}
        ("A", "signal", 10, 0.05): {"ssl": (0.9, 0.8), "scratch": (0.7, 0.7),
                                    "baseline:x": (0.85, 0.85), "baseline:y": (0.6, 0.6)},
        ("A", "signal", 200, 1.0): {"ssl": (0.95, 0.95), "scratch": (0.96, 0.96),
                                    "baseline:x": (0.99, 0.99), "baseline:y": (0.5, 0.5)},
        ("B", "image", 10, 0.02): {"ssl": (0.6, 0.6), "scratch": (0.7, 0.7),
                                   "baseline:x": (0.6, 0.6)},
        ("BreastMNIST", "image", 55, 0.1): {"ssl": (0.86, 0.88), "scratch": (0.8, 0.8)},
    }
    for (ds, kind, n, f), arms in values.items():
        for arm, vals in arms.items():
            for seed, v in enumerate(vals):
                rows.append({"dataset": ds, "kind": kind, "arm": arm, "n_labels": n,
                             "fraction": f, "seed": seed, "metric": "auroc", "value": v})
                rows.append({"dataset": ds, "kind": kind, "arm": arm, "n_labels": n,
                             "fraction": f, "seed": seed, "metric": "auprc", "value": 0.0})
    return pd.DataFrame(rows)


def test_table_ranks_and_targets(tmp_path: Path) -> None:
    stats = table.cell_stats(_results())
    assert len(stats) == 4 + 4 + 3 + 2  # arms per dataset x budget cell; auprc left out
    a10 = stats[(stats["dataset"] == "A") & (stats["n_labels"] == 10)].set_index("arm")
    assert a10.loc["ssl", "mean"] == pytest.approx(0.85)
    assert a10.loc["ssl", "sd"] == pytest.approx(math.sqrt(0.005))
    assert a10.loc["ssl", "n"] == 2 and a10.loc["ssl", "fraction"] == pytest.approx(0.05)

    ranked, avg = table.ranks(stats)
    r = ranked.set_index(["dataset", "n_labels", "arm"])["rank"]
    assert r[("A", 10, "ssl")] == 1.5 and r[("A", 10, "baseline:x")] == 1.5  # a tie
    assert r[("A", 10, "scratch")] == 3 and r[("A", 10, "baseline:y")] == 4
    assert r[("B", 10, "scratch")] == 1 and r[("B", 10, "ssl")] == 2.5
    # ssl: 1.5, 3 (A 200), 2.5 (B), 1 (BreastMNIST) -> 2.0
    assert avg["ssl"] == pytest.approx(2.0)
    assert avg["scratch"] == pytest.approx((3 + 2 + 1 + 2) / 4)
    assert list(avg.index) == ["ssl", "scratch", "baseline:x", "baseline:y"]

    goals = {g["target"].split(" in ")[0].split(":")[0]: g for g in table.targets(stats)}
    # few-label cells (<= 10 %): A 10 (ssl > scratch), B 10 (ssl < scratch), BreastMNIST 55 (>)
    first = goals["ssl >= scratch"]
    assert first["cells"] == 3 and first["value"] == pytest.approx(2 / 3) and first["met"] is False
    # signal few-label cells: A 10 only; ssl 0.85 >= best baseline 0.85
    second = goals["ssl or ensemble >= the best classical baseline"]
    assert second["cells"] == 1 and second["value"] == 1.0 and second["met"] is True
    breast = goals["BreastMNIST 10 % (stretch)"]
    assert breast["value"] == pytest.approx(0.87) and breast["met"] is True

    md = table.markdown(stats, avg, table.targets(stats))
    assert "| A | 10 (5%) | **0.850 ± 0.071** | 0.700 ± 0.000 | **0.850 ± 0.000** |" in md
    assert "| **average rank** (1 = best) | | 2.00 |" in md
    assert "| ssl >= scratch in >= 80 % of dataset x budget cells with <= 10 % labels | 67% | no | 3 |" in md
    full, dropped = table.complete(stats)
    assert dropped == 0 and len(full) == len(stats)
    partial = pd.concat([_results(), pd.DataFrame([  # an interrupted budget: ssl only
        {"dataset": "A", "kind": "signal", "arm": "ssl", "n_labels": 50, "fraction": 0.25,
         "seed": 0, "metric": "auroc", "value": 0.5}])])
    kept, dropped = table.complete(table.cell_stats(partial))
    assert dropped == 1 and len(kept) == len(stats) and 50 not in set(kept["n_labels"])
    png = table.figure(stats, tmp_path / "suite.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_recipes_folder_overrides_a_kinds_recipe(tmp_path: Path) -> None:
    """``--recipes DIR``: a kind's recipe from DIR when it has one, else the default; the
    signal variants kept in benchmarks/suite/variants differ from the default in the backbone
    only."""
    default = run.recipe("signal")
    variants = Path(run.__file__).parent / "variants"
    old = run.recipe("signal", variants / "patch_transformer")
    assert (default["backbone"]["name"], old["backbone"]["name"]) == ("tcn", "patch_transformer")
    assert {k: v for k, v in old.items() if k != "backbone"} == {
        **{k: v for k, v in default.items() if k != "backbone"},
        "pretrain": {**default["pretrain"], "task": {"name": "masked_patches",
                                                     "args": {"mask_ratio": 0.4}}}}
    assert run.recipe("image", variants / "patch_transformer") == \
        yaml.safe_load((run.RECIPES / "image.yaml").read_text())
    mean = run.recipe("signal", variants / "tcn_mean")
    assert mean["backbone"]["args"] == {**default["backbone"]["args"], "pool": "mean"}
    assert {k: v for k, v in mean.items() if k != "backbone"} == \
        {k: v for k, v in default.items() if k != "backbone"}
    lpft = run.dataset_config(datasets.by_name(["breastmnist"])[0], tmp_path,
                              variants / "image_lpft")
    assert (lpft["finetune"]["mode"], run.recipe("image").get("finetune", {}).get("mode")) == \
        ("frozen_then_unfrozen", None)
    assert run.recipe("signal") == default  # nothing left behind by the calls above


def test_table_only_keeps_the_arms_asked_for() -> None:
    """``--table-only --arms``: an arm run on fewer seeds (auto) can be left out of a table
    whose other arms are complete; ``baseline`` stands for every baseline."""
    keep = [a for a in ("ssl", "auto", "ensemble", "baseline:minirocket", "baseline:x")
            if run.arm_selected(a, "ssl, baseline,ensemble")]
    assert keep == ["ssl", "ensemble", "baseline:minirocket", "baseline:x"]
    assert not run.arm_selected("baseline:x", "baseline:minirocket")


def test_one_tiny_dataset_end_to_end_and_resumed(tmp_path: Path) -> None:
    rng = np.random.RandomState(0)
    y = np.arange(120) % 2
    x = rng.randn(120, 32) * np.where(y == 1, 2.0, 1.0)[:, None]  # amplitude only
    np.save(tmp_path / "tiny.npy", np.concatenate([y[:, None], x], 1).astype("float32"))
    tiny = datasets.Dataset("Tiny", "signal", ("tiny.npy",),
                            datasets._ucr(("tiny.npy",), None), "synthetic")
    absent = datasets.Dataset("Absent", "signal", ("nothing.npy",),
                              datasets._ucr(("nothing.npy",), None), "not there")
    out = tmp_path / "suite"
    sizes = run.parse_budgets("10,50%")
    lines: list[str] = []
    arms = ["baseline:logistic", "baseline:signal_stats"]  # no network: seconds, not minutes
    record = run.run_suite([tiny, absent], tmp_path, out, sizes, [0], arms, echo=lines.append)
    assert record["datasets"]["Absent"]["status"] == "skipped"
    assert "nothing.npy" in record["datasets"]["Absent"]["reason"]
    done = record["datasets"]["Tiny"]
    assert done["status"] == "done" and done["n_pool"] == 60
    assert done["budgets"] == ["10", "0.5"] and done["computed"] == 4
    res = pd.read_csv(out / "suite_results.csv")
    assert set(res["dataset"]) == {"Tiny"}
    assert set(res["arm"]) == set(arms)
    assert sorted(set(res["n_labels"])) == [10, 30]
    tab = pd.read_csv(out / "suite_table.csv")
    assert len(tab) == 4 and tab["rank"].between(1, 2).all()
    # amplitude is all there is: summary statistics find it, raw values do not
    stats_arm = res[(res["arm"] == "baseline:signal_stats") & (res["metric"] == "auroc")]
    assert (stats_arm["value"] > 0.9).all()
    assert "| Tiny | 10 (17%) |" in (out / "suite_table.md").read_text()
    assert (out / "suite.png").is_file()
    assert json.loads((out / "suite.json").read_text())["datasets"]["Tiny"]["status"] == "done"
    # rerun: every cell is reused, nothing trained again
    again = run.run_suite([tiny], tmp_path, out, sizes, [0], arms, echo=lines.append)
    assert again["datasets"]["Tiny"]["computed"] == 0
    assert again["datasets"]["Tiny"]["reused"] == 4


def test_help_prints() -> None:
    """argparse formats help strings with %: the budgets' "10%" must not break --help."""
    from benchmarks.suite.__main__ import main

    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0


def test_preference_order_from_the_ranks() -> None:
    """auto's order read off the cells: arms by average rank, each baseline on its own, ties
    and absent kinds (``baseline`` for any other baseline) in simplest-first order."""
    stats = table.cell_stats(_results())
    # baseline:x 1.5 and 1, ssl 1.5 and 3, scratch 3 and 2, baseline:y 4 and 4
    a = stats[stats["dataset"] == "A"]
    assert table.preference_order(a) == ["baseline:x", "ssl", "scratch", "baseline:y",
                                         "baseline", "linear_probe", "ensemble"]
    b = stats[stats["dataset"] == "B"]  # scratch 1; ssl and baseline:x tie at 2.5
    assert table.preference_order(b) == ["scratch", "baseline:x", "ssl", "baseline",
                                         "linear_probe", "ensemble"]
    with_auto = pd.concat([a, a[a["arm"] == "ssl"].assign(arm="auto", mean=1.0)])
    assert table.preference_order(with_auto) == table.preference_order(a)


def test_leave_one_seed_out_oracle_picks_on_the_other_seeds() -> None:
    """The oracle scores each seed with the arm best on the other seeds, so an arm that is best
    on average only because of one seed is not credited on that seed."""
    from benchmarks.auto_rechoose import leave_one_seed_out

    r = {"rule": [0.0, 0.0, 0.0], "a": [0.90, 0.90, 0.90], "b": [0.99, 0.80, 0.80]}
    arms = {"a": 0.90, "b": float(np.mean(r["b"]))}
    # seed 0: best on seeds 1, 2 is a (0.90); seed 1: a (0.90 vs 0.895); seed 2: likewise a
    assert leave_one_seed_out(r, arms) == pytest.approx(0.90)
    r2 = {"rule": [0.0, 0.0, 0.0], "a": [0.90, 0.85, 0.90], "b": [0.99, 0.95, 0.70]}
    # seed 0 -> a (0.875 against 0.825): 0.90; seed 1 -> a (0.90 against 0.845): 0.85;
    # seed 2 -> b (0.97 against 0.875): 0.70. Below both arms' own means (0.883, 0.880).
    assert leave_one_seed_out(r2, {"a": 0.883, "b": 0.880}) == pytest.approx((0.90 + 0.85 + 0.70) / 3)
    assert leave_one_seed_out({"rule": [0.0], "a": [0.9]}, {"a": 0.9}) is None
    assert leave_one_seed_out({"rule": [0.0, 0.0], "a": [0.9, 0.9], "b": [0.9]},
                              {"a": 0.9, "b": 0.9}) is None
