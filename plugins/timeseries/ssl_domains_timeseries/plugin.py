"""Hook implementations of the timeseries plugin: registration only; components live in their modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ssl_domains import add_plugin_command, hookimpl

if TYPE_CHECKING:
    import click

    from ssl_domains.registry import Registrar


@hookimpl
def register_loaders(registry: Registrar) -> None:
    from ssl_domains_timeseries.loaders.nab import NABDataset
    from ssl_domains_timeseries.loaders.numpy import NumpyDataset
    from ssl_domains_timeseries.loaders.tabular import CSVDataset, ParquetDataset
    from ssl_domains_timeseries.loaders.torch_dict import TorchDictDataset
    from ssl_domains_timeseries.loaders.ucr import UCRDataset
    from ssl_domains_timeseries.loaders.wfdb import WFDBDataset

    for loader in (CSVDataset, ParquetDataset, NumpyDataset, UCRDataset, WFDBDataset,
                   TorchDictDataset, NABDataset):
        registry.add(loader)


@hookimpl
def register_backbones(registry: Registrar) -> None:
    from ssl_domains_timeseries.backbones.patch_transformer import PatchTransformer
    from ssl_domains_timeseries.backbones.tcn import TCN

    registry.add(PatchTransformer)
    registry.add(TCN)


@hookimpl
def register_pretext_tasks(registry: Registrar) -> None:
    from ssl_domains_timeseries.pretext.forecasting import ForecastingTask
    from ssl_domains_timeseries.pretext.masked import MaskedPatchTask

    registry.add(ForecastingTask)
    registry.add(MaskedPatchTask)


@hookimpl
def register_finetune_tasks(registry: Registrar) -> None:
    from ssl_domains_timeseries.tasks.anomaly_classification import AnomalyClassificationTask

    registry.add(AnomalyClassificationTask)


@hookimpl
def register_baselines(registry: Registrar) -> None:
    from ssl_domains_timeseries.baselines import MiniRocketBaseline, SignalStatsBaseline

    registry.add(MiniRocketBaseline)
    registry.add(SignalStatsBaseline)


@hookimpl
def register_commands(cli: click.Group) -> None:
    add_plugin_command(cli, "timeseries", "ssl_domains_timeseries.commands:timeseries",
                       "Time-series plugin: look at signal files before training on them.")
