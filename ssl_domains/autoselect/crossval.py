"""The derived arms of one size and seed (``ensemble``, ``auto``), from the finished cells of
the other arms: the candidates' cross-validation when the validation set is too small to
choose on (each plain arm retrained per fold, as its cell was; computed once per size and
seed, kept in ``<out>/cv/``, its fold runs shareable between jobs), the refit on every label
of what cross-validation chose (:mod:`~ssl_domains.autoselect.refit`), and the derived cell
itself (:mod:`~ssl_domains.autoselect.derived`). A sweep's ``auto`` and ``ensemble`` arms
call :func:`run_derived`, and so does ``select: auto`` on its one-cell sweep of candidates;
the sweep's jobs run the fold runs (:func:`run_fold_arm`) side by side.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ssl_domains.autoselect import derived
from ssl_domains.autoselect.arms import Arm, Size, cell_config, cell_name
from ssl_domains.autoselect.baseline import refit_baseline, run_baseline
from ssl_domains.autoselect.choice import CV_FOLDS, PREFERENCE, checked_preference, small_validation
from ssl_domains.autoselect.refit import refit_network, refit_steps
from ssl_domains.config import InitConfig, RunConfig
from ssl_domains.contracts import DatasetView
from ssl_domains.engine import finetune as finetuning
from ssl_domains.engine.assess import EVAL_FILE, Predictions, read_predictions
from ssl_domains.engine.segmentation import is_dense
from ssl_domains.errors import ConfigError, DataError, RegistryError, SSLDomainsError
from ssl_domains.files import read_json_object, write_json
from ssl_domains.layout.run import RunFolder
from ssl_domains.layout.sweep import SweepFolder
from ssl_domains.registry import Registry

__all__ = ["run_derived", "Derivation", "preference", "run_fold_arm", "cv_items", "cell_data", "cv_folder",
           "fold_file"]


def fold_file(folds: Path, k: int, arm: Arm) -> Path:
    """Where fold ``k``'s run of ``arm`` keeps its out-of-fold probabilities (``folds``: the
    cross-validation's scratch folder of one size and seed)."""
    return folds / f"fold{k}_{arm.folder}.json"


def run_fold_arm(cfg: RunConfig, arm: Arm, seed: int, pre: InitConfig | None, registry: Registry,
                 sources: dict[str, Any], folds: Path, k: int, cv_folds: int,
                 echo: Callable[[str], None]) -> dict[str, Any]:
    """Fold ``k``'s run of ``arm``: trained on ``sources["pool"]`` (all of it is the label
    budget; validation split off it as in the cells), scored on ``sources["test"]`` (the
    held-out fold), kept in :func:`fold_file` (reused when it holds the same held-out items):
    ``{"held", "probs", "ids", "trained", "left_out"}``, ``trained`` the network's
    ``(steps trained, training items)`` (what a refit on every label trains,
    :func:`~ssl_domains.autoselect.refit.refit_steps`), ``left_out`` why it has no probabilities.
    Several processes may run the folds of one cross-validation side by side."""
    held = [int(i) for i in sources["test"].indices]
    path = fold_file(folds, k, arm)
    if path.is_file():
        try:
            got = read_json_object(path)
            if got.get("held") == held and got.get("folds_asked") == cv_folds:
                return got
        except DataError:  # a cache: what cannot be read is computed again
            pass
    sub = folds / f"fold{k}" / arm.folder
    shutil.rmtree(sub, ignore_errors=True)  # an interrupted fold run starts again
    fold_cfg = cell_config(cfg, arm, Size(fraction=1.0), seed, pre)
    record: dict[str, Any] = {"arm": arm.name, "fold": k, "folds_asked": cv_folds, "held": held,
                              "probs": None, "ids": None, "trained": None, "left_out": None}
    # the fold runs' warnings (tiny inner validation sets, undefined metrics) repeat what the
    # cells already said; errors still show
    logging.disable(logging.WARNING)
    try:
        if arm.baseline is not None:
            run_baseline(fold_cfg, arm.baseline, sub, sources, registry)
        else:
            ran = finetuning.finetune(fold_cfg, sub, registry=registry,
                                      init=None if arm.name == "scratch" else pre, sources=sources)
            if ran.get("steps") is not None:
                record["trained"] = [int(ran["steps"]), int(ran["n_train"])]
    except (ImportError, ValueError, RuntimeError, SSLDomainsError) as err:
        # a baseline that fails, or a network whose fold data cannot be trained on (a
        # validation carve without every class, with 1-2 items of a class in the fold), is
        # left out of the choice; a wrong config or a network's own error stops the sweep
        if isinstance(err, ConfigError | RegistryError) or (
                arm.baseline is None and not isinstance(err, DataError)):
            raise
        echo(f"  cross-validation: {arm.name} failed on fold{k} ({err}); left out")
        record["left_out"] = str(err)
    finally:
        logging.disable(logging.NOTSET)
    if record["left_out"] is None:
        scored = read_predictions(RunFolder(sub).prediction_file("test"))
        record["probs"], record["ids"] = scored.probs.tolist(), list(scored.ids)
    shutil.rmtree(sub, ignore_errors=True)
    write_json(path, record)
    return record


def _fold_trainer(cfg: RunConfig, arms: Sequence[Arm], seed: int, pre: InitConfig | None,
                  registry: Registry, echo: Callable[[str], None],
                  trained: dict[str, list[tuple[int, int]]], folds: Path, cv_folds: int
                  ) -> Callable[[dict[str, Any], int], dict[str, Any]]:
    """``train(sources, k)``: fold ``k``'s run of every arm of ``arms``
    (:func:`run_fold_arm`, reusing what other jobs computed); each network's
    ``(steps trained, training items)`` appended to ``trained[arm]``."""

    def train(sources: dict[str, Any], k: int) -> dict[str, Any]:
        got = {}
        for arm in arms:
            record = run_fold_arm(cfg, arm, seed, pre, registry, sources, folds, k, cv_folds, echo)
            if record["left_out"] is not None:
                continue
            if record["trained"] is not None:
                trained.setdefault(arm.name, []).append((int(record["trained"][0]),
                                                         int(record["trained"][1])))
            got[arm.name] = Predictions(ids=record["ids"], labels=None,
                                        probs=np.asarray(record["probs"], dtype=np.float64))
        return got

    return train


def cv_items(cfg: RunConfig, arm: Arm, size: Size, seed: int, pre: InitConfig | None,
             sources: dict[str, Any]) -> DatasetView:
    """The labeled subset of ``(size, seed)`` (training and validation part) that ``auto``
    cross-validates over: the same items whatever the arm."""
    return derived.labeled_set(cell_data(cfg, arm, size, seed, pre, sources))


def cell_data(cfg: RunConfig, arm: Arm, size: Size, seed: int, pre: InitConfig | None,
              sources: dict[str, Any]) -> dict[str, Any]:
    """The datasets of ``arm``'s cell of ``(size, seed)``
    (:func:`~ssl_domains.engine.finetune.prepare_finetune_data`: ``train``, ``val``, ...)."""
    cell_cfg = cell_config(cfg, arm, size, seed, pre)
    assert cell_cfg.finetune is not None
    return finetuning.prepare_finetune_data(cell_cfg, cell_cfg.finetune, sources)


def cv_folder(out: Path, size: Size, seed: int) -> Path:
    """The scratch folder of the cross-validation of ``(size, seed)`` (its fold runs)."""
    return SweepFolder(out).cv / f"folds_{size.tag}_{seed}"


@dataclass
class Derivation:
    """The derived arms of one size and seed: the cross-validation of its finished plain arms
    and the refit of what it chose.

    Attributes:
        cfg: The sweep's config.
        size: The labeled-set size.
        seed: The seed.
        out: The sweep folder.
        arms: The sweep's arms (baselines skipped for the whole sweep left out).
        plain: The finished plain (not derived) arms of this size and seed.
        sources: The fine-tuning datasets.
        pre: The pre-trained weights of the ``ssl`` and ``linear_probe`` arms.
        registry: Where the components come from (the sweep's).
        echo: Where progress lines go.
        cv_folds: Folds asked for.
        trained: Each network arm's ``(steps trained, training items)`` per fold (filled by
            :meth:`cross_validate`; what :meth:`refit` trains).
    """

    cfg: RunConfig
    size: Size
    seed: int
    out: Path
    arms: Sequence[Arm]
    plain: list[Arm]
    sources: dict[str, Any]
    pre: InitConfig | None
    registry: Registry
    echo: Callable[[str], None] = print
    cv_folds: int = CV_FOLDS
    trained: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def cross_validate(self) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
        """The out-of-fold probabilities of every plain arm (computed once per size and seed,
        kept in ``<out>/cv/``: the ensemble and auto cells share them), and each network's
        steps trained per fold into :attr:`trained`."""
        size, seed, plain, echo = self.size, self.seed, self.plain, self.echo
        path = SweepFolder(self.out).cv / f"{size.tag}_{seed}.json"
        names = sorted(a.name for a in plain)
        got: dict[str, Any] = {}
        if path.is_file():
            try:
                got = read_json_object(path)
            except DataError as err:  # a cache: what cannot be read is computed again
                echo(f"  {err}; cross-validating again")
        if (got.get("arms") == names and got.get("folds_asked") == self.cv_folds
                and {"labels", "probs", "folds"} <= got.keys()
                and ("trained_steps" in got or all(a.baseline is not None for a in plain))):
            self.trained.update({a: [(int(s), int(n)) for s, n in v]
                                 for a, v in got.get("trained_steps", {}).items()})
            return (np.asarray(got["labels"], dtype=int),
                    {a: np.asarray(p, dtype=np.float64) for a, p in got["probs"].items()},
                    int(got["folds"]))
        labeled = cv_items(self.cfg, plain[0], size, seed, self.pre, self.sources)
        echo(f"  {size.label} seed {seed}: small validation set ({len(labeled)} labeled items), "
             f"cross-validating {len(plain)} arm(s)")
        folds = cv_folder(self.out, size, seed)  # fold runs finished earlier (or by other jobs) are kept
        y, probs, k = derived.cross_validate(
            labeled, seed, folds, _fold_trainer(self.cfg, plain, seed, self.pre, self.registry, echo,
                                                self.trained, folds, self.cv_folds), self.cv_folds)
        write_json(path, {"labels": y.tolist(), "folds": k, "folds_asked": self.cv_folds,
                          "arms": names, "probs": {a: p.tolist() for a, p in probs.items()},
                          "trained_steps": {a: [list(v) for v in steps]
                                            for a, steps in self.trained.items()}})
        return y, probs, k

    def refit(self, name: str, folder: Path, oof: np.ndarray, folds: int) -> bool:
        """Arm ``name`` fitted again on every labeled item (training + validation part, in
        the order of :meth:`cross_validate`'s out-of-fold probabilities ``oof``) into
        ``folder``: a baseline as it is fitted, a network for the steps its folds trained
        (:mod:`~ssl_domains.autoselect.refit`). False (nothing written) for a network whose folds
        recorded no steps."""
        base = next(a for a in self.arms if a.name == name)
        cell_cfg = cell_config(self.cfg, base, self.size, self.seed, self.pre)
        assert cell_cfg.finetune is not None
        labeled = cv_items(self.cfg, base, self.size, self.seed, self.pre, self.sources)
        if base.baseline is not None:
            refit_baseline(cell_cfg, base.baseline, folder, labeled, oof, folds, self.sources,
                           self.registry)
            return True
        steps = refit_steps(self.trained.get(name, []), len(labeled), cell_cfg.finetune.data.batch_size,
                            cell_cfg.finetune.data.drop_last)
        if steps is None:
            return False
        refit_network(cell_cfg, folder, labeled, oof, folds, steps, self.sources, self.pre,
                      self.registry)
        return True


def run_derived(cfg: RunConfig, arm: Arm, size: Size, seed: int, out: Path,
                arms: Sequence[Arm], sources: dict[str, Any], pre: InitConfig | None,
                registry: Registry, alpha: float = 0.05, echo: Callable[[str], None] = print,
                cv_folds: int = CV_FOLDS) -> dict[str, Any]:
    """Write the ``ensemble`` or ``auto`` cell of ``(size, seed)`` from the finished cells of
    ``arms`` (see :mod:`ssl_domains.autoselect.derived`); ``cv_folds`` below 2 makes ``auto``
    choose on the validation set whatever its size. ``registry`` gives the baselines and
    networks retrained in cross-validation.

    Raises:
        SSLDomainsError: A member cell is missing or the cells scored different items.
    """
    assert cfg.finetune is not None
    cells = SweepFolder(out)
    cell = cells.cell(cell_name(arm, size, seed))
    done = {a.name: cells.cell(cell_name(a, size, seed)) for a in arms
            if a.name != arm.name and (cells.cell(cell_name(a, size, seed)) / EVAL_FILE).is_file()}
    if is_dense(registry, cfg.finetune.task.name):
        if arm.name != "auto":
            raise SSLDomainsError(f"{arm.name}: a segmentation sweep has no ensemble arm (an average "
                                  "of probability maps is not implemented); use auto")
        order, source = preference(cfg, registry)
        return derived.run_dense_auto_cell(cell, {a: p for a, p in done.items() if a != "ensemble"},
                                           preference=order, preference_from=source)
    bases = [a.name for a in arms if a.baseline is not None and a.name in done]
    rule = cfg.finetune.threshold_rule
    plain = [a for a in arms if not a.derived and a.name in done]
    deriving = Derivation(cfg, size, seed, out, arms, plain, sources, pre, registry, echo, cv_folds)
    use_cv = cv_folds >= 2 and any(a.name == "auto" for a in arms)
    if arm.name == "ensemble":
        if "ssl" not in done or not bases:
            raise SSLDomainsError(f"ensemble {size.label} seed {seed}: needs the finished ssl "
                                  "cell and at least one finished baseline cell")
        oof = None
        if use_cv:  # auto cross-validates a small validation set anyway: choose on it too
            val = read_predictions(RunFolder(done["ssl"]).prediction_file("val"))
            if val.labels is not None and small_validation(val.labels):
                oof = deriving.cross_validate()
        return derived.run_ensemble_cell(cell, ("ssl", done["ssl"]), {b: done[b] for b in bases},
                                         rule, oof=oof)
    candidates = {a.name: done[a.name] for a in arms if a.name in done and a.name != "auto"}
    ensemble = ("ssl", bases) if "ensemble" in candidates else None
    order, source = preference(cfg, registry)
    return derived.run_auto_cell(cell, candidates, rule, ensemble=ensemble,
                                 cv=deriving.cross_validate if use_cv else None, seed=seed,
                                 alpha=alpha, preference=order, preference_from=source,
                                 refit=deriving.refit if use_cv else None)


def preference(cfg: RunConfig, registry: Registry) -> tuple[tuple[str, ...], str]:
    """The order of preference of ``auto`` and where it came from: the config's
    ``finetune.prefer``, else the one the fine-tuning task's plugin registered with it
    (``prefer`` in its ``@component``: what held up across the benchmark suite's datasets of
    its kind), else :data:`~ssl_domains.autoselect.choice.PREFERENCE` (simplest first; source
    ``""``).

    Raises:
        ContractError: The task's registered order names an unknown candidate or one twice.
    """
    fcfg = cfg.finetune
    if fcfg is None:
        return PREFERENCE, ""
    if fcfg.prefer:
        return tuple(fcfg.prefer), "the config's finetune.prefer"
    entry = registry.get("finetune", fcfg.task.name)
    declared = entry.meta.get("prefer")
    if declared is None:
        return PREFERENCE, ""
    where = f"plugin {entry.plugin!r}: finetune task {entry.name!r}"
    return checked_preference(declared, where), \
        f"the default of the fine-tuning task {entry.name} (plugin {entry.plugin})"
