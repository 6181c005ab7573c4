"""The model card (the export's ``README.md``): data, label counts, metrics with intervals, use,
limits.

Rendered from the resolved run config and its :class:`~ssl_domains.engine.assess.Assessment`
(``eval.json``); the engine writes it with the export (fine-tuning, ``select: auto``).
The card of a pre-trained backbone (:func:`pretrain_card`) is rendered from the config and the
:class:`~ssl_domains.layout.export.ExportConfig`. :func:`write_model_card` and
:func:`write_pretrain_card` render them again from a run folder.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ssl_domains.engine.assess import Assessment, Candidate, Selection, read_assessment
from ssl_domains.errors import CheckpointError, DataError
from ssl_domains.identifiers import shareable_config
from ssl_domains.layout.export import ExportConfig, ExportFolder, read_export_config, write_card
from ssl_domains.layout.names import BACKBONE_FILE, BASELINE_FILE, EXPORT_CONFIG_FILE, MODEL_FILE
from ssl_domains.layout.numbers import fmt, is_number
from ssl_domains.layout.run import RunFolder, read_run_config

#: (label, dotted config path) of the components the card names; flat keys are a fallback.
COMPONENTS = (
    ("backbone", "backbone"),
    ("pretext task", "pretrain.task"),
    ("fine-tuning task", "finetune.task"),
    ("pretext task", "pretext"),
    ("fine-tuning task", "task"),
)
#: (label, dotted config path) of the data sections the card describes.
DATA = (("pre-training data", "pretrain.data"), ("fine-tuning data", "finetune.data"),
        ("data", "data"))


def _get(config: Mapping[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _is_path(key: str, value: Any) -> bool:
    """Paths stay out of the card (folder names can carry identifiers); config.json has them."""
    return any(w in key.lower() for w in ("path", "root", "dir", "file")) or (
        isinstance(value, str) and ("/" in value or "\\" in value))


def _data_lines(label: str, section: Any) -> list[str]:
    """One line per split (``{"train": {"name", "args"}, ...}``) with loader and arguments."""
    if not isinstance(section, Mapping):
        return []
    out = []
    for split, spec in section.items():
        name = _name(spec)
        if name is None:
            continue
        args = spec.get("args") if isinstance(spec, Mapping) else None
        shown = ", ".join(f"{k}={v}" for k, v in (args or {}).items()
                          if isinstance(v, int | float | bool | str) and not _is_path(k, v))
        out.append(f"- {label}, {split}: loader `{name}`" + (f" ({shown})" if shown else ""))
    return out


def _name(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        for key in ("name", "loader", "component", "type"):
            if isinstance(value.get(key), str):
                return value[key]
    return None


def _bounds(value: Any) -> tuple[float, float] | None:
    """``(low, high)`` of a ``[low, high]`` pair; None when absent or not computed."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        return None
    low, high = value
    if not (is_number(low) and is_number(high)) or math.isnan(float(low)):
        return None
    return float(low), float(high)


def _md(text: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def model_card(config: Mapping[str, Any], assessment: Assessment) -> str:
    """Markdown model card of an exported model.

    Args:
        config: The resolved run config (component names are read from ``backbone``,
            ``pretrain.task``, ``finetune.task``; loaders from ``pretrain.data`` and
            ``finetune.data``, each split a ``{"name", "args"}`` mapping).
        assessment: The run's ``eval.json`` (threshold, metrics, counts, label counts, test
            intervals, what ``select: auto`` chose); may be empty.

    The card shows the config as :func:`~ssl_domains.identifiers.shareable_config` does (input
    paths and ids by opaque id); loader names and non-path arguments are listed.

    Returns:
        The card as Markdown.
    """
    config = shareable_config(config)
    lines = ["# Model card", ""]
    lines += ["Trained with ssl-domains: self-supervised pre-training, then fine-tuning on "
              "few labels.", "", "## Model", ""]
    seen: set[str] = set()
    for label, dotted in COMPONENTS:
        name = _name(_get(config, dotted))
        if name and label not in seen:
            seen.add(label)
            lines.append(f"- {label}: `{name}`")
    if not seen:
        lines.append(f"- components: see `{EXPORT_CONFIG_FILE}`")
    if assessment.selection is not None:
        lines += selection_lines(assessment.selection, assessment.candidates, assessment.refit)
    else:
        lines += [EXPORT_FILES["deep"], ""]
    kept = _kept_text(config, assessment)
    if kept:
        lines[-1:-1] = [kept]

    lines += ["## Data", ""]
    for label, dotted in DATA:
        lines += _data_lines(label, _get(config, dotted))
    counts = {k: v for k in ("n_train", "n_val", "n_test") if (v := getattr(assessment, k)) is not None}
    if counts:
        lines.append("- items: " + ", ".join(f"{k[2:]} {v}" for k, v in counts.items()))
    lines.append("")
    lines += ["### Label counts", ""]
    groups = assessment.label_counts or {}
    if groups:
        classes = sorted({str(c) for g in groups.values() for c in g})
        lines += ["| split | " + " | ".join(f"class {c}" for c in classes) + " |",
                  "|---|" + "---:|" * len(classes)]
        for split, g in groups.items():
            row = {str(k): v for k, v in g.items()}
            lines.append(f"| {_md(split)} | " + " | ".join(_md(row.get(c, 0)) for c in classes)
                         + " |")
    else:
        lines.append("Not recorded.")
    lines.append("")

    lines += ["## Evaluation", ""]
    threshold = assessment.threshold
    if is_number(threshold):
        lines.append(f"Decision threshold {fmt(threshold)} (rule "
                     f"`{assessment.threshold_rule or 'unknown'}`), chosen on the "
                     "validation split and applied unchanged to the test split.")
        lines.append("")
    val, test = assessment.val, assessment.test or {}
    ci = assessment.test_intervals
    names = list(dict.fromkeys([*val, *test]))
    if names:
        lines += ["| metric | validation | test | test interval |", "|---|---:|---:|---:|"]
        for name in names:
            bounds = ci.get(name) if ci is not None else None
            span = f"{fmt(bounds[0])} to {fmt(bounds[1])}" if bounds else ""
            lines.append(f"| {_md(name)} | {fmt(val.get(name, float('nan')))} | "
                         f"{fmt(test.get(name, float('nan')))} | {span} |")
        method = ci.method if ci is not None else None
        lines += ["", "Intervals: " + (method if method is not None else
                                      "two-sided confidence intervals over test cases" if ci
                                      else "not computed")
                  + "."]
    else:
        lines.append("Not evaluated yet.")
    lines.append("")

    lines += [
        "## Intended use", "",
        "Research and method development: comparing self-supervised pre-training with "
        "training from scratch when labels are few, and as a starting point for further "
        "fine-tuning on the user's own, locally validated data.", "",
        "## Limits", "",
        "- Not a medical device. Not cleared or approved by any regulator; not for diagnosis, "
        "triage or treatment decisions.",
        "- Validated only on the test split above, drawn from the same source as the training "
        "data; performance on other sites, scanners, devices or populations is unknown.",
        "- Few labels give wide intervals; read the intervals, not only the point estimates.",
        "- The threshold fixes one trade-off between sensitivity and specificity; re-choose it on "
        "validation data from the setting where the model is used.",
        "- Scores are not calibrated probabilities unless calibration was checked.", "",
    ]
    return "\n".join(lines)


#: What an export of each kind of chosen model holds.
EXPORT_FILES = {
    "deep": f"- weights: `{MODEL_FILE}` (load with `safetensors.torch.load_file`); "
            f"architecture and arguments in `{EXPORT_CONFIG_FILE}`",
    "baseline": f"- a classical baseline: `{EXPORT_CONFIG_FILE}` names it and its arguments; "
                f"`{BASELINE_FILE}` holds its training inputs and labels, and loading the "
                "export refits it deterministically (no pickle). **This export contains the "
                "training inputs**: share it only where the training data may go",
    "ensemble": "- an ensemble: `deep/` (a fine-tuned network export) and `baseline/` (a "
                "classical baseline export, which contains its training inputs: share it only "
                f"where the training data may go); `{EXPORT_CONFIG_FILE}` holds the weight",
}


def _kept_text(config: Mapping[str, Any], assessment: Assessment) -> str | None:
    """``- fine-tuning: 1080 steps; the weights kept are those of step 320 (the best validation
    AUROC)``, when the run recorded its steps (a network, not a baseline)."""
    steps, best = assessment.steps, assessment.best_step
    if steps is None or best is None:
        return None
    monitor = assessment.monitor or _get(config, "finetune.train.early_stopping.metric")
    monitor = "loss" if monitor in (None, "auto") else str(monitor)  # auto unrecorded: loss
    what = "the lowest validation loss" if monitor == "loss" else \
        f"the best validation {'AUROC' if monitor == 'auroc' else _md(monitor)}"
    return f"- fine-tuning: {steps} steps; the weights kept are those of step {best} ({what})"


def selection_lines(selection: Selection, candidates: Mapping[str, Candidate] | None = None,
                    refit: str | None = None) -> list[str]:
    """The card's lines on a model chosen by ``select: auto``: what was chosen, how (and, for
    a baseline refitted on every label, ``refit``), its selection score with interval, the
    runner-up, and every candidate."""
    chosen = selection.chosen
    kind = "ensemble" if chosen == "ensemble" else \
        "baseline" if chosen.startswith("baseline") else "deep"
    lines = [f"- chosen by `select: auto`: **{_md(chosen)}**", EXPORT_FILES[kind],
             *([f"- {_md(refit)}"] if refit else []), "", "### Model selection", ""]
    bounds = _bounds(selection.interval)
    text = (f"Chosen among {len(selection.scores)} candidates by {selection.method}. "
            f"Selection AUROC of {_md(chosen)}: {fmt(selection.score)}")
    if bounds:
        text += f" (interval {fmt(bounds[0])} to {fmt(bounds[1])}, "
        text += f"{selection.interval_method or 'bootstrap'})"
    if selection.runner_up:
        text += f"; runner-up {_md(selection.runner_up)} ({fmt(selection.runner_up_score)})"
    if selection.rule:
        text += f". Chosen as {_md(selection.rule)}"
    lines += [text + ". The test split was not used to choose.", ""]
    ens = selection.ensemble
    if chosen == "ensemble" and ens is not None:
        other = ens.members[1] if len(ens.members) > 1 else "baseline"
        lines += [f"Ensemble: {fmt(ens.weight)} x {_md(ens.weight_of)} + {fmt(1 - ens.weight)} x "
                  f"{_md(other)} (class probabilities; weight chosen on {_md(ens.chosen_on)}).", ""]
    if selection.scores:
        lines += ["| candidate | selection AUROC | test AUROC (reported, not used) |",
                  "|---|---:|---:|"]
        for name, value in selection.scores.items():
            cand = (candidates or {}).get(name)
            t = cand.test_auroc if cand is not None else None
            lines.append(f"| {_md(name)} | {fmt(value if value is not None else math.nan)} | "
                         f"{fmt(t) if t is not None else ''} |")
        lines.append("")
    return lines


def _read_config(run_dir: Path) -> Mapping[str, Any]:
    """The run folder's resolved ``config.yaml``, as shareable outputs show it.

    Raises:
        DataError: Missing, unreadable, or not a mapping.
    """
    config = read_run_config(run_dir)
    if config is None:
        raise DataError(RunFolder(run_dir).config, "not found")
    return config


def write_model_card(run_dir: Path) -> Path:
    """Render the card of the run folder ``run_dir`` again (its ``config.yaml`` and
    ``eval.json``) into its export; returns its path.

    Raises:
        DataError: ``config.yaml`` or ``eval.json`` is missing or unreadable, or there is no
            export folder.
    """
    run = RunFolder(run_dir)
    if not run.export.is_dir():
        raise DataError(run.export, "missing: the run has no export to describe (fine-tune it first)")
    config = _read_config(run.path)
    return write_card(ExportFolder(run.export), model_card(config, read_assessment(run.path)))


def _init_text(init: Any) -> str:
    """Where pre-training started, without the path (paths stay out of cards, as in runs)."""
    if not isinstance(init, Mapping):
        return "random initialisation"
    return f"existing weights (format `{init.get('source', 'auto')}`; path not recorded here)"


def pretrain_card(config: Mapping[str, Any], export: ExportConfig) -> str:
    """Markdown card of a pre-trained backbone export.

    Args:
        config: The resolved run config (name, backbone, ``pretrain.task``, the
            ``pretrain.data.train`` loader, ``init``).
        export: The export's config (what pre-training recorded: ``steps``, ``n_train``,
            ``best_val_loss``).
    """
    config = shareable_config(config)
    backbone, pre = config.get("backbone") or {}, config.get("pretrain") or {}
    task, init = pre.get("task") or {}, config.get("init")
    loader = _name(_get(pre, "data.train"))
    return (
        f"# {config.get('name')}: pre-trained backbone\n\n"
        f"- Backbone: `{backbone.get('name')}` {backbone.get('args', {})}\n"
        f"- Pretext task: `{task.get('name')}` {task.get('args', {})}\n"
        f"- Data: loader `{loader}`, {export.n_train} unlabeled training items\n"
        f"- Steps: {export.steps}; best validation pretext loss: {export.best_val_loss}\n"
        f"- Continued from: {_init_text(init)}\n\n"
        "## Intended use\nStarting point for fine-tuning with `ssl-domains finetune --init <this folder>`. "
        "It makes no predictions on its own.\n\n"
        f"## Files\n`{BACKBONE_FILE}` (the encoder's weights, safetensors), `{MODEL_FILE}` "
        "(the whole pretext model, its decoder included: a segmentation fine-tuning starts from it "
        f"where the decoder fits), `{EXPORT_CONFIG_FILE}` (how to rebuild it by registry name).\n"
    )


def write_pretrain_card(run_dir: Path) -> Path:
    """Render the card of the pre-training run folder ``run_dir`` again (its ``config.yaml``
    and export config) into its export; returns its path.

    Raises:
        DataError: ``config.yaml`` is missing or unreadable, or the export config is missing,
            unreadable or not a pre-training export.
    """
    export = ExportFolder(RunFolder(run_dir).export)
    if not export.config.is_file():
        raise DataError(export.config, "missing: the run has no export to describe (pre-train it first)")
    try:
        exported = read_export_config(export.path)
    except CheckpointError as err:
        raise DataError(export.config, str(err).removeprefix(f"{export.config}: ")) from None
    if exported.stage != "pretrain":
        raise DataError(export.config, f"not a pre-training export (stage {exported.stage!r})")
    return write_card(export, pretrain_card(_read_config(Path(run_dir)), exported))
