"""Loader speed: one DICOM series folder -> float32 volume, ours vs MONAI LoadImage(PydicomReader).

Both read the same files in the same process, alternating, several times; the script checks
that both give the same voxels and the same RAS geometry (after reorienting both to the
closest canonical orientation) and prints the time ratio (MONAI time / our time; > 1 means
ours is faster). Ours = ``scan_dicom(folder, keep_pixels=True)`` + ``DicomSeries.load()``
(one pass over the files: group, sort along the normal, rescale to HU).

Usage::

    python benchmarks/dicom_loading.py                      # synthetic CT, 256x256x96 slices
    python benchmarks/dicom_loading.py --size 512 --slices 64 --repeats 5
    python benchmarks/dicom_loading.py --dir path/to/one_series_folder

A synthetic series is written with InstanceNumber in slice order (``--shuffle`` shuffles
it): MONAI's reader orders slices by InstanceNumber, so with shuffled numbers its geometry is
wrong and the check reports it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np


def _ours(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    from ssl_domains_medical.loaders.dicom_series import scan_dicom

    scan = scan_dicom(folder, keep_pixels=True)
    if len(scan.series) != 1:
        raise SystemExit(f"{folder}: expected one series, found {len(scan.series)}")
    return next(iter(scan.series.values())).load()


def _monai(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    from monai.transforms import LoadImage

    img = LoadImage(reader="PydicomReader", image_only=True)(str(folder))
    return np.asarray(img, dtype=np.float32), np.asarray(img.affine, dtype=np.float64)


def _canonical(array: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    return nib.as_closest_canonical(nib.Nifti1Image(array, affine))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="a folder holding one DICOM series")
    parser.add_argument("--size", type=int, default=256, help="synthetic rows = columns")
    parser.add_argument("--slices", type=int, default=96, help="synthetic slices")
    parser.add_argument("--shuffle", action="store_true", help="shuffle InstanceNumbers")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir
        if folder is None:
            from ssl_domains_medical.loaders.synthetic import ct_phantom, write_ct_series

            folder = Path(tmp) / "series"
            vol = ct_phantom((args.slices, args.size, args.size),
                             [((args.slices // 2, args.size // 2, args.size // 3), args.size / 10)])
            write_ct_series(folder, vol, spacing=(1.25, 0.7, 0.7), shuffle=args.shuffle)
        files = [p for p in folder.rglob("*") if p.is_file()]
        print(f"series: {folder} ({len(files)} files, "
              f"{sum(p.stat().st_size for p in files) / 1e6:.1f} MB)")

        _ours(folder), _monai(folder)  # warm-up: imports, page cache
        t_ours, t_monai = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            a_ours, aff_ours = _ours(folder)
            t1 = time.perf_counter()
            a_monai, aff_monai = _monai(folder)
            t2 = time.perf_counter()
            t_ours.append(t1 - t0)
            t_monai.append(t2 - t1)

    c_ours = _canonical(a_ours, aff_ours)
    c_monai = _canonical(a_monai, aff_monai)
    same_shape = c_ours.shape == c_monai.shape
    same_affine = same_shape and np.allclose(c_ours.affine, c_monai.affine, atol=1e-3)
    same_voxels = same_shape and np.array_equal(np.asarray(c_ours.dataobj), np.asarray(c_monai.dataobj))
    m_ours, m_monai = statistics.median(t_ours), statistics.median(t_monai)
    print(f"ours : median {m_ours * 1e3:8.1f} ms  (min {min(t_ours) * 1e3:.1f})  shape {a_ours.shape}")
    print(f"monai: median {m_monai * 1e3:8.1f} ms  (min {min(t_monai) * 1e3:.1f})  shape {a_monai.shape}")
    print(f"geometry: shape {'equal' if same_shape else 'DIFFERENT'}, RAS affine "
          f"{'equal' if same_affine else 'DIFFERENT'}, voxels {'equal' if same_voxels else 'DIFFERENT'}")
    if not same_affine:
        print("ours affine:\n", np.round(c_ours.affine, 4), "\nmonai affine:\n", np.round(c_monai.affine, 4))
    print(f"ratio (monai / ours): {m_monai / m_ours:.2f}x")


if __name__ == "__main__":
    main()
