"""Label-efficiency sweeps: every arm on the same labeled subsets, over sizes and seeds.

For each labeled-set size (a fraction of the labeled pool or an absolute count) and each seed,
the arms below are trained on the SAME items (same seed and budget, so
:func:`~ssl_domains.engine.finetune.prepare_finetune_data` selects identical training and
validation items; the data sources are built once and shared):

* ``ssl``: fine-tuned from the pre-trained backbone with the config's ``mode``;
* ``scratch``: the same recipe from random weights (``from_scratch: true``; the backbone
  learns at the full learning rate: ``backbone_lr_scale`` is for pre-trained weights);
* ``linear_probe``: the pre-trained backbone frozen, only the head trained (``mode: linear``);
* ``baseline:<name>``: a classical baseline (``fit``/``predict_proba`` on the stacked inputs),
  one per ``baselines`` entry of the config, by default every baseline the backbone's plugin
  registers for its modality (the host's ``logistic`` when it registers none);
* ``ensemble``: the ``ssl`` cell and the strongest baseline cell (by validation AUROC),
  probabilities averaged with a weight chosen on validation data
  (:mod:`ssl_domains.sweep.auto`);
* ``auto``: the best of the other arms, chosen on validation data only (k-fold
  cross-validation over the labeled subset when the validation set is small); its test
  numbers are the chosen cell's.

``ensemble`` and ``auto`` are derived from the other cells of the same size and seed, so they
run after them whatever their place in ``--arms``.

Thresholds are chosen on validation data only; test data is only scored. The sweep folder::

    <out>/config.yaml, environment.json, sweep.json   what was run
    <out>/pretrain/                                  the pre-training run (when it pre-trains)
    <out>/cells/<arm>_<size>_<seed>/                 one run folder per cell (eval.json when done)
    <out>/results.csv                                tidy: arm, n_labels, fraction, seed, metric, value
    <out>/summary.csv, summary.json                  mean, std, t-interval; ssl-scratch paired by seed;
                                                     collapsed: share of seeds that collapsed
    <out>/stability.csv                              per cell: validation AUROC, constant output,
                                                     collapsed (AUROC <= 0.55 or constant)
    <out>/report/report.html                         the report

``<size>`` is the fraction as written by ``repr(float)`` (``0.05``, ``1.0``) or the count
(``25``); counts are at least 2, fractions at most 1, so the two never collide. A cell is finished
when its ``eval.json`` exists: a restarted sweep skips finished cells and redoes unfinished ones
from scratch.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ssl_domains.config import ComponentRef, InitConfig, RunConfig, dump_config, parse_config
from ssl_domains.errors import ConfigError, RegistryError, SSLDomainsError
from ssl_domains.files import write_json
from ssl_domains.sweep.selection import COLLAPSE_AUROC, CV_FOLDS

__all__ = [
    "Size",
    "Arm",
    "SweepResult",
    "parse_sizes",
    "parse_seeds",
    "parse_arms",
    "resolve_arms",
    "cell_name",
    "run_sweep",
]

log = logging.getLogger(__name__)

#: Arms a sweep knows besides ``baseline:<name>``.
STANDARD_ARMS = ("ssl", "scratch", "linear_probe")
#: Arms made from the other arms' cells (run after them, in this order).
DERIVED_ARMS = ("ensemble", "auto")
#: Every arm ``--arms`` accepts, for help texts.
ALL_ARMS = (*STANDARD_ARMS, "baseline", *DERIVED_ARMS)
#: Default ``--arms``.
DEFAULT_ARMS = ("ssl", "scratch", "linear_probe", "baseline")
#: eval.json "test" entries kept out of results.csv: the loss (baselines have none) and the
#: unnamed alias of ``sens_at_spec90`` (same value).
NOT_METRICS = ("loss", "sensitivity_at_specificity")
#: Config keys that may differ between a sweep and its restart.
_FREE_KEYS = ("name", "output_dir", "device")


# ---------------------------------------------------------------- arguments


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
        if c < 2:
            raise ConfigError(f"--counts: {c} is below 2; a labeled set needs at least one item "
                              "per class")
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


def cell_name(arm: Arm, size: Size, seed: int) -> str:
    """``<arm>_<size>_<seed>``, as :func:`~ssl_domains.report.artifacts.parse_cell_name`
    reads it."""
    return f"{arm.folder}_{size.tag}_{seed}"


def default_baselines(cfg: RunConfig) -> list[ComponentRef]:
    """The config's ``baselines``, else every baseline of the backbone's plugin that takes the
    backbone's modality, else the host's ``logistic``."""
    if cfg.baselines:
        return list(cfg.baselines)
    from ssl_domains.plugins import get_host

    registry = get_host().registry
    entry = registry.get("backbone", cfg.backbone.name)
    modalities = set(entry.modalities)
    found = [ComponentRef(name=e.name) for e in registry.entries("baseline")
             if e.plugin == entry.plugin
             and (not e.modalities or not modalities or modalities & set(e.modalities))]
    return found or [ComponentRef(name="logistic")]


def resolve_arms(cfg: RunConfig, names: Sequence[str]) -> list[Arm]:
    """Arms from ``--arms`` names; ``baseline`` expands to :func:`default_baselines`; the
    derived arms (``ensemble``, ``auto``) go last.

    Raises:
        ConfigError: Two baselines with the same name, ``baseline:<name>`` not registered,
            ``ensemble`` without ``ssl`` and a baseline, or ``auto`` with fewer than two other
            arms.
    """
    from ssl_domains.plugins import get_host

    registry = get_host().registry
    baselines = default_baselines(cfg)
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


# ---------------------------------------------------------------- sweep


@dataclass
class SweepResult:
    """What a sweep produced.

    Attributes:
        out: The sweep folder.
        results: The tidy table written to ``results.csv``.
        summary: The table written to ``summary.csv``.
        report: Path of ``report.html``.
        computed: Cells trained in this call.
        reused: Cells found finished and not recomputed.
        skipped: Baselines skipped (name -> reason, e.g. a missing optional dependency).
        failed: Cells that failed (name -> reason); they stay unfinished.
    """

    out: Path
    results: pd.DataFrame
    summary: pd.DataFrame
    report: Path | None
    computed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def _comparable(cfg: RunConfig) -> dict[str, Any]:
    data = cfg.model_dump(mode="json")
    for key in _FREE_KEYS:
        data.pop(key, None)
    for stage in ("pretrain", "finetune"):
        if data.get(stage):
            data[stage]["train"].pop("progress", None)
    return data


def _check_same_sweep(out: Path, cfg: RunConfig, init: InitConfig | None) -> None:
    """Refuse to mix cells of a different config into an existing sweep folder."""
    record = out / "sweep.json"
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


def _write_sweep_record(out: Path, cfg: RunConfig, init: InitConfig | None,
                        sizes: Sequence[Size], seeds: Sequence[int], arms: Sequence[Arm]) -> None:
    from ssl_domains.engine.run_dir import atomic_write_text, environment_info

    out.mkdir(parents=True, exist_ok=True)
    record = {"config": _comparable(cfg),
              "init": init.model_dump(mode="json") if init is not None else None,
              "sizes": [s.tag for s in sizes], "seeds": list(seeds),
              "arms": [a.name for a in arms]}
    write_json(out / "sweep.json", record)
    atomic_write_text(out / "config.yaml", dump_config(cfg))
    write_json(out / "environment.json", environment_info())


def _pretrained(cfg: RunConfig, out: Path, init: InitConfig | None,
                echo: Callable[[str], None]) -> InitConfig | None:
    """The pre-trained weights of the ``ssl`` and ``linear_probe`` arms.

    ``init`` (``--init``) is used as is. Otherwise a config with a ``pretrain`` section is
    pre-trained once into ``<out>/pretrain`` (continuing from ``cfg.init`` when set; skipped when
    its export exists, resumed when it has a checkpoint but no export). Without ``pretrain``,
    ``cfg.init`` is the pre-trained backbone.
    """
    if init is not None:
        return init
    if cfg.pretrain is None:
        return cfg.init
    from ssl_domains.engine.checkpoints import latest_checkpoint
    from ssl_domains.engine.pretrain import pretrain

    pdir = out / "pretrain"
    export = pdir / "export"
    if (export / "backbone.safetensors").is_file():
        echo(f"pre-training: reusing {export}")
    else:
        resume = latest_checkpoint(pdir / "checkpoints" / "pretrain") is not None
        echo(f"pre-training into {pdir}" + (" (resuming from its checkpoint)" if resume else ""))
        start = time.perf_counter()
        summary = pretrain(cfg, pdir, resume=resume)
        echo(f"pre-trained {summary['steps']} steps, best val loss "
             f"{_fmt(summary['best_val_loss'])}, {time.perf_counter() - start:.1f} s")
    return InitConfig(path=str(export))


def _share_pretrain_artifacts(out: Path) -> None:
    """Copy the pre-training loss log and pretext pictures to the sweep folder, where the report
    looks for this folder's own loss curves and pictures."""
    pdir = out / "pretrain"
    if (pdir / "metrics.jsonl").is_file():
        shutil.copyfile(pdir / "metrics.jsonl", out / "metrics.jsonl")
    pictures = sorted((pdir / "figures").glob("*.png")) if (pdir / "figures").is_dir() else []
    if pictures:
        (out / "figures").mkdir(exist_ok=True)
        for png in pictures:
            shutil.copyfile(png, out / "figures" / png.name)


def _cell_config(cfg: RunConfig, arm: Arm, size: Size, seed: int,
                 init: InitConfig | None) -> RunConfig:
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


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) and not math.isnan(value) else "n/a"


# ---------------------------------------------------------------- baselines


def stack_inputs(ds: Any, key: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Inputs ``[N, C, *spatial]`` (float32, NaN kept), labels ``[N]`` and item ids of ``ds``.

    Raises:
        SSLDomainsError: Items without the input key or without labels.
    """
    from ssl_domains.engine.inference import stack_inputs as stack

    x, y, ids = stack(ds, key)
    if y is None:
        raise SSLDomainsError("baseline input: items have no labels")
    return x, y, ids

def run_baseline(cfg: RunConfig, ref: ComponentRef, cell: Path, sources: dict[str, Any],
                 cache: dict[int, tuple[np.ndarray, np.ndarray, list[str]]] | None = None
                 ) -> dict[str, Any]:
    """Fit baseline ``ref`` on the cell's training items; threshold on validation; score test.

    Writes ``eval.json`` (same keys as fine-tuning) and ``predictions/val.csv``, ``test.csv``.

    Raises:
        ImportError: The baseline's optional dependency is missing.
        SSLDomainsError: ``predict_proba`` returned the wrong shape.
    """
    from ssl_domains.data.datasets import labels_of
    from ssl_domains.engine.build import build_backbone
    from ssl_domains.engine.finetune import prepare_finetune_data, write_predictions
    from ssl_domains.engine.inference import Predictions
    from ssl_domains.engine.run_dir import RunDir
    from ssl_domains.engine.runtime import seed_everything
    from ssl_domains.plugins import get_host
    from ssl_domains.scoring.metrics import classification_metrics
    from ssl_domains.scoring.thresholds import choose_threshold

    assert cfg.finetune is not None
    fcfg = cfg.finetune
    start = time.perf_counter()
    seed_everything(cfg.seed, cfg.deterministic)
    registry = get_host().registry
    run = RunDir(cell)
    run.create(cfg)
    backbone: Any = build_backbone(registry, cfg.backbone)
    key = str(backbone.input_spec.modality)
    data = prepare_finetune_data(cfg, fcfg, sources)
    cache = {} if cache is None else cache

    def arrays(ds: Any) -> tuple[np.ndarray, np.ndarray, list[str]]:
        shared = any(ds is sources.get(k) for k in ("val", "test"))
        if shared and id(ds) in cache:
            return cache[id(ds)]
        got = stack_inputs(ds, key)
        if shared:
            cache[id(ds)] = got
        return got

    x_tr, y_tr, _ = arrays(data["train"])
    model = registry.create("baseline", ref.name, **ref.args)
    model.fit(x_tr, y_tr)

    def predict(ds: Any) -> Predictions:
        x, y, ids = arrays(ds)
        probs = np.asarray(model.predict_proba(x), dtype=np.float64)
        if probs.ndim != 2 or len(probs) != len(x):
            entry = registry.get("baseline", ref.name)
            raise SSLDomainsError(f"plugin {entry.plugin!r}: baseline {ref.name!r} predict_proba "
                                  f"returned shape {probs.shape} for {len(x)} items; expected [N, K]")
        return Predictions(ids=ids, probs=probs, labels=y, loss=None)

    def metrics(p: Predictions, threshold: float | None) -> dict[str, float]:
        assert p.labels is not None
        return {k: float(v) for k, v in classification_metrics(p.labels, p.scores, threshold).items()}

    val_preds = predict(data["val"])
    threshold = None
    assert val_preds.labels is not None
    if val_preds.probs.shape[1] == 2 and len(set(val_preds.labels.tolist())) == 2:
        threshold = float(choose_threshold(val_preds.labels, val_preds.scores, fcfg.threshold_rule))
    train_labels = y_tr.tolist()
    summary: dict[str, Any] = {
        "threshold": threshold,
        "threshold_rule": fcfg.threshold_rule,
        "val": metrics(val_preds, threshold),
        "n_train": len(data["train"]),
        "n_val": len(data["val"]),
        "n_pool": data["n_pool"],
        "n_labels": data["n_budget"],
        "label_counts": {"train": dict(Counter(map(str, train_labels))),
                         "val": dict(Counter(map(str, labels_of(data["val"]) or [])))},
        "baseline": ref.model_dump(mode="json"),
        "init": "baseline",
    }
    write_predictions(run.predictions / "val.csv", val_preds, threshold)
    if data["test"] is not None:
        test_preds = predict(data["test"])
        summary["test"] = metrics(test_preds, threshold)
        summary["n_test"] = len(data["test"])
        summary["label_counts"]["test"] = dict(Counter(map(str, labels_of(data["test"]) or [])))
        write_predictions(run.predictions / "test.csv", test_preds, threshold)
    summary["seconds"] = time.perf_counter() - start
    write_json(run.path / "eval.json", summary)
    run.close()
    return summary


# ---------------------------------------------------------------- derived arms


def _fold_trainer(cfg: RunConfig, arms: Sequence[Arm], seed: int, pre: InitConfig | None,
                  echo: Callable[[str], None]) -> Callable[[dict[str, Any], Path], dict[str, Any]]:
    """``train(sources, folder)``: every arm of ``arms`` trained on ``sources["pool"]`` (all of
    it is the label budget; validation split off it as in the cells) and scored on
    ``sources["test"]`` (the held-out fold)."""
    from ssl_domains.engine.finetune import finetune
    from ssl_domains.sweep.auto import read_cell_predictions

    def train(sources: dict[str, Any], folder: Path) -> dict[str, Any]:
        got = {}
        for arm in arms:
            sub = folder / arm.folder
            fold_cfg = _cell_config(cfg, arm, Size(fraction=1.0), seed, pre)
            # the fold runs' warnings (tiny inner validation sets, undefined metrics) repeat
            # what the cells already said; errors still show
            logging.disable(logging.WARNING)
            try:
                if arm.baseline is not None:
                    run_baseline(fold_cfg, arm.baseline, sub, sources)
                else:
                    finetune(fold_cfg, sub, init=None if arm.name == "scratch" else pre,
                             sources=sources)
            except (ImportError, ValueError, RuntimeError, SSLDomainsError) as err:
                if arm.baseline is None or isinstance(err, ConfigError | RegistryError):
                    raise
                echo(f"  cross-validation: {arm.name} failed on {folder.name} ({err}); left out")
                continue
            finally:
                logging.disable(logging.NOTSET)
            got[arm.name] = read_cell_predictions(sub / "predictions" / "test.csv")
            shutil.rmtree(sub, ignore_errors=True)
        return got

    return train


def run_derived(cfg: RunConfig, arm: Arm, size: Size, seed: int, out: Path,
                arms: Sequence[Arm], sources: dict[str, Any], pre: InitConfig | None,
                alpha: float = 0.05, echo: Callable[[str], None] = print,
                cv_folds: int = CV_FOLDS) -> dict[str, Any]:
    """Write the ``ensemble`` or ``auto`` cell of ``(size, seed)`` from the finished cells of
    ``arms`` (see :mod:`ssl_domains.sweep.auto`); ``cv_folds`` below 2 makes ``auto``
    choose on the validation set whatever its size.

    Raises:
        SSLDomainsError: A member cell is missing or the cells scored different items.
    """
    from ssl_domains.sweep import auto

    assert cfg.finetune is not None
    cell = out / "cells" / cell_name(arm, size, seed)
    done = {a.name: out / "cells" / cell_name(a, size, seed) for a in arms
            if a.name != arm.name and (out / "cells" / cell_name(a, size, seed) / "eval.json").is_file()}
    bases = [a.name for a in arms if a.baseline is not None and a.name in done]
    rule = cfg.finetune.threshold_rule
    plain = [a for a in arms if not a.derived and a.name in done]

    def cv() -> tuple[np.ndarray, dict[str, np.ndarray], int]:
        """The out-of-fold probabilities of every plain arm (computed once per size and seed,
        kept in ``<out>/cv/``: the ensemble and auto cells share them)."""
        from ssl_domains.engine.finetune import prepare_finetune_data
        from ssl_domains.files import write_json

        path = out / "cv" / f"{size.tag}_{seed}.json"
        names = sorted(a.name for a in plain)
        if path.is_file():
            got = json.loads(path.read_text())
            if got.get("arms") == names and got.get("folds_asked") == cv_folds:
                return (np.asarray(got["labels"], dtype=int),
                        {a: np.asarray(p, dtype=np.float64) for a, p in got["probs"].items()},
                        int(got["folds"]))
        cell_cfg = _cell_config(cfg, plain[0], size, seed, pre)
        assert cell_cfg.finetune is not None
        data = prepare_finetune_data(cell_cfg, cell_cfg.finetune, sources)
        labeled = auto.Labeled([auto.Labeled.part(data["train"]), auto.Labeled.part(data["val"])])
        echo(f"  {size.label} seed {seed}: small validation set ({len(data['val'])} items), "
             f"cross-validating {len(plain)} arm(s) over {len(labeled)} labeled items")
        folds = out / "cv" / f"folds_{size.tag}_{seed}"
        shutil.rmtree(folds, ignore_errors=True)  # an interrupted cross-validation restarts
        y, probs, k = auto.cross_validate(labeled, seed, folds,
                                          _fold_trainer(cfg, plain, seed, pre, echo), cv_folds)
        write_json(path, {"labels": y.tolist(), "folds": k, "folds_asked": cv_folds,
                          "arms": names, "probs": {a: p.tolist() for a, p in probs.items()}})
        return y, probs, k

    use_cv = cv_folds >= 2 and any(a.name == "auto" for a in arms)
    if arm.name == "ensemble":
        if "ssl" not in done or not bases:
            raise SSLDomainsError(f"ensemble {size.label} seed {seed}: needs the finished ssl "
                                  "cell and at least one finished baseline cell")
        oof = None
        if use_cv:  # auto cross-validates a small validation set anyway: choose on it too
            from ssl_domains.sweep.auto import read_cell_predictions
            from ssl_domains.sweep.selection import small_validation

            val = read_cell_predictions(done["ssl"] / "predictions" / "val.csv")
            if val.labels is not None and small_validation(val.labels):
                oof = cv()
        return auto.run_ensemble_cell(cell, ("ssl", done["ssl"]), {b: done[b] for b in bases},
                                      rule, oof=oof)
    candidates = {a.name: done[a.name] for a in arms if a.name in done and a.name != "auto"}
    ensemble = ("ssl", bases) if "ensemble" in candidates else None
    return auto.run_auto_cell(cell, candidates, rule, ensemble=ensemble,
                              cv=cv if use_cv else None, seed=seed, alpha=alpha)


# ---------------------------------------------------------------- results


def collect_results(out: Path, cells: Sequence[tuple[Arm, Size, int]]) -> pd.DataFrame:
    """The tidy table of the finished cells' test metrics (``eval.json`` "test")."""
    rows = []
    for arm, size, seed in cells:
        path = out / "cells" / cell_name(arm, size, seed) / "eval.json"
        if not path.is_file():
            continue
        ev = json.loads(path.read_text())
        n_labels = ev.get("n_labels", int(ev.get("n_train", 0)) + int(ev.get("n_val", 0)))
        n_pool = ev.get("n_pool")
        fraction = size.fraction if size.fraction is not None else \
            (n_labels / n_pool if n_pool else math.nan)
        for metric, value in (ev.get("test") or {}).items():
            if metric in NOT_METRICS:
                continue
            rows.append({"arm": arm.name, "n_labels": int(n_labels), "fraction": fraction,
                         "seed": seed, "metric": metric,
                         "value": math.nan if value is None else float(value)})
    return pd.DataFrame(rows, columns=["arm", "n_labels", "fraction", "seed", "metric", "value"])


STABILITY_COLUMNS = ["arm", "n_labels", "fraction", "seed", "val_auroc", "constant", "collapsed"]


def collect_stability(out: Path, cells: Sequence[tuple[Arm, Size, int]]) -> pd.DataFrame:
    """Per finished cell: validation AUROC, whether its output was constant, and whether it
    collapsed (:func:`~ssl_domains.sweep.selection.collapse`)."""
    from ssl_domains.sweep.auto import cell_stability

    rows = []
    for arm, size, seed in cells:
        cell = out / "cells" / cell_name(arm, size, seed)
        if not (cell / "eval.json").is_file():
            continue
        st = cell_stability(cell)
        if st is None:
            continue
        ev = json.loads((cell / "eval.json").read_text())
        n_labels = ev.get("n_labels", int(ev.get("n_train", 0)) + int(ev.get("n_val", 0)))
        n_pool = ev.get("n_pool")
        fraction = size.fraction if size.fraction is not None else \
            (n_labels / n_pool if n_pool else math.nan)
        rows.append({"arm": arm.name, "n_labels": int(n_labels), "fraction": fraction,
                     "seed": seed, "val_auroc": math.nan if st["val_auroc"] is None
                     else st["val_auroc"], "constant": st["constant"],
                     "collapsed": st["collapsed"]})
    return pd.DataFrame(rows, columns=STABILITY_COLUMNS)


def with_stability(summary: pd.DataFrame, stability: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with ``collapsed`` (share of seeds that collapsed) and ``n_collapsed`` on
    its arm rows (NaN on difference rows and where no cell could be checked)."""
    out = summary.copy()
    out["collapsed"], out["n_collapsed"] = math.nan, math.nan
    if stability.empty or out.empty:
        return out
    per = stability.groupby(["arm", "n_labels"])["collapsed"].agg(["mean", "sum"])
    for i, row in out.iterrows():
        key = (row["arm"], row["n_labels"])
        if row["kind"] == "arm" and key in per.index:
            out.at[i, "collapsed"] = float(per.loc[key, "mean"])
            out.at[i, "n_collapsed"] = float(per.loc[key, "sum"])
    return out


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in df.to_dict(orient="records")]


def _headline(results: pd.DataFrame) -> str | None:
    from ssl_domains.report.pages import PRIMARY_METRICS

    have = list(dict.fromkeys(results["metric"].astype(str)))
    return next((m for m in PRIMARY_METRICS if m in have), have[0] if have else None)


def summary_table(summary: pd.DataFrame, metric: str, arms: Sequence[str]) -> str:
    """Plain-text table: mean ± std per arm and size (with ``[k/n collapsed]`` when some seeds
    collapsed), and the ssl-scratch difference [CI]."""
    rows = summary[summary["metric"] == metric]
    sizes = sorted(rows["n_labels"].dropna().unique())
    head = [f"{metric} (test)", "n_labels", *arms, "ssl-scratch [95% CI]"]
    lines = []
    for n in sizes:
        at = rows[rows["n_labels"] == n]
        cells = []
        for arm in arms:
            r = at[(at["kind"] == "arm") & (at["arm"] == arm)]
            text = "" if r.empty else \
                f"{_fmt(r['mean'].iloc[0])}±{_fmt(r['std'].iloc[0])}".replace("±n/a", "")
            if not r.empty and "n_collapsed" in r and r["n_collapsed"].iloc[0] > 0:
                text += f" [{int(r['n_collapsed'].iloc[0])}/{int(r['n'].iloc[0])} collapsed]"
            cells.append(text)
        d = at[at["kind"] == "difference"]
        diff = "" if d.empty else (f"{d['mean'].iloc[0]:+.3f} [{d['ci_low'].iloc[0]:+.3f}, "
                                   f"{d['ci_high'].iloc[0]:+.3f}]")
        lines.append(["", str(int(n)), *cells, diff])
    widths = [max(len(head[i]), *(len(line[i]) for line in lines)) if lines else len(head[i])
              for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), *(fmt.format(*line) for line in lines)])


# ---------------------------------------------------------------- the sweep


def run_sweep(
    cfg: RunConfig,
    out: Path,
    *,
    sizes: Sequence[Size],
    seeds: Sequence[int],
    arms: Sequence[str] = DEFAULT_ARMS,
    init: InitConfig | None = None,
    alpha: float = 0.05,
    echo: Callable[[str], None] = print,
    report: bool = True,
    sources: dict[str, Any] | None = None,
    require_test: bool = True,
    cv_folds: int = CV_FOLDS,
) -> SweepResult:
    """Run (or finish) a label-efficiency sweep into ``out``; see the module docstring.

    Args:
        cfg: Run config with a ``finetune`` section with test data (and usually ``pretrain``).
        out: The sweep folder.
        sizes: Labeled-set sizes.
        seeds: Seeds; each fixes the labeled subset, split and initialisation of every arm.
        arms: Arm names (``ssl``, ``scratch``, ``linear_probe``, ``baseline``,
            ``baseline:<name>``).
        init: Pre-trained weights for the ``ssl``/``linear_probe`` arms (skips pre-training).
        alpha: 1 - confidence level of the intervals.
        echo: Where progress lines go.
        report: Build ``report/report.html`` at the end.
        sources: The fine-tuning datasets (:func:`~ssl_domains.engine.finetune.build_finetune_sources`)
            when already built.
        require_test: Refuse a config without test data (``finetune.select: auto`` runs its
            candidates as a sweep and has no test data to require).
        cv_folds: Folds of the ``auto`` arm's cross-validation when a validation set is small
            (every other arm is retrained per fold: the cost of those cells times this);
            below 2, ``auto`` always chooses on the validation set.

    Returns:
        A :class:`SweepResult`.

    Raises:
        ConfigError: No ``finetune`` section or test data, pre-trained arms without anything to
            pre-train from, a size the data cannot give, or a folder holding another sweep.
        SSLDomainsError: When cells failed (after results and report are written).
    """
    from ssl_domains.data.datasets import labels_of
    from ssl_domains.data.splits import label_subset
    from ssl_domains.engine.finetune import build_finetune_sources, finetune
    from ssl_domains.scoring.intervals import summarize

    if cfg.finetune is None:
        raise ConfigError(f"{cfg.name}: a sweep needs a 'finetune' section")
    if cfg.finetune.data.test is None and require_test:
        raise ConfigError(f"{cfg.name}: a sweep reports test metrics; give finetune.data.test "
                          "(a held-out labeled loader, never used to choose anything)")
    if not sizes or not seeds:
        raise ConfigError("a sweep needs at least one size and one seed")
    arm_list = resolve_arms(cfg, arms)
    pretrained_arms = [a.name for a in arm_list if a.name in ("ssl", "linear_probe")]
    if pretrained_arms and init is None and cfg.init is None and cfg.pretrain is None:
        raise ConfigError(f"arms {', '.join(pretrained_arms)} need pre-trained weights: the config "
                          "has no 'pretrain' section and no 'init'; give --init PATH, or "
                          "--arms scratch,baseline")
    out = Path(out)
    _check_same_sweep(out, cfg, init)

    sources = sources or build_finetune_sources(cfg.finetune)
    pool_labels = labels_of(sources["pool"]) or []
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
    plan_sizes = [budgets[k] for k in sorted(budgets)]
    _write_sweep_record(out, cfg, init, plan_sizes, seeds, arm_list)

    pre = _pretrained(cfg, out, init, echo) if pretrained_arms else None
    _share_pretrain_artifacts(out)
    cells = [(arm, size, seed) for size in plan_sizes for seed in seeds for arm in arm_list]
    result = SweepResult(out, pd.DataFrame(), pd.DataFrame(), None)
    cache: dict[int, Any] = {}
    width = max(len(a.name) for a in arm_list)
    echo(f"sweep: {len(plan_sizes)} size(s) x {len(seeds)} seed(s) x {len(arm_list)} arm(s) "
         f"= {len(cells)} cells in {out / 'cells'}")
    for i, (arm, size, seed) in enumerate(cells, start=1):
        name = cell_name(arm, size, seed)
        cell = out / "cells" / name
        where = (f"[{i:>{len(str(len(cells)))}}/{len(cells)}] {arm.name:<{width}} "
                 f"{size.label:<8} seed {seed:<3}")
        if (cell / "eval.json").is_file():
            auroc = (json.loads((cell / "eval.json").read_text()).get("test") or {}).get("auroc")
            echo(f"{where} test AUROC {_fmt(auroc)}  (finished earlier)")
            result.reused.append(name)
            continue
        if arm.baseline is not None and arm.name in result.skipped:
            continue
        if cell.exists():
            shutil.rmtree(cell)  # an interrupted cell is redone from the start
        start = time.perf_counter()
        try:
            if arm.derived:
                summary = run_derived(cfg, arm, size, seed, out,
                                      [a for a in arm_list if a.name not in result.skipped],
                                      sources, pre, alpha, echo, cv_folds)
                result.computed.append(name)
                chosen = (summary.get("selection") or {}).get("chosen")
                auroc = (summary.get("test") or {}).get("auroc")
                echo(f"{where} test AUROC {_fmt(auroc)}  {time.perf_counter() - start:6.1f} s"
                     + (f"  (chose {chosen})" if chosen else ""))
                continue
            cell_cfg = _cell_config(cfg, arm, size, seed, pre)
            if arm.baseline is not None:
                summary = run_baseline(cell_cfg, arm.baseline, cell, sources, cache)
            else:
                summary = finetune(cell_cfg, cell, init=None if arm.name == "scratch" else pre,
                                   sources=sources)
        except ImportError as err:
            if arm.baseline is None:
                raise
            result.skipped[arm.name] = str(err)
            echo(f"{arm.name}: skipped for the whole sweep ({err})")
            shutil.rmtree(cell, ignore_errors=True)
            continue
        except (ValueError, RuntimeError, SSLDomainsError) as err:
            if (arm.baseline is None and not arm.derived) or isinstance(err, ConfigError
                                                                        | RegistryError):
                raise
            result.failed[name] = f"{type(err).__name__}: {err}"
            echo(f"{where} FAILED: {type(err).__name__}: {err}")
            continue
        result.computed.append(name)
        auroc = (summary.get("test") or {}).get("auroc")
        echo(f"{where} test AUROC {_fmt(auroc)}  {time.perf_counter() - start:6.1f} s")

    done = [c for c in cells if c[0].name not in result.skipped]
    result.results = collect_results(out, done)
    result.results.to_csv(out / "results.csv", index=False)
    stability = collect_stability(out, done)
    stability.to_csv(out / "stability.csv", index=False)
    result.summary = summarize(result.results, alpha=alpha) if not result.results.empty else \
        pd.DataFrame(columns=["kind", "arm", "n_labels", "fraction", "metric", "mean", "std", "n",
                              "ci_low", "ci_high"])
    result.summary = with_stability(result.summary, stability)
    result.summary.to_csv(out / "summary.csv", index=False)
    write_json(out / "summary.json", (
        {"alpha": alpha, "interval": "Student-t over seeds; ssl-scratch paired by seed",
         "collapsed": f"share of seeds whose validation AUROC was <= {COLLAPSE_AUROC} or whose "
                      "output was constant (stability.csv per cell)",
         "rows": _records(result.summary)}))
    metric = _headline(result.results) if not result.results.empty else None
    if metric is not None:
        shown = [a.name for a in arm_list if a.name not in result.skipped]
        echo(summary_table(result.summary, metric, shown))
    if report:
        from ssl_domains.report.pages import build_report

        result.report = build_report(out, alpha=alpha)
        echo(f"report: {result.report}")
    echo(f"results: {out / 'results.csv'} ({len(result.computed)} cell(s) trained, "
         f"{len(result.reused)} reused)")
    if result.failed:
        first = next(iter(result.failed.items()))
        raise SSLDomainsError(f"{len(result.failed)} cell(s) failed and stay unfinished (first: "
                              f"{first[0]}: {first[1]}); results.csv holds the finished ones, "
                              "rerun the same command to retry them")
    return result
