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


@medical.command("probability-maps")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--loader", required=True, help="Loader of whole volumes (e.g. nifti, dicom, image_manifest).")
@click.option("--arg", "args", multiple=True, metavar="NAME=VALUE", help="Loader argument (repeatable).")
@click.option("--roi", type=int, required=True, help="Sliding-window size: the training patch size.")
@click.option("--overlap", type=float, default=0.5, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="probability_maps", show_default=True)
def probability_maps(run_dir: str, loader: str, args: tuple[str, ...], roi: int, overlap: float,
                     out_dir: str) -> None:
    """Tumor-probability maps (NIfTI aligned with each input) and case scores (CSV) from a
    run fine-tuned with ``tumor_patch_detection``."""
    import csv

    from ssl_domains.config import ComponentRef, parse_arg_pairs
    from ssl_domains.data.datasets import build_dataset
    from ssl_domains.engine.evaluate import load_finetuned
    from ssl_domains.errors import ConfigError
    from ssl_domains.plugins import get_host

    task, config = load_finetuned(run_dir)
    if not hasattr(task, "probability_map"):
        raise ConfigError(f"{run_dir}: task {config['task']['name']!r} makes no probability maps; "
                          "fine-tune with tumor_patch_detection")
    ds = build_dataset(get_host().registry, ComponentRef(name=loader, args=parse_arg_pairs(args)), "volumes")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    threshold = config.get("threshold")
    rows = []
    for i in range(len(ds)):  # type: ignore[arg-type]
        item = ds[i]
        image = item["image"]
        prob = task.probability_map(image, roi_size=roi, overlap=overlap)
        case = str(item.get("meta", {}).get("id", i))
        affine = item.get("meta", {}).get("affine", getattr(image, "affine", None))
        if affine is None:
            raise ConfigError(f"loader {loader!r} gives no affine with its images; use a NIfTI or DICOM loader")
        path = task.save_probability_map(prob, np.asarray(affine), out / f"{case}_prob.nii.gz")
        score = float(task.case_score(prob))
        rows.append({"id": case, "label": item.get("label", ""), "score": score,
                     "decision": "" if threshold is None else int(score >= threshold),
                     "map": path.name})
        click.echo(f"{case}: case score {score:.3f} -> {path}")
    with (out / "scores.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["id", "label", "score", "decision", "map"])
        w.writeheader()
        w.writerows(rows)
    click.echo(f"{len(rows)} map(s) and scores.csv in {out} (decision: patch-level threshold "
               f"{threshold} chosen on validation patches, applied to the case score)")
