"""Synthetic CT: a phantom with spherical lesions, DICOM writers (classic and enhanced) and a
CT-like noise volume written as NIfTI.

Used by ``sample_data/make_medical.py``, the tests and ``benchmarks/dicom_loading.py``. All
UIDs derive from a seed, so the same arguments write the same files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian

__all__ = ["ct_phantom", "write_noise_nifti", "write_ct_series", "write_enhanced_ct", "write_enhanced_mr", "write_colour_image", "AXIAL"]

#: Axial ImageOrientationPatient: rows run to patient left (+x), columns to posterior (+y).
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def _uid(text: str) -> str:
    """Deterministic UID under the 2.25 (UUID-derived) root."""
    return "2.25." + str(int(hashlib.sha256(text.encode()).hexdigest()[:32], 16))


def ct_phantom(
    shape: Sequence[int],
    lesions: Sequence[tuple[Sequence[float], float]] = (),
    seed: int = 0,
    noise_hu: float = 12.0,
    lesion_hu: float = 70.0,
) -> np.ndarray:
    """A CT-like volume in HU: air, an elliptic body (fat rim, soft tissue), a bright "spine".

    Args:
        shape: Array shape ``(slices, rows, cols)`` (or ``(rows, cols)`` for 2-D).
        lesions: ``(centre, radius)`` in voxel units (centre in array index order).
        seed: Noise seed.
        noise_hu: Noise standard deviation.
        lesion_hu: Lesion contrast added to soft tissue.

    Returns:
        int16 HU array of ``shape``.
    """
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in shape)
    grid = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij")
    rows, cols = grid[-2], grid[-1]
    cy, cx = (shape[-2] - 1) / 2, (shape[-1] - 1) / 2
    r2 = ((rows - cy) / (0.42 * shape[-2])) ** 2 + ((cols - cx) / (0.46 * shape[-1])) ** 2
    hu = np.full(shape, -1000.0, np.float32)
    hu[r2 < 1.0] = -90.0  # fat rim
    hu[r2 < 0.8] = 40.0  # soft tissue
    spine = ((rows - (cy + 0.25 * shape[-2])) ** 2 + (cols - cx) ** 2) < (0.08 * shape[-1]) ** 2
    hu[spine] = 700.0
    for centre, radius in lesions:
        d2 = sum((g - float(c)) ** 2 for g, c in zip(grid, centre))
        hu[d2 <= radius**2] += lesion_hu
    hu += rng.normal(0.0, noise_hu, shape).astype(np.float32)
    return np.clip(np.round(hu), -1024, 3071).astype(np.int16)


def write_noise_nifti(
    path: str | Path,
    shape: Sequence[int],
    rng: np.random.RandomState,
    spacing: Sequence[float],
    low: float = -200.0,
) -> None:
    """Write a CT-like volume of uniform noise in ``[low, low + 600)`` HU as float32 NIfTI.

    Args:
        path: Output file (``.nii.gz``).
        shape: Array shape.
        rng: Draws the values (one ``rng.rand(*shape)``, so a sequence of calls is reproducible).
        spacing: Voxel spacing in mm, one per axis (the affine's diagonal).
        low: Lowest value.
    """
    import nibabel as nib

    data = (rng.rand(*shape) * 600 + low).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.diag([*map(float, spacing), 1.0])), str(path))


def _base_dataset(series_uid: str, study_uid: str, sop_uid: str, patient_name: str,
                  modality: str, sop_class: str = CTImageStorage) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = study_uid + ".1"
    ds.PatientName = patient_name
    ds.PatientID = "DEMO-0001"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyDate = "20240101"
    ds.StudyTime = "120000"
    ds.AccessionNumber = "DEMO-ACC-1"
    ds.Modality = modality
    ds.Manufacturer = "ssl-domains synthetic"
    ds.SeriesNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.WindowCenter = 40
    ds.WindowWidth = 400
    return ds


def _normal(orientation: Sequence[float]) -> np.ndarray:
    """The slice normal of an ImageOrientationPatient (row x column direction)."""
    return np.cross(np.asarray(orientation[:3], float), np.asarray(orientation[3:], float))


def _slice_positions(n: int, origin: Sequence[float], spacing: float,
                     normal: np.ndarray) -> np.ndarray:
    """ImagePositionPatient of ``n`` slices ``spacing`` mm apart from ``origin`` along
    ``normal``: ``[n, 3]``."""
    return np.stack([np.asarray(origin, float) + k * spacing * normal for k in range(n)])


def _shared_groups(orientation: Sequence[float], pixel_spacing: Sequence[float],
                   slice_thickness: float) -> Dataset:
    """An enhanced file's shared functional group: orientation and pixel measures."""
    shared = Dataset()
    ori = Dataset()
    ori.ImageOrientationPatient = [float(v) for v in orientation]
    meas = Dataset()
    meas.PixelSpacing = [float(pixel_spacing[0]), float(pixel_spacing[1])]
    meas.SliceThickness = float(slice_thickness)
    shared.PlaneOrientationSequence = DicomSequence([ori])
    shared.PixelMeasuresSequence = DicomSequence([meas])
    return shared


def _frame_at(position: Sequence[float]) -> Dataset:
    """An enhanced file's per-frame functional group item placing the frame at ``position``."""
    item = Dataset()
    pos = Dataset()
    pos.ImagePositionPatient = [round(float(v), 4) for v in position]
    item.PlanePositionSequence = DicomSequence([pos])
    return item


def write_ct_series(
    folder: str | Path,
    volume_hu: np.ndarray,
    *,
    spacing: Sequence[float] = (2.0, 1.0, 1.0),
    origin: Sequence[float] = (-24.0, -24.0, 0.0),
    orientation: Sequence[float] = AXIAL,
    seed: int = 0,
    patient_name: str = "DEMO^PATIENT",
    modality: str = "CT",
    positions: Sequence[Sequence[float]] | None = None,
    per_slice: Sequence[dict[str, Any]] | None = None,
    shuffle: bool = True,
    transfer_syntax: str | None = None,
    suffix: str = ".dcm",
    series_uid: str | None = None,
) -> list[Path]:
    """Write a volume as one single-frame DICOM file per slice.

    Args:
        folder: Output folder (created).
        volume_hu: ``[slices, rows, cols]`` values in HU; stored as int16 ``HU + 1024`` with
            RescaleIntercept -1024.
        spacing: ``(slice spacing, row spacing, column spacing)`` in mm.
        origin: ImagePositionPatient of slice 0 (LPS mm).
        orientation: ImageOrientationPatient.
        seed: Seeds the UIDs (same seed, same UIDs).
        patient_name: Fake PatientName written to every header.
        modality: DICOM Modality.
        positions: Explicit ImagePositionPatient per slice (overrides origin/spacing).
        per_slice: Extra attributes per slice (e.g. ``{"TemporalPositionIdentifier": 2}``).
        shuffle: Shuffle InstanceNumbers and file names so that neither gives slice order.
        transfer_syntax: Compress with this transfer syntax (e.g. RLE Lossless), or None.
        suffix: File name suffix ("" for files without extension).
        series_uid: SeriesInstanceUID (default: derived from ``seed``).

    Returns:
        Paths written, in slice order.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n, rows, cols = volume_hu.shape
    rng = np.random.default_rng(seed)
    study_uid = _uid(f"study-{seed}")
    series_uid = series_uid or _uid(f"series-{seed}")
    normal = _normal(orientation)
    at = positions if positions is not None else _slice_positions(n, origin, spacing[0], normal)
    order = rng.permutation(n) if shuffle else np.arange(n)
    stored = (np.asarray(volume_hu, np.int32) + 1024).clip(-32768, 32767).astype(np.int16)
    paths = []
    for k in range(n):
        sop_uid = _uid(f"sop-{seed}-{k}")
        ds = _base_dataset(series_uid, study_uid, sop_uid, patient_name, modality)
        pos = at[k]
        ds.ImagePositionPatient = [round(float(v), 4) for v in pos]
        ds.ImageOrientationPatient = [float(v) for v in orientation]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[2])]
        ds.SliceThickness = float(spacing[0])
        ds.SliceLocation = round(float(normal @ np.asarray(pos, float)), 4)
        ds.InstanceNumber = int(order[k]) + 1
        ds.AcquisitionNumber = 1
        ds.Rows, ds.Columns = rows, cols
        for key, value in (per_slice[k] if per_slice else {}).items():
            setattr(ds, key, value)
        ds.PixelData = stored[k].tobytes()
        if transfer_syntax is not None:
            ds.compress(transfer_syntax, stored[k], generate_instance_uid=False)
        path = folder / f"IM{int(order[k]) + 1:04d}{suffix}"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_enhanced_ct(
    path: str | Path,
    volume_hu: np.ndarray,
    *,
    spacing: Sequence[float] = (2.0, 1.0, 1.0),
    origin: Sequence[float] = (-24.0, -24.0, 0.0),
    orientation: Sequence[float] = AXIAL,
    seed: int = 0,
    reverse_frames: bool = True,
) -> Path:
    """Write a volume as one enhanced (multi-frame) CT file with per-frame positions.

    Args:
        path: Output file.
        volume_hu: ``[slices, rows, cols]`` in HU.
        spacing: ``(slice, row, column)`` spacing in mm.
        origin: Position of slice 0 (LPS mm).
        orientation: ImageOrientationPatient (shared functional group).
        seed: Seeds the UIDs.
        reverse_frames: Store frames from the last slice to the first (the reader must
            sort by position).

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n, rows, cols = volume_hu.shape
    ds = _base_dataset(_uid(f"series-{seed}"),
                       _uid(f"study-{seed}"),
                       _uid(f"sop-{seed}"), "DEMO^ENHANCED", "CT",
                       sop_class="1.2.840.10008.5.1.4.1.1.2.1")
    del ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType
    frame_order = list(range(n))[::-1] if reverse_frames else list(range(n))
    shared = _shared_groups(orientation, spacing[1:], spacing[0])
    pvt = Dataset()
    pvt.RescaleIntercept = -1024
    pvt.RescaleSlope = 1
    pvt.RescaleType = "HU"
    shared.PixelValueTransformationSequence = DicomSequence([pvt])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    stack = _slice_positions(n, origin, spacing[0], _normal(orientation))
    per_frame = [_frame_at(stack[k]) for k in frame_order]
    stored = (np.asarray(volume_hu, np.int32) + 1024).astype(np.int16)[frame_order]
    _save_multiframe(ds, per_frame, rows, cols, stored, path)
    return path



def write_enhanced_mr(
    path: str | Path,
    frames: np.ndarray,
    positions: Sequence[Sequence[float]],
    frame_types: Sequence[str],
    *,
    spacing: Sequence[float] = (1.0, 1.0),
    orientation: Sequence[float] = AXIAL,
    echo_times: Sequence[float] | None = None,
    seed: int = 0,
) -> Path:
    """Write frames as one enhanced MR file (Philips style): per-frame position and image type.

    Args:
        path: Output file.
        frames: ``[frames, rows, cols]`` stored values (uint16 range).
        positions: ImagePositionPatient of each frame (LPS mm).
        frame_types: ComplexImageComponent of each frame (``"MAGNITUDE"``, ``"PHASE"``, ...).
        spacing: PixelSpacing ``(row, column)`` in mm.
        orientation: ImageOrientationPatient (shared functional group).
        echo_times: EffectiveEchoTime of each frame, or None.
        seed: Seeds the UIDs.

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n, rows, cols = frames.shape
    ds = _base_dataset(_uid(f"series-{seed}"), _uid(f"study-{seed}"), _uid(f"sop-{seed}"),
                       "DEMO^ENHANCED", "MR", sop_class="1.2.840.10008.5.1.4.1.1.4.1")
    del ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType
    ds.PixelRepresentation = 0
    ds.ImageType = ["ORIGINAL", "PRIMARY", "MIXED", "NONE"]
    ds.SharedFunctionalGroupsSequence = DicomSequence([_shared_groups(orientation, spacing, 2.0)])
    per_frame = []
    for k in range(n):
        item = _frame_at(positions[k])
        ftype = Dataset()
        component = str(frame_types[k]).upper()
        ftype.FrameType = ["ORIGINAL", "PRIMARY", component[0] if component != "MAGNITUDE" else "M", "NONE"]
        ftype.ComplexImageComponent = component
        item.MRImageFrameTypeSequence = DicomSequence([ftype])
        content = Dataset()
        content.InStackPositionNumber = k + 1
        item.FrameContentSequence = DicomSequence([content])
        if echo_times is not None:
            echo = Dataset()
            echo.EffectiveEchoTime = float(echo_times[k])
            item.MREchoSequence = DicomSequence([echo])
        pvt = Dataset()
        pvt.RescaleIntercept = 0
        pvt.RescaleSlope = 1
        pvt.RescaleType = "US"
        item.PixelValueTransformationSequence = DicomSequence([pvt])
        per_frame.append(item)
    _save_multiframe(ds, per_frame, rows, cols, np.asarray(frames, np.uint16), path)
    return path


def write_colour_image(
    path: str | Path,
    rgb: np.ndarray,
    *,
    photometric: str = "RGB",
    transfer_syntax: str | None = None,
    seed: int = 0,
    modality: str = "US",
    series_uid: str | None = None,
    instance: int = 1,
    position: Sequence[float] | None = None,
    planar: int = 0,
) -> Path:
    """Write an 8-bit colour image (``[rows, cols, 3]``) or clip (``[frames, rows, cols, 3]``).

    Args:
        path: Output file.
        rgb: RGB values (uint8).
        photometric: Stored colour space: ``"RGB"``, ``"YBR_FULL"`` (converted here) or, with
            ``transfer_syntax`` JPEG Baseline, ``"YBR_FULL_422"`` (Pillow's 4:2:2 JPEG);
            JPEG 2000 stores ``"YBR_RCT"`` (lossless) or ``"YBR_ICT"`` (lossy).
        transfer_syntax: None (Explicit VR Little Endian), RLE Lossless, JPEG Baseline
            (1.2.840.10008.1.2.4.50), JPEG 2000 Lossless (1.2.840.10008.1.2.4.90, stored as
            YBR_RCT) or JPEG 2000 (.91, lossy 4:1, YBR_ICT); JPEG 2000 needs at least 64x64
            pixels (OpenJPEG).
        seed: Seeds the UIDs.
        modality: DICOM Modality (ultrasound by default).
        series_uid: SeriesInstanceUID (default: derived from ``seed``).
        instance: InstanceNumber.
        position: ImagePositionPatient (with an axial orientation and 0.1 mm pixels), or None
            (ultrasound stills carry none).
        planar: PlanarConfiguration of uncompressed data (0: RGBRGB..., 1: RR..GG..BB..).

    Returns:
        ``path``.
    """
    import io

    from PIL import Image
    from pydicom.encaps import encapsulate
    from pydicom.pixels import convert_color_space
    from pydicom.uid import JPEG2000, JPEG2000Lossless, JPEGBaseline8Bit, RLELossless

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.asarray(rgb, np.uint8)
    clip = rgb.ndim == 4
    n = rgb.shape[0] if clip else 1
    rows, cols = rgb.shape[-3], rgb.shape[-2]
    ds = _base_dataset(series_uid or _uid(f"series-{seed}"), _uid(f"study-{seed}"),
                       _uid(f"sop-{seed}-{instance}"), "DEMO^COLOUR", modality,
                       sop_class="1.2.840.10008.5.1.4.1.1.6.1" if not clip else "1.2.840.10008.5.1.4.1.1.3.1")
    del ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType, ds.WindowCenter, ds.WindowWidth
    ds.SamplesPerPixel = 3
    ds.PlanarConfiguration = planar
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.Rows, ds.Columns = rows, cols
    ds.InstanceNumber = instance
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    if clip:
        ds.NumberOfFrames = n
    if position is not None:
        ds.ImagePositionPatient = [float(v) for v in position]
        ds.ImageOrientationPatient = list(AXIAL)
        ds.PixelSpacing = [0.1, 0.1]
    frames = rgb.reshape(n, rows, cols, 3)
    if transfer_syntax == JPEGBaseline8Bit:
        chunks = []
        for f in frames:
            buf = io.BytesIO()
            Image.fromarray(f, "RGB").save(buf, "JPEG", quality=95, subsampling=1)  # 4:2:2
            chunks.append(buf.getvalue())
        ds.PhotometricInterpretation = "YBR_FULL_422"
        ds.PlanarConfiguration = 0
        ds.PixelData = encapsulate(chunks)
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.LossyImageCompression = "01"
    elif transfer_syntax in (RLELossless, JPEG2000Lossless, JPEG2000):
        ds.PhotometricInterpretation = "RGB"
        ds.PixelData = frames.tobytes()
        lossy = transfer_syntax == JPEG2000
        if lossy:
            ds.compress(transfer_syntax, rgb, generate_instance_uid=False, j2k_cr=[4])
        else:
            ds.compress(transfer_syntax, rgb, generate_instance_uid=False)
        if transfer_syntax != RLELossless:  # colour transform in the codestream (RCT / ICT)
            ds.PhotometricInterpretation = "YBR_ICT" if lossy else "YBR_RCT"
    else:
        stored = convert_color_space(frames, "RGB", "YBR_FULL") if photometric == "YBR_FULL" else frames
        ds.PhotometricInterpretation = photometric
        if planar:
            stored = stored.transpose(0, 3, 1, 2)
        ds.PixelData = np.ascontiguousarray(stored).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def _save_multiframe(ds: Dataset, per_frame: list[Dataset], rows: int, cols: int,
                     pixels: np.ndarray, path: Path) -> None:
    """Per-frame groups, frame count, size and pixels ``[frames, rows, cols]`` of an enhanced
    multi-frame file, then write it."""
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    ds.NumberOfFrames = len(per_frame)
    ds.Rows, ds.Columns = rows, cols
    ds.InstanceNumber = 1
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)
