"""One side of a fixed, stratified split of another loader's items (e.g. a 50/50 pool/test
split of a dataset that ships as one file)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from ssl_domains.contracts import LABEL, DatasetView, Example, labels_of
from ssl_domains.errors import ConfigError
from ssl_domains.registry import Registry, component


@component(
    "holdout",
    description="One side of a seeded stratified split of another loader (pool / test)",
    modalities=("image", "signal"),
    dims=(1, 2, 3),
    examples=[Example({"loader": "arrays", "loader_args": {"path": "data.npz"}, "test_size": 0.5,
                       "part": "test"})],
    example_data="ssl_domains.builtin.examples:write_arrays_example",
)
class HoldoutDataset(DatasetView):
    """Items of ``loader`` on one side of ``train_test_split(test_size, stratify=labels,
    random_state=seed)`` (scikit-learn), so the split is the one a paper's protocol names: a
    view of the loader's dataset (its labels, groups, stats, skipped inputs, ``augment_item``
    and ``set_epoch`` kept).

    Args:
        loader: Registered loader to split.
        loader_args: Its arguments.
        test_size: Share (or count) of items on the ``"test"`` side.
        part: ``"pool"`` (the rest) or ``"test"``.
        seed: ``random_state`` of the split.
        stratify: Stratify by the loader's labels.
        unlabeled: Drop labels from the items (pre-training on the pool).
        registry: Where ``loader`` is registered (:meth:`Registry.create` passes itself).

    Raises:
        ConfigError: Unknown ``part``, or stratification without labels.
    """

    def __init__(
        self,
        loader: str,
        loader_args: dict[str, Any] | None = None,
        test_size: float = 0.5,
        part: str = "pool",
        seed: int = 0,
        stratify: bool = True,
        unlabeled: bool = False,
        *,
        registry: Registry,
    ) -> None:
        if part not in ("pool", "test"):
            raise ConfigError(f"holdout part must be 'pool' or 'test', got {part!r}")
        base = registry.create("loader", loader, **(loader_args or {}))
        base_labels = labels_of(base)
        if stratify and base_labels is None:
            raise ConfigError(f"holdout: loader {loader!r} has no labels to stratify by; set stratify: false")
        idx = np.arange(len(base))
        pool, test = train_test_split(idx, test_size=test_size, random_state=seed,
                                      stratify=np.asarray(base_labels) if stratify else None)
        super().__init__(base, pool if part == "pool" else test)
        self.unlabeled = unlabeled
        if unlabeled:
            self.labels = None

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = dict(super().__getitem__(i))
        if self.unlabeled:
            item.pop(LABEL, None)
        return item
