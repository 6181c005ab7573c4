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
"""

from __future__ import annotations

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
        sections: ``root -> config overlay`` (data sections, channels, validation protocol).
        protocol: One line for the results page.
        quick: Part of ``--quick``.
    """

    name: str
    kind: str
    files: tuple[str, ...]
    sections: Callable[[Path], dict[str, Any]] = field(repr=False)
    protocol: str = ""
    quick: bool = False

    def missing(self, root: Path) -> list[str]:
        """The required files that are not under ``root``."""
        return [f for f in self.files if not (root / f).is_file()]


def _ucr(files: tuple[str, ...], positive: list[Any] | None, channels: int = 1
         ) -> Callable[[Path], dict[str, Any]]:
    def sections(root: Path) -> dict[str, Any]:
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
              ) -> Callable[[Path], dict[str, Any]]:
    def sections(root: Path) -> dict[str, Any]:
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
