"""A seeded, resumable, rank-sharded sampler: epoch ``e`` always yields the same order."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

__all__ = ["EpochSampler"]


class EpochSampler(Sampler[int]):
    """Shuffled indices per epoch, sharded over distributed ranks, able to skip ahead.

    The order of epoch ``e`` depends only on ``(seed, e)``, so a resumed run that skips the
    batches already done sees exactly the items an uninterrupted run would.

    Args:
        n: Dataset length.
        seed: Base seed.
        shuffle: Shuffle each epoch.
        rank: This process's rank.
        world_size: Number of processes; each gets every ``world_size``-th index (padded by
            wrapping so all ranks see the same number of items, as DistributedSampler does).
    """

    def __init__(
        self, n: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1
    ) -> None:
        self.n = n
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Select the epoch and how many of this rank's items to skip (resume)."""
        self.epoch = epoch
        self.skip = skip

    def indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        per_rank = -(-self.n // self.world_size)
        total = per_rank * self.world_size
        order = (order * (total // max(self.n, 1) + 1))[:total]
        return order[self.rank : total : self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices()[self.skip :])

    def __len__(self) -> int:
        return max(0, -(-self.n // self.world_size) - self.skip)
