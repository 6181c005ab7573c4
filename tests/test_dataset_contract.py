"""The dataset contract (``ssl_domains.contracts.ItemDataset``): views keep a dataset's optional
capabilities, the cross-validation set joins two datasets, and a run refuses a dataset that
breaks the contract in the conformance kit's words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from ssl_domains.autoselect.derived import fold_splits, labeled_set
from ssl_domains.builtin.arrays import ArrayDataset
from ssl_domains.builtin.holdout import HoldoutDataset
from ssl_domains.config import ComponentRef
from ssl_domains.contracts import (
    DATASET_CAPABILITIES,
    DatasetView,
    Example,
    ItemDataset,
    start_epoch,
)
from ssl_domains.data.datasets import build_dataset
from ssl_domains.data.skipping import SkipUnreadable
from ssl_domains.errors import DataError
from ssl_domains.registry import Registrar, Registry, component
from ssl_domains.testing import Case, check_case


class Drawn:
    """Six items whose value depends on the epoch (as random patches do), with every optional
    capability: labels, groups, stats, skipped, augment_item, set_epoch."""

    def __init__(self) -> None:
        self.epoch = 0
        self.labels = [0, 1, 0, 1, 0, 1]
        self.groups = ["a", "a", "b", "b", "c", "c"]
        self.stats = {"mean": [1.5], "std": [2.0]}
        self.skipped = [("/data/broken.csv", "truncated")]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def augment_item(self, item: dict[str, Any]) -> dict[str, Any]:
        return {**item, "signal": -item["signal"]}

    def __len__(self) -> int:
        return 6

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"signal": torch.full((1, 4), float(10 * self.epoch + i)), "label": self.labels[i], "meta": {}}


def test_a_view_keeps_every_optional_capability_of_its_dataset() -> None:
    base = Drawn()
    train, val = DatasetView(base, [4, 1, 2], train=True), DatasetView(base, [3, 5])
    assert isinstance(train, ItemDataset) and len(train) == 3
    assert train.labels == [0, 1, 0] and train.groups == ["c", "a", "b"]
    assert train.stats is base.stats and train.skipped == base.skipped
    assert float(train[0]["signal"][0, 0]) == -4.0  # a training view augments
    assert float(val[0]["signal"][0, 0]) == 3.0  # a validation view does not
    # the engine's loop tells the epoch through the loader's dataset (SkipUnreadable over a view)
    start_epoch(SkipUnreadable(train, substitute=True), 2)
    assert base.epoch == 2 and float(val[1]["signal"][0, 0]) == 25.0


def test_the_cross_validation_set_joins_two_datasets_and_keeps_their_items_as_drawn() -> None:
    pool, other = Drawn(), Drawn()
    joined = labeled_set({"train": DatasetView(pool, [0, 1, 2, 3], train=True), "val": DatasetView(other, [4, 5])})
    assert joined.is_joined and len(joined) == 6
    assert joined.labels == [0, 1, 0, 1, 0, 1]
    assert joined.groups == ["0:a", "0:a", "0:b", "0:b", "1:c", "1:c"]  # parts never share a group
    assert joined.stats is pool.stats and joined.skipped == []
    assert float(joined[5]["signal"][0, 0]) == 5.0  # the second part's own item
    assert float(DatasetView(joined, [0], train=True)[0]["signal"][0, 0]) == -0.0  # the first part augments
    joined.set_epoch(3)
    assert pool.epoch == 0 and other.epoch == 0  # folds train on the items as drawn
    for train_idx, held in fold_splits(joined, seed=0, k=2):  # grouped: a group on one side only
        assert not {joined.groups[i] for i in train_idx} & {joined.groups[i] for i in held}
    ungrouped = DatasetView.joined([(ArrayLike(), [0, 1])])
    assert ungrouped.groups == ["0:item0", "0:item1"] and ungrouped.labels is None


class ArrayLike:
    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"signal": torch.zeros(1, 4), "meta": {}}


def test_holdout_is_a_view_of_the_loader_it_splits(arrays: Path) -> None:
    registry = Registry()
    Registrar(registry, "loader", "test", "0").add("arrays", ArrayDataset)
    Registrar(registry, "loader", "ssl_domains", "0").add(HoldoutDataset)
    args = {"loader": "arrays", "loader_args": {"path": str(arrays)}, "test_size": 0.25}
    pool = registry.create("loader", "holdout", **args)
    assert isinstance(pool, DatasetView) and pool.labels is not None
    assert [int(pool[i]["label"]) for i in (0, len(pool) - 1)] == [pool.labels[0], pool.labels[-1]]
    unlabeled = registry.create("loader", "holdout", unlabeled=True, **args)
    assert unlabeled.labels is None and "label" not in unlabeled[0]
    assert unlabeled.indices == pool.indices  # the same split, labels dropped


@pytest.mark.parametrize("attr,value,prop,words", [
    ("set_epoch", 3, "builds", "set_epoch must be a method"),
    ("skipped", ["/data/x.csv"], "builds", "skipped must be a list of (path, reason)"),
    ("groups", ["a"], "groups", "1 groups for 6 items"),
])
def test_a_run_refuses_a_dataset_that_breaks_the_contract_in_the_kits_words(attr: str, value: Any, prop: str,
                                                                           words: str) -> None:
    @component("broken", description="breaks the contract", modalities=("signal",), dims=(1,),
               examples=[Example({})])
    class Broken(Drawn):
        def __init__(self) -> None:
            super().__init__()
            setattr(self, attr, value)

    registry = Registry()
    Registrar(registry, "loader", "mine", "0").add(Broken)
    with pytest.raises(DataError) as refused:
        build_dataset(registry, ComponentRef(name="broken"), "fine-tuning")
    message = str(refused.value)
    assert words in message
    assert f"the conformance kit checks it as loader/broken/{prop}" in message
    with pytest.raises(AssertionError) as kit:
        check_case(Case(registry.get("loader", "broken"), Example({}), prop=prop))
    assert words in str(kit.value)
    if attr == "set_epoch":
        assert DATASET_CAPABILITIES["set_epoch"] in message  # what the capability promises

