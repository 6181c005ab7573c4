"""``ssl-domains medical ...``: DICOM conversion and inspection commands.

Shareable outputs (NIfTI files, ``report.json``) name series and files by opaque ids only: no
patient identifier from the headers and no original path (folder and file names often carry
names and record numbers). The path -> id mapping is written only on request (``--mapping``),
to a local file outside the output folder. Third-party warnings and tracebacks are captured per
file: the console shows one line per problem file and a summary line (``--debug`` adds the
tracebacks).
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Any

import click
import nibabel as nib
import numpy as np

from ssl_domains.errors import ConfigError, DataError
from ssl_domains.identifiers import opaque_id
from ssl_domains.mapping import check_mapping_path, inputs_of, write_mapping
from ssl_domains_medical.loaders.dicom_series import DicomSeries, FileStatus, ScanResult, scan_dicom

__all__ = ["medical", "convert", "scan"]

_RGB24 = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])


def _rel(path: str, root: str) -> str:
    try:
        rel = str(Path(path).relative_to(root))
    except ValueError:
        return Path(path).name
    return rel if rel != "." else Path(path).name


def _file_id(path: str, root: str) -> str:
    """Opaque id of a file (keyed hash of its path relative to the scanned folder)."""
    return "f" + opaque_id("file", _rel(path, root), length=12)


def _scan(dicom_dir: str, duplicates: str = "refuse", gantry_tilt: str = "refuse") -> ScanResult:
    result = scan_dicom(dicom_dir, duplicates=duplicates, gantry_tilt=gantry_tilt)
    if not result.series:
        n = len(result.files)
        reasons = sorted({f.reason for f in result.files if f.reason})
        raise DataError(dicom_dir, f"no DICOM image series found ({n} files looked at"
                        + (f"; {'; '.join(reasons[:3])}" if reasons else "") + ")")
    return result


def _debug(flag: bool) -> bool:
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    obj = root.obj if root is not None and isinstance(root.obj, dict) else {}
    return flag or bool(obj.get("debug"))


def _nifti(array: np.ndarray, affine: np.ndarray, rgb: bool) -> nib.Nifti1Image:
    """A NIfTI image of ``array``, with no free-text header fields.

    Colour (``rgb``, a last axis of 3) is RGB24 as dcm2niix writes it when the values fit in
    8 bits; deeper colour (16-bit RGB) becomes a float32 vector image ``[x, y, z, t, 3]``
    (NIfTI intent "vector") instead of being clipped.
    """
    intent = None
    if rgb and array.min() >= 0 and array.max() <= 255 and np.array_equal(array, np.rint(array)):
        data = np.ascontiguousarray(array.astype(np.uint8)).view(_RGB24)[..., 0]
    elif rgb:
        data = array.astype(np.float32)
        if data.ndim == 4:  # [x, y, z, 3] -> [x, y, z, 1, 3]: vectors live in the 5th dimension
            data = data[:, :, :, None, :]
        intent = "vector"
    else:
        data = array.astype(np.float32)
    img = nib.Nifti1Image(data, affine)
    if intent is not None:
        img.header.set_intent(intent)
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_qform(affine, code=1)
    img.header.set_sform(affine, code=1)
    img.header["descrip"] = b""
    img.header["intent_name"] = b""
    img.header["aux_file"] = b""
    img.header["db_name"] = b""
    return img


def _problem_lines(files: list[FileStatus], root: str, decode: dict[str, list[str]]) -> list[tuple[str, str]]:
    """``(path, one line)`` for every file not read, or read with warnings; each line once."""
    lines: dict[str, str] = {}
    for f in files:
        msgs = list(dict.fromkeys(f.messages + decode.get(f.path, [])))
        if f.status == "read" and not msgs:
            continue
        what = f"{f.status}: {f.reason}" if f.status != "read" else "read with warnings"
        if msgs:
            what += " [" + "; ".join(msgs) + "]"
        lines.setdefault(f.path, what)
    return sorted(lines.items())


@click.group("medical")
def medical() -> None:
    """Medical imaging tools (DICOM conversion and inspection)."""


@medical.command("convert")
@click.argument("dicom_dir", type=click.Path(file_okay=True, dir_okay=True))
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--allow-4d", is_flag=True, help="Write 4-D series as 4-D NIfTI instead of refusing them.")
@click.option("--uncompressed", is_flag=True, help="Write .nii instead of .nii.gz.")
@click.option("--colour", type=click.Choice(["rgb", "luminance"]), default="rgb", show_default=True,
              help="Colour images as RGB24 NIfTI (as dcm2niix) or as float luminance.")
@click.option("--duplicates", type=click.Choice(["refuse", "first"]), default="refuse", show_default=True,
              help="Images repeating a position without making whole time points: refuse the "
                   "series, or keep the first at each position.")
@click.option("--gantry-tilt", type=click.Choice(["refuse", "shear"]), default="refuse", show_default=True,
              help="Gantry-tilted CT: refuse it, or write the sheared affine.")
@click.option("--mapping", type=click.Path(dir_okay=False),
              help="Also write original path -> file/series id to this local JSON file "
                   "(outside OUT_DIR; it holds the paths, keep it private).")
@click.option("--debug", "debug_flag", is_flag=True, help="Also print captured tracebacks.")
def convert(dicom_dir: str, out_dir: str, allow_4d: bool, uncompressed: bool, colour: str,
            duplicates: str, gantry_tilt: str, mapping: str | None, debug_flag: bool) -> None:
    """Write one NIfTI per DICOM stack (named by opaque series id) plus report.json.

    A series splits into several outputs as dcm2niix splits it (echoes, magnitude / phase,
    image sizes, orientations: ``<id>_e2``, ``<id>_ph``, ...); images that repeat a position
    become time points (4-D, with --allow-4d). report.json counts files by status, lists every
    file not read (by opaque id, with the reason and captured warnings) and every series
    (shape, spacing, problems, output file or why it was not written). It holds no paths.
    """
    out = Path(out_dir)
    if mapping is not None:
        check_mapping_path(mapping, folders=[out])
    result = _scan(dicom_dir, duplicates, gantry_tilt)
    out.mkdir(parents=True, exist_ok=True)
    suffix = ".nii" if uncompressed else ".nii.gz"
    series_report: list[dict[str, Any]] = []
    decode: dict[str, list[str]] = {}
    by_path = {f.path: f for f in result.files}
    written = refused = 0
    for sid, series in result.series.items():
        entry = series.summary()
        try:
            if series.is_4d and not allow_4d and not series.refused:
                raise DataError(f"series {sid}", f"4-D series ({series.n_timepoints} time points x "
                                f"{series.n_slices} slices); rerun with --allow-4d to write it as 4-D NIfTI")
            array, affine = series.load(allow_4d=allow_4d, colour=colour)
        except DataError as exc:
            entry.update(output=None, error=exc.reason)
            refused += 1
            failed = by_path.get(exc.path)
            if failed is not None:  # a file whose pixels cannot be decoded stops its series
                failed.status, failed.reason = "undecodable", f"{exc.reason} (series {sid} not written)"
                if exc.__context__ is not None:  # the decoder's own error, for --debug
                    failed.tracebacks.append("".join(traceback.format_exception(exc.__context__)))
            else:
                click.echo(f"series {sid}: not written: {exc.reason}")
        else:
            name = f"{sid}{suffix}"
            nib.save(_nifti(array, affine, rgb=series.samples == 3 and colour == "rgb"), str(out / name))
            entry.update(output=name, error=None)
            written += 1
        for path, msgs in series.decode_messages.items():
            decode.setdefault(path, []).extend(msgs)
        series_report.append(entry)
    problems = _problem_lines(result.files, result.root, decode)
    for path, line in problems:
        click.echo(f"{_rel(path, result.root)}: {line}")
        if _debug(debug_flag):
            for tb in by_path[path].tracebacks:
                click.echo(tb.rstrip())
    counts: dict[str, int] = {}
    for f in result.files:
        counts[f.status] = counts.get(f.status, 0) + 1
    report = {
        "files": counts,
        "problem_files": [{"file_id": _file_id(p, result.root), "status": by_path[p].status,
                           "reason": by_path[p].reason,
                           "messages": list(dict.fromkeys(by_path[p].messages + decode.get(p, [])))}
                          for p, _ in problems],
        "series": series_report,
        "mapping": "written to a local file on request" if mapping else None,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    if mapping is not None:
        Path(mapping).parent.mkdir(parents=True, exist_ok=True)
        Path(mapping).write_text(json.dumps({"root": str(Path(result.root).resolve()), "files": [
            {"path": f.path, "file_id": _file_id(f.path, result.root), "status": f.status,
             "series_id": f.series_id} for f in result.files]}, indent=2))
    not_read = {k: v for k, v in sorted(counts.items()) if k != "read"}
    detail = ", ".join(f"{v} {k}" for k, v in not_read.items()) or "none"
    click.echo(f"wrote {written} of {len(result.series)} series to {out} ({refused} not written; "
               f"files not read: {detail}; see report.json)")


def _kind(s: DicomSeries) -> str:
    parts = [s.image_type]
    if s.echo is not None:
        parts.append(f"echo {s.echo}")
    if s.samples == 3:
        parts.append("colour")
    return ", ".join(parts)


@medical.command("scan")
@click.argument("directory", type=click.Path(file_okay=True, dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--duplicates", type=click.Choice(["refuse", "first"]), default="refuse", show_default=True,
              help="As for convert.")
@click.option("--gantry-tilt", type=click.Choice(["refuse", "shear"]), default="refuse", show_default=True,
              help="As for convert.")
def scan(directory: str, as_json: bool, duplicates: str, gantry_tilt: str) -> None:
    """List the image stacks under DIRECTORY: id, modality, image type, shape (time points),
    spacing, problems, and the files not read."""
    result = _scan(directory, duplicates, gantry_tilt)
    not_read = [f for f in result.files if f.status not in ("read", "ignored")]
    if as_json:
        click.echo(json.dumps({
            "series": [s.summary() for s in result.series.values()],
            "not_read": [{"path": _rel(f.path, result.root), "status": f.status, "reason": f.reason}
                         for f in not_read],
            "skipped": [{"path": _rel(p, result.root), "reason": r} for p, r in result.skipped],
        }, indent=2))
        return
    header = ("series_id", "modality", "type", "shape", "spacing_mm", "slices", "problems")
    rows = [header]
    for s in result.series.values():
        notes = ([f"REFUSED: {s.refused}"] if s.refused else []) + s.problems
        rows.append((s.series_id, s.modality, _kind(s), "x".join(str(v) for v in s.shape),
                     "x".join(f"{v:.3g}" for v in s.spacing),
                     str(s.n_slices) + (f"x{s.n_timepoints}t" if s.is_4d else ""),
                     "; ".join(notes) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    for r in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths)) + "  " + r[-1])
    for f in not_read:
        if f.status == "refused":
            continue
        click.echo(f"{f.status} {_rel(f.path, result.root)}: {f.reason}")
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
@click.option("--mapping", type=click.Path(dir_okay=False),
              help="Also write each case id -> input as given to this local JSON file "
                   "(outside --out; it holds the paths, keep it private).")
def probability_maps(run_dir: str, loader: str, args: tuple[str, ...], roi: int, overlap: float,
                     out_dir: str, mapping: str | None) -> None:
    """Tumor-probability maps (NIfTI aligned with each input) and case scores (CSV) from a
    run fine-tuned with ``tumor_patch_detection``, named by opaque case id (``--mapping``
    joins them back to your files)."""
    import csv

    from ssl_domains.config import ComponentRef, parse_arg_pairs
    from ssl_domains.data.datasets import build_dataset
    from ssl_domains.engine.evaluate import load_finetuned
    from ssl_domains.errors import ConfigError
    from ssl_domains.layout.run import RunFolder
    from ssl_domains.plugins import get_host

    if mapping is not None:
        run = RunFolder(run_dir)
        check_mapping_path(mapping, folders=[out_dir, run.export, run.report])
    registry = get_host().registry
    model, config = load_finetuned(run_dir, registry)
    task: Any = model  # a tumor_patch_detection task: probability_map, case_score, save_probability_map
    if not hasattr(task, "probability_map"):
        raise ConfigError(f"{run_dir}: task {config.task.name if config.task else None!r} makes no probability maps; "
                          "fine-tune with tumor_patch_detection (a tumor_segmentation export "
                          "segments new cases with `ssl-domains predict`)")
    ds = build_dataset(registry, ComponentRef(name=loader, args=parse_arg_pairs(args)), "volumes")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    threshold = config.threshold
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
    if mapping is not None:
        write_mapping(Path(mapping), [r["id"] for r in rows], inputs_of(ds, loader),
                      "opaque case id of each map and row of scores.csv -> the input as given; private: holds paths")
    click.echo(f"{len(rows)} map(s) and scores.csv in {out} (decision: patch-level threshold "
               f"{threshold} chosen on validation patches, applied to the case score)")


def _prepared_refs(config: Any) -> list[tuple[str, Any]]:
    """``(where, ComponentRef)`` of every ``prepared`` loader of a run config."""
    refs = []
    for stage in ("pretrain", "finetune"):
        data = getattr(getattr(config, stage, None), "data", None)
        for role in ("train", "val", "test"):
            ref = getattr(data, role, None) if data is not None else None
            if ref is not None and ref.name == "prepared":
                refs.append((f"{stage}.data.{role}", ref))
    return refs


@medical.command("prepare")
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Config override (repeatable).")
@click.option("--workers", type=int, default=None, help="Processes (default: one per core).")
@click.option("--part", type=int, default=0, show_default=True, help="This job's share (0-based) ...")
@click.option("--parts", type=int, default=1, show_default=True, help="... of this many jobs.")
@click.option("--no-progress", is_flag=True, help="No progress bar (one line per 10 % instead).")
def prepare(config: str, overrides: tuple[str, ...], workers: int | None, part: int, parts: int,
            no_progress: bool) -> None:
    """Decode, reorient, resample and scale every volume of CONFIG's ``prepared`` loaders once,
    into their stores (resumable: run it again after a kill; unreadable studies are skipped and
    listed). Training then reads patches from the store only."""
    from ssl_domains.config import load_config
    from ssl_domains.plugins import get_host
    from ssl_domains_medical.loaders.prepare import default_workers, prepare_store
    from ssl_domains_medical.loaders.store import preprocessing_spec
    from ssl_domains_medical.loaders.volumes import VolumeDataset

    cfg = load_config(config, list(overrides))
    refs = _prepared_refs(cfg)
    if not refs:
        raise ConfigError(f"{config}: no `prepared` loader to prepare; use {{name: prepared, args: "
                          "{store: FOLDER, source: {name: dicom, args: {...}}, patch_size: 64}} "
                          "as pretrain.data.train")
    registry = get_host().registry
    seen: set[str] = set()
    for where, ref in refs:
        store = str(ref.args.get("store", ""))
        source = ref.args.get("source") or {}
        if not store or "name" not in source:
            raise ConfigError(f"{where}: the prepared loader needs store and source "
                              "({name: LOADER, args: {...}})")
        if store in seen:
            continue
        seen.add(store)
        name, args = str(source["name"]), dict(source.get("args") or {})
        spec = preprocessing_spec(name, registry.get("loader", name).factory, args)
        ds = registry.create("loader", name, **{**args, "cache": "none"})
        if not isinstance(ds, VolumeDataset):
            raise ConfigError(f"{where}: loader {name!r} is not a volume loader; prepare takes "
                              "dicom, nifti, image_manifest or case_folders")
        for path, reason in ds.skipped:
            click.echo(f"skipped input {opaque_id(path)}: {reason}")
        n = default_workers() if workers is None else max(1, workers)
        click.echo(f"{where}: preparing {len(ds.records)} volume(s) into {store} with {n} process(es)")
        if no_progress:
            step = max(1, len(ds.records) // 10)

            def note(done: int, total: int, reason: str, step: int = step) -> None:
                if done % step == 0 or done == total:
                    click.echo(f"  {done} of {total}")

            report = prepare_store(ds, store, spec, dtype=str(ref.args.get("dtype", "float32")),
                                   workers=n, part=part, parts=parts, progress=note)
        else:
            mine = len(range(part, len(ds.records), max(parts, 1)))
            with click.progressbar(length=mine, label="prepare", show_eta=True, show_pos=True,
                                   file=None) as bar:
                def advance(done: int, total: int, reason: str) -> None:
                    bar.update(done - bar.pos)

                report = prepare_store(ds, store, spec, dtype=str(ref.args.get("dtype", "float32")),
                                       workers=n, part=part, parts=parts, progress=advance)
        for rid, reason in report.failed:
            click.echo(f"skipped volume {rid}: {reason}")
        per = f", {report.seconds_per_volume:.2f} s per volume" if report.prepared else ""
        click.echo(f"{store}: {report.prepared} prepared now ({report.bytes_written / 1e6:.0f} MB{per}), "
                   f"{report.done_before} kept from before, {len(report.failed)} unreadable; "
                   + ("finished: training reads the store" if report.finished
                      else "not finished yet: other parts still to run"))
