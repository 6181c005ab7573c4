"""Few-label tumour segmentation on the IBSI soft-tissue-sarcoma MR-T1 crops (51 patients).

Writes the fixed split (cases with an MR image sorted by id: every second one is a test case,
24 test cases, 25 in the pool), the config (``benchmarks/suite/recipes/segmentation.yaml`` plus
this dataset's data sections) and runs the sweep::

    OMP_NUM_THREADS=1 python -m benchmarks.segmentation.sarcoma --data ../shared/data \\
        --counts 1,2,5 --seeds 3 --arms ssl,scratch,linear_probe --out runs/seg-sarcoma

``--pretext genesis`` / ``contrastive`` pre-trains with another pretext task (into another
``--out``; run the ``ssl`` arm only and compare it with the default sweep's cells, which use the
same cases per seed).

Preprocessing is the modality's, not tuned: MR intensities scaled per volume between the 1st
and 99th percentile. The grid and the patch are planned from the pool's cases
(``spacing: auto``, ``patch_size: auto``: 3.47 mm isotropic and 32^3 here), as for every
segmentation dataset: nothing in the data sections but the modality and its intensity rule.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

import yaml

RECIPE = Path(__file__).resolve().parents[1] / "suite" / "recipes" / "segmentation.yaml"
#: This dataset's modality and intensity rule: all a segmentation benchmark sets itself.
MODALITY = {"modality": "MR", "intensity": "percentile"}
#: What every segmentation dataset's training data shares: the planned patch (nnU-Net's rules,
#: ``ssl_domains_medical.fingerprint``; the grid is planned too, ``spacing: auto``), 8 patches
#: per case, two of three on the lesion.
PATCHES = {"patch_size": "auto", "patches_per_volume": 8, "pos_fraction": 0.67}


def write_split(data: Path, out: Path) -> dict[str, Path]:
    """``pool.csv`` and ``test.csv`` (case_id, image, mask; absolute paths) in ``out``."""
    root = (data / "sarcoma_ibsi").resolve()
    with open(root / "cases.csv", newline="") as fh:
        rows = sorted((r for r in csv.DictReader(fh) if r["mr_t1"].strip()), key=lambda r: r["case_id"])
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, part in (("pool", rows[0::2]), ("test", rows[1::2])):
        paths[name] = out / f"{name}.csv"
        with open(paths[name], "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["case_id", "image", "mask"])
            for r in part:
                w.writerow([r["case_id"], root / r["mr_t1"], root / r["mr_t1_mask"]])
    return paths


#: Pretext tasks compared on this dataset (``--pretext``); the recipe's is ``masked``.
PRETEXTS = {
    "masked": None,
    "genesis": {"name": "genesis_restoration", "args": {"decoder_width": 64, "target_stride": 1}},
    "contrastive": {"name": "contrastive", "args": {"temperature": 0.2, "crop_scale": [0.85, 1.0],
                                                    "rotate": 15, "translate": 0.1}},
}


def config(paths: dict[str, Path], name: str, pretext: str = "masked",
           modality: dict | None = None) -> dict:
    """The recipe with a dataset's data sections: ``pool.csv`` pre-trains (masks ignored) and
    fine-tunes, ``test.csv`` tests; ``modality`` (its modality and intensity rule) defaults to
    this dataset's. Validation and test cases are resampled to the training plan."""
    loader, patches = {**(modality or MODALITY), "spacing": "auto"}, PATCHES
    cfg = yaml.safe_load(RECIPE.read_text())
    cfg["name"] = name
    if PRETEXTS[pretext] is not None:
        cfg["pretrain"]["task"] = PRETEXTS[pretext]
    cfg["pretrain"]["data"]["train"] = {"name": "image_manifest", "args": {
        "path": str(paths["pool"]), "mask_column": "no_mask", **loader, **patches, "pos_fraction": None}}
    cfg["finetune"]["data"]["train"] = {"name": "image_manifest", "args": {
        "path": str(paths["pool"]), **loader, **patches}}
    cfg["finetune"]["data"]["test"] = {"name": "image_manifest", "args": {
        "path": str(paths["test"]), **loader}}
    return cfg


def sweep(cfg: dict, out: Path, counts: str, seeds: str, arms: str, extra: list[str]) -> int:
    """Write ``cfg`` into ``out/split/config.yaml`` and run ``ssl-domains sweep`` on it."""
    cfg_path = out / "split" / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    cmd = ["ssl-domains", "sweep", str(cfg_path), "--counts", counts, "--seeds", seeds,
           "--arms", arms, "--out", str(out / "sweep"), *extra]
    print(" ".join(cmd), flush=True)
    return subprocess.call(cmd)


def arguments(doc: str, out: str, counts: str, seeds: str, arms: str) -> argparse.ArgumentParser:
    """The options every segmentation benchmark takes (its defaults given); further arguments
    pass on to ``ssl-domains sweep``."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path(out))
    ap.add_argument("--counts", default=counts)
    ap.add_argument("--seeds", default=seeds)
    ap.add_argument("--arms", default=arms)
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = arguments(__doc__, "runs/seg-sarcoma", "1,2,5", "3", "ssl,scratch,linear_probe")
    ap.add_argument("--pretext", choices=sorted(PRETEXTS), default="masked",
                    help="pre-training task (the comparison of which pretext helps segmentation)")
    args, extra = ap.parse_known_args(argv)
    paths = write_split(args.data, args.out / "split")
    return sweep(config(paths, "seg-sarcoma", args.pretext), args.out, args.counts, args.seeds,
                 args.arms, extra)


if __name__ == "__main__":
    sys.exit(main())
