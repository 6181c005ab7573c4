"""Build backbones and tasks from the registry, and load ``--init`` weights into them."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ssl_domains.component_checks import features_problem, item_problem
from ssl_domains.config import ComponentRef, InitConfig, RunConfig
from ssl_domains.contracts import META, Backbone, missing_members
from ssl_domains.data.datasets import broken_promise
from ssl_domains.engine.checkpoints import InitReport, load_init
from ssl_domains.errors import ContractError, DataError, IncompatibleError
from ssl_domains.files import write_json
from ssl_domains.layout.names import BACKBONE_FILE
from ssl_domains.layout.run import RunFolder
from ssl_domains.registry import Registry

__all__ = ["build_backbone", "build_pretext", "apply_init", "check_modality", "check_first_item"]

log = logging.getLogger(__name__)


def build_backbone(registry: Registry, ref: ComponentRef) -> nn.Module:
    """Instantiate a backbone and check its surface (:class:`~ssl_domains.contracts.Backbone`).

    Raises:
        ContractError: The plugin's backbone lacks ``num_features``/``forward_features``/
            ``input_spec``.
    """
    backbone = registry.create("backbone", ref.name, **ref.args)
    missing = missing_members(backbone, Backbone)
    if missing:
        entry = registry.get("backbone", ref.name)
        raise ContractError(
            f"plugin {entry.plugin!r}: backbone {ref.name!r} has no {', '.join(missing)} "
            "(backbones are nn.Modules with num_features, forward_features and input_spec)"
        )
    return backbone


def finetune_init(cfg: RunConfig, init: InitConfig | None, export: Path) -> InitConfig | None:
    """The weights fine-tuning starts from: ``init`` (``--init``), the config's ``init``, then
    the run's own pre-training ``export`` when the config also pre-trains; None from scratch."""
    if cfg.finetune is None or cfg.finetune.from_scratch:
        return None
    chosen = init or cfg.init
    if chosen is None and cfg.pretrain is not None and (export / BACKBONE_FILE).is_file():
        chosen = InitConfig(path=str(export))
    return chosen


def apply_init(registry: Registry, backbone: Any, init: InitConfig | None,
               run_path: Path | None) -> InitReport | None:
    """Load ``init`` weights into ``backbone`` (foreign weights converted by the plugins of
    ``registry``) and write ``init_report.json`` into the run."""
    if init is None:
        return None
    report = load_init(init.path, backbone, source=init.source, strict=init.strict,
                       registry=registry)
    log.info(report.summary())
    if run_path is not None:
        write_json(RunFolder(run_path).init_report, report.as_dict())
    return report


def check_modality(backbone: Any, item: dict[str, Any], where: str) -> None:
    """The data must carry the batch key the backbone reads, with matching channels.

    Raises:
        IncompatibleError: Wrong modality or channel count.
    """
    spec = backbone.input_spec
    if spec.modality not in item:
        raise IncompatibleError(
            f"{where}: the backbone reads {spec.modality!r} but items have keys "
            f"{sorted(k for k in item if k != META)}; pick a loader of that modality"
        )
    x = item[spec.modality]
    if hasattr(x, "shape") and len(x.shape) != spec.dims + 1:
        raise IncompatibleError(
            f"{where}: items are {len(x.shape) - 1}-D {tuple(x.shape)} but the backbone is "
            f"{spec.dims}-D; set spatial_dims/dims accordingly"
        )
    if hasattr(x, "shape") and x.shape[0] != spec.channels:
        if spec.channels in tuple(x.shape[1:]):  # channels last, e.g. a signal [T, C]
            raise IncompatibleError(
                f"{where}: items are {tuple(x.shape)}, read as {x.shape[0]} channel(s), but the "
                f"backbone expects {spec.channels}: items are channel-first [C, *spatial] (a "
                f"signal [C, T]); move the loader's channel axis first (x.movedim(-1, 0)), or "
                f"set in_channels={x.shape[0]} if the items do have {x.shape[0]} channels"
            )
        raise IncompatibleError(
            f"{where}: items have {x.shape[0]} channel(s) but the backbone expects "
            f"{spec.channels}; set in_channels={x.shape[0]}"
        )


def check_first_item(registry: Registry, backbone: Any, backbone_name: str, loader_name: str,
                     item: dict[str, Any], where: str) -> None:
    """What the conformance kit checks on a plugin's examples, checked on the run's first item,
    in the kit's words: the loader's item (``loader/<name>/item``), the backbone's modality and
    channels, and the backbone's features on it (``backbone/<name>/forward_shape``).

    Raises:
        DataError: The item is not what a loader promises.
        IncompatibleError: Wrong modality, dimensionality or channel count for the backbone.
        ContractError: ``forward_features`` does not give ``[B, num_features]``.
    """
    entry = registry.get("loader", loader_name)
    problem = item_problem(item, entry.modalities, entry.dims)
    if problem is not None:
        raise DataError(where, broken_promise(registry, "loader", loader_name, "item", problem))
    check_modality(backbone, item, where)
    one = item[backbone.input_spec.modality]
    x = torch.stack([one, one])  # a batch of two, as the kit's
    training = backbone.training
    backbone.eval()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            features = backbone.forward_features(x)
    except RuntimeError as exc:  # a shape error inside the plugin's network: name it
        raise IncompatibleError(f"{where}: backbone {backbone_name!r} fails on an item of shape "
                                f"{tuple(x.shape[1:])}: {exc}".splitlines()[0]) from exc
    finally:
        backbone.train(training)
    problem = features_problem(features, 2, int(backbone.num_features))
    if problem is not None:
        raise ContractError(f"{where}: "
                            + broken_promise(registry, "backbone", backbone_name, "forward_shape", problem))


def build_pretext(registry: Registry, ref: ComponentRef, backbone: Any, item: dict[str, Any]) -> nn.Module:
    """The pretext task ``ref`` on ``backbone``; a task that takes ``input_shape`` (to decode
    whole items from pooled features) gets the shape of the run's items when neither the
    config nor the backbone gives one."""
    args = dict(ref.args)
    factory = registry.get("pretext", ref.name).factory
    try:
        takes_shape = "input_shape" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        takes_shape = False
    if takes_shape and "input_shape" not in args and getattr(backbone, "input_shape", None) is None:
        args["input_shape"] = list(item[backbone.input_spec.modality].shape)
    return registry.create("pretext", ref.name, backbone, **args)
