"""The host's own generic components, registered through the same hooks as any plugin."""

from __future__ import annotations

from ssl_domains import hookimpl
from ssl_domains.builtin.arrays import ArrayDataset
from ssl_domains.builtin.classification import ClassificationTask
from ssl_domains.builtin.denoising import DenoisingAutoencoder
from ssl_domains.builtin.holdout import HoldoutDataset
from ssl_domains.builtin.logistic import LogisticBaseline
from ssl_domains.builtin.mlp import MLPBackbone
from ssl_domains.registry import Registrar


@hookimpl
def register_loaders(registry: Registrar) -> None:
    registry.add(ArrayDataset)
    registry.add(HoldoutDataset)


@hookimpl
def register_backbones(registry: Registrar) -> None:
    registry.add(MLPBackbone)


@hookimpl
def register_pretext_tasks(registry: Registrar) -> None:
    registry.add(DenoisingAutoencoder)


@hookimpl
def register_finetune_tasks(registry: Registrar) -> None:
    registry.add(ClassificationTask)


@hookimpl
def register_baselines(registry: Registrar) -> None:
    registry.add(LogisticBaseline)
