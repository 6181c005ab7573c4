"""DICOM folder trees to series: scanning, slice ordering, geometry, problems and decoding.

A folder tree (any depth, files with or without ``.dcm``) is read header-only and split into
series by SeriesInstanceUID. Slices are ordered by their position along the slice normal
(``cross(row, col) . ImagePositionPatient``), never by InstanceNumber. Enhanced multi-frame
files contribute one "slice" per frame (positions from PerFrameFunctionalGroupsSequence);
Siemens mosaic files (a whole volume tiled in one image) are unpacked with nibabel's
``nicom`` wrappers.

Geometry follows nibabel/dcm2niix: the native voxel array is ``[column i, row j, slice k(, t)]``
and its affine maps ``(i, j, k)`` to RAS millimetres (DICOM is LPS, so the first two rows of
the LPS affine are negated). Series are named by a stable hash of their SeriesInstanceUID;
patient identifiers are never copied out of the headers.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from ssl_domains.errors import DataError

__all__ = [
    "DicomFrame",
    "DicomSeries",
    "ScanResult",
    "FileStatus",
    "scan_dicom",
    "series_id_of",
]

log = logging.getLogger(__name__)

#: Diagonal that turns DICOM LPS world coordinates into RAS (nibabel / NIfTI convention).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_FAST_SYNTAXES = {ExplicitVRLittleEndian, ImplicitVRLittleEndian}
_POSITION_TOL_MM = 0.01
_ORIENTATION_TOL = 1e-3


def series_id_of(series_uid: str) -> str:
    """Stable, non-identifying id of a series: first 12 hex digits of sha256(SeriesInstanceUID)."""
    return hashlib.sha256(str(series_uid).encode()).hexdigest()[:12]


@dataclass
class DicomFrame:
    """One 2-D image of a series: a single-frame file, or one frame of a multi-frame file.

    Attributes:
        path: File it lives in.
        frame: Frame index inside a multi-frame file, or None for a single-frame file.
        rows: Rows (image height).
        cols: Columns (image width).
        position: ImagePositionPatient (LPS mm) or None.
        orientation: ImageOrientationPatient (row cosines then column cosines) or None.
        pixel_spacing: PixelSpacing ``(row spacing, column spacing)`` in mm, or None.
        thickness: SliceThickness / SpacingBetweenSlices in mm, or None.
        slope: RescaleSlope (1 if absent).
        intercept: RescaleIntercept (0 if absent).
        time: Temporal key (TemporalPositionIdentifier, AcquisitionNumber or TriggerTime).
        instance: InstanceNumber (only breaks ties; never orders slices).
        mosaic_affine: LPS affine of a Siemens mosaic file (a whole volume in one image).
        mosaic_slices: Slices packed in a Siemens mosaic file (0 otherwise).
    """

    path: str
    frame: int | None
    rows: int
    cols: int
    position: np.ndarray | None
    orientation: np.ndarray | None
    pixel_spacing: tuple[float, float] | None
    thickness: float | None
    slope: float = 1.0
    intercept: float = 0.0
    time: float | None = None
    instance: int = 0
    mosaic_affine: np.ndarray | None = None
    mosaic_slices: int = 0


@dataclass
class FileStatus:
    """What happened to one file of a scan (for ``report.json``).

    Attributes:
        path: The file.
        status: ``"read"``, ``"ignored"`` (not DICOM / no image) or ``"skipped"`` (unreadable).
        reason: Why it was ignored or skipped ("" when read).
        series_id: Hashed id of the series it belongs to ("" when not read).
    """

    path: str
    status: str
    reason: str = ""
    series_id: str = ""


@dataclass
class DicomSeries:
    """A series: its frames, resolved geometry and the problems found.

    Build with :func:`scan_dicom`; call :meth:`load` for the voxels.

    Attributes:
        series_id: Hashed SeriesInstanceUID (12 hex digits).
        modality: DICOM Modality (``"CT"``, ``"MR"``, ...).
        frames: Every frame found for the series, in scan order.
        volumes: Frames used, ``volumes[t][k]``: time point ``t``, slice ``k`` (sorted along
            the slice normal). One time point for a 3-D series.
        spacing: Voxel size ``(column, row, slice)`` in mm.
        affine: 4x4 voxel ``(i, j, k)`` -> RAS mm affine of the native array.
        problems: Human-readable problems (missing slices, uneven spacing, ...).
        is_4d: Several time points at each position.
    """

    series_id: str
    modality: str
    frames: list[DicomFrame] = field(default_factory=list)
    volumes: list[list[DicomFrame]] = field(default_factory=list)
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    affine: np.ndarray = field(default_factory=lambda: np.eye(4))
    problems: list[str] = field(default_factory=list)
    is_4d: bool = False
    _datasets: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def n_slices(self) -> int:
        """Slices per time point."""
        if self.volumes and self.volumes[0][0].mosaic_slices:
            return self.volumes[0][0].mosaic_slices
        return len(self.volumes[0]) if self.volumes else 0

    @property
    def n_timepoints(self) -> int:
        """Time points (1 for a 3-D series)."""
        return len(self.volumes)

    @property
    def shape(self) -> tuple[int, ...]:
        """Native array shape ``(columns, rows, slices)`` (plus time points when 4-D)."""
        if not self.volumes:
            return (0, 0, 0)
        f = self.volumes[0][0]
        base = (f.cols, f.rows, self.n_slices)
        return base + (self.n_timepoints,) if self.is_4d else base

    def _load_mosaic(self) -> np.ndarray:
        """Siemens mosaic files (one volume per file) unpacked by nibabel, time last."""
        vols = []
        for vol in self.volumes:
            path = vol[0].path
            ds = self._datasets.pop(path, None) or pydicom.dcmread(path)
            try:
                vols.append(np.asarray(_wrapper(ds).get_data(), dtype=np.float32))
            except Exception as exc:  # noqa: BLE001 - decoders / CSA parsing
                raise DataError(path, f"cannot unpack Siemens mosaic: {str(exc)[:160]}") from None
        arr = np.stack(vols, axis=-1)
        return arr if self.is_4d else arr[..., 0]

    @property
    def files(self) -> list[str]:
        """Files of the frames used, without repeats."""
        return list(dict.fromkeys(f.path for vol in self.volumes for f in vol))

    def summary(self) -> dict[str, Any]:
        """JSON-friendly description (no patient identifiers)."""
        return {
            "series_id": self.series_id,
            "modality": self.modality,
            "shape": list(self.shape),
            "spacing": [round(float(s), 4) for s in self.spacing],
            "slices": self.n_slices,
            "timepoints": self.n_timepoints,
            "files": len(self.files),
            "problems": list(self.problems),
        }

    def load(self, allow_4d: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Decode the voxels in real units (RescaleSlope/Intercept applied; HU for CT).

        Args:
            allow_4d: Return a 4-D series as ``[i, j, k, t]``; otherwise refuse it.

        Returns:
            ``(array, affine)``: float32 ``[columns, rows, slices(, time)]`` (Fortran-ordered)
            and its RAS affine.

        Raises:
            DataError: 4-D series without ``allow_4d``, or a file that cannot be decoded.
        """
        if not self.volumes:
            raise DataError(self.series_id, "series has no usable slices")
        if self.is_4d and not allow_4d:
            raise DataError(
                f"series {self.series_id}",
                f"4-D series ({self.n_timepoints} time points x {self.n_slices} slices); "
                "pass allow_4d=True to keep it as 4-D, or select one time point",
            )
        f0 = self.volumes[0][0]
        if f0.mosaic_slices:
            return self._load_mosaic(), self.affine.copy()
        out = np.empty((self.n_timepoints, self.n_slices, f0.rows, f0.cols), np.float32)
        pixels: dict[str, np.ndarray] = {}
        for t, vol in enumerate(self.volumes):
            for k, fr in enumerate(vol):
                if fr.path not in pixels:
                    pixels[fr.path] = _decode(fr.path, self._datasets.pop(fr.path, None))
                arr = pixels[fr.path]
                img = arr[fr.frame] if fr.frame is not None else arr
                if img.ndim != 2 or img.shape != (fr.rows, fr.cols):
                    raise DataError(fr.path, f"pixel data of shape {img.shape}; expected one "
                                    f"{fr.rows}x{fr.cols} greyscale image per frame")
                dst = out[t, k]
                if fr.slope != 1.0:
                    np.multiply(img, fr.slope, out=dst, casting="unsafe")
                else:
                    dst[...] = img
                if fr.intercept != 0.0:
                    dst += np.float32(fr.intercept)
        # [t, k, j, i] (C order) -> [i, j, k, t]: a Fortran-ordered view, no copy
        arr = out.transpose(3, 2, 1, 0)
        if not self.is_4d:
            arr = arr[..., 0]
        return arr, self.affine.copy()


@dataclass
class ScanResult:
    """Everything a scan found.

    Attributes:
        root: Folder scanned.
        series: Series by hashed id, in a stable (sorted) order.
        files: One status per file seen.
    """

    root: str
    series: dict[str, DicomSeries]
    files: list[FileStatus]

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """``(path, reason)`` of unreadable files."""
        return [(f.path, f.reason) for f in self.files if f.status == "skipped"]


# --------------------------------------------------------------------------------- scanning


def _walk(root: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


def _floats(value: Any, n: int) -> np.ndarray | None:
    try:
        arr = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == (n,) and np.all(np.isfinite(arr)) else None


def _float(value: Any, default: float | None) -> float | None:
    try:
        return float(value) if value is not None and value != "" else default
    except (TypeError, ValueError):
        return default


def _time_key(ds: Any) -> float | None:
    for kw in ("TemporalPositionIdentifier", "AcquisitionNumber", "TriggerTime"):
        v = _float(ds.get(kw), None)
        if v is not None:
            return v
    return None


def _seq_item(ds: Any, keyword: str) -> Any:
    seq = ds.get(keyword)
    return seq[0] if seq else None


def _frames_of(path: str, ds: Any) -> list[DicomFrame]:
    rows, cols = int(ds.Rows), int(ds.Columns)
    n_frames = int(_float(ds.get("NumberOfFrames"), 1) or 1)
    base: dict[str, Any] = {
        "rows": rows,
        "cols": cols,
        "position": _floats(ds.get("ImagePositionPatient"), 3),
        "orientation": _floats(ds.get("ImageOrientationPatient"), 6),
        "pixel_spacing": None,
        "thickness": _float(ds.get("SpacingBetweenSlices"), _float(ds.get("SliceThickness"), None)),
        "slope": _float(ds.get("RescaleSlope"), 1.0) or 1.0,
        "intercept": _float(ds.get("RescaleIntercept"), 0.0) or 0.0,
        "time": _time_key(ds),
        "instance": int(_float(ds.get("InstanceNumber"), 0) or 0),
    }
    ps = _floats(ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing"), 2)
    base["pixel_spacing"] = (float(ps[0]), float(ps[1])) if ps is not None else None
    if n_frames == 1 and "PerFrameFunctionalGroupsSequence" not in ds:
        mosaic = _mosaic(ds)
        if mosaic is not None:
            base["mosaic_affine"], (base["cols"], base["rows"], base["mosaic_slices"]) = mosaic
        return [DicomFrame(path=path, frame=None, **base)]
    # (enhanced) multi-frame: shared groups, overridden per frame
    shared = _seq_item(ds, "SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    frames = []
    for f in range(n_frames):
        info = dict(base)
        for group in (shared, per_frame[f] if f < len(per_frame) else None):
            if group is None:
                continue
            if (pos := _seq_item(group, "PlanePositionSequence")) is not None:
                info["position"] = _floats(pos.get("ImagePositionPatient"), 3)
            if (ori := _seq_item(group, "PlaneOrientationSequence")) is not None:
                info["orientation"] = _floats(ori.get("ImageOrientationPatient"), 6)
            if (meas := _seq_item(group, "PixelMeasuresSequence")) is not None:
                ps = _floats(meas.get("PixelSpacing"), 2)
                if ps is not None:
                    info["pixel_spacing"] = (float(ps[0]), float(ps[1]))
                th = _float(meas.get("SpacingBetweenSlices"), _float(meas.get("SliceThickness"), None))
                info["thickness"] = th if th is not None else info["thickness"]
            if (pvt := _seq_item(group, "PixelValueTransformationSequence")) is not None:
                info["slope"] = _float(pvt.get("RescaleSlope"), 1.0) or 1.0
                info["intercept"] = _float(pvt.get("RescaleIntercept"), 0.0) or 0.0
            if (content := _seq_item(group, "FrameContentSequence")) is not None:
                tpi = _float(content.get("TemporalPositionIndex"), None)
                if tpi is not None:
                    info["time"] = tpi
        info["instance"] = f
        frames.append(DicomFrame(path=path, frame=f, **info))
    return frames


def _read_header(path: Path, keep_pixels: bool) -> tuple[Any | None, str, str]:
    """``(dataset, status, reason)``; dataset is None unless status is ``"read"``."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError as exc:
        return None, "skipped", f"cannot open: {exc.strerror or exc}"
    if len(head) < 132 or head[128:132] != b"DICM":
        return None, "ignored", "not a DICOM file (no DICM preamble)"
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=not keep_pixels)
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, OSError) as exc:
        return None, "skipped", f"unreadable DICOM: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on corrupt files
        return None, "skipped", f"unreadable DICOM: {type(exc).__name__}"
    missing = [k for k in ("SeriesInstanceUID", "Rows", "Columns") if k not in ds]
    if missing:
        sop = UID(str(ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID") or ""))
        if not sop:
            return None, "skipped", "unreadable DICOM header (no SOP class)"
        if "Image" in sop.name:
            return None, "skipped", f"truncated or incomplete image header (no {', '.join(missing)})"
        return None, "ignored", f"DICOM without an image ({sop.name or 'unknown SOP class'})"
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        return None, "skipped", "colour DICOM image (SamplesPerPixel > 1) is not supported"
    if keep_pixels and "PixelData" not in ds and "FloatPixelData" not in ds:
        return None, "ignored", "DICOM without pixel data"
    return ds, "read", ""


def scan_dicom(root: str | Path, keep_pixels: bool = False) -> ScanResult:
    """Scan a folder tree (or one file) into series.

    Args:
        root: Folder (any depth) or a single file.
        keep_pixels: Read pixel data during the scan and keep it for :meth:`DicomSeries.load`
            (one pass over the files: fastest when every series is then decoded once).

    Returns:
        The series found (problems resolved) and the status of every file.

    Raises:
        DataError: ``root`` does not exist.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(root, "folder not found")
    paths = [root] if root.is_file() else list(_walk(root))
    statuses: list[FileStatus] = []
    by_uid: dict[str, DicomSeries] = {}
    for path in paths:
        ds, status, reason = _read_header(path, keep_pixels)
        if ds is None:
            statuses.append(FileStatus(str(path), status, reason))
            if status == "skipped":
                log.warning("skipped %s: %s", path, reason)
            continue
        sid = series_id_of(str(ds.SeriesInstanceUID))
        series = by_uid.get(sid)
        if series is None:
            series = by_uid[sid] = DicomSeries(series_id=sid, modality=str(ds.get("Modality", "OT")))
        try:
            series.frames.extend(_frames_of(str(path), ds))
        except (TypeError, ValueError, AttributeError) as exc:
            statuses.append(FileStatus(str(path), "skipped", f"bad image header: {exc}"))
            continue
        if keep_pixels:
            series._datasets[str(path)] = ds
        statuses.append(FileStatus(str(path), "read", "", sid))
    for series in by_uid.values():
        _resolve(series)
    return ScanResult(str(root), dict(sorted(by_uid.items())), statuses)


# --------------------------------------------------------------------------------- geometry


def _majority(frames: list[DicomFrame], key: Any) -> tuple[list[DicomFrame], int]:
    counts = Counter(key(f) for f in frames)
    best = counts.most_common(1)[0][0]
    return [f for f in frames if key(f) == best], len(counts)


def _orientation_key(f: DicomFrame) -> tuple[float, ...]:
    assert f.orientation is not None
    return tuple(np.round(f.orientation / _ORIENTATION_TOL).astype(int).tolist())


def _resolve(series: DicomSeries) -> None:
    """Order frames, split time points, compute spacing/affine and record problems."""
    problems = series.problems
    if series.frames and all(f.mosaic_slices for f in series.frames):
        _resolve_mosaic(series)
        return
    frames = series.frames
    frames, n = _majority(frames, lambda f: (f.rows, f.cols))
    if n > 1:
        problems.append(f"mixed image sizes ({n} sizes); kept the {len(frames)} "
                        f"{frames[0].rows}x{frames[0].cols} slices")
    placed = [f for f in frames if f.position is not None and f.orientation is not None]
    if len(placed) < len(frames):
        if not placed:
            _resolve_unplaced(series, frames)
            return
        problems.append(f"{len(frames) - len(placed)} slices without position/orientation were dropped")
        frames = placed
    frames, n = _majority(frames, _orientation_key)
    if n > 1:
        problems.append(f"mixed orientations ({n} different); kept the {len(frames)} slices "
                        "of the most common orientation")
    row_dir = frames[0].orientation[:3]  # type: ignore[index]
    col_dir = frames[0].orientation[3:]  # type: ignore[index]
    normal = np.cross(row_dir, col_dir)
    depth = np.array([float(normal @ f.position) for f in frames])  # type: ignore[operator]
    order = np.lexsort((np.array([f.instance for f in frames]), depth))
    frames = [frames[i] for i in order]
    depth = depth[order]

    # group frames that share a position
    groups: list[list[DicomFrame]] = [[frames[0]]]
    group_depth = [depth[0]]
    for f, d in zip(frames[1:], depth[1:]):
        if abs(d - group_depth[-1]) < _POSITION_TOL_MM:
            groups[-1].append(f)
        else:
            groups.append([f])
            group_depth.append(d)
    volumes = _split_time(groups, problems)
    series.volumes = volumes
    series.is_4d = len(volumes) > 1

    ps = frames[0].pixel_spacing
    if ps is None:
        problems.append("no PixelSpacing; assumed 1 mm")
        ps = (1.0, 1.0)
    gd = np.asarray(group_depth)
    if len(gd) > 1:
        steps = np.diff(gd)
        dz = float(np.median(steps))
        for k in np.flatnonzero(steps > 1.5 * dz):
            missing = int(round(steps[k] / dz)) - 1
            problems.append(f"missing slices: gap of {steps[k]:.2f} mm after slice {k} "
                            f"(median spacing {dz:.2f} mm; about {missing} missing)")
        regular = steps[steps <= 1.5 * dz]
        if regular.size and regular.max() - regular.min() > max(0.01 * dz, 1e-3):
            problems.append(f"uneven slice spacing ({regular.min():.3f} to {regular.max():.3f} mm)")
        first = volumes[0][0].position
        last = volumes[0][-1].position
        step_vec = (last - first) / (gd[-1] - gd[0]) * dz  # type: ignore[operator]
    else:
        dz = frames[0].thickness or 1.0
        step_vec = normal * dz
    lps = np.eye(4)
    lps[:3, 0] = row_dir * ps[1]
    lps[:3, 1] = col_dir * ps[0]
    lps[:3, 2] = step_vec
    lps[:3, 3] = volumes[0][0].position  # type: ignore[assignment]
    series.affine = LPS_TO_RAS @ lps
    series.spacing = (float(ps[1]), float(ps[0]), float(dz))


def _split_time(groups: list[list[DicomFrame]], problems: list[str]) -> list[list[DicomFrame]]:
    """Frames at one position -> time points (distinct temporal keys) or duplicates."""
    duplicates = 0
    per_position: list[list[DicomFrame]] = []
    for g in groups:
        seen: dict[Any, DicomFrame] = {}
        for f in g:  # sorted by instance within a position
            key = f.time
            if key in seen:
                duplicates += 1
                continue
            seen[key] = f
        per_position.append([seen[k] for k in sorted(seen, key=lambda v: (v is None, v or 0))])
    if duplicates:
        problems.append(f"duplicate positions: {duplicates} slices repeat the position of another "
                        "slice of the same time point (kept the first by InstanceNumber)")
    counts = {len(p) for p in per_position}
    if counts == {1}:
        return [[p[0] for p in per_position]]
    n_t = min(counts)
    if len(counts) > 1:
        problems.append(f"incomplete 4-D series: {min(counts)} to {max(counts)} time points per "
                        f"position; kept the first {n_t}")
    return [[p[t] for p in per_position] for t in range(n_t)]


def _resolve_mosaic(series: DicomSeries) -> None:
    """Mosaic files: one volume each; several files at different times make a 4-D series."""
    frames = sorted(series.frames, key=lambda f: (f.time is None, f.time or 0, f.instance))
    volumes = [[p[0]] for p in _split_time([frames], series.problems)]
    series.volumes = volumes
    series.is_4d = len(volumes) > 1
    lps = frames[0].mosaic_affine
    assert lps is not None
    series.affine = LPS_TO_RAS @ lps
    series.spacing = tuple(float(v) for v in np.linalg.norm(lps[:3, :3], axis=0))  # type: ignore[assignment]


def _wrapper(ds: Any) -> Any:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nibabel.nicom warns on import that it is young
        from nibabel.nicom import dicomwrappers

    return dicomwrappers.wrapper_from_data(ds)


def _mosaic(ds: Any) -> tuple[np.ndarray, tuple[int, int, int]] | None:
    """``(LPS affine, unpacked shape)`` of a Siemens mosaic image, else None."""
    if "MOSAIC" not in [str(v).upper() for v in (ds.get("ImageType") or [])]:
        return None
    try:
        w = _wrapper(ds)
        if type(w).__name__ != "MosaicWrapper":
            return None
        shape = tuple(int(v) for v in w.image_shape[:3])
        return np.asarray(w.affine, dtype=np.float64), (shape[0], shape[1], shape[2])
    except Exception:  # noqa: BLE001 - missing/odd CSA header: treat as a plain image
        return None


def _resolve_unplaced(series: DicomSeries, frames: list[DicomFrame]) -> None:
    series.problems.append("no ImagePositionPatient/ImageOrientationPatient: slices ordered by "
                           "InstanceNumber, orientation unknown (identity affine)")
    frames = sorted(frames, key=lambda f: f.instance)
    series.volumes = [frames]
    ps = frames[0].pixel_spacing or (1.0, 1.0)
    dz = frames[0].thickness or 1.0
    series.spacing = (float(ps[1]), float(ps[0]), float(dz))
    series.affine = np.diag([ps[1], ps[0], dz, 1.0])


# --------------------------------------------------------------------------------- decoding

_DTYPES = {(8, 0): "<u1", (8, 1): "<i1", (16, 0): "<u2", (16, 1): "<i2", (32, 0): "<u4", (32, 1): "<i4"}


def _decode(path: str, ds: Any | None = None) -> np.ndarray:
    """Pixel data of a file as stored (``[rows, cols]`` or ``[frames, rows, cols]``).

    Uncompressed little-endian data is viewed straight from the bytes; everything else
    (big endian, JPEG, JPEG-LS, JPEG 2000, RLE, ...) goes through pydicom's decoders
    (pylibjpeg / Pillow plugins).

    Raises:
        DataError: The file cannot be read or its pixel data cannot be decoded.
    """
    try:
        if ds is None:
            ds = pydicom.dcmread(path)
        ts = UID(ds.file_meta.get("TransferSyntaxUID", ImplicitVRLittleEndian))
        bits = int(ds.get("BitsAllocated", 16))
        signed = int(ds.get("PixelRepresentation", 0))
        stored = int(ds.get("BitsStored", bits))
        rows, cols = int(ds.Rows), int(ds.Columns)
        n_frames = int(_float(ds.get("NumberOfFrames"), 1) or 1)
        dtype = _DTYPES.get((bits, signed))
        if (ts in _FAST_SYNTAXES and dtype is not None and "PixelData" in ds
                and (stored == bits or not signed)):
            count = n_frames * rows * cols
            raw = np.frombuffer(ds.PixelData, dtype=dtype, count=count)
            if stored != bits:
                raw = raw & np.array((1 << stored) - 1, dtype=dtype)
            return raw.reshape((n_frames, rows, cols) if n_frames > 1 else (rows, cols))
        return np.asarray(ds.pixel_array)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - decoder plugins raise many types
        ts_name = getattr(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None), "name", "?")
        msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise DataError(path, f"cannot decode pixel data ({ts_name}): {msg}") from None
