"""The host's own generic components, registered through the same hooks as any plugin.

The component modules are imported inside the hooks, so loading the host imports no model code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ssl_domains import hookimpl

if TYPE_CHECKING:
    from ssl_domains.registry import Registrar


@hookimpl
def register_loaders(registry: Registrar) -> None:
    from ssl_domains.builtin.arrays import ArrayDataset
    from ssl_domains.builtin.holdout import HoldoutDataset

    registry.add(ArrayDataset)
    registry.add(HoldoutDataset)


@hookimpl
def register_backbones(registry: Registrar) -> None:
    from ssl_domains.builtin.mlp import MLPBackbone

    registry.add(MLPBackbone)


@hookimpl
def register_pretext_tasks(registry: Registrar) -> None:
    from ssl_domains.builtin.denoising import DenoisingAutoencoder

    registry.add(DenoisingAutoencoder)


@hookimpl
def register_finetune_tasks(registry: Registrar) -> None:
    from ssl_domains.builtin.classification import ClassificationTask

    registry.add(ClassificationTask)


@hookimpl
def register_baselines(registry: Registrar) -> None:
    from ssl_domains.builtin.logistic import LogisticBaseline

    registry.add(LogisticBaseline)
