"""An in-RAM cache of preprocessed volumes with a byte budget (least recently used out first).

:class:`~ssl_domains_medical.loaders.volumes.VolumeDataset` keeps decoded volumes here instead
of in a dict without bound, so the memory of a run does not grow with the number of volumes
in the archive. The default budget is a share of the memory available when the cache is first
used, divided among the DataLoader workers (each worker holds its own cache).
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from typing import Any

from ssl_domains.errors import ConfigError

__all__ = ["VolumeCache", "parse_bytes", "available_memory", "DEFAULT_MEMORY_FRACTION"]

#: Share of the available memory the caches of one process and its DataLoader workers may
#: take together by default.
DEFAULT_MEMORY_FRACTION = 0.25

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
          "gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30,
          "tib": 2**40}


def parse_bytes(value: int | float | str | None) -> int | None:
    """A byte count from ``4e9``, ``"4GB"``, ``"512 MiB"`` or ``"auto"``/None (None = default).

    Raises:
        ConfigError: Not a size.
    """
    if value is None or value == "auto":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ConfigError(f"cache_bytes must be >= 0, got {value!r}")
        return int(value)
    match = re.fullmatch(r"\s*([0-9.]+(?:e[0-9]+)?)\s*([a-zA-Z]*)\s*", str(value))
    if not match or match.group(2).lower() not in _UNITS:
        raise ConfigError(f"cache_bytes must be a size such as 4GB, 512MiB or a number of bytes, "
                          f"or 'auto', got {value!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def available_memory() -> int:
    """Bytes of memory available to new allocations (``MemAvailable``; else free pages)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 2 * 10**9


def _workers() -> int:
    from torch.utils.data import get_worker_info

    info = get_worker_info()
    return 1 if info is None else max(1, int(info.num_workers))


def nbytes(value: Any) -> int:
    """Bytes held by a dict of tensors / arrays (what the cache counts)."""
    total = 0
    for v in value.values() if isinstance(value, dict) else [value]:
        n = getattr(v, "nbytes", None)
        if n is None and hasattr(v, "element_size"):
            n = v.element_size() * v.numel()
        total += int(n or 0)
    return total


class VolumeCache:
    """Least-recently-used cache whose entries together hold at most ``budget`` bytes.

    An entry larger than the whole budget is not kept. ``budget=0`` keeps nothing.

    Args:
        budget: Bytes, or None for the default: :data:`DEFAULT_MEMORY_FRACTION` of the memory
            available at the first :meth:`put`, divided by the number of DataLoader workers
            of the process that uses it.
    """

    def __init__(self, budget: int | None = None) -> None:
        self.budget = budget
        self.nbytes = 0
        self.evictions = 0
        self._entries: OrderedDict[Any, tuple[Any, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Any) -> bool:
        return key in self._entries

    def limit(self) -> int:
        """The budget in bytes (resolving the default on first use)."""
        if self.budget is None:
            self.budget = int(DEFAULT_MEMORY_FRACTION * available_memory() / _workers())
        return self.budget

    def get(self, key: Any) -> Any | None:
        """The entry of ``key`` (now the most recently used), or None."""
        hit = self._entries.get(key)
        if hit is None:
            return None
        self._entries.move_to_end(key)
        return hit[0]

    def put(self, key: Any, value: Any) -> None:
        """Keep ``value``, evicting the least recently used entries to stay within budget."""
        size = nbytes(value)
        limit = self.limit()
        if key in self._entries:
            self.nbytes -= self._entries.pop(key)[1]
        if size > limit:
            return
        while self._entries and self.nbytes + size > limit:
            _, (_, old) = self._entries.popitem(last=False)
            self.nbytes -= old
            self.evictions += 1
        self._entries[key] = (value, size)
        self.nbytes += size

    def clear(self) -> None:
        self._entries.clear()
        self.nbytes = 0
