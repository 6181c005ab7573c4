"""Host-level skipping of items that fail when read: every loader gets it through make_loader."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import Dataset

from ssl_domains.config import ComponentRef, DataConfig
from ssl_domains.data.datasets import make_loader
from ssl_domains.data.skipping import first_readable, scrub
from ssl_domains.errors import DataError


class Flaky(Dataset):
    """``n`` items; those in ``bad`` raise like a reader meeting a damaged file would."""

    def __init__(self, n: int, bad: set[int], path: str = "/data/DOE_JOHN/scan_07.nii.gz") -> None:
        self.n, self.bad, self.path = n, bad, path
        self.groups = [f"g{i:03d}" for i in range(n)]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        if i in self.bad:
            raise DataError(self.path, f"unreadable: {self.path} ended early")
        return {"signal": torch.full((1, 4), float(i)), "label": i % 2, "meta": {"id": f"g{i:03d}"}}


def _cfg(batch_size: int = 4, workers: int = 0) -> DataConfig:
    return DataConfig(train=ComponentRef(name="x"), batch_size=batch_size, num_workers=workers)


@pytest.mark.parametrize("workers", [0, 1])
def test_evaluation_leaves_unreadable_items_out_and_lists_them(tmp_path: Path, workers: int, caplog) -> None:
    caplog.set_level(logging.WARNING)
    ds = Flaky(40, {5, 6})
    out = tmp_path / "skipped.json"
    loader = make_loader(ds, _cfg(workers=workers), train=False, seed=0, role="test", stage="finetune",
                         skipped_file=out)
    seen = [int(v) for b in loader for v in b["signal"][:, 0, 0]]
    assert seen == [i for i in range(40) if i not in (5, 6)]
    for _ in loader:  # a second pass does not log or list them again
        pass
    entries = json.loads(out.read_text())["items"]
    assert [(e["item"], e["of"], e["id"], e["role"]) for e in entries] == [(6, 40, "g005", "test"), (7, 40, "g006", "test")]
    assert entries[0]["reason"] == "unreadable: <file> ended early"
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and "item 6 of 40 (id g005) unreadable, skipped" in messages[0]
    assert not any("DOE_JOHN" in m or "scan_07" in m for m in messages + [out.read_text()])


def test_training_replaces_an_unreadable_item_so_batches_keep_their_size() -> None:
    ds = Flaky(40, {9})
    loader = make_loader(ds, _cfg(), train=True, seed=3)
    batches = list(loader)
    assert len(batches) == 10 and all(len(b["signal"]) == 4 for b in batches)
    values = sorted(int(v) for b in batches for v in b["signal"][:, 0, 0])
    assert 9 not in values and values.count(10) == 2  # the next item stood in for it
    assert sorted(loader.skip_log.items) == [9]


def test_more_than_five_percent_unreadable_stops_with_one_line(tmp_path: Path) -> None:
    ds = Flaky(20, {1, 2})  # 10 %
    loader = make_loader(ds, _cfg(), train=True, seed=0, role="training", stage="pretrain",
                         skipped_file=tmp_path / "skipped.json")
    with pytest.raises(DataError) as info:
        list(loader)
    msg = str(info.value)
    assert msg.startswith("training data: 2 of 20 items unreadable, more than the 5% allowed (first: item 2")
    assert "\n" not in msg and "DOE_JOHN" not in msg
    assert len(json.loads((tmp_path / "skipped.json").read_text())["items"]) == 2
    # one in twenty (5 %) is tolerated
    assert len(list(make_loader(Flaky(20, {1}), _cfg(), train=True, seed=0))) == 5


def test_first_readable_and_scrub() -> None:
    assert first_readable(Flaky(5, {0, 1}))["label"] == 0  # item 2
    with pytest.raises(DataError, match="none of the first 3 items could be read .item 1: unreadable: <file>"):
        first_readable(Flaky(3, {0, 1, 2}))
    assert scrub("cannot open /srv/PAT_1/a.nii.gz (a.nii.gz)", "/srv/PAT_1/a.nii.gz") == "cannot open <file> (<file>)"
    assert scrub(r"bad C:\data\x.dcm here") == "bad <file> here"


class Counting(Flaky):
    def __init__(self, n: int, bad: set[int]) -> None:
        super().__init__(n, bad)
        self.reads = 0

    def __getitem__(self, i: int) -> dict[str, Any]:
        self.reads += 1
        return super().__getitem__(i)


def test_a_dataset_that_never_reads_stops_after_a_bounded_number_of_reads() -> None:
    ds = Counting(400, set(range(400)))
    loader = make_loader(ds, _cfg(batch_size=8), train=True, seed=0)
    with pytest.raises(DataError, match="items unreadable, more than the 5% allowed"):
        list(loader)
    assert ds.reads <= 8 * 22  # one batch: each item gives up after 5 % + 2 tries, not 400


def test_iter_readable_for_code_without_a_dataloader() -> None:
    from ssl_domains.data.skipping import iter_readable

    assert [i for i, _ in iter_readable(Flaky(30, {4}), "baseline")] == [i for i in range(30) if i != 4]
    with pytest.raises(DataError, match="2 of 30 items unreadable"):
        list(iter_readable(Flaky(30, {4, 5}), "baseline"))


def test_baseline_inputs_skip_an_unreadable_item() -> None:
    """Classical baselines read items without a DataLoader: a bad item is left out, not fatal."""
    from ssl_domains.autoselect.baseline import stack_inputs

    class Items:
        def __len__(self) -> int:
            return 40

        def __getitem__(self, i: int) -> dict[str, object]:
            if i == 7:
                raise OSError("truncated file")
            return {"signal": torch.full((1, 4), float(i)), "label": i % 2, "meta": {"id": f"item{i}"}}

    x, y, ids = stack_inputs(Items(), "signal")
    assert x.shape == (39, 1, 4) and len(y) == 39 and "item7" not in ids
    assert x[7, 0, 0] == 8.0 and y[7] == 0


def test_a_last_training_batch_of_one_item_is_dropped() -> None:
    from ssl_domains.data.datasets import batches_per_epoch

    # 9 items in batches of 4: the lone ninth item would reach BatchNorm alone ("Expected more
    # than 1 value per channel when training"), so training drops it; evaluation keeps it
    train = [len(b["signal"]) for b in make_loader(Flaky(9, set()), _cfg(), train=True, seed=0)]
    assert train == [4, 4]
    assert [len(b["signal"]) for b in make_loader(Flaky(9, set()), _cfg(), train=False, seed=0)] == [4, 4, 1]
    assert [len(b["signal"]) for b in make_loader(Flaky(10, set()), _cfg(), train=True, seed=0)] == [4, 4, 2]
    assert [len(b["signal"]) for b in make_loader(Flaky(1, set()), _cfg(), train=True, seed=0)] == [1]
    # plan and select: auto's refit count batches the same way
    assert [batches_per_epoch(n, 4, False) for n in (1, 4, 5, 9, 10)] == [1, 1, 1, 2, 3]
    assert batches_per_epoch(10, 4, True) == 2
