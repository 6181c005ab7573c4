"""Build backbones and tasks from the registry, and load ``--init`` weights into them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from torch import nn

from ssl_domains.config import ComponentRef, InitConfig, RunConfig
from ssl_domains.contracts import META, Backbone, missing_members
from ssl_domains.engine.checkpoints import BACKBONE_FILE, InitReport, load_init
from ssl_domains.errors import ContractError, IncompatibleError
from ssl_domains.files import write_json
from ssl_domains.registry import Registry

__all__ = ["build_backbone", "apply_init", "check_modality"]

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


def apply_init(backbone: Any, init: InitConfig | None, run_path: Path | None) -> InitReport | None:
    """Load ``init`` weights into ``backbone`` and write ``init_report.json`` into the run."""
    if init is None:
        return None
    report = load_init(init.path, backbone, source=init.source, strict=init.strict)
    log.info(report.summary())
    if run_path is not None:
        write_json(run_path / "init_report.json", report.as_dict())
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
        raise IncompatibleError(
            f"{where}: items have {x.shape[0]} channel(s) but the backbone expects "
            f"{spec.channels}; set in_channels={x.shape[0]}"
        )
