"""What a sweep runs: labeled-set sizes, seeds and arms from the command line (the arms, sizes,
cell names and cell configs themselves are :mod:`ssl_domains.autoselect.arms`'s, shared with
``select: auto``). ``sweep.json`` records the config a sweep folder was made
with, so that a restart never mixes cells of another config into it.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ssl_domains.autoselect.arms import DERIVED_ARMS, STANDARD_ARMS, Arm, Size
from ssl_domains.config import ComponentRef, InitConfig, RunConfig, dump_config
from ssl_domains.data.splits import label_subset
from ssl_domains.engine.run_dir import environment_info
from ssl_domains.engine.segmentation import is_dense
from ssl_domains.errors import ConfigError, SSLDomainsError
from ssl_domains.files import atomic_write_text, write_json
from ssl_domains.layout.run import RunFolder
from ssl_domains.layout.sweep import SweepFolder
from ssl_domains.registry import Registry

__all__ = [
    "ALL_ARMS",
    "DEFAULT_ARMS",
    "parse_sizes",
    "parse_seeds",
    "parse_arms",
    "default_baselines",
    "resolve_arms",
    "distinct_sizes",
    "check_same_sweep",
    "write_sweep_record",
]

#: Every arm ``--arms`` accepts, for help texts.
ALL_ARMS = (*STANDARD_ARMS, "baseline", *DERIVED_ARMS)
#: Default ``--arms``.
DEFAULT_ARMS = ("ssl", "scratch", "linear_probe", "baseline")
#: Config keys that may differ between a sweep and its restart.
_FREE_KEYS = ("name", "output_dir", "device")


# ---------------------------------------------------------------- sizes, seeds, arms


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
