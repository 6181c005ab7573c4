"""What a sweep runs: labeled-set sizes, seeds, arms, each cell's name and config.

A cell is one arm trained on one labeled-set size with one seed; its folder is
``<out>/cells/<arm>_<size>_<seed>`` (:func:`cell_name`). ``<size>`` is the fraction as written
by ``repr(float)`` (``0.05``, ``1.0``) or the count (``25``); counts are at least 1, fractions
at most 1, so the two never collide. ``sweep.json`` records the config a sweep folder was made
with, so that a restart never mixes cells of another config into it.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ssl_domains.config import ComponentRef, InitConfig, RunConfig, dump_config, parse_config
from ssl_domains.data.splits import label_subset
from ssl_domains.engine.run_dir import environment_info
from ssl_domains.engine.segmentation import is_dense
from ssl_domains.errors import ConfigError, SSLDomainsError
from ssl_domains.files import atomic_write_text, write_json
from ssl_domains.layout.run import RunFolder
from ssl_domains.layout.sweep import SweepFolder
from ssl_domains.layout.sweep import cell_name as layout_cell_name
from ssl_domains.registry import Registry

__all__ = [
    "STANDARD_ARMS",
    "DERIVED_ARMS",
    "ALL_ARMS",
    "DEFAULT_ARMS",
    "Size",
    "Arm",
    "parse_sizes",
    "parse_seeds",
    "parse_arms",
    "default_baselines",
    "resolve_arms",
    "distinct_sizes",
    "cell_name",
    "cell_config",
    "check_same_sweep",
    "write_sweep_record",
]

#: Arms a sweep knows besides ``baseline:<name>``.
STANDARD_ARMS = ("ssl", "scratch", "linear_probe")
#: Arms made from the other arms' cells (run after them, in this order).
DERIVED_ARMS = ("ensemble", "auto")
#: Every arm ``--arms`` accepts, for help texts.
ALL_ARMS = (*STANDARD_ARMS, "baseline", *DERIVED_ARMS)
#: Default ``--arms``.
DEFAULT_ARMS = ("ssl", "scratch", "linear_probe", "baseline")
#: Config keys that may differ between a sweep and its restart.
_FREE_KEYS = ("name", "output_dir", "device")


# ---------------------------------------------------------------- sizes, seeds, arms


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


def _numbers(text: str, option: str) -> list[str]:
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(not p for p in parts):
        raise ConfigError(f"{option} {text!r}: give comma-separated values without blanks, "
                          "e.g. 0.01,0.05,0.1,1")
    return parts


def parse_sizes(fractions: str | None, counts: str | None) -> list[Size]:
    """Sizes from ``--fractions 0.01,0.1,1`` and/or ``--counts 25,50`` (duplicates dropped).

    Raises:
        ConfigError: Neither given, a value that is not a number, a fraction outside (0, 1] or
            a count below 2.
    """
    if not fractions and not counts:
        raise ConfigError("give labeled-set sizes with --fractions (e.g. 0.01,0.05,0.1,1) "
                          "and/or --counts (e.g. 25,50,100)")
    sizes: list[Size] = []
    for raw in _numbers(fractions, "--fractions") if fractions else []:
        try:
            f = float(raw)
        except ValueError:
            raise ConfigError(f"--fractions: {raw!r} is not a number") from None
        if not (0 < f <= 1) or math.isnan(f):
            raise ConfigError(f"--fractions: {raw} is not in (0, 1]; a fraction is a share of "
                              "the labeled pool, e.g. 0.05 (use --counts for numbers of labels)")
        sizes.append(Size(fraction=f))
    for raw in _numbers(counts, "--counts") if counts else []:
        try:
            c = int(raw)
        except ValueError:
            raise ConfigError(f"--counts: {raw!r} is not a whole number") from None
        if c < 1:
            raise ConfigError(f"--counts: {c} is below 1; a labeled set needs at least one item "
                              "(a classification budget one per class; a segmentation one case)")
        sizes.append(Size(count=c))
    return list(dict.fromkeys(sizes))


def parse_seeds(seeds: int | None = None, seed_list: str | None = None) -> list[int]:
    """``--seeds S`` -> 0..S-1, or ``--seed-list 0,3,7``.

    Raises:
        ConfigError: Fewer than one seed, or a seed that is not a whole number >= 0.
    """
    if seed_list:
        out = []
        for raw in _numbers(seed_list, "--seed-list"):
            try:
                s = int(raw)
            except ValueError:
                raise ConfigError(f"--seed-list: {raw!r} is not a whole number") from None
            if s < 0:
                raise ConfigError(f"--seed-list: {s} is negative; seeds are >= 0")
            out.append(s)
        return list(dict.fromkeys(out))
    n = 3 if seeds is None else int(seeds)
    if n < 1:
        raise ConfigError(f"--seeds {n}: need at least 1 seed (3-5 give useful intervals)")
    return list(range(n))


def parse_arms(text: str | None) -> list[str]:
    """``--arms ssl,scratch,linear_probe,baseline,ensemble,auto`` (``baseline:<name>`` picks
    one baseline).

    Raises:
        ConfigError: An unknown arm.
    """
    arms = _numbers(text or ",".join(DEFAULT_ARMS), "--arms")
    for arm in arms:
        if arm not in ALL_ARMS and not (arm.startswith("baseline:")
                                        and len(arm) > len("baseline:")):
            raise ConfigError(f"--arms: unknown arm {arm!r}; allowed: ssl, scratch, linear_probe, "
                              "baseline (all baselines), baseline:<name>, ensemble, auto")
    return list(dict.fromkeys(arms))


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


def default_baselines(cfg: RunConfig, registry: Registry) -> list[ComponentRef]:
    """The config's ``baselines``, else every baseline of the backbone's plugin that takes the
    backbone's modality and is dense exactly when the fine-tuning task is (a segmenter for a
    segmentation task), else the host's ``logistic`` (classification only)."""
    if cfg.baselines:
        return list(cfg.baselines)
    entry = registry.get("backbone", cfg.backbone.name)
    modalities = set(entry.modalities)
    dense = cfg.finetune is not None and is_dense(registry, cfg.finetune.task.name)
    found = [ComponentRef(name=e.name) for e in registry.entries("baseline")
             if e.plugin == entry.plugin and bool(getattr(e.factory, "dense", False)) == dense
             and (not e.modalities or not modalities or modalities & set(e.modalities))]
    return found or ([] if dense else [ComponentRef(name="logistic")])


def resolve_arms(cfg: RunConfig, names: Sequence[str], registry: Registry) -> list[Arm]:
    """Arms from ``--arms`` names; ``baseline`` expands to :func:`default_baselines`; the
    derived arms (``ensemble``, ``auto``) go last.

    Raises:
        ConfigError: Two baselines with the same name, ``baseline:<name>`` not registered,
            ``ensemble`` without ``ssl`` and a baseline, or ``auto`` with fewer than two other
            arms.
    """
    baselines = default_baselines(cfg, registry)
    seen = Counter(b.name for b in baselines)
    dup = [n for n, k in seen.items() if k > 1]
    if dup:
        raise ConfigError(f"baselines: {dup[0]!r} is listed {seen[dup[0]]} times; a sweep arm is "
                          "named after its baseline, keep one entry per name")
    by_name = {b.name: b for b in baselines}
    arms: list[Arm] = []
    for name in names:
        if name in STANDARD_ARMS or name in DERIVED_ARMS:
            arms.append(Arm(name))
        elif name == "baseline":
            arms += [Arm(f"baseline:{b.name}", b) for b in baselines]
        else:
            bname = name.split(":", 1)[1]
            registry.get("baseline", bname)  # unknown name -> RegistryError with suggestions
            arms.append(Arm(name, by_name.get(bname, ComponentRef(name=bname))))
    arms = list(dict.fromkeys(arms))
    plain = [a for a in arms if not a.derived]
    names_ = [a.name for a in plain]
    if Arm("ensemble") in arms and ("ssl" not in names_
                                    or not any(a.baseline is not None for a in plain)):
        raise ConfigError("--arms: 'ensemble' averages the 'ssl' arm with the strongest baseline; "
                          "add ssl and baseline (e.g. --arms ssl,baseline,ensemble)")
    if Arm("auto") in arms and len(plain) + (Arm("ensemble") in arms) < 2:
        raise ConfigError("--arms: 'auto' chooses among the other arms; give at least two "
                          "(e.g. --arms ssl,scratch,linear_probe,baseline,ensemble,auto)")
    return plain + [Arm(n) for n in DERIVED_ARMS if Arm(n) in arms]


def distinct_sizes(sizes: Sequence[Size], pool_labels: Sequence[int],
                   echo: Callable[[str], None]) -> list[Size]:
    """``sizes`` in order of their number of labels, without those that give as many labels as
    an earlier one (said through ``echo``).

    Raises:
        ConfigError: A size the labeled pool cannot give.
    """
    budgets: dict[int, Size] = {}
    for size in sizes:
        try:
            k = len(label_subset(pool_labels, 0, fraction=size.fraction, count=size.count))
        except ConfigError as err:
            raise ConfigError(f"size {size.label}: {err}") from None
        if k in budgets:
            echo(f"size {size.label} gives the same {k} labels as {budgets[k].label}: skipped")
            continue
        budgets[k] = size
    return [budgets[k] for k in sorted(budgets)]


# ---------------------------------------------------------------- cells


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


# ---------------------------------------------------------------- one config per sweep folder


def _comparable(cfg: RunConfig) -> dict[str, Any]:
    data = cfg.model_dump(mode="json")
    for key in _FREE_KEYS:
        data.pop(key, None)
    for stage in ("pretrain", "finetune"):
        if data.get(stage):
            data[stage]["train"].pop("progress", None)
    if data.get("finetune"):
        data["finetune"].pop("prefer", None)  # auto's order trains nothing (stale auto cells redo)
    return data


def check_same_sweep(out: Path, cfg: RunConfig, init: InitConfig | None) -> None:
    """Refuse to mix cells of a different config into an existing sweep folder.

    Raises:
        ConfigError: ``out`` holds a sweep of another config or other weights.
        SSLDomainsError: Its ``sweep.json`` is unreadable.
    """
    record = SweepFolder(out).plan
    config = _comparable(cfg)
    current: dict[str, Any] = {"config": config,
                               "init": init.model_dump(mode="json") if init is not None else None}
    if record.is_file():
        try:
            before = json.loads(record.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise SSLDomainsError(f"{record}: unreadable ({err}); remove it or use another --out") \
                from None
        if {k: before.get(k) for k in current} != current:
            old = before.get("config") or {}
            changed = sorted(k for k in config if old.get(k) != config[k])
            what = ", ".join(changed) if changed else "init"
            raise ConfigError(f"{out} holds a sweep of a different config (differs in: {what}); "
                              "its finished cells would be mixed with new ones. Use another "
                              "--out, or the same config and --set overrides as before")


def write_sweep_record(out: Path, cfg: RunConfig, init: InitConfig | None,
                       sizes: Sequence[Size], seeds: Sequence[int], arms: Sequence[Arm]) -> None:
    """``sweep.json`` (what :func:`check_same_sweep` compares), ``config.yaml`` and
    ``environment.json`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    record = {"config": _comparable(cfg),
              "init": init.model_dump(mode="json") if init is not None else None,
              "sizes": [s.tag for s in sizes], "seeds": list(seeds),
              "arms": [a.name for a in arms]}
    write_json(SweepFolder(out).plan, record)
    atomic_write_text(RunFolder(out).config, dump_config(cfg))
    write_json(RunFolder(out).environment, environment_info())
