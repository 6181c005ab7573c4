"""``ssl-domains timeseries ...``: commands of the time-series plugin."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml

from ssl_domains.errors import DataError
from ssl_domains_timeseries.loaders.nab import NABDataset
from ssl_domains_timeseries.loaders.numpy import NumpyDataset
from ssl_domains_timeseries.loaders.tabular import CSVDataset, ParquetDataset
from ssl_domains_timeseries.loaders.torch_dict import TorchDictDataset
from ssl_domains_timeseries.loaders.ucr import UCRDataset
from ssl_domains_timeseries.loaders.wfdb import WFDBDataset
from ssl_domains_timeseries.loaders.windows import SignalDataset

__all__ = ["timeseries", "LOADERS", "guess_loader"]

#: Loader name -> class (the names they are registered under).
LOADERS: dict[str, Callable[..., SignalDataset]] = {
    "csv": CSVDataset,
    "parquet": ParquetDataset,
    "numpy": NumpyDataset,
    "ucr": UCRDataset,
    "wfdb": WFDBDataset,
    "torch_dict": TorchDictDataset,
    "nab": NABDataset,
}

_BY_SUFFIX = {
    ".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".npy": "numpy", ".npz": "numpy",
    ".tsv": "ucr", ".txt": "ucr", ".ts": "ucr", ".hea": "wfdb", ".dat": "wfdb",
    ".pt": "torch_dict", ".pth": "torch_dict",
}


def guess_loader(path: Path) -> str:
    """Loader name for a file by its suffix (a folder with ``data/`` inside is NAB).

    Raises:
        click.UsageError: The suffix is not known; names the ``--loader`` choices.
    """
    if path.is_dir() and (path / "data").is_dir():
        return "nab"
    name = _BY_SUFFIX.get(path.suffix.lower())
    if name is None:
        raise click.UsageError(
            f"{path}: cannot tell the loader from {path.suffix or 'no suffix'!r}; "
            f"pass --loader ({', '.join(LOADERS)})"
        )
    return name


def _parse_args(pairs: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--arg needs KEY=VALUE, got {pair!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _fmt_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items())


@click.group("timeseries")
def timeseries() -> None:
    """Time-series plugin: look at signal files before training on them."""


@timeseries.command("inspect")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option("--loader", type=click.Choice(list(LOADERS)), help="Default: by file suffix.")
@click.option("--format", "fmt", type=click.Choice(["wide", "long"]), help="CSV/Parquet layout.")
@click.option("--time-column", help="Timestamp column (CSV/Parquet).")
@click.option("--label-column", help="Per-point label column (CSV/Parquet) or label column "
              "index (NumPy).")
@click.option("--id-column", help="Series id column (CSV/Parquet).")
@click.option("--arg", "extra", multiple=True, metavar="KEY=VALUE",
              help="Any other loader argument (YAML value), e.g. --arg positive_classes=[2,3].")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def inspect_cmd(
    file: Path,
    loader: str | None,
    fmt: str | None,
    time_column: str | None,
    label_column: str | None,
    id_column: str | None,
    extra: tuple[str, ...],
    as_json: bool,
) -> None:
    """Print channels, lengths, NaN and non-finite counts and labels of FILE (one item per
    whole series)."""
    name = loader or guess_loader(file)
    kwargs: dict[str, Any] = {"window": None}
    if name in ("csv", "parquet"):
        kwargs.update(
            {k: v for k, v in {"format": fmt, "time_column": time_column,
                               "label_column": label_column, "id_column": id_column}.items()
             if v is not None}
        )
    elif name == "numpy" and label_column is not None:
        kwargs["label_column"] = int(label_column)
    if name == "wfdb" and not (file.with_suffix("").with_name(file.stem + ".atr")).is_file():
        kwargs["annotation"] = None
    kwargs.update(_parse_args(extra))
    path_arg = "data_root" if name == "nab" else "path"
    if name == "nab" and "series" not in kwargs:
        kwargs["series"] = sorted(
            p.name for p in (file / "data").iterdir() if p.is_dir()
        )
    target = str(file.with_suffix("")) if name == "wfdb" and file.suffix else str(file)
    try:
        ds = LOADERS[name](**{path_arg: target}, **kwargs)
    except DataError as exc:
        raise click.ClickException(str(exc)) from None
    except TypeError as exc:
        raise click.UsageError(f"loader {name!r}: {exc}") from None
    info = {"file": str(file), "loader": name, **ds.summary()}
    if ds.skipped:
        info["skipped"] = [{"path": p, "reason": r} for p, r in ds.skipped]
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"file: {file}  (loader {name})")
    click.echo(f"series: {info['series']}")
    chans = info["channels"]
    click.echo(f"channels ({len(chans)}): {', '.join(chans)}")
    ln = info["length"]
    click.echo(f"length: min {ln['min']}, median {ln['median']:g}, max {ln['max']} "
               f"(total {ln['total']})")
    click.echo(f"NaN: {_fmt_counts(info['nan'])}")
    found = info.get("nonfinite_found", [])
    if not found:
        click.echo("non-finite (inf, -inf, beyond float32): none")
    else:
        click.echo("non-finite (inf, -inf, beyond float32; masked as missing): "
                   f"{_fmt_counts({k: v for k, v in info['nonfinite'].items() if v})}")
        for e in found:
            click.echo(f"  file {e['file']}, channel {e['channel']}: {e['count']}, first at row {e['first_row']}")
    if "series_labels" in info:
        click.echo(f"labels (per series): {_fmt_counts(info['series_labels'])}")
    if "point_labels" in info:
        click.echo(f"labels (per point): {_fmt_counts(info['point_labels'])}; "
                   f"events: {info['events']}")
    if "series_labels" not in info and "point_labels" not in info:
        click.echo("labels: none")
    for p, r in ds.skipped:
        click.echo(f"skipped: {p}: {r}")
