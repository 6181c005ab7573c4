"""Run configuration: YAML files validated against a schema, with ``--set a.b=c`` overrides.

Components are referenced by registry name plus keyword arguments — never by import path.
The fully resolved config is written into every run folder as ``config.yaml``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ssl_domains.candidates import AUTO_CANDIDATES, is_candidate_name, tolerance_words
from ssl_domains.errors import ConfigError, DataError
from ssl_domains.metric_names import MONITORED_METRICS, parse_rule

__all__ = [
    "ComponentRef",
    "DataConfig",
    "TrainConfig",
    "EarlyStopping",
    "InitConfig",
    "PretrainConfig",
    "FinetuneConfig",
    "RunConfig",
    "load_config",
    "apply_overrides",
    "parse_config",
    "dump_config",
    "parse_arg_pairs",
    "read_yaml",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ComponentRef(_Strict):
    """A registered component by name, with the keyword arguments for its factory."""

    name: str = Field(description="registry name, see `ssl-domains list <kind>`")
    args: dict[str, Any] = Field(default_factory=dict, description="factory keyword arguments")


class DataConfig(_Strict):
    """Where the data comes from and how it is batched."""

    train: ComponentRef = Field(description="loader for training data")
    val: ComponentRef | None = Field(
        None, description="loader for validation data; default: split off the training data"
    )
    test: ComponentRef | None = Field(None, description="loader for test data (never used to choose anything)")
    val_fraction: float = Field(0.2, gt=0, lt=1, description="share held out for validation when `val` is not given")
    batch_size: int = Field(32, ge=1)
    eval_batch_size: int | None = Field(None, ge=1, description="default: batch_size")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes")
    pin_memory: bool = Field(False, description="pinned host memory (useful with a GPU)")
    drop_last: bool = Field(False, description="drop the last incomplete training batch")


class EarlyStopping(_Strict):
    """Stop when a validation metric has not improved for `patience` evaluations."""

    metric: str = Field(
        "loss", description="'loss', a metric name such as 'auroc', or 'auto' (fine-tuning: AUROC "
        "when the validation set holds enough items of each class, "
        "engine.finetune.AUROC_MONITOR_MIN_PER_CLASS, else loss; pre-training: loss)")
    patience: int | None = Field(5, ge=1, description="evaluations without improvement before "
                                 "stopping; null: never stop early, only keep the best weights")
    mode: Literal["min", "max", "auto"] = Field("auto", description="auto: min for loss, max otherwise")

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value != "auto" and value not in MONITORED_METRICS:
            raise ValueError(f"unknown validation metric {value!r}; allowed: auto, "
                             f"{', '.join(MONITORED_METRICS)}")
        return value


class TrainConfig(_Strict):
    """Optimisation settings of one stage."""

    epochs: int = Field(10, ge=1)
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimiser steps")
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_steps: int = Field(0, ge=0, description="linear warm-up from 0 to lr")
    grad_clip: float | None = Field(1.0, gt=0, description="max gradient norm; null disables")
    amp: Literal["auto", "bf16", "off"] = Field("auto", description="auto: bf16 autocast on CUDA only")
    checkpoint_every: int = Field(200, ge=1, description="write a resume checkpoint every N steps")
    keep_checkpoints: int = Field(2, ge=1, description="periodic checkpoints kept besides last.pt")
    log_every: int = Field(10, ge=1, description="log train loss every N steps")
    eval_every: int | None = Field(None, ge=1, description="validate every N steps; default: each epoch")
    early_stopping: EarlyStopping | None = None
    progress: bool = Field(True, description="tqdm progress bars")


class InitConfig(_Strict):
    """Weights to start from: an export folder, a run folder, a checkpoint or foreign weights."""

    path: str
    source: str = Field("auto", description="foreign format for convert_checkpoint, or 'auto'")
    strict: bool = Field(False, description="fail unless every backbone weight is loaded")


class PretrainConfig(_Strict):
    """Self-supervised pre-training stage."""

    data: DataConfig
    task: ComponentRef = Field(description="pretext task, see `ssl-domains list pretext`")
    train: TrainConfig = Field(default_factory=TrainConfig)

    @model_validator(mode="after")
    def _loss_only(self) -> PretrainConfig:
        early = self.train.early_stopping
        if early is not None and early.metric not in ("loss", "auto"):
            raise ValueError(f"train.early_stopping.metric {early.metric!r}: pre-training "
                             "validates the pretext loss only; use loss (or auto)")
        return self


class FinetuneConfig(_Strict):
    """Supervised fine-tuning stage."""

    data: DataConfig
    task: ComponentRef = Field(description="fine-tuning task, see `ssl-domains list finetune`")
    train: TrainConfig = Field(default_factory=TrainConfig)
    label_fraction: float | None = Field(None, gt=0, le=1, description="use this share of the labeled training data (stratified)")
    label_count: int | None = Field(None, ge=1, description="use this many labeled training items "
                                    "(stratified); for a dense task (segmentation): training cases")
    mode: Literal["full", "linear", "frozen_then_unfrozen"] = Field(
        "full", description="train everything, only the head, or the head first then everything"
    )
    unfreeze_epoch: int = Field(1, ge=0, description="for frozen_then_unfrozen: epoch at which the backbone unfreezes")
    backbone_lr_scale: float = Field(1.0, gt=0, description="backbone learning rate = lr * this")
    val_budget: Literal["whole", "same_fraction"] = Field(
        "whole", description="with a `val` loader: use it whole, or draw the training budget's share "
        "of its labels (stratified), so a 10 % run also validates on 10 % of the validation labels"
    )
    threshold_rule: str = Field("youden", description="how the decision threshold is chosen on validation data")
    from_scratch: bool = Field(False, description="ignore pre-trained weights (the scratch arm)")
    select: Literal["single", "auto"] = Field(
        "single", description="single: train the configured model; auto: train the candidates "
        "(pre-trained, scratch, linear probe, classical baselines, ensemble), choose on validation "
        "data only and export the chosen one"
    )
    prefer: list[str] | None = Field(
        None, description="select: auto's order of preference among baseline, linear_probe, "
        "ssl, scratch, ensemble and single baselines (baseline:<name>, placed apart from the "
        f"other baselines): the first of these within {tolerance_words()} of the best candidate "
        "is chosen (candidates not listed come after, in the default order). Default: the "
        "order the fine-tuning task's plugin registered (what held up across the benchmark "
        "suite's datasets of its kind), else baseline, linear_probe, ssl, scratch, ensemble "
        "(simplest first)"
    )

    @field_validator("threshold_rule")
    @classmethod
    def _known_rule(cls, value: str) -> str:
        parse_rule(value)  # raises naming the rule and the allowed ones
        return value

    @model_validator(mode="after")
    def _one_label_budget(self) -> FinetuneConfig:
        if self.label_fraction is not None and self.label_count is not None:
            raise ValueError("give label_fraction or label_count, not both")
        if self.prefer is not None:
            unknown = [n for n in self.prefer if not is_candidate_name(n)]
            if unknown:
                raise ValueError(f"prefer {self.prefer}: unknown candidate(s) {', '.join(unknown)} "
                                 f"(candidates: {', '.join(AUTO_CANDIDATES)}, baseline:<name>)")
            if len(set(self.prefer)) < len(self.prefer):
                raise ValueError(f"prefer {self.prefer}: each candidate at most once")
        if self.val_budget == "same_fraction" and self.data.val is None:
            raise ValueError("val_budget 'same_fraction' needs a data.val loader; without one, "
                             "validation is split off the label budget (data.val_fraction)")
        return self


class RunConfig(_Strict):
    """A whole run: backbone, optional pre-training, optional fine-tuning."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="run folder name")
    output_dir: str = Field("runs", description="parent folder of run folders")
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    deterministic: bool = Field(True, description="deterministic algorithms (bitwise repeatable on CPU)")
    backbone: ComponentRef = Field(description="see `ssl-domains list backbone`")
    init: InitConfig | None = None
    pretrain: PretrainConfig | None = None
    finetune: FinetuneConfig | None = None
    baselines: list[ComponentRef] = Field(default_factory=list, description="classical baselines for sweeps")


def _describe_allowed(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """Allowed keys at location ``loc`` (for unknown-key messages)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return ""
        ann = fields[part].annotation
        args = [a for a in getattr(ann, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)]
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            current = ann
        elif args:
            current = args[0]
        else:
            return ""
    fields = getattr(current, "model_fields", None)
    return ", ".join(fields) if fields else ""


def _format_error(exc: ValidationError, source: str) -> str:
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    key = ".".join(str(p) for p in loc) or "(top level)"
    more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
    if err["type"] == "extra_forbidden":
        allowed = _describe_allowed(RunConfig, loc)
        return f"{source}: unknown config key {key!r}; allowed here: {allowed}{more}"
    if err["type"] == "missing":
        return f"{source}: missing required config key {key!r}{more}"
    msg = err["msg"]
    value = err.get("input")
    shown = "" if isinstance(value, dict) else f" (got {value!r})"
    if "ctx" in err and "expected" in err["ctx"]:
        msg = f"must be {err['ctx']['expected']}"
    elif err["type"] == "value_error" and "error" in err.get("ctx", {}):
        msg, shown = str(err["ctx"]["error"]), ""  # our validators name the value themselves
    return f"{source}: config key {key!r}: {msg}{shown}{more}"


def parse_config(data: dict[str, Any], source: str = "config") -> RunConfig:
    """Validate a config mapping.

    Raises:
        ConfigError: Unknown key or bad value; the message names the key and what is allowed.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a run config must be a mapping, got {type(data).__name__}")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, source)) from None


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=c`` overrides (values parsed as YAML) to a config mapping.

    Raises:
        ConfigError: An override without ``=`` or one that descends into a non-mapping.
    """
    out = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set finetune.train.lr=1e-4")
        key, raw = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"--set {item!r}: empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        node = out
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(
                    f"--set {item!r}: {'.'.join(parts[: i + 1])!r} is not a mapping"
                )
            node = nxt
        node[parts[-1]] = value
    return out


def parse_arg_pairs(pairs: list[str] | tuple[str, ...], option: str = "--arg") -> dict[str, Any]:
    """``NAME=VALUE`` command-line pairs as a dict, values parsed as YAML.

    Raises:
        ConfigError: A pair without ``=``.
    """
    out: dict[str, Any] = {}
    for item in pairs:
        if "=" not in item:
            raise ConfigError(f"{option} {item!r}: expected NAME=VALUE")
        k, v = item.split("=", 1)
        out[k.strip()] = yaml.safe_load(v) if v.strip() else None
    return out


def read_yaml(path: str | Path, text: str | None = None) -> Any:
    """The plain data of a YAML file (``yaml.safe_load``: a tag that would build a Python
    object, ``!!python/...``, is refused, never run).

    Args:
        path: The file (named by errors).
        text: Its text, when the caller has read it already.

    Raises:
        DataError: Unreadable, not YAML, or holding a Python tag (one line naming the file).
    """
    p = Path(path)
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8") if text is None else text)
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(p, f"cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} " if mark is not None else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        if isinstance(exc, yaml.constructor.ConstructorError) and "python/" in problem:
            raise DataError(p, f"{where}refused: a Python tag ({problem.rsplit(' ', 1)[-1]}), which "
                            "could run code when loaded; ssl-domains writes plain YAML only") from None
        raise DataError(p, f"{where}not valid YAML: {problem}") from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML run file, apply overrides and validate.

    Raises:
        ConfigError: Missing or unparsable file, or an invalid config.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = read_yaml(p) or {}
    except DataError as exc:
        raise ConfigError(str(exc)) from None
    return parse_config(apply_overrides(data, overrides or []), source=str(p))


def dump_config(cfg: RunConfig) -> str:
    """The fully resolved config as YAML."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
