"""The prepare step: decode, reorient, resample and scale every volume once, into a store.

:func:`prepare_store` runs a volume loader's deterministic preprocessing
(:meth:`~ssl_domains_medical.loaders.volumes.VolumeDataset.preprocess`) over its records in
worker processes (one torch thread each) and writes each result into a
:class:`~ssl_domains_medical.loaders.store.VolumeStore`. It is resumable: finished entries
are kept, entries a kill cut short are redone. Unreadable studies are skipped and listed with
their opaque id and reason, as the loaders list them. ``part``/``parts`` split the records
among jobs (on several machines); whichever job finds every record done writes the index.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ssl_domains.data.skipping import error_reason, scrub
from ssl_domains.errors import ConfigError, DataError
from ssl_domains.identifiers import opaque_id
from ssl_domains_medical.loaders.store import VolumeStore, store_key
from ssl_domains_medical.loaders.volumes import VolumeDataset

__all__ = ["prepare_store", "PrepareReport"]


@dataclass
class PrepareReport:
    """What one :func:`prepare_store` call did."""

    store: Path
    records: int = 0
    done_before: int = 0
    prepared: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    bytes_written: int = 0
    finished: bool = False

    @property
    def seconds_per_volume(self) -> float:
        return self.seconds / self.prepared if self.prepared else 0.0


_DATASET: VolumeDataset | None = None
_STORE: VolumeStore | None = None
_DTYPE = "float32"


def _init_worker(dataset: VolumeDataset, store: str, dtype: str) -> None:
    global _DATASET, _STORE, _DTYPE
    import torch

    torch.set_num_threads(1)  # one process per core: threads would fight over the cores
    _DATASET, _STORE, _DTYPE = dataset, VolumeStore(store), dtype


def _prepare_one(r_index: int) -> tuple[int, str, int, float]:
    """Prepare record ``r_index``: ``(index, failure reason or "", bytes, seconds)``."""
    assert _DATASET is not None and _STORE is not None
    t0 = time.perf_counter()
    key = store_key(str(_DATASET.records[r_index]["id"]))
    _STORE.forget_partial(key)
    try:
        data = _DATASET.preprocess(r_index)
        image = data["image"]
        mask = data.get("mask")
        size = _STORE.write_entry(
            key, image.as_tensor().numpy(), np.asarray(image.affine, dtype=np.float64),
            None if mask is None else mask.as_tensor().numpy(), _DTYPE)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - one unreadable study is reported, not fatal
        reason = error_reason(exc)
        _STORE.write_failure(key, reason)
        return r_index, reason, 0, time.perf_counter() - t0
    return r_index, "", size, time.perf_counter() - t0


def _records(dataset: VolumeDataset, store: VolumeStore) -> list[dict[str, Any]]:
    out = []
    for record in dataset.records:
        key = store_key(str(record["id"]))
        if not store.done(key):
            continue
        info = store.info(key)
        out.append({"key": key, "id": str(record["id"]), "label": record.get("label"),
                    "modality": str(record.get("modality", "")), "group": record.get("group"),
                    "meta": record.get("meta") or {}, "has_mask": info["has_mask"],
                    "spatial": info["spatial"], "affine": info["affine"],
                    "spacing": info["spacing"], "foreground": info["foreground"]})
    return out


def prepare_store(
    dataset: VolumeDataset,
    store: str | Path,
    spec: dict[str, Any],
    *,
    dtype: str = "float32",
    workers: int = 1,
    part: int = 0,
    parts: int = 1,
    progress: Callable[[int, int, str], None] | None = None,
) -> PrepareReport:
    """Prepare every record of ``dataset`` (this job's share) into the store at ``store``.

    Args:
        dataset: A volume loader (records listed, nothing decoded yet).
        store: The store's folder (made if missing).
        spec: What the store is made with (:func:`~ssl_domains_medical.loaders.store.preprocessing_spec`).
        dtype: Storage dtype of the images.
        workers: Processes (1 prepares in this process).
        part: This job's share (0-based) when ``parts`` > 1.
        parts: Number of jobs the records are split among.
        progress: Called after each volume with ``(finished, total, failure reason or "")``.

    Raises:
        ConfigError: The store was made with other settings; bad ``part``/``parts``.
        DataError: A worker process died (out of memory?); what it finished is kept.
    """
    if parts < 1 or not 0 <= part < parts:
        raise ConfigError(f"part must be in [0, parts), got part={part}, parts={parts}")
    vs = VolumeStore(store)
    vs.create_or_check(spec, dtype)
    n = len(dataset.records)
    mine = [i for i in range(n) if i % parts == part]
    todo = [i for i in mine if not vs.done(store_key(str(dataset.records[i]["id"])))]
    report = PrepareReport(vs.root, records=len(mine), done_before=len(mine) - len(todo))
    t0 = time.perf_counter()
    finished = report.done_before

    def record(result: tuple[int, str, int, float]) -> None:
        nonlocal finished
        r_index, reason, size, _ = result
        finished += 1
        if reason:
            report.failed.append((str(dataset.records[r_index]["id"]), reason))
        else:
            report.prepared += 1
            report.bytes_written += size
        if progress is not None:
            progress(finished, len(mine), reason)

    if workers <= 1 or len(todo) <= 1:
        import torch

        threads = torch.get_num_threads()
        _init_worker(dataset, str(vs.root), dtype)
        try:
            for i in todo:
                record(_prepare_one(i))
        finally:
            torch.set_num_threads(threads)
    else:
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        try:
            with ProcessPoolExecutor(min(workers, len(todo)), mp_context=mp.get_context(method),
                                     initializer=_init_worker,
                                     initargs=(dataset, str(vs.root), dtype)) as pool:
                for result in pool.map(_prepare_one, todo, chunksize=1):
                    record(result)
        except BrokenProcessPool:
            raise DataError(vs.root, f"a prepare worker died (out of memory? fewer --workers); "
                            f"{finished} of {len(mine)} volumes are done and kept: run prepare "
                            "again to continue") from None
    report.seconds = time.perf_counter() - t0
    report.finished = _finish(dataset, vs)
    return report


def _finish(dataset: VolumeDataset, vs: VolumeStore) -> bool:
    """Write the index when every record is done or failed (any job's share)."""
    failed: list[dict[str, str]] = []
    for record in dataset.records:
        key = store_key(str(record["id"]))
        if vs.done(key):
            continue
        reason = vs.failure(key)
        if reason is None:
            return False
        failed.append({"id": str(record["id"]), "reason": reason})
    startup = [{"id": opaque_id(p), "reason": scrub(str(r), p)} for p, r in dataset.skipped]
    records = _records(dataset, vs)
    if not records:
        raise DataError(vs.root, f"no volume could be prepared ({len(failed)} failed, "
                        f"{len(startup)} skipped when listed)")
    vs.write_index(records, startup + failed)
    return True


def default_workers() -> int:
    """One process per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)
