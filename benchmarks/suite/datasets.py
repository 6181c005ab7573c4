"""The suite's datasets: where the files are and the protocol (pool / test split, positive class).

Nothing here is a training choice: backbone, pretext task, fine-tuning and baselines come from
the data kind's recipe (``recipes/signal.yaml``, ``image.yaml``, ``volume.yaml``), the same for
every dataset of that kind. A dataset adds only its data sections, the number of input
channels, and, for datasets with an official validation split, ``val_budget: same_fraction``.

Protocols:

* UCR/UEA problems and ECG5000: both files concatenated, split 50/50 stratified
  (``random_state=0``, loader ``holdout``) into an unlabeled pool and a test set; pre-training
  on the pool without labels; labels drawn from the pool. Series are standardised with one
  mean/std per channel (``normalize: global``); these two numbers per channel are computed over
  all series of the problem, pool and test, without labels. Multi-class problems become
  binary: the first half of the classes, in the order the file's header lists them (rounded
  down, at least one), against the rest; two-class problems are the first class against the
  second.
* MedMNIST sets: pre-training on the train+val images without labels; labels drawn from the
  official training split; validation from the official validation split at the budget's share
  (``val_budget: same_fraction``); test on the official test split.
* LIDC-IDRI nodules (``lidc_nodules``): split by patient, never by nodule, exactly as the
  segmentation benchmark splits them (:func:`benchmarks.segmentation.lidc.split_rows`: patients
  sorted, every fourth a test patient). Pre-training on every pool nodule without labels;
  labels (``Diagnosis``: benign 0, malignant 1, as the data's SOURCE.md gives them) drawn from
  the pool nodules whose readers' malignancy rating is not 3 (indeterminate: excluded from
  fine-tuning and test); validation comes out of the budget, a patient's nodules on one side.
  The segmentation benchmark's CT lung window on a 1 mm grid, each crop centred and padded or
  cut to 32^3 (1 mm voxels: absolute size survives).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("signal", "image", "volume")
#: The plugin that serves each data kind (its tasks' default order of preference for ``auto``
#: was read off the suite cells of its kinds).
DOMAIN = {"signal": "timeseries", "image": "medical", "volume": "medical"}


@dataclass(frozen=True)
class Dataset:
    """One dataset of the suite.

    Attributes:
        name: Short name (the folder of its sweep).
        kind: ``signal``, ``image`` or ``volume`` (which recipe it uses).
        files: Paths relative to the data root that must exist.
        sections: ``(root, work) -> config overlay`` (data sections, channels, validation
            protocol); ``work`` is the dataset's own folder of the suite's output
            (``<out>/data/<name>``, :func:`benchmarks.suite.run.work_dir`).
        protocol: One line for the results page.
        quick: Part of ``--quick``.
        prepare: ``(root, work) -> None``, run before the dataset's sweep: writes what its
            sections point to under ``work`` (e.g. split manifests), or None.
    """

    name: str
    kind: str
    files: tuple[str, ...]
    sections: Callable[[Path, Path], dict[str, Any]] = field(repr=False)
    protocol: str = ""
    quick: bool = False
    prepare: Callable[[Path, Path], None] | None = field(default=None, repr=False)

    def missing(self, root: Path) -> list[str]:
        """The required files that are not under ``root``."""
        return [f for f in self.files if not (root / f).is_file()]


def _ucr(files: tuple[str, ...], positive: list[Any] | None, channels: int = 1
         ) -> Callable[[Path, Path], dict[str, Any]]:
    def sections(root: Path, work: Path) -> dict[str, Any]:
        loader_args: dict[str, Any] = {"path": [str(root / f) for f in files],
                                       "normalize": "global"}
        if positive is not None:
            loader_args["positive_classes"] = positive
        split = {"loader": "ucr", "loader_args": loader_args, "test_size": 0.5, "seed": 0}
        return {
            "backbone": {"args": {"in_channels": channels}},
            "pretrain": {"data": {"train": {"name": "holdout", "args": {
                **split, "part": "pool", "unlabeled": True}}}},
            "finetune": {"data": {
                "train": {"name": "holdout", "args": {**split, "part": "pool"}},
                "test": {"name": "holdout", "args": {**split, "part": "test"}},
            }},
        }
    return sections


def _medmnist(file: str, positive_label: int, size: int | None = None
              ) -> Callable[[Path, Path], dict[str, Any]]:
    def sections(root: Path, work: Path) -> dict[str, Any]:
        base: dict[str, Any] = {"path": str(root / file)}
        if size is not None:
            base["size"] = size

        def split(name: str) -> dict[str, Any]:
            return {"name": "medmnist", "args": {**base, "split": name,
                                                 "positive_label": positive_label}}
        return {
            "pretrain": {"data": {"train": {"name": "medmnist", "args": {
                **base, "split": "train+val", "unlabeled": True}}}},
            "finetune": {"val_budget": "same_fraction",
                         "data": {"train": split("train"), "val": split("val"),
                                  "test": split("test")}},
        }
    return sections


#: The LIDC nodules' manifests under a dataset's output folder (:func:`_lidc_prepare`).
_LIDC_SPLIT = "split"


def _lidc_prepare(root: Path, work: Path) -> None:
    """``pretrain.csv`` (every pool nodule, no label), ``pool.csv`` and ``test.csv`` (nodules
    not rated indeterminate, ``label`` from ``Diagnosis_value``) under ``work/split``; columns
    case_id, patient, image (absolute paths)."""
    from benchmarks.segmentation.lidc import split_rows

    data = (root / "lidc_nodules").resolve()
    parts = split_rows(root)
    out = work / _LIDC_SPLIT
    out.mkdir(parents=True, exist_ok=True)
    labelled = {k: [r for r in rows if r["Malignancy_value"].strip() != "3"]
                for k, rows in parts.items()}
    for name, rows, label in (("pretrain", parts["pool"], False), ("pool", labelled["pool"], True),
                              ("test", labelled["test"], True)):
        with open(out / f"{name}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["case_id", "patient", "image", *(["label"] if label else [])])
            for r in rows:
                w.writerow([f"{r['patient_id']}_{r['nodule_id']}", r["patient_id"],
                            data / r["image"], *([int(r["Diagnosis_value"])] if label else [])])


def _lidc(root: Path, work: Path) -> dict[str, Any]:
    from benchmarks.segmentation.lidc import MODALITY

    split = work / _LIDC_SPLIT
    loader = {**MODALITY, "spacing": [1.0, 1.0, 1.0], "spatial_size": [32, 32, 32],
              "group_column": "patient", "cache": "disk", "cache_dir": str(work / "cache")}

    def part(name: str) -> dict[str, Any]:
        return {"name": "image_manifest", "args": {**loader, "path": str(split / f"{name}.csv")}}
    return {"pretrain": {"data": {"train": part("pretrain")}},
            "finetune": {"data": {"train": part("pool"), "test": part("test")}}}


def _ucr_suite(name: str, positive: list[Any], classes: str, channels: int = 1,
               quick: bool = False) -> Dataset:
    files = (f"ucr_suite/{name}/{name}_TRAIN.ts", f"ucr_suite/{name}/{name}_TEST.ts")
    what = f"class(es) {', '.join(map(str, positive))} = 1 vs the rest of {classes}"
    return Dataset(name, "signal", files, _ucr(files, positive, channels),
                   f"TRAIN+TEST split 50/50 stratified; {what}", quick)


_ECG = ("ecg5000/ECG5000_TRAIN.txt", "ecg5000/ECG5000_TEST_4499.npy")

DATASETS: tuple[Dataset, ...] = (
    Dataset("ECG5000", "signal", _ECG, _ucr(_ECG, [2, 3, 4, 5]),
            "TRAIN+TEST split 50/50 stratified; class 1 (normal) vs 2-5", quick=True),
    _ucr_suite("GunPoint", [1], "1, 2", quick=True),
    _ucr_suite("ItalyPowerDemand", [1], "1, 2", quick=True),
    _ucr_suite("ArrowHead", [0], "0, 1, 2"),
    _ucr_suite("OSULeaf", [1, 2, 3], "1-6"),
    _ucr_suite("ACSF1", [0, 1, 2, 3, 4], "0-9"),
    _ucr_suite("BasicMotions", ["Standing", "Running"],
               "Standing, Running, Walking, Badminton", channels=6, quick=True),
    Dataset("BreastMNIST", "image", ("breastmnist/breastmnist.npz",),
            _medmnist("breastmnist/breastmnist.npz", positive_label=0),
            "official splits; malignant (label 0) positive"),
    Dataset("PneumoniaMNIST", "image", ("pneumoniamnist/pneumoniamnist.npz",),
            _medmnist("pneumoniamnist/pneumoniamnist.npz", positive_label=1),
            "balanced subset's splits (see its SOURCE.md); pneumonia positive"),
    Dataset("AdrenalMNIST3D", "volume", ("adrenalmnist3d/adrenalmnist3d_64.npz",),
            _medmnist("adrenalmnist3d/adrenalmnist3d_64.npz", positive_label=1, size=32),
            "official splits, volumes box-averaged to 32^3; hyperplasia positive"),
    Dataset("LIDC", "volume", ("lidc_nodules/nodules.csv",), _lidc,
            "split by patient as the LIDC segmentation benchmark (every 4th sorted patient "
            "tests); malignant (Diagnosis) positive; malignancy rating 3 excluded; 1 mm, 32^3",
            prepare=_lidc_prepare),
)


def by_name(names: list[str] | None = None, quick: bool = False) -> list[Dataset]:
    """The datasets named (any case), or the ``--quick`` ones, or all.

    Raises:
        ValueError: An unknown name.
    """
    if names:
        known = {d.name.lower(): d for d in DATASETS}
        unknown = [n for n in names if n.lower() not in known]
        if unknown:
            raise ValueError(f"unknown dataset(s) {unknown}; known: {[d.name for d in DATASETS]}")
        return [known[n.lower()] for n in names]
    return [d for d in DATASETS if d.quick or not quick]
