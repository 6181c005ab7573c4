"""Hook implementations of the medical plugin: registration only; components live in their modules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ssl_domains import add_plugin_command, hookimpl

if TYPE_CHECKING:
    import click
    from torch import nn

    from ssl_domains.contracts import Conversion
    from ssl_domains.registry import Registrar


@hookimpl
def register_loaders(registry: Registrar) -> None:
    from ssl_domains_medical.loaders.dicom import DicomDataset
    from ssl_domains_medical.loaders.folders import CaseFoldersDataset
    from ssl_domains_medical.loaders.manifest import ImageManifestDataset
    from ssl_domains_medical.loaders.medmnist import MedMNISTDataset
    from ssl_domains_medical.loaders.nifti import NiftiDataset
    from ssl_domains_medical.loaders.prepared import PreparedDataset

    for loader in (DicomDataset, NiftiDataset, MedMNISTDataset, ImageManifestDataset,
                   CaseFoldersDataset, PreparedDataset):
        registry.add(loader)
    from ssl_domains_medical.tasks.patches import TumorPatches

    registry.add(TumorPatches)


@hookimpl
def register_backbones(registry: Registrar) -> None:
    from ssl_domains_medical.backbones import (
        ResNetEncoder,
        SwinEncoder,
        UNetEncoder,
        ViTEncoder,
    )

    for backbone in (ResNetEncoder, UNetEncoder, ViTEncoder, SwinEncoder):
        registry.add(backbone)


@hookimpl
def register_pretext_tasks(registry: Registrar) -> None:
    from ssl_domains_medical.pretext.contrastive import ContrastiveViews
    from ssl_domains_medical.pretext.genesis import GenesisRestoration
    from ssl_domains_medical.pretext.masked import MaskedInpainting

    registry.add(MaskedInpainting)
    registry.add(GenesisRestoration)
    registry.add(ContrastiveViews)


@hookimpl
def register_finetune_tasks(registry: Registrar) -> None:
    from ssl_domains_medical.tasks.segmentation import TumorSegmentation
    from ssl_domains_medical.tasks.tumor_detection import TumorClassification, TumorPatchDetection

    registry.add(TumorClassification)
    registry.add(TumorPatchDetection)
    registry.add(TumorSegmentation)


@hookimpl
def register_baselines(registry: Registrar) -> None:
    from ssl_domains_medical.baselines import ImageLogistic
    from ssl_domains_medical.segmentation_baseline import VoxelStatistics

    registry.add(ImageLogistic)
    registry.add(VoxelStatistics)


@hookimpl
def convert_checkpoint(
    state_dict: dict[str, Any], source: str, backbone: nn.Module
) -> Conversion | None:
    from ssl_domains_medical.conversion import convert

    return convert(state_dict, source, backbone)


@hookimpl
def register_commands(cli: click.Group) -> None:
    add_plugin_command(cli, "medical", "ssl_domains_medical.commands:medical",
                       "Medical imaging tools (DICOM conversion and inspection).")
