"""Items that cannot be read during a run: skipped, counted once, listed, and a limit.

A loader checks what it can when it is built (unreadable files land in its ``skipped`` list);
some damage only shows when an item is read: a ``.nii.gz`` cut short, a file changed on a
shared folder while the run goes on. :func:`~ssl_domains.data.datasets.make_loader` wraps every
dataset in :class:`SkipUnreadable`, so an item whose reading raises is reported instead of
killing the DataLoader:

- training loaders put the next readable item in its place (as detectron2's dataset mapper
  does), so batch sizes, step counts and resume positions stay what they would be;
- evaluation and prediction loaders leave it out (no prediction row for it).

An input refused on purpose (:class:`~ssl_domains.errors.RefusedInput`, e.g. a volume with
NaN voxels under ``nonfinite: refuse``) is not skipped: it stops the run with its one line,
from the main process whatever the number of workers.

Each unreadable item is logged once, by its position and opaque id (never a path or a file
name), and listed in ``skipped.json`` of the run folder. What a loader skipped when it was
built (its ``skipped`` list: a zero-byte ``.nii.gz``, a DICOM file that is not an image, a case
without a usable patch) is written there as soon as the stage's :class:`SkipLog` exists, so
every skip of a run lands in the one file, whenever it happened. More than
:data:`MAX_UNREADABLE_FRACTION` of a dataset's items unreadable stops the run with a
:class:`~ssl_domains.errors.DataError`: that is broken data, not a stray bad file.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader, Dataset

from ssl_domains.console import note_skipped
from ssl_domains.contracts import ItemDataset, groups_of, skipped_of
from ssl_domains.data.collate import collate_items
from ssl_domains.errors import DataError, RefusedInput
from ssl_domains.files import write_json
from ssl_domains.identifiers import opaque_id

__all__ = [
    "MAX_UNREADABLE_FRACTION",
    "UNREADABLE_KEY",
    "SkipUnreadable",
    "SkipLog",
    "SkippingLoader",
    "FailedItems",
    "scrub",
    "error_reason",
    "first_readable",
    "iter_readable",
]

log = logging.getLogger(__name__)

#: More than this share of a dataset's items unreadable stops the run.
MAX_UNREADABLE_FRACTION = 0.05
#: Batch key that carries ``[(index, reason), ...]`` of items that could not be read.
UNREADABLE_KEY = "_unreadable"
_REFUSED_KEY = "_refused"

_ABS_PATH = re.compile(r"(?:[A-Za-z]:\\|/)[^\s'\"]*")


def scrub(text: str, *paths: str | Path) -> str:
    """``text`` with ``paths`` (and their file names) and any absolute path replaced by ``<file>``.

    Error messages of readers (nibabel, pydicom, pandas, ...) often quote the file they failed
    on; the reasons written to logs and run folders must not.
    """
    names: set[str] = set()
    for p in paths:
        if not p:
            continue
        s = str(p)
        names.add(s)
        name = Path(s).name
        names.add(name)
        for suffix in (".nii.gz", ".gz"):
            if name.endswith(suffix):
                names.add(name[: -len(suffix)])
        names.add(Path(s).stem)
    for n in sorted((n for n in names if len(n) >= 3), key=len, reverse=True):
        text = text.replace(n, "<file>")
    return _ABS_PATH.sub("<file>", text)


def error_reason(exc: BaseException) -> str:
    """One line saying why an item could not be read, without the file's path or name."""
    if isinstance(exc, DataError):
        return scrub(exc.reason.splitlines()[0] if exc.reason else "unreadable", exc.path)
    text = str(exc).splitlines()[0] if str(exc) else ""
    path = getattr(exc, "filename", None) or ""
    reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return scrub(reason[:300], path)


@dataclass(frozen=True)
class FailedItems:
    """What a dataset returns instead of an item when it could not be read (evaluation)."""

    failures: tuple[tuple[int, str], ...]
    refused: tuple[str, str] | None = None  # (path, reason) of a RefusedInput


class SkipUnreadable(Dataset):
    """``base`` whose items that raise while being read are reported instead of raised.

    Args:
        base: The dataset.
        substitute: Put the next readable item (by index, wrapping) in place of an unreadable
            one (training); otherwise return :class:`FailedItems`, which the collate function
            leaves out of the batch. The search stops after a few more items than the limit
            allows to be unreadable (the run is stopped by then): a broken dataset costs a
            bounded number of reads per item, not one per item of the dataset.
    """

    def __init__(self, base: ItemDataset, substitute: bool) -> None:
        self.base = base
        self.substitute = substitute

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:
        # labels, groups, stats, skipped, ... of the wrapped dataset
        if name in ("base", "substitute"):
            raise AttributeError(name)
        return getattr(self.base, name)

    def __getitem__(self, i: int) -> Any:
        n = len(self)
        failures: list[tuple[int, str]] = []
        tries = min(n, int(MAX_UNREADABLE_FRACTION * n) + 2) if self.substitute else 1
        for step in range(tries):
            j = (i + step) % n
            try:
                item = self.base[j]
            except MemoryError:
                raise
            except RefusedInput as exc:  # raised again by the loader, in the main process
                return FailedItems(tuple(failures), refused=(exc.path, exc.reason))
            except Exception as exc:  # noqa: BLE001 - any reader error of one item is skipped
                failures.append((j, error_reason(exc)))
                continue
            if failures:
                item = {**item, UNREADABLE_KEY: failures}
            return item
        return FailedItems(tuple(failures))


def collate_skipping(items: Sequence[Any]) -> dict[str, Any]:
    """:func:`~ssl_domains.data.collate.collate_items` of the readable items; the failures
    of the others go under :data:`UNREADABLE_KEY`."""
    failures: list[tuple[int, str]] = []
    kept: list[dict[str, Any]] = []
    refused = None
    for it in items:
        if isinstance(it, FailedItems):
            failures.extend(it.failures)
            refused = refused or it.refused
            continue
        if UNREADABLE_KEY in it:
            it = dict(it)
            failures.extend(it.pop(UNREADABLE_KEY))
        kept.append(it)
    batch = collate_items(kept) if kept else {}
    if failures:
        batch[UNREADABLE_KEY] = failures
    if refused:
        batch[_REFUSED_KEY] = refused
    return batch


class SkipLog:
    """The unreadable items of one dataset in one run: logged once, listed, limited.

    Args:
        dataset: The dataset the indices refer to (its ``groups`` give the opaque ids).
        role: ``"training"``, ``"validation"``, ``"test"``, ...
        stage: ``"pretrain"``, ``"finetune"``, ``"evaluate"``, ...
        path: ``skipped.json`` to keep up to date (entries of other stages/roles in it are
            kept; this one's are reloaded, so a resumed run counts what it skipped before), or
            None to only log.
        limit: Largest share of items allowed to be unreadable.
    """

    def __init__(self, dataset: Any, role: str, stage: str, path: Path | None = None,
                 limit: float = MAX_UNREADABLE_FRACTION) -> None:
        self.n = len(dataset)
        self.ids = groups_of(dataset)
        self.role = role
        self.stage = stage
        self.path = path
        self.limit = limit
        self.items: dict[int, str] = {}
        self.startup = [{"file": opaque_id(p), "reason": scrub(str(r), p)}
                        for p, r in skipped_of(dataset)]
        self.others: list[dict[str, Any]] = []
        if path is not None and path.is_file():
            self._reload(path)
        if self.startup:  # what the loader skipped when it was built: recorded now
            self.write()

    def _mine(self, entry: dict[str, Any]) -> bool:
        return entry.get("stage") == self.stage and entry.get("role") == self.role

    def _reload(self, path: Path) -> None:
        try:
            entries = json.loads(path.read_text()).get("items", [])
        except (OSError, ValueError, AttributeError):
            return  # a file cut by a kill: rewritten below
        for e in entries:
            if self._mine(e) and e.get("when") == "reading" and isinstance(e.get("item"), int):
                self.items[int(e["item"]) - 1] = str(e.get("reason", ""))
            elif not self._mine(e):
                self.others.append(e)

    def _id(self, index: int) -> str:
        return self.ids[index] if self.ids is not None and 0 <= index < len(self.ids) else ""

    def add(self, failures: Sequence[tuple[int, str]]) -> None:
        """Record ``(index, reason)`` failures; new ones are logged and written.

        Raises:
            DataError: More than ``limit`` of the items are now unreadable.
        """
        new = False
        for index, reason in failures:
            if index in self.items:
                continue
            self.items[index] = reason
            new = True
            ident = self._id(index)
            log.warning("%s data: item %d of %d%s unreadable, skipped: %s", self.role, index + 1,
                        self.n, f" (id {ident})" if ident else "", reason)
            note_skipped(f"{self.role} item {index + 1} of {self.n}" + (f" ({ident})" if ident else ""),
                         reason)
        if not new:
            return
        self.write()
        if len(self.items) > self.limit * self.n:
            first = min(self.items)
            raise DataError(
                f"{self.role} data",
                f"{len(self.items)} of {self.n} items unreadable, more than the "
                f"{self.limit:.0%} allowed (first: item {first + 1}: {self.items[first]}); "
                "fix or remove the damaged files"
                + (f" (listed in {self.path.name} of the run folder)" if self.path else ""),
            )

    def entries(self) -> list[dict[str, Any]]:
        """This dataset's entries of ``skipped.json``. A start-up skip already listed for this
        stage under another role (the training and validation parts split off one loader share
        its skips) is not listed twice."""
        listed = {(e.get("file"), e.get("reason")) for e in self.others
                  if e.get("stage") == self.stage and e.get("when") == "start-up"}
        out: list[dict[str, Any]] = [
            {"stage": self.stage, "role": self.role, "when": "start-up", **e} for e in self.startup
            if (e["file"], e["reason"]) not in listed]
        for index in sorted(self.items):
            out.append({"stage": self.stage, "role": self.role, "when": "reading",
                        "item": index + 1, "of": self.n, "id": self._id(index),
                        "reason": self.items[index]})
        return out

    def write(self) -> None:
        """Rewrite ``skipped.json`` (atomically) with every stage's and role's entries."""
        if self.path is None:
            return
        if self.path.is_file():  # another loader of the run may have written meanwhile
            self.others = []
            current = dict(self.items)
            self._reload(self.path)
            self.items.update(current)
        doc = {"about": "inputs skipped by this run: position and opaque id, never a path "
                        f"(a run stops when more than {self.limit:.0%} of a dataset is unreadable)",
               "items": self.others + self.entries()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json(self.path, doc)


class SkippingLoader(DataLoader):
    """A DataLoader whose batches leave out (or replace) unreadable items and report them to
    its :class:`SkipLog` (in the main process, whatever the number of workers)."""

    skip_log: SkipLog

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        for batch in super().__iter__():
            refused = batch.pop(_REFUSED_KEY, None)
            if refused:
                raise RefusedInput(*refused)
            failures = batch.pop(UNREADABLE_KEY, None)
            if failures:
                self.skip_log.add(failures)
            if not batch:
                continue  # every item of the batch unreadable (evaluation only)
            yield batch


def first_readable(ds: Any, tries: int = 100) -> dict[str, Any]:
    """The first item of ``ds`` that reads (for checks before training).

    Raises:
        DataError: None of the first ``tries`` items reads; gives the first reason.
    """
    first = ""
    for i in range(min(len(ds), tries)):
        try:
            return ds[i]  # type: ignore[no-any-return]
        except (MemoryError, RefusedInput):
            raise
        except Exception as exc:  # noqa: BLE001 - reported below if nothing reads
            first = first or f"item {i + 1}: {error_reason(exc)}"
    raise DataError("data", f"none of the first {min(len(ds), tries)} items could be read ({first})")


def iter_readable(ds: Any, role: str, stage: str = "run", path: Path | None = None) -> Iterator[tuple[int, Any]]:
    """``(index, item)`` of every item of ``ds`` that reads, in order, for code that reads a
    dataset without a DataLoader (classical baselines); the others are logged once and listed
    like a loader's (:class:`SkipLog`).

    Raises:
        DataError: More than 5 % of the items are unreadable.
    """
    skip_log = SkipLog(ds, role, stage, path)
    for i in range(len(ds)):
        try:
            item = ds[i]
        except (MemoryError, RefusedInput):
            raise
        except Exception as exc:  # noqa: BLE001 - any reader error of one item is skipped
            skip_log.add([(i, error_reason(exc))])
            continue
        yield i, item
