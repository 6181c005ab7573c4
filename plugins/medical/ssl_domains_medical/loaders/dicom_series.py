"""DICOM folder trees to image stacks: scanning, splitting, ordering, geometry and decoding.

A folder tree (any depth, files with or without ``.dcm``) is read header-only. Files are
grouped by SeriesInstanceUID, then split the way dcm2niix splits them into separate outputs
("stacks"): by image size, samples per pixel (colour), image type (magnitude / phase / real /
imaginary, original / derived), echo and orientation. Within a stack, slices are ordered by
their position along the slice normal (``cross(row, col) . ImagePositionPatient``), never by
InstanceNumber; images that repeat a position become time points, ordered by
TemporalPositionIdentifier, TriggerTime, AcquisitionNumber, AcquisitionTime and InstanceNumber
(GE 4-D series carry none of the first three: the repeats are the time points). Exact
duplicate files (same SOPInstanceUID, or same position and pixels) count once; repeats that
do not make whole time points refuse the stack (``duplicates="first"`` keeps the first).
Enhanced multi-frame files contribute one "slice" per frame (position, image type, echo and
temporal index from the functional groups); Siemens mosaic files are unpacked with nibabel's
``nicom`` wrappers.

Geometry follows nibabel/dcm2niix: the native voxel array is ``[column i, row j, slice k(, t)]``
and its affine maps ``(i, j, k)`` to RAS millimetres (DICOM is LPS, so the first two rows of
the LPS affine are negated). Colour images (RGB, YBR_FULL, YBR_FULL_422, YBR_RCT/ICT) are
decoded to RGB and returned as luminance or as a last axis of 3 channels. Stacks are named by a
keyed opaque id of their SeriesInstanceUID (:func:`ssl_domains.identifiers.opaque_id`) plus a
suffix when a series splits; patient identifiers are never copied out of the headers.
"""

from __future__ import annotations

import hashlib
import logging
import math
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

from ssl_domains.errors import ConfigError, DataError
from ssl_domains.identifiers import opaque_id
from ssl_domains_medical.loaders.dicom_capture import capture_file_messages, redact

__all__ = [
    "COLOUR_MODES",
    "DELIBERATELY_BROKEN",
    "DicomFrame",
    "DicomSeries",
    "ScanResult",
    "FileStatus",
    "scan_dicom",
]

log = logging.getLogger(__name__)

#: Start of the 128-byte preamble of the files the sample data breaks on purpose (to show and
#: test skipping): their skip reason says so. Only the file's own bytes carry it, so a real
#: broken file is never reported as expected.
DELIBERATELY_BROKEN = b"ssl-domains sample data: broken on purpose"

#: Diagonal that turns DICOM LPS world coordinates into RAS (nibabel / NIfTI convention).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: How colour images come out of :meth:`DicomSeries.load`.
COLOUR_MODES = ("luminance", "rgb")
#: ITU-R BT.601 luma weights (Pillow's "L" conversion; the Y of YBR_FULL).
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_FAST_SYNTAXES = {ExplicitVRLittleEndian, ImplicitVRLittleEndian}
_POSITION_TOL_MM = 0.01
_ORIENTATION_TOL = 1e-3
_TILT_TOL_DEG = 0.2
_KIND_SUFFIX = {"M": "", "P": "ph", "R": "real", "I": "imag"}
_KIND_NAME = {"M": "magnitude", "P": "phase", "R": "real", "I": "imaginary"}


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
        time: Sort key of the images that share a position (TemporalPositionIdentifier,
            TriggerTime, AcquisitionNumber, AcquisitionTime, InstanceNumber; missing = last).
        instance: InstanceNumber (only breaks ties; never orders slices).
        mosaic_affine: LPS affine of a Siemens mosaic file (a whole volume in one image).
        mosaic_slices: Slices packed in a Siemens mosaic file (0 otherwise).
        samples: SamplesPerPixel (3 for colour).
        kind: Complex component: ``"M"`` magnitude, ``"P"`` phase, ``"R"`` real, ``"I"`` imaginary.
        derived: ImageType / FrameType says DERIVED.
        echo: ``(EchoNumbers, EchoTime)`` (None where absent).
        tilt: GantryDetectorTilt in degrees (0 if absent).
        bits: BitsAllocated.
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
    time: tuple[float, ...] = ()
    instance: int = 0
    mosaic_affine: np.ndarray | None = None
    mosaic_slices: int = 0
    samples: int = 1
    kind: str = "M"
    derived: bool = False
    echo: tuple[float | None, float | None] = (None, None)
    tilt: float = 0.0
    bits: int = 16


@dataclass
class FileStatus:
    """What happened to one file of a scan (for ``report.json``).

    Attributes:
        path: The file.
        status: ``"read"``, ``"ignored"`` (not DICOM / no image), ``"skipped"`` (unreadable),
            ``"duplicate"`` (same SOPInstanceUID, or same position and pixels, as a file that
            was read: counted once), ``"refused"`` (its stack was refused; see ``reason``) or
            ``"dropped"`` (left out on request, e.g. ``duplicates="first"``).
        reason: Why it was not read, or not used ("" when read).
        series_id: Id of the stack it belongs to ("" when not read).
        messages: Redacted third-party warnings raised while reading it, each once.
        tracebacks: Tracebacks attached to those warnings (for ``--debug`` only).
    """

    path: str
    status: str
    reason: str = ""
    series_id: str = ""
    messages: list[str] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)


@dataclass
class DicomSeries:
    """A stack of one series: its frames, resolved geometry and the problems found.

    A DICOM series splits into several stacks when it holds several image sizes, image types
    (magnitude / phase / ...), echoes or orientations, as dcm2niix writes them. Build with
    :func:`scan_dicom`; call :meth:`load` for the voxels.

    Attributes:
        series_id: Opaque id of the SeriesInstanceUID, plus ``_suffix`` when the series splits
            (``e2``: echo 2, ``ph``/``real``/``imag``: image type, ``derived``, ``64x64``: size,
            ``o2``: orientation, ``rgb``: colour, ``16bit``: bit depth).
        group: Opaque id of the SeriesInstanceUID (shared by the stacks of one series).
        modality: DICOM Modality (``"CT"``, ``"MR"``, ...).
        frames: Every frame of the stack, in scan order.
        volumes: Frames used, ``volumes[t][k]``: time point ``t``, slice ``k`` (sorted along
            the slice normal). One time point for a 3-D stack.
        spacing: Voxel size ``(column, row, slice)`` in mm.
        affine: 4x4 voxel ``(i, j, k)`` -> RAS mm affine of the native array.
        problems: Human-readable problems (missing slices, uneven spacing, ...).
        is_4d: Several time points at each position.
        refused: Why the stack cannot be converted ("" when it can).
        image_type: ``"magnitude"``, ``"phase"``, ``"real"`` or ``"imaginary"``, with
            ``" (derived)"`` for derived images.
        echo: EchoNumbers of the stack (None when absent).
        decode_messages: Third-party warnings raised while decoding, per file.
    """

    series_id: str
    modality: str
    group: str = ""
    frames: list[DicomFrame] = field(default_factory=list)
    volumes: list[list[DicomFrame]] = field(default_factory=list)
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    affine: np.ndarray = field(default_factory=lambda: np.eye(4))
    problems: list[str] = field(default_factory=list)
    is_4d: bool = False
    refused: str = ""
    image_type: str = "magnitude"
    echo: int | None = None
    decode_messages: dict[str, list[str]] = field(default_factory=dict)
    _datasets: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def n_slices(self) -> int:
        """Slices per time point."""
        if self.volumes and self.volumes[0][0].mosaic_slices:
            return self.volumes[0][0].mosaic_slices
        return len(self.volumes[0]) if self.volumes else 0

    @property
    def n_timepoints(self) -> int:
        """Time points (1 for a 3-D stack)."""
        return len(self.volumes)

    @property
    def samples(self) -> int:
        """Samples per pixel (3 for colour)."""
        return self.frames[0].samples if self.frames else 1

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
                raise DataError(path, f"cannot unpack Siemens mosaic: {redact(str(exc))}") from None
        arr = np.stack(vols, axis=-1)
        return arr if self.is_4d else arr[..., 0]

    @property
    def files(self) -> list[str]:
        """Files of the frames used, without repeats."""
        return list(dict.fromkeys(f.path for vol in self.volumes for f in vol))

    def summary(self) -> dict[str, Any]:
        """JSON-friendly description (no patient identifiers, no paths)."""
        return {
            "series_id": self.series_id,
            "group": self.group,
            "modality": self.modality,
            "image_type": self.image_type,
            "echo": self.echo,
            "colour": self.samples == 3,
            "shape": list(self.shape),
            "spacing": [round(float(s), 4) for s in self.spacing],
            "slices": self.n_slices,
            "timepoints": self.n_timepoints,
            "files": len(self.files) if not self.refused else len({f.path for f in self.frames}),
            "problems": list(self.problems),
            "refused": self.refused or None,
        }

    def load(self, allow_4d: bool = False, colour: str = "luminance") -> tuple[np.ndarray, np.ndarray]:
        """Decode the voxels in real units (RescaleSlope/Intercept applied; HU for CT).

        Args:
            allow_4d: Return a 4-D stack as ``[i, j, k, t]``; otherwise refuse it.
            colour: Colour images as ``"luminance"`` (BT.601 luma of the RGB values, one
                channel) or ``"rgb"`` (a last axis of 3). Greyscale images ignore it.

        Returns:
            ``(array, affine)``: float32 ``[columns, rows, slices(, time)(, rgb)]``
            (Fortran-ordered) and its RAS affine.

        Raises:
            DataError: A refused stack, a 4-D stack without ``allow_4d``, or a file that cannot
                be decoded.
            ConfigError: Unknown ``colour``.
        """
        if colour not in COLOUR_MODES:
            raise ConfigError(f"unknown colour mode {colour!r}; use one of {', '.join(COLOUR_MODES)}")
        if self.refused:
            raise DataError(f"series {self.series_id}", self.refused)
        if not self.volumes:
            raise DataError(f"series {self.series_id}", "series has no usable slices")
        if self.is_4d and not allow_4d:
            raise DataError(
                f"series {self.series_id}",
                f"4-D series ({self.n_timepoints} time points x {self.n_slices} slices); "
                "pass allow_4d=True to keep it as 4-D, or select one time point",
            )
        f0 = self.volumes[0][0]
        if f0.mosaic_slices:
            with capture_file_messages() as cap:
                cap.current = f0.path
                mosaic = self._load_mosaic()
            self._keep_messages(cap)
            return mosaic, self.affine.copy()
        rgb = f0.samples == 3 and colour == "rgb"
        shape = (self.n_timepoints, self.n_slices, f0.rows, f0.cols) + ((3,) if rgb else ())
        out = np.empty(shape, np.float32)
        pixels: dict[str, np.ndarray] = {}
        with capture_file_messages() as cap:
            for t, vol in enumerate(self.volumes):
                for k, fr in enumerate(vol):
                    if fr.path not in pixels:
                        cap.current = fr.path
                        pixels[fr.path] = _decode(fr.path, self._datasets.pop(fr.path, None))
                    arr = pixels[fr.path]
                    one_image = arr.ndim == (3 if fr.samples == 3 else 2)  # incl. 1-frame enhanced files
                    img = arr if fr.frame is None or one_image else arr[fr.frame]
                    expected = (fr.rows, fr.cols) + ((3,) if fr.samples == 3 else ())
                    if img.shape != expected:
                        raise DataError(fr.path, f"pixel data of shape {img.shape}; expected one "
                                        f"{'x'.join(map(str, expected))} image per frame")
                    dst = out[t, k]
                    if fr.samples == 3 and not rgb:
                        np.dot(img.astype(np.float32, copy=False), LUMA, out=dst)
                    elif fr.slope != 1.0:
                        np.multiply(img, fr.slope, out=dst, casting="unsafe")
                    else:
                        dst[...] = img
                    if fr.intercept != 0.0:
                        dst += np.float32(fr.intercept)
        self._keep_messages(cap)
        # [t, k, j, i(, c)] (C order) -> [i, j, k, t(, c)]: a Fortran-ordered view, no copy
        arr = out.transpose(3, 2, 1, 0, 4) if rgb else out.transpose(3, 2, 1, 0)
        if not self.is_4d:
            arr = arr[:, :, :, 0]
        return arr, self.affine.copy()

    def _keep_messages(self, cap: capture_file_messages) -> None:
        for path, msgs in cap.messages.items():
            if msgs:
                self.decode_messages.setdefault(path, []).extend(
                    m for m in msgs if m not in self.decode_messages.get(path, []))


@dataclass
class ScanResult:
    """Everything a scan found.

    Attributes:
        root: Folder scanned.
        series: Stacks by id, in a stable (sorted) order.
        files: One status per file seen.
    """

    root: str
    series: dict[str, DicomSeries]
    files: list[FileStatus]

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """``(path, reason)`` of unreadable files."""
        return [(f.path, f.reason) for f in self.files if f.status == "skipped"]

    @property
    def duplicates(self) -> list[tuple[str, str]]:
        """``(path, reason)`` of exact duplicate files (counted once)."""
        return [(f.path, f.reason) for f in self.files if f.status == "duplicate"]


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


def _seconds(value: Any) -> float | None:
    """DICOM TM (``HHMMSS.frac``) or DT (``YYYYMMDDHHMMSS.frac``) as seconds (DT: of the day)."""
    text = str(value or "").strip().replace(":", "")
    if len(text) >= 14 and text[:8].isdigit():
        text = text[8:]
    try:
        hh, mm, ss = int(text[0:2]), int(text[2:4] or 0), float(text[4:] or 0)
    except ValueError:
        return None
    return hh * 3600.0 + mm * 60.0 + ss


def _key(*values: float | None) -> tuple[float, ...]:
    return tuple(math.inf if v is None else float(v) for v in values)


def _time_key(ds: Any) -> tuple[float, ...]:
    return _key(_float(ds.get("TemporalPositionIdentifier"), None), _float(ds.get("TriggerTime"), None),
                _float(ds.get("AcquisitionNumber"), None), _seconds(ds.get("AcquisitionTime")),
                _float(ds.get("InstanceNumber"), None))


def _image_kind(tokens: Any, component: Any = None) -> tuple[str, bool]:
    """``(complex component, derived)`` from ImageType/FrameType and ComplexImageComponent."""
    words = [str(t).strip().upper() for t in (tokens or [])]
    derived = bool(words) and words[0] == "DERIVED"
    comp = str(component or "").strip().upper()
    if comp in ("PHASE", "REAL", "IMAGINARY", "MAGNITUDE"):
        return comp[0] if comp != "MAGNITUDE" else "M", derived
    for w in words[2:]:
        if w in ("P", "PHASE", "PHASE MAP"):
            return "P", derived
        if w in ("R", "REAL"):
            return "R", derived
        if w in ("I", "IMAGINARY"):
            return "I", derived
    return "M", derived


def _seq_item(ds: Any, keyword: str) -> Any:
    seq = ds.get(keyword)
    return seq[0] if seq else None


def _frames_of(path: str, ds: Any) -> list[DicomFrame]:
    rows, cols = int(ds.Rows), int(ds.Columns)
    n_frames = int(_float(ds.get("NumberOfFrames"), 1) or 1)
    kind, derived = _image_kind(ds.get("ImageType"), ds.get("ComplexImageComponent"))
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
        "samples": int(ds.get("SamplesPerPixel", 1) or 1),
        "kind": kind,
        "derived": derived,
        "echo": (_float(ds.get("EchoNumbers"), None), _float(ds.get("EchoTime"), None)),
        "tilt": _float(ds.get("GantryDetectorTilt"), 0.0) or 0.0,
        "bits": int(_float(ds.get("BitsAllocated"), 16) or 16),
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
    offsets = _floats(ds.get("GridFrameOffsetVector"), n_frames) if n_frames > 1 else None
    frames = []
    for f in range(n_frames):
        info = dict(base)
        temporal: float | None = None
        acq: float | None = None
        trigger: float | None = None
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
            for type_seq in ("MRImageFrameTypeSequence", "CTImageFrameTypeSequence", "FrameTypeSequence"):
                if (ft := _seq_item(group, type_seq)) is not None:
                    info["kind"], info["derived"] = _image_kind(ft.get("FrameType"),
                                                                ft.get("ComplexImageComponent"))
            if (echo := _seq_item(group, "MREchoSequence")) is not None:
                info["echo"] = (None, _float(echo.get("EffectiveEchoTime"), None))
            if (timing := _seq_item(group, "CardiacSynchronizationSequence")) is not None:
                trigger = _float(timing.get("NominalCardiacTriggerDelayTime"), trigger)
            if (content := _seq_item(group, "FrameContentSequence")) is not None:
                temporal = _float(content.get("TemporalPositionIndex"), temporal)
                acq = _float(content.get("FrameAcquisitionNumber"), acq)
                when = _seconds(content.get("FrameAcquisitionDateTime"))
                info["time"] = _key(temporal, trigger, acq, when, f)
        if (offsets is not None and not per_frame and info["position"] is not None
                and info["orientation"] is not None):
            # RT dose style: one position, frames offset along the normal (relative to frame 0)
            normal = np.cross(info["orientation"][:3], info["orientation"][3:])
            info["position"] = info["position"] + (offsets[f] - offsets[0]) * normal
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
    ds, status, reason = _parse_header(path, keep_pixels)
    if status == "skipped" and head.startswith(DELIBERATELY_BROKEN):
        reason += " (expected: a sample file broken on purpose, to show skipping)"
    return ds, status, reason


def _parse_header(path: Path, keep_pixels: bool) -> tuple[Any | None, str, str]:
    """:func:`_read_header` of a file with a DICM preamble."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=not keep_pixels)
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, OSError) as exc:
        return None, "skipped", f"unreadable DICOM: {type(exc).__name__}: {redact(str(exc))}"
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
    samples = int(_float(ds.get("SamplesPerPixel", 1), 1) or 1)
    if samples not in (1, 3):
        return None, "skipped", f"SamplesPerPixel {samples} is not supported (1 or 3)"
    if keep_pixels and "PixelData" not in ds and "FloatPixelData" not in ds:
        return None, "ignored", "DICOM without pixel data"
    return ds, "read", ""


def scan_dicom(root: str | Path, keep_pixels: bool = False, duplicates: str = "refuse",
               gantry_tilt: str = "refuse") -> ScanResult:
    """Scan a folder tree (or one file) into stacks.

    Args:
        root: Folder (any depth) or a single file.
        keep_pixels: Read pixel data during the scan and keep it for :meth:`DicomSeries.load`
            (one pass over the files: fastest when every series is then decoded once).
        duplicates: Images that repeat a position without making whole time points:
            ``"refuse"`` the stack (default) or keep the ``"first"`` time points (the files
            left out are marked ``"dropped"``).
        gantry_tilt: Slices sheared by gantry tilt: ``"refuse"`` the stack (default) or keep
            the sheared affine (``"shear"``: voxel centres at their true positions).

    Returns:
        The stacks found (problems resolved) and the status of every file.

    Raises:
        DataError: ``root`` does not exist.
        ConfigError: Unknown ``duplicates`` or ``gantry_tilt``.
    """
    if duplicates not in ("refuse", "first"):
        raise ConfigError(f"unknown duplicates={duplicates!r}; use 'refuse' or 'first'")
    if gantry_tilt not in ("refuse", "shear"):
        raise ConfigError(f"unknown gantry_tilt={gantry_tilt!r}; use 'refuse' or 'shear'")
    root = Path(root)
    if not root.exists():
        raise DataError(root, "folder not found")
    paths = [root] if root.is_file() else list(_walk(root))
    statuses: dict[str, FileStatus] = {}
    by_uid: dict[str, tuple[str, list[DicomFrame], dict[str, Any]]] = {}
    sops: dict[tuple[str, str, tuple[str, ...]], str] = {}
    with capture_file_messages() as cap:
        for path in paths:
            cap.current = str(path)
            ds, status, reason = _read_header(path, keep_pixels)
            if ds is None:
                statuses[str(path)] = FileStatus(str(path), status, reason)
                continue
            uid = str(ds.SeriesInstanceUID)
            sop = str(ds.get("SOPInstanceUID") or "")
            # same instance only when the image matches too (test sets reuse UIDs across variants)
            image = tuple(str(ds.get(k, "")) for k in ("Rows", "Columns", "SamplesPerPixel",
                                                       "BitsAllocated", "NumberOfFrames"))
            if sop and sops.get((uid, sop, image)):
                statuses[str(path)] = FileStatus(str(path), "duplicate",
                                                 "same SOPInstanceUID as another file (counted once)")
                continue
            try:
                frames = _frames_of(str(path), ds)
            except (TypeError, ValueError, AttributeError) as exc:
                statuses[str(path)] = FileStatus(str(path), "skipped", f"bad image header: {redact(str(exc))}")
                continue
            sops[(uid, sop, image)] = str(path)
            entry = by_uid.setdefault(uid, (str(ds.get("Modality", "OT")), [], {}))
            entry[1].extend(frames)
            if keep_pixels:
                entry[2][str(path)] = ds
            statuses[str(path)] = FileStatus(str(path), "read")
        stacks: dict[str, DicomSeries] = {}
        cap.current = ""  # duplicate probes decode a few files: their warnings return at load time
        for uid, (modality, frames, datasets) in by_uid.items():
            for series in _split(opaque_id(str(uid)), modality, frames):
                series._datasets = {f.path: datasets[f.path] for f in series.frames if f.path in datasets}
                for name, status, reason in _resolve(series, duplicates, gantry_tilt):
                    statuses[name].status, statuses[name].reason = status, reason
                for name in {f.path for f in series.frames}:
                    if statuses[name].status == "read":
                        statuses[name].series_id = series.series_id
                        if series.refused:
                            statuses[name].status, statuses[name].reason = "refused", series.refused
                stacks[series.series_id] = series
    for key, msgs in cap.messages.items():
        if key in statuses:
            statuses[key].messages.extend(msgs)
            statuses[key].tracebacks.extend(cap.tracebacks.get(key, []))
    for st in statuses.values():
        if st.status == "skipped":
            log.debug("skipped %s: %s", st.path, st.reason)
    return ScanResult(str(root), dict(sorted(stacks.items())), list(statuses.values()))


# --------------------------------------------------------------------------------- splitting


def _orientation_key(f: DicomFrame) -> tuple[int, ...] | None:
    if f.orientation is None:
        return None
    return tuple(np.round(f.orientation / _ORIENTATION_TOL).astype(int).tolist())


def _stack_key(f: DicomFrame) -> tuple[Any, ...]:
    return (f.rows, f.cols, f.samples, f.mosaic_slices > 0, f.derived, f.kind,
            f.echo[0] if f.echo[0] is not None else math.inf,
            f.echo[1] if f.echo[1] is not None else math.inf, _orientation_key(f) or (), f.bits)


def _split(group: str, modality: str, frames: list[DicomFrame]) -> list[DicomSeries]:
    """One series -> stacks, as dcm2niix splits outputs (size, colour, type, echo, orientation,
    bit depth)."""
    by_key: dict[tuple[Any, ...], list[DicomFrame]] = {}
    for f in frames:
        by_key.setdefault(_stack_key(f), []).append(f)
    keys = sorted(by_key, key=lambda k: (k[4], "MPRI".index(k[5]), k[6], k[7], -len(by_key[k]), k))
    varies = [len({k[i] for k in keys}) > 1 for i in range(len(keys[0]))] if keys else []
    echoes = sorted({(k[6], k[7]) for k in keys})
    orientations = list(dict.fromkeys(k[8] for k in keys))
    out: list[DicomSeries] = []
    for key in keys:
        fs = by_key[key]
        parts = []
        if varies[0] or varies[1]:
            parts.append(f"{key[1]}x{key[0]}")
        if varies[2] and key[2] == 3:
            parts.append("rgb")
        if varies[4] and key[4]:
            parts.append("derived")
        if varies[6] or varies[7]:
            number = key[6] if key[6] != math.inf else echoes.index((key[6], key[7])) + 1
            parts.append(f"e{int(number)}")
        if varies[5] and _KIND_SUFFIX[key[5]]:
            parts.append(_KIND_SUFFIX[key[5]])
        if varies[8]:
            parts.append(f"o{orientations.index(key[8]) + 1}")
        if varies[9]:
            parts.append(f"{key[9]}bit")
        sid = "_".join([group] + parts)
        while any(s.series_id == sid for s in out):
            sid += "_"
        series = DicomSeries(series_id=sid, modality=modality, group=group, frames=fs,
                             image_type=_KIND_NAME[key[5]] + (" (derived)" if key[4] else ""),
                             echo=int(key[6]) if key[6] != math.inf else None)
        out.append(series)
    return out


# --------------------------------------------------------------------------------- geometry


def _resolve(series: DicomSeries, duplicates: str, gantry_tilt: str) -> list[tuple[str, str, str]]:
    """Order frames, split time points, compute spacing/affine; record problems or a refusal.

    Returns:
        ``(path, status, reason)`` for files found to be duplicates or left out.
    """
    problems = series.problems
    frames = series.frames
    if all(f.mosaic_slices for f in frames):
        return _resolve_mosaic(series)
    placed = [f for f in frames if f.position is not None and f.orientation is not None]
    if len(placed) < len(frames):
        if not placed:
            changes = _drop_pixel_duplicates(series, [list(frames)], placed=False)
            _resolve_unplaced(series, series.frames)
            return changes
        series.refused = (f"{len(frames) - len(placed)} of {len(frames)} images have no "
                          "ImagePositionPatient/ImageOrientationPatient: cannot place them in the stack")
        return []
    row_dir = frames[0].orientation[:3]  # type: ignore[index]
    col_dir = frames[0].orientation[3:]  # type: ignore[index]
    normal = np.cross(row_dir, col_dir)
    depth = np.array([float(normal @ f.position) for f in frames])  # type: ignore[operator]
    order = np.argsort(depth, kind="stable")
    frames = [frames[i] for i in order]
    depth = depth[order]

    # group frames that share a position, each group ordered in time
    groups: list[list[DicomFrame]] = [[frames[0]]]
    group_depth = [depth[0]]
    for f, d in zip(frames[1:], depth[1:]):
        if abs(d - group_depth[-1]) < _POSITION_TOL_MM:
            groups[-1].append(f)
        else:
            groups.append([f])
            group_depth.append(d)
    for g in groups:
        g.sort(key=lambda f: (f.time, f.instance))
    changes = _drop_pixel_duplicates(series, groups)
    volumes, left_out = _split_time(groups, duplicates, series)
    changes += [(p, "dropped", "repeats a position (duplicates='first' kept the first)") for p in left_out]
    if series.refused:
        return changes
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
        cos = float(abs(step_vec @ normal) / (np.linalg.norm(step_vec) * np.linalg.norm(normal)))
        tilt = math.degrees(math.acos(min(1.0, cos)))
        if tilt > _TILT_TOL_DEG:
            stated = f"; GantryDetectorTilt {frames[0].tilt:g}" if frames[0].tilt else ""
            problems.append(f"gantry tilt: slices sheared by {tilt:.2f} degrees{stated}")
            if gantry_tilt == "refuse":
                series.refused = (f"gantry tilt: slices sheared by {tilt:.2f} degrees{stated}; refused: "
                                  "pass gantry_tilt='shear' (convert --gantry-tilt shear) to keep the "
                                  "sheared affine, or resample with dcm2niix (its _Tilt_1 output)")
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
    return changes


def _pixel_digest(series: DicomSeries, frame: DicomFrame) -> str:
    """Hash of a single-frame file's decoded pixels ("" when it cannot be decoded)."""
    try:
        arr = _decode(frame.path, series._datasets.get(frame.path))
    except DataError:
        return ""
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def _drop_pixel_duplicates(series: DicomSeries, groups: list[list[DicomFrame]], placed: bool = True,
                           ) -> list[tuple[str, str, str]]:
    """Single-frame files that repeat a position, time key and pixels: kept once.

    Only images whose temporal keys (TemporalPositionIdentifier, TriggerTime, AcquisitionNumber,
    AcquisitionTime; and InstanceNumber for images without a position) are all equal can be
    copies; the first such group is probed and the whole stack checked only when it holds
    identical images (a copied file under a new SOPInstanceUID), so 4-D series without temporal
    tags cost a few extra decodes.
    """
    def candidates(g: list[DicomFrame]) -> list[list[DicomFrame]]:
        by_time: dict[tuple[float, ...], list[DicomFrame]] = {}
        for f in g:
            if f.frame is None:
                by_time.setdefault(f.time[:4] if placed else f.time, []).append(f)
        return [c for c in by_time.values() if len(c) > 1]

    repeated = [c for g in groups if len(g) > 1 for c in candidates(g)]
    if not repeated:
        return []
    probe = [_pixel_digest(series, f) for f in repeated[0]]
    if len(set(probe)) == len(probe):
        return []
    changes = []
    for cand in repeated:
        seen: set[str] = set()
        for f in cand:
            digest = _pixel_digest(series, f)
            if digest and digest in seen:
                changes.append((f.path, "duplicate", ("same position" if placed else "same InstanceNumber")
                                + " and pixel data as another file (counted once)"))
            seen.add(digest)
    dropped = {p for p, _, _ in changes}
    for g in groups:
        g[:] = [f for f in g if f.path not in dropped]
    series.frames = [f for f in series.frames if f.path not in dropped]
    return changes


def _split_time(groups: list[list[DicomFrame]], duplicates: str,
                series: DicomSeries) -> tuple[list[list[DicomFrame]], list[str]]:
    """Frames at each position (time-ordered) -> time points; uneven repeats refuse the stack.

    Returns:
        ``(volumes, paths left out)``.
    """
    counts = Counter(len(g) for g in groups)
    if len(counts) == 1:
        n_t = len(groups[0])
        return [[g[t] for g in groups] for t in range(n_t)], []
    n_t = min(counts)
    extra = sum(len(g) - n_t for g in groups)
    n_files = sum(len(g) for g in groups)
    what = ", ".join(f"{n} position(s) with {c}" for c, n in sorted(counts.items()))
    message = (f"{n_files} images at {len(groups)} positions do not make whole time points "
               f"({what}; no time, echo or image-type key tells the {extra} extra images apart)")
    if duplicates == "refuse":
        series.refused = (f"{message}; refused: pass duplicates='first' (convert --duplicates first) "
                          f"to keep the first {n_t} image(s) at each position")
        return [], []
    series.problems.append(f"{message}; kept the first {n_t} image(s) at each position")
    volumes = [[g[t] for g in groups] for t in range(n_t)]
    used = {(f.path, f.frame) for vol in volumes for f in vol}
    left = [f for g in groups for f in g[n_t:]]
    used_paths = {p for p, _ in used}
    series.frames = [f for f in series.frames if (f.path, f.frame) in used]
    return volumes, sorted({f.path for f in left} - used_paths)


def _resolve_mosaic(series: DicomSeries) -> list[tuple[str, str, str]]:
    """Mosaic files: one volume each; several files at different times make a 4-D series."""
    frames = sorted(series.frames, key=lambda f: (f.time, f.instance))
    volumes = [[f] for f in frames]
    series.volumes = volumes
    series.is_4d = len(volumes) > 1
    lps = frames[0].mosaic_affine
    assert lps is not None
    series.affine = LPS_TO_RAS @ lps
    series.spacing = tuple(float(v) for v in np.linalg.norm(lps[:3, :3], axis=0))  # type: ignore[assignment]
    return []


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
    """Images without position/orientation (ultrasound stills, clips, secondary captures):
    stacked in InstanceNumber (frame) order, assumed axial and centred on the origin, as
    dcm2niix places them."""
    series.problems.append("no ImagePositionPatient/ImageOrientationPatient: images stacked in "
                           "InstanceNumber (frame) order, orientation unknown (assumed axial, centred)")
    frames = sorted(frames, key=lambda f: (f.instance, f.frame or 0))
    series.volumes = [frames]
    ps = frames[0].pixel_spacing or (1.0, 1.0)
    dz = frames[0].thickness or 1.0
    series.spacing = (float(ps[1]), float(ps[0]), float(dz))
    size = np.array([frames[0].cols, frames[0].rows, len(frames)], float)
    lps = np.diag([ps[1], ps[0], dz, 1.0])
    lps[:3, 3] = -(size - 1) / 2 * np.array(series.spacing)
    series.affine = LPS_TO_RAS @ lps


# --------------------------------------------------------------------------------- decoding

_DTYPES = {(8, 0): "<u1", (8, 1): "<i1", (16, 0): "<u2", (16, 1): "<i2", (32, 0): "<u4", (32, 1): "<i4"}


def _decode(path: str, ds: Any | None = None) -> np.ndarray:
    """Pixel data of a file as stored (``[rows, cols]`` or ``[frames, rows, cols]``).

    Uncompressed little-endian data is viewed straight from the bytes; everything else
    (big endian, JPEG, JPEG-LS, JPEG 2000, RLE, ...) goes through pydicom's decoders
    (pylibjpeg / Pillow plugins). Colour pixels come as RGB ``[..., rows, cols, 3]``.

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
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        if (ts in _FAST_SYNTAXES and dtype is not None and "PixelData" in ds and samples == 1
                and (stored == bits or not signed)):
            count = n_frames * rows * cols
            raw = np.frombuffer(ds.PixelData, dtype=dtype, count=count)
            if stored != bits:
                raw = raw & np.array((1 << stored) - 1, dtype=dtype)
            return raw.reshape((n_frames, rows, cols) if n_frames > 1 else (rows, cols))
        return np.asarray(ds.pixel_array)  # colour: RGB (YBR converted), samples last
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - decoder plugins raise many types
        ts_name = getattr(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None), "name", "?")
        msg = redact(str(exc)) or type(exc).__name__
        raise DataError(path, f"cannot decode pixel data ({ts_name}): {msg}") from None
