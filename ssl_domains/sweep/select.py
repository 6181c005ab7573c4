"""``finetune.select: auto``: train the candidates, choose on validation data only, export
the chosen model.

The candidates are the arms of a one-size, one-seed sweep on the run's own label budget and
seed (:mod:`ssl_domains.sweep.run`, in ``<run>/candidates/``): the pre-trained model
fine-tuned as configured (``ssl``), the same recipe from scratch, a linear probe, every
classical baseline and the ``ensemble`` of ``ssl`` with the strongest baseline; without
pre-trained weights, only scratch and the baselines. The ``auto`` arm chooses among them on
validation AUROC, or by cross-validation over the labeled subset when the validation set is
small (:mod:`ssl_domains.sweep.auto`). The test split is only scored.

The run folder then holds the chosen model's ``eval.json`` (with ``selection``: the chosen
arm, its selection AUROC with a bootstrap interval, the runner-up, every candidate's score,
and ``candidates``: each one's test AUROC, reported, never used), its predictions and its
export:

* a fine-tuned network: that candidate's export, as any fine-tuning run's;
* a classical baseline (``kind: baseline``): ``config.json`` names it and its arguments,
  ``baseline.safetensors`` holds its training inputs and labels, and loading refits it
  (baselines are deterministic; the export is checked to reproduce the candidate's
  validation scores). Nothing is pickled; the export contains the training inputs;
* the ensemble (``kind: ensemble``): ``deep/`` and ``baseline/`` exports and the weight.

``ssl-domains evaluate`` and ``predict`` use whichever was chosen.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ssl_domains.config import ComponentRef, DataConfig, InitConfig, RunConfig, dump_config
from ssl_domains.engine.inference import Predictions, stack_inputs
from ssl_domains.errors import CheckpointError, ConfigError, SSLDomainsError
from ssl_domains.files import atomic_write_text, write_json

__all__ = ["select_finetune", "load_selected", "SelectedModel", "BASELINE_FILE"]

log = logging.getLogger(__name__)

BASELINE_FILE = "baseline.safetensors"
#: Deep candidate arms (their cells have a network export).
DEEP_ARMS = ("ssl", "scratch", "linear_probe")


# ---------------------------------------------------------------- baseline exports


def save_baseline_export(folder: Path, *, ref: ComponentRef, key: str, x: np.ndarray,
                         y: np.ndarray, meta: dict[str, Any]) -> None:
    """``config.json`` (``kind: baseline``) and ``baseline.safetensors`` (training ``x``,
    ``y``) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"x": torch.from_numpy(np.ascontiguousarray(x)),
               "y": torch.from_numpy(np.asarray(y, dtype=np.int64))},
              str(folder / BASELINE_FILE), metadata={"format": "np"})
    write_json(folder / "config.json", {**meta, "kind": "baseline",
                                         "baseline": ref.model_dump(mode="json"),
                                         "input_key": key, "n_train": int(len(y))})


class SelectedModel:
    """A classical baseline or an ensemble exported by ``select: auto``, scoring datasets.

    Raises:
        CheckpointError: A member export is missing or unreadable.
    """

    def __init__(self, folder: Path, config: dict[str, Any]) -> None:
        self.folder = folder
        self.config = config
        self.kind = str(config.get("kind"))
        self._baseline: Any = None
        self._deep: Any = None

    def _fit_baseline(self) -> tuple[Any, str]:
        folder = self.folder / "baseline" if self.kind == "ensemble" else self.folder
        cfg = json.loads((folder / "config.json").read_text())
        if self._baseline is None:
            from ssl_domains.plugins import get_host

            try:
                arrays = load_file(str(folder / BASELINE_FILE))
            except (OSError, ValueError, RuntimeError) as err:
                raise CheckpointError(f"{folder / BASELINE_FILE}: unreadable ({err})") from None
            ref = cfg["baseline"]
            model = get_host().registry.create("baseline", ref["name"], **ref.get("args", {}))
            model.fit(arrays["x"].numpy(), arrays["y"].numpy())
            self._baseline = model
        return self._baseline, str(cfg["input_key"])

    def baseline_probs(self, ds: Any) -> Predictions:
        """The baseline's class probabilities of every item of ``ds``."""
        model, key = self._fit_baseline()
        x, y, ids = stack_inputs(ds, key)
        probs = np.asarray(model.predict_proba(x), dtype=np.float64)
        return Predictions(ids=ids, probs=probs, labels=y, loss=None)

    def score_dataset(self, ds: Any, batch_size: int = 32, device: str = "auto") -> Predictions:
        """Class probabilities of every item of ``ds`` (already built with the export's
        normalisation statistics)."""
        base = self.baseline_probs(ds)
        if self.kind == "baseline":
            return base
        from ssl_domains.data.datasets import make_loader
        from ssl_domains.engine.evaluate import load_finetuned
        from ssl_domains.engine.inference import predict
        from ssl_domains.engine.runtime import Runtime
        from ssl_domains.sweep.selection import combine

        if self._deep is None:
            self._deep, _ = load_finetuned(self.folder / "deep")
        rt = Runtime.create(device, "auto")
        self._deep.to(rt.device)
        ref = ComponentRef(name="selected")
        dl = make_loader(ds, DataConfig(train=ref, batch_size=batch_size), train=False, seed=0)
        deep = predict(self._deep, dl, rt)
        w = float(self.config["weight"])
        return Predictions(ids=deep.ids, probs=combine(deep.probs, base.probs, w),
                           labels=deep.labels, loss=None)


def load_selected(path: str | Path) -> tuple[SelectedModel, dict[str, Any]] | None:
    """The baseline or ensemble exported by ``select: auto`` at ``path`` (a run or export
    folder), or None when the export is a fine-tuned network (or absent)."""
    p = Path(path)
    folder = p / "export" if (p / "export" / "config.json").is_file() else p
    if not (folder / "config.json").is_file():
        return None
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict) or config.get("kind") not in ("baseline", "ensemble"):
        return None
    return SelectedModel(folder, config), config


# ---------------------------------------------------------------- select: auto


def _pretrained(cfg: RunConfig, run: Path, init: InitConfig | None) -> InitConfig | None:
    """The pre-trained weights of the ``ssl`` candidates, as :func:`finetune` resolves them;
    the run's own pre-training export is copied to ``candidates/init`` first (the chosen
    model's export replaces it)."""
    if init is not None or cfg.init is not None:
        return init or cfg.init
    keep = run / "candidates" / "init"
    if (keep / "backbone.safetensors").is_file():
        return InitConfig(path=str(keep))
    export = run / "export"
    if cfg.pretrain is not None and (export / "backbone.safetensors").is_file():
        stage = json.loads((export / "config.json").read_text()).get("stage") \
            if (export / "config.json").is_file() else None
        if stage == "pretrain":
            keep.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(export, keep, dirs_exist_ok=True)
            return InitConfig(path=str(keep))
    return None


def select_finetune(cfg: RunConfig, run_path: Path, *, init: InitConfig | None = None,
                    sources: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train the candidates of ``select: auto``, choose on validation data only, and write the
    chosen model's eval.json, predictions and export into ``run_path`` (see the module
    docstring). Returns the eval summary (with ``selection``).

    Raises:
        ConfigError: No ``finetune`` section, or several processes (torchrun).
        SSLDomainsError: The choice could not be made (e.g. every candidate failed).
    """
    from ssl_domains.engine.finetune import build_finetune_sources, prepare_finetune_data
    from ssl_domains.engine.run_dir import environment_info
    from ssl_domains.report.model_card import model_card
    from ssl_domains.sweep.run import Arm, Size, _cell_config, cell_name, run_sweep

    if cfg.finetune is None:
        raise ConfigError(f"{cfg.name}: the config has no 'finetune' section")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("finetune.select: auto trains its candidates one after another in one "
                          "process; run it without torchrun (or use select: single)")
    fcfg = cfg.finetune
    run = Path(run_path)
    run.mkdir(parents=True, exist_ok=True)
    pre = None if fcfg.from_scratch else _pretrained(cfg, run, init)
    arms = ["ssl", "scratch", "linear_probe", "baseline", "ensemble", "auto"] if pre is not None \
        else ["scratch", "baseline", "auto"]
    if pre is None and not fcfg.from_scratch:
        log.warning("select: auto: no pre-trained weights (no --init, no init, no pre-training "
                    "export in %s): the candidates are scratch and the classical baselines", run)
    size = Size(fraction=fcfg.label_fraction) if fcfg.label_fraction is not None else \
        Size(count=fcfg.label_count) if fcfg.label_count is not None else Size(fraction=1.0)
    single = cfg.model_copy(update={"finetune": fcfg.model_copy(update={"select": "single"})})
    sources = sources or build_finetune_sources(fcfg)
    out = run / "candidates"
    log.info("select: auto: training %s into %s", ", ".join(arms[:-1]), out)
    try:
        run_sweep(single, out, sizes=[size], seeds=[cfg.seed], arms=arms, init=pre,
                  echo=log.info, report=False, sources=sources, require_test=False)
    except SSLDomainsError as err:
        if isinstance(err, ConfigError):
            raise
        log.warning("select: auto: %s", err)  # a failed baseline leaves the others to choose
    cells = out / "cells"
    auto_cell = cells / cell_name(Arm("auto"), size, cfg.seed)
    if not (auto_cell / "eval.json").is_file():
        raise SSLDomainsError(f"select: auto: no choice was made (see {out}); every candidate "
                              "must train for the choice to be made")
    summary = json.loads((auto_cell / "eval.json").read_text())
    choice = summary["selection"]
    chosen = str(choice["chosen"])
    summary["candidates"] = {}
    for name in choice.get("scores", {}):
        ev_path = cells / cell_name(Arm(name), size, cfg.seed) / "eval.json"
        ev = json.loads(ev_path.read_text()) if ev_path.is_file() else {}
        summary["candidates"][name] = {
            "selection_auroc": choice["scores"][name],
            "val_auroc": (ev.get("val") or {}).get("auroc"),
            "test_auroc": (ev.get("test") or {}).get("auroc")}
    summary["candidates_note"] = ("test_auroc of every candidate is reported for honesty; the "
                                  "choice used validation data only")

    def cell(arm: str) -> Path:
        return cells / cell_name(Arm(arm), size, cfg.seed)

    def baseline_export(arm: str, folder: Path) -> None:
        """The baseline of ``arm``'s cell, refitted from its training items on load."""
        from ssl_domains.engine.build import build_backbone
        from ssl_domains.plugins import get_host

        ref = ComponentRef(**json.loads((cell(arm) / "eval.json").read_text())["baseline"])
        arm_cfg = _cell_config(single, Arm(arm, ref), size, cfg.seed, pre)
        assert arm_cfg.finetune is not None
        data = prepare_finetune_data(arm_cfg, arm_cfg.finetune, sources)
        backbone: Any = build_backbone(get_host().registry, cfg.backbone)
        key = str(backbone.input_spec.modality)
        x, y, _ = stack_inputs(data["train"], key)
        assert y is not None
        save_baseline_export(folder, ref=ref, key=key, x=x, y=y, meta=meta)
        _check_baseline(folder, data["val"], cell(arm))

    tmp = run / ".export.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    meta = {"format": "ssl-domains-export/1", "stage": "finetune", "run": cfg.name,
            "backbone": cfg.backbone.model_dump(mode="json"),
            "threshold": summary.get("threshold"), "threshold_rule": fcfg.threshold_rule,
            "data_stats": getattr(sources["pool"], "stats", None),
            "selection": choice, "environment": environment_info()}
    if chosen in DEEP_ARMS:
        shutil.copytree(cell(chosen) / "export", tmp)
        deep_cfg = json.loads((tmp / "config.json").read_text())
        deep_cfg["selection"] = choice
        write_json(tmp / "config.json", deep_cfg)
    elif chosen.startswith("baseline"):
        baseline_export(chosen, tmp)
    else:
        ens = choice.get("ensemble") or summary.get("ensemble") or {}
        deep_arm, base_arm = ens["members"]
        shutil.copytree(cell(deep_arm) / "export", tmp / "deep")
        baseline_export(base_arm, tmp / "baseline")
        write_json(tmp / "config.json", {**meta, "kind": "ensemble", "weight": ens["weight"],
                                          "weight_of": deep_arm,
                                          "members": {"deep": deep_arm, "baseline": base_arm}})
    card = model_card(single.model_dump(mode="json"), summary, summary.get("label_counts", {}),
                      summary.get("test_intervals"))
    atomic_write_text(tmp / "README.md", card)
    shutil.rmtree(run / "export", ignore_errors=True)
    tmp.replace(run / "export")
    shutil.copytree(auto_cell / "predictions", run / "predictions", dirs_exist_ok=True)
    atomic_write_text(run / "config.yaml", dump_config(cfg))
    write_json(run / "environment.json", environment_info())
    write_json(run / "eval.json", summary)
    log.info("select: auto chose %s (selection AUROC %.3f, runner-up %s)", chosen,
             choice.get("score") or math.nan, choice.get("runner_up"))
    return summary


def _check_baseline(folder: Path, val_ds: Any, cell: Path) -> None:
    """A baseline export must reproduce its candidate cell's validation scores.

    Raises:
        SSLDomainsError: It does not (a baseline that is not deterministic).
    """
    from ssl_domains.sweep.auto import read_cell_predictions

    model = SelectedModel(folder, json.loads((folder / "config.json").read_text()))
    want = read_cell_predictions(cell / "predictions" / "val.csv").probs
    got = model.baseline_probs(val_ds).probs
    if got.shape != want.shape or not np.allclose(got, want, rtol=0, atol=1e-6):
        raise SSLDomainsError(f"{folder}: the refitted baseline does not reproduce the "
                              f"validation scores of {cell.name} (not deterministic?); give it "
                              "a fixed random_state")
