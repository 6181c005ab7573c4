"""Build datasets from registry references and keep their labels through subsetting."""

from __future__ import annotations

import inspect
import logging
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ssl_domains.component_checks import dataset_problem
from ssl_domains.config import ComponentRef, DataConfig
from ssl_domains.console import note_skipped
from ssl_domains.contracts import DatasetView, ItemDataset, groups_of, labels_of, skipped_of
from ssl_domains.data.sampler import EpochSampler
from ssl_domains.data.skipping import (
    SkipLog,
    SkippingLoader,
    SkipUnreadable,
    collate_skipping,
    scrub,
)
from ssl_domains.errors import DataError, SSLDomainsError
from ssl_domains.identifiers import opaque_id
from ssl_domains.registry import Registry

__all__ = ["build_dataset", "broken_promise", "with_stats", "Subset", "labels_of", "groups_of", "make_loader",
           "drops_last_batch", "batches_per_epoch"]

log = logging.getLogger(__name__)


def build_dataset(registry: Registry, ref: ComponentRef, role: str) -> ItemDataset:
    """Instantiate loader ``ref``, check its dataset against the dataset contract and report
    what it skipped.

    Raises:
        DataError: The loader failed on its input, its dataset breaks the contract (in the
            conformance kit's words), or it produced no items.
    """
    try:
        ds = registry.create("loader", ref.name, **ref.args)
    except SSLDomainsError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{role} data ({ref.name})", f"{type(exc).__name__}: {exc}") from None
    broken = dataset_problem(ds)
    if broken is not None:
        raise DataError(f"{role} data ({ref.name})", broken_promise(registry, "loader", ref.name, *broken))
    for path, reason in skipped_of(ds):  # logged here only, once, by opaque id (never the path)
        why = scrub(str(reason), path)
        log.warning("%s data (%s): skipped input %s: %s", role, ref.name, opaque_id(path), why)
        note_skipped(f"{role} input {opaque_id(path)}", why)
    if len(ds) == 0:  # type: ignore[arg-type]
        raise DataError(f"{role} data ({ref.name})", f"no usable items (args {ref.args})")
    return ds


def broken_promise(registry: Registry, kind: str, name: str, prop: str, problem: str) -> str:
    """``problem`` (a :mod:`~ssl_domains.component_checks` check's words) with the component,
    its plugin and the conformance property that checks it, for a run's error message."""
    entry = registry.get(kind, name)
    return (f"{problem} ({kind} {name!r} of plugin {entry.plugin!r} breaks its contract; the "
            f"conformance kit checks it as {kind}/{name}/{prop})")


def with_stats(registry: Registry, ref: ComponentRef, stats: Any) -> ComponentRef:
    """``ref`` with normalisation ``stats`` from the training data added, when its loader takes
    a ``stats`` argument and the user gave none (validation/test/prediction data must be
    normalised with the training statistics, and resampled to the training grid)."""
    if stats is None or "stats" in ref.args:
        return ref
    factory = registry.get("loader", ref.name).factory
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return ref
    # a loader taking ``stats`` through ``**kwargs`` says so with ``accepts_stats = True``
    if "stats" not in params and not getattr(factory, "accepts_stats", False):
        return ref
    return ComponentRef(name=ref.name, args={**ref.args, "stats": stats})


#: A view of some items of a dataset that keeps its optional capabilities (the one forwarding
#: wrapper, :class:`~ssl_domains.contracts.DatasetView`).
Subset = DatasetView


def drops_last_batch(n: int, batch_size: int, drop_last: bool) -> bool:
    """Whether an epoch of ``n`` training items drops its last, incomplete batch: when
    ``drop_last`` asks, and always when that batch would hold one item next to full ones
    (BatchNorm cannot normalise a single item: "Expected more than 1 value per channel")."""
    return drop_last or (n > batch_size and n % batch_size == 1)


def batches_per_epoch(n: int, batch_size: int, drop_last: bool) -> int:
    """Training batches in an epoch of ``n`` items (as :func:`make_loader` makes them)."""
    bs = max(1, batch_size)
    return max(1, n // bs if drops_last_batch(n, bs, drop_last) else math.ceil(n / bs))


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(
    ds: ItemDataset,
    cfg: DataConfig,
    *,
    train: bool,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    role: str | None = None,
    stage: str = "run",
    skipped_file: Path | None = None,
) -> SkippingLoader:
    """A DataLoader with the resumable :class:`EpochSampler` (sharded when distributed).

    Items that fail to read are skipped (see :mod:`ssl_domains.data.skipping`): replaced by the
    next readable item when ``train``, left out otherwise; each is logged once and listed in
    ``skipped_file`` (the run's ``skipped.json``) under ``stage`` and ``role``.

    Raises:
        DataError: (while iterating) more than 5 % of the items are unreadable.
    """
    sampler = EpochSampler(len(ds), seed=seed, shuffle=train, rank=rank,  # type: ignore[arg-type]
                           world_size=world_size if train else 1)
    bs = cfg.batch_size if train else (cfg.eval_batch_size or cfg.batch_size)
    loader = SkippingLoader(
        SkipUnreadable(ds, substitute=train),
        batch_size=bs,
        sampler=sampler,
        num_workers=cfg.num_workers,
        pin_memory=cfg.pin_memory,
        collate_fn=collate_skipping,
        drop_last=train and drops_last_batch(-(-len(ds) // world_size), bs, cfg.drop_last),  # type: ignore[arg-type]
        worker_init_fn=_seed_worker if cfg.num_workers else None,
        persistent_workers=False,
        # a private generator: creating an iterator must not consume the global RNG, or a
        # resumed run would drift from an uninterrupted one
        generator=torch.Generator().manual_seed(seed),
    )
    loader.skip_log = SkipLog(ds, role or ("training" if train else "evaluation"), stage, skipped_file)
    return loader
