"""``ssl-domains medical ...``: DICOM conversion and inspection commands.

Outputs name series by their hashed id only; no patient identifier leaves the headers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import nibabel as nib
import numpy as np

from ssl_domains.errors import DataError
from ssl_domains_medical.loaders.dicom_series import ScanResult, scan_dicom

__all__ = ["medical", "convert", "scan"]


def _rel(path: str, root: str) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return Path(path).name


def _scan(dicom_dir: str) -> ScanResult:
    result = scan_dicom(dicom_dir)
    if not result.series:
        n = len(result.files)
        reasons = sorted({f.reason for f in result.files if f.reason})
        raise DataError(dicom_dir, f"no DICOM image series found ({n} files looked at"
                        + (f"; {'; '.join(reasons[:3])}" if reasons else "") + ")")
    return result


@click.group("medical")
def medical() -> None:
    """Medical imaging tools (DICOM conversion and inspection)."""


@medical.command("convert")
@click.argument("dicom_dir", type=click.Path(file_okay=True, dir_okay=True))
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--allow-4d", is_flag=True, help="Write 4-D series as 4-D NIfTI instead of refusing them.")
@click.option("--uncompressed", is_flag=True, help="Write .nii instead of .nii.gz.")
def convert(dicom_dir: str, out_dir: str, allow_4d: bool, uncompressed: bool) -> None:
    """Write one NIfTI per DICOM series (named by hashed series id) plus report.json.

    report.json lists every file (read / ignored / skipped, with the reason) and every series
    (shape, spacing, problems, output file or the error that stopped it).
    """
    result = _scan(dicom_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    suffix = ".nii" if uncompressed else ".nii.gz"
    series_report: list[dict[str, Any]] = []
    written = 0
    for sid, series in result.series.items():
        entry = series.summary()
        try:
            array, affine = series.load(allow_4d=allow_4d)
        except DataError as exc:
            entry.update(output=None, error=exc.reason)
            click.echo(f"{sid}: not converted: {exc.reason}", err=True)
        else:
            img = nib.Nifti1Image(array.astype(np.float32), affine)
            img.header.set_xyzt_units("mm", "sec")
            img.header.set_qform(affine, code=1)
            img.header.set_sform(affine, code=1)
            name = f"{sid}{suffix}"
            nib.save(img, str(out / name))
            entry.update(output=name, error=None)
            written += 1
        series_report.append(entry)
    report = {
        "input": Path(dicom_dir).name,
        "files": [{"path": _rel(f.path, result.root), "status": f.status, "reason": f.reason,
                   "series_id": f.series_id} for f in result.files],
        "series": series_report,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    skipped = sum(f.status == "skipped" for f in result.files)
    click.echo(f"wrote {written} of {len(result.series)} series to {out} "
               f"({skipped} unreadable files skipped; see report.json)")


@medical.command("scan")
@click.argument("directory", type=click.Path(file_okay=True, dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def scan(directory: str, as_json: bool) -> None:
    """List the DICOM series under DIRECTORY: id, modality, shape, spacing, slices, problems."""
    result = _scan(directory)
    if as_json:
        click.echo(json.dumps({
            "series": [s.summary() for s in result.series.values()],
            "skipped": [{"path": _rel(p, result.root), "reason": r} for p, r in result.skipped],
        }, indent=2))
        return
    header = ("series_id", "modality", "shape", "spacing_mm", "slices", "problems")
    rows = [header]
    for s in result.series.values():
        rows.append((s.series_id, s.modality, "x".join(str(v) for v in s.shape),
                     "x".join(f"{v:.3g}" for v in s.spacing),
                     str(s.n_slices) + (f"x{s.n_timepoints}t" if s.is_4d else ""),
                     "; ".join(s.problems) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    for r in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths)) + "  " + r[-1])
    for path, reason in result.skipped:
        click.echo(f"skipped {_rel(path, result.root)}: {reason}")
    ignored = sum(f.status == "ignored" for f in result.files)
    if ignored:
        click.echo(f"{ignored} non-DICOM file(s) ignored")
