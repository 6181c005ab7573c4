"""Generate ``sample_data/medical/``: synthetic CT DICOM series and NIfTI volumes with lesions.

Deterministic (fixed seeds, fixed UIDs, gzip without timestamps): running it again writes the
same bytes. Usage::

    python sample_data/make_medical.py            # writes sample_data/medical/
    python sample_data/make_medical.py --out DIR
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
from pydicom.uid import RLELossless
from ssl_domains_medical.loaders.dicom_series import DELIBERATELY_BROKEN
from ssl_domains_medical.loaders.synthetic import AXIAL, ct_phantom, write_ct_series

HERE = Path(__file__).resolve().parent

# (folder, spacing (slice, row, col) mm, orientation, transfer syntax, suffix, lesions (zyx voxel centre, radius))
DICOM_SERIES = [
    ("study_a/series_1", (2.0, 1.0, 1.0), AXIAL, None, ".dcm", [((10, 20, 18), 4.0)]),
    ("study_a/series_2_nosuffix", (2.5, 0.8, 0.8), AXIAL, None, "", [((14, 28, 30), 5.0)]),
    ("study_b/series_rle", (2.0, 0.9, 0.9), AXIAL, RLELossless, ".dcm", [((8, 18, 28), 4.0), ((16, 30, 16), 3.0)]),
    # coronal-ish oblique: rows along +x, columns tilted from -z towards +y
    ("study_b/oblique", (2.0, 1.0, 1.0), (1.0, 0.0, 0.0, 0.0, 0.258819, -0.965926), None, ".dcm", []),
]
DICOM_SHAPE = (24, 48, 48)  # slices, rows, cols
NIFTI_SHAPE = (32, 32, 32)
N_LABELED = 16
N_TRAIN = 12
N_UNLABELED = 8


def _save_nifti(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    """Save .nii.gz with a zero gzip timestamp so reruns are byte-identical."""
    img = nib.Nifti1Image(array, affine)
    img.header.set_xyzt_units("mm")
    img.header.set_qform(affine, code=1)
    img.header.set_sform(affine, code=1)
    with gzip.GzipFile(path, "wb", mtime=0, compresslevel=9) as fh:
        fh.write(img.to_bytes())


def _affine(spacing: float, lps: bool) -> np.ndarray:
    """RAS affine of a volume centred on the origin; ``lps`` stores x and y flipped."""
    aff = np.diag([spacing, spacing, spacing, 1.0])
    if lps:
        aff[0, 0] = aff[1, 1] = -spacing
    aff[:3, 3] = -np.diag(aff)[:3] * (np.asarray(NIFTI_SHAPE) - 1) / 2
    return aff


def make_dicom(out: Path) -> list[dict]:
    lesions_out = []
    for i, (folder, spacing, orientation, ts, suffix, lesions) in enumerate(DICOM_SERIES):
        vol = ct_phantom(DICOM_SHAPE, lesions, seed=100 + i)
        paths = write_ct_series(out / "dicom" / folder, vol, spacing=spacing, orientation=orientation,
                                origin=(-24.0, -24.0, 10.0 * i), seed=100 + i, transfer_syntax=ts,
                                suffix=suffix)
        lesions_out.append({"folder": f"dicom/{folder}", "files": len(paths),
                            "lesions_zyx_voxel": [{"centre": list(c), "radius": r} for c, r in lesions]})
    (out / "dicom" / "NOTES.txt").write_text("Not a DICOM file: scanners and PACS exports often leave "
                                            "such files next to the images; loaders ignore it.\n")
    good = sorted((out / "dicom" / "study_a" / "series_1").iterdir())[0].read_bytes()
    # truncated header, marked as broken on purpose (the loader's skip reason says so)
    (out / "dicom" / "study_b" / "corrupt.dcm").write_bytes(DELIBERATELY_BROKEN.ljust(128, b"\0") + good[128:400])
    return lesions_out


def _leave_background(centre: tuple[float, ...], radius: float, half: int = NIFTI_SHAPE[0] // 2) -> tuple[float, ...]:
    """``centre``, moved along one axis (the one needing the least move) when the lesion
    crosses the mid-plane of every axis: then no patch of half the volume's edge (the demo's
    16^3 patches of 32^3 cases) misses it, and the case has no background patch to sample."""
    if any(c + radius < half or c - radius >= half for c in centre):
        return centre
    moved = [half - 0.5 - radius if c < half else half + radius for c in centre]
    axis = int(np.argmin([abs(m - c) for m, c in zip(moved, centre)]))
    return tuple(moved[a] if a == axis else c for a, c in enumerate(centre))


def _lesion_case(rng: np.random.Generator, with_lesion: bool,
                 background: bool = False) -> tuple[np.ndarray, np.ndarray, list]:
    lesions = []
    if with_lesion:
        radius = float(rng.uniform(3.0, 5.0))
        centre = tuple(float(v) for v in rng.uniform(10, 22, size=3))
        lesions.append((_leave_background(centre, radius) if background else centre, radius))
    vol = ct_phantom(NIFTI_SHAPE, lesions, seed=int(rng.integers(1 << 30)))
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in NIFTI_SHAPE], indexing="ij"))
    mask = np.zeros(NIFTI_SHAPE, np.uint8)
    for centre, radius in lesions:
        d2 = sum((grid[a] - centre[a]) ** 2 for a in range(3))
        mask[d2 <= radius**2] = 1
    return vol, mask, [{"centre": list(c), "radius": r} for c, r in lesions]


def make_nifti(out: Path) -> list[dict]:
    rng = np.random.default_rng(7)
    folder = out / "nifti"
    folder.mkdir(parents=True, exist_ok=True)
    rows, info = [], []
    for i in range(N_LABELED):
        label = i % 2
        vol, mask, lesions = _lesion_case(rng, bool(label), background=True)
        # arrays are [z, y, x] from the phantom; store as [x, y, z]; every 4th case in LPS order
        lps = i % 4 == 3
        arr = vol.transpose(2, 1, 0).astype(np.float32)
        msk = mask.transpose(2, 1, 0)
        if lps:
            arr, msk = arr[::-1, ::-1].copy(), msk[::-1, ::-1].copy()
        name = f"case_{i:02d}"
        _save_nifti(arr, _affine(1.5, lps), folder / f"{name}.nii.gz")
        _save_nifti(msk, _affine(1.5, lps), folder / f"{name}_mask.nii.gz")
        rows.append({"case_id": name, "image": f"{name}.nii.gz", "mask": f"{name}_mask.nii.gz",
                     "label": label})
        info.append({"case_id": name, "label": label, "lps_storage": lps,
                     "lesions_zyx_voxel_before_storage": lesions})
    # labels.csv: every case; the demo fine-tunes on train.csv (the first 12) and tests on test.csv
    for name, part in (("labels.csv", rows), ("train.csv", rows[:N_TRAIN]), ("test.csv", rows[N_TRAIN:])):
        with open(folder / name, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["case_id", "image", "mask", "label"])
            writer.writeheader()
            writer.writerows(part)
    return info


def make_unlabeled(out: Path) -> None:
    rng = np.random.default_rng(11)
    folder = out / "unlabeled"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(N_UNLABELED):
        vol, _, _ = _lesion_case(rng, bool(rng.integers(2)))
        _save_nifti(vol.transpose(2, 1, 0).astype(np.int16), _affine(1.5, False),
                    folder / f"scan_{i:02d}.nii.gz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "medical")
    args = parser.parse_args()
    out: Path = args.out
    for sub in ("dicom", "nifti", "unlabeled"):
        shutil.rmtree(out / sub, ignore_errors=True)
    truth = {"dicom": make_dicom(out), "nifti": make_nifti(out)}
    make_unlabeled(out)
    (out / "ground_truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
