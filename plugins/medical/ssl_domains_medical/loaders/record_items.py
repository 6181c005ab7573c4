"""Items laid out from records: ``patches_per_volume`` items per record (case, series, study).

The dataset surface shared by :class:`~ssl_domains_medical.loaders.volumes.VolumeDataset`
and :class:`~ssl_domains_medical.loaders.prepared.PreparedDataset`: labels and groups per item,
the length, and the epoch whose patches are drawn.
"""

from __future__ import annotations

from typing import Any

from ssl_domains.errors import ConfigError

__all__ = ["RecordItems", "check_patch_args"]


def check_patch_args(patches_per_volume: int, patch_size: Any, pos_fraction: float | None) -> None:
    """The patch arguments of a record-items loader: at least one patch per record, a patch
    size when there are several, a share of lesion-centred patches in [0, 1].

    Raises:
        ConfigError: One of them is out of range.
    """
    if patches_per_volume < 1:
        raise ConfigError(f"patches_per_volume must be >= 1, got {patches_per_volume}")
    if patches_per_volume > 1 and patch_size is None:
        raise ConfigError("patches_per_volume > 1 needs patch_size")
    if pos_fraction is not None and not 0.0 <= pos_fraction <= 1.0:
        raise ConfigError(f"pos_fraction must be in [0, 1], got {pos_fraction}")


class RecordItems:
    """``patches_per_volume`` items per entry of ``records`` (dicts with ``"id"``, optionally
    ``"label"`` and ``"group"``)."""

    records: list[dict[str, Any]]
    patches_per_volume: int
    epoch: int

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose patches items are drawn from (the engine calls this before
        each training epoch; evaluation-only datasets stay at epoch 0)."""
        self.epoch = int(epoch)

    @property
    def labels(self) -> list[int] | None:
        """One label per item, or None when unlabeled."""
        if not self.records or any(r.get("label") is None for r in self.records):
            return None
        return [int(r["label"]) for r in self.records for _ in range(self.patches_per_volume)]

    @property
    def groups(self) -> list[str]:
        """Record (case / series) id per item, or its ``group`` (a patient), so a case stays
        on one side of a split."""
        return [str(r.get("group") or r["id"]) for r in self.records
                for _ in range(self.patches_per_volume)]

    def __len__(self) -> int:
        return len(self.records) * self.patches_per_volume
