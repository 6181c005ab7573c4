"""One ``WindowSpec`` for every loader: flat config keys still work, the host still sees and
converts them, errors name the argument, and the fields are documented once."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from ssl_domains_timeseries.loaders import nab, numpy, tabular, torch_dict, ucr, wfdb
from ssl_domains_timeseries.loaders.windows import WindowSpec, windowed

from ssl_domains.config import ComponentRef
from ssl_domains.data.datasets import with_stats
from ssl_domains.errors import ConfigError, DataError, RegistryError
from ssl_domains.plugins import Host

SAMPLE = Path(__file__).resolve().parents[4] / "sample_data" / "timeseries"
LOADERS = [tabular.CSVDataset, tabular.ParquetDataset, numpy.NumpyDataset, ucr.UCRDataset,
           torch_dict.TorchDictDataset, wfdb.WFDBDataset, nab.NABDataset]
WHOLE_SERIES = ("label_rule", "point_labels", "group_length")  # not taken by ucr, torch_dict
needs_sample = pytest.mark.skipif(not (SAMPLE / "pretrain_unlabeled.csv").is_file(),
                                  reason="no sample data")


@pytest.mark.parametrize("cls", LOADERS, ids=lambda c: c.__name__)
def test_loaders_take_the_fields_as_flat_keyword_arguments(cls: type) -> None:
    params = inspect.signature(cls).parameters
    taken = [n for n in WindowSpec.__dataclass_fields__ if n in params]
    expected = [n for n in WindowSpec.__dataclass_fields__
                if not (cls in (ucr.UCRDataset, torch_dict.TorchDictDataset) and n in WHOLE_SERIES)]
    assert taken == expected and "spec" not in params
    assert all(params[n].kind is inspect.Parameter.KEYWORD_ONLY for n in taken)
    doc = inspect.getdoc(cls) or ""
    # documented once, in WindowSpec, and joined to each loader's page before Raises
    assert doc.count("Windowing (flat arguments") == 1
    assert doc.index("Windowing (flat") < doc.index("Raises:")
    for n in taken:
        assert f"\n    {n}: " in doc
    for n in set(WindowSpec.__dataclass_fields__) - set(taken):
        assert f"\n    {n}: " not in doc


def test_nab_keeps_its_own_defaults() -> None:
    params = inspect.signature(nab.NABDataset).parameters
    assert params["window"].default == 128 and params["normalize"].default == "per_series"
    assert "Default here: ``128``" in (nab.NABDataset.__doc__ or "")
    if (SAMPLE / "nab").is_dir():
        ds = nab.NABDataset(str(SAMPLE / "nab"), series=["realKnownCause"])
        assert ds.spec == WindowSpec(window=128, normalize="per_series")
        assert ds[0]["signal"].shape == (1, 128)


def test_windowed_refuses_unknown_fields() -> None:
    with pytest.raises(TypeError, match=r"\['windw'\] are not WindowSpec fields"):
        windowed(windw=3)


@needs_sample
def test_flat_config_keys_build_one_spec(ssl_host: Host) -> None:
    csv = str(SAMPLE / "pretrain_unlabeled.csv")
    # YAML-style text numbers are converted by the host from the generated annotations
    ds = ssl_host.registry.create("loader", "csv", path=csv, time_column="timestamp",
                                  window="128", stride=64, cover_end=True, normalize="global")
    assert ds.spec == WindowSpec(window=128, stride=64, cover_end=True, normalize="global")
    assert ds[0]["signal"].shape == (3, 128) and ds.stats is not None
    # the host hands training statistics on because the loader still names ``stats``
    ref = with_stats(ssl_host.registry, ComponentRef(name="csv", args={"path": csv}), ds.stats)
    assert ref.args["stats"] == ds.stats


@needs_sample
def test_errors_name_the_argument(ssl_host: Host) -> None:
    csv = str(SAMPLE / "pretrain_unlabeled.csv")
    with pytest.raises(ConfigError, match=r"window='many': expected an integer or null"):
        ssl_host.registry.create("loader", "csv", path=csv, window="many")
    with pytest.raises(DataError, match=r"pretrain_unlabeled.csv: stride must be >= 1, got 0$"):
        ssl_host.registry.create("loader", "csv", path=csv, time_column="timestamp", window=8,
                                 stride=0)
    with pytest.raises(RegistryError, match="unexpected keyword argument 'label_rule'"):
        ssl_host.registry.create("loader", "ucr", path=csv, label_rule="any")
