"""Few-label lung-nodule segmentation on the LIDC-IDRI crops (``../shared/data/lidc_nodules``).

Split by patient, never by nodule: patients sorted by id, every fourth one is a test patient
(all of its nodules are test cases); the pool is the other patients' nodules. The recipe is
``benchmarks/suite/recipes/segmentation.yaml`` unchanged; the data sections are the sarcoma
benchmark's (grid and patch planned from the pool: 0.74 x 0.74 x 1.25 mm and 40 x 48 x 16 here)
with this dataset's modality and intensity rule, the CT lung window::

    OMP_NUM_THREADS=1 python -m benchmarks.segmentation.lidc --data ../shared/data \\
        --counts 5,20 --seeds 2 --arms ssl,scratch,baseline --out runs/seg-lidc

Budgets count nodules (cases). Two nodules of one pool patient may land on either side of the
training/validation split (the dense path splits by case); test patients never train.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from benchmarks.segmentation.sarcoma import arguments, config, sweep

#: This dataset's modality and intensity rule (the benchmark suite's LIDC classification
#: dataset adds its own fixed grid and crop to them).
MODALITY = {"modality": "CT", "intensity": "lung"}


def split_rows(data: Path) -> dict[str, list[dict[str, str]]]:
    """The ``nodules.csv`` rows with an image and a mask, as ``pool`` and ``test`` (patients
    sorted by id, every fourth one a test patient). The benchmark suite's LIDC
    classification dataset uses the same split."""
    with open((data / "lidc_nodules").resolve() / "nodules.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["image"].strip() and r["mask"].strip()]
    patients = sorted({r["patient_id"] for r in rows})
    test_patients = set(patients[3::4])
    return {"pool": [r for r in rows if r["patient_id"] not in test_patients],
            "test": [r for r in rows if r["patient_id"] in test_patients]}


def write_split(data: Path, out: Path) -> dict[str, Path]:
    """``pool.csv`` and ``test.csv`` (case_id, image, mask; absolute paths) in ``out``."""
    root = (data / "lidc_nodules").resolve()
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, part in split_rows(data).items():
        paths[name] = out / f"{name}.csv"
        with open(paths[name], "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["case_id", "image", "mask"])
            for r in part:
                w.writerow([f"{r['patient_id']}_{r['nodule_id']}", root / r["image"], root / r["mask"]])
    return paths


def main(argv: list[str] | None = None) -> int:
    args, extra = arguments(__doc__, "runs/seg-lidc", "5,20", "2", "ssl,scratch,baseline").parse_known_args(argv)
    paths = write_split(args.data, args.out / "split")
    return sweep(config(paths, "seg-lidc", modality=MODALITY), args.out, args.counts,
                 args.seeds, args.arms, extra)


if __name__ == "__main__":
    sys.exit(main())
