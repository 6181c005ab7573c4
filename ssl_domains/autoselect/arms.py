"""The arms of ``select: auto`` and of a sweep, labeled-set sizes, and each cell's name and
config.

A cell is one arm trained on one labeled-set size with one seed; its folder is
``<out>/cells/<arm>_<size>_<seed>`` (:func:`cell_name`). ``<size>`` is the fraction as written
by ``repr(float)`` (``0.05``, ``1.0``) or the count (``25``); counts are at least 1, fractions
at most 1, so the two never collide.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ssl_domains.config import ComponentRef, InitConfig, RunConfig, parse_config
from ssl_domains.layout.sweep import cell_name as layout_cell_name

__all__ = ["STANDARD_ARMS", "DERIVED_ARMS", "Size", "Arm", "cell_name", "cell_config"]

#: Arms a sweep knows besides ``baseline:<name>``.
STANDARD_ARMS = ("ssl", "scratch", "linear_probe")
#: Arms made from the other arms' cells (run after them, in this order).
DERIVED_ARMS = ("ensemble", "auto")


@dataclass(frozen=True, order=True)
class Size:
    """One labeled-set size: a share of the labeled pool or a number of labeled items."""

    fraction: float | None = None
    count: int | None = None

    @property
    def tag(self) -> str:
        """The size part of a cell name (``0.05``, ``1.0`` or ``25``)."""
        return repr(float(self.fraction)) if self.fraction is not None else str(self.count)

    @property
    def label(self) -> str:
        """For progress lines: ``f=0.05`` or ``n=25``."""
        return f"f={self.fraction:g}" if self.fraction is not None else f"n={self.count}"

    @classmethod
    def from_tag(cls, tag: str) -> Size:
        """The size whose :attr:`tag` is ``tag`` (a cell folder name's size part).

        Raises:
            ValueError: ``tag`` is not a number.
        """
        return cls(fraction=float(tag)) if "." in tag else cls(count=int(tag))


@dataclass(frozen=True)
class Arm:
    """One arm: a standard fine-tuning arm or a classical baseline."""

    name: str
    baseline: ComponentRef | None = field(default=None, compare=False)

    @property
    def derived(self) -> bool:
        """Made from the other arms' cells (``ensemble``, ``auto``)."""
        return self.name in DERIVED_ARMS

    @property
    def folder(self) -> str:
        """The arm part of a cell folder name (``baseline:logistic`` -> ``baseline-logistic``)."""
        return self.name.replace(":", "-")

    @classmethod
    def from_folder(cls, folder: str) -> Arm:
        """The arm whose :attr:`folder` is ``folder`` (``baseline-logistic`` ->
        ``baseline:logistic``)."""
        return cls(folder.replace("baseline-", "baseline:", 1) if folder.startswith("baseline-")
                   else folder)


def cell_name(arm: Arm, size: Size, seed: int) -> str:
    """``<arm>_<size>_<seed>`` (:func:`ssl_domains.layout.sweep.cell_name`)."""
    return layout_cell_name(arm.folder, size.tag, seed)


def cell_config(cfg: RunConfig, arm: Arm, size: Size, seed: int,
                init: InitConfig | None) -> RunConfig:
    """The config of one cell: ``cfg`` with the cell's seed and labeled-set size, no
    pre-training, ``init`` for the pre-trained arms; ``scratch`` from random weights at the full
    learning rate (``backbone_lr_scale`` is for pre-trained weights), ``linear_probe`` with
    ``mode: linear``."""
    data = cfg.model_dump(mode="json")
    data["name"] = cell_name(arm, size, seed).replace(":", "-")
    data["seed"] = seed
    data["pretrain"] = None
    data["init"] = None if arm.name == "scratch" or init is None else init.model_dump(mode="json")
    ft = data["finetune"]
    ft["label_fraction"], ft["label_count"] = size.fraction, size.count
    ft["select"] = "single"
    ft["train"]["progress"] = False
    if arm.name == "scratch":
        ft["from_scratch"], ft["backbone_lr_scale"] = True, 1.0
    elif arm.name == "linear_probe":
        ft["mode"], ft["from_scratch"] = "linear", False
    else:
        ft["from_scratch"] = False
    return parse_config(data, source=f"sweep cell {data['name']}")
