"""Scan speed: a folder of DICOM files -> stacks (``scan_dicom``, header only), in series/s.

Writes (or takes) a folder of about 1,000 files — 3-D CT series, GE-style 4-D series without
temporal tags (positions repeat per time point), multi-echo and magnitude/phase MR series, all
at 64x64 — and times ``scan_dicom`` (read every header, split series into stacks, order slices,
find time points, geometry and problems) against the floor of reading the same headers with
``pydicom.dcmread(stop_before_pixels=True)`` alone.

Usage::

    python benchmarks/dicom_scan.py                 # 1,000 synthetic files
    python benchmarks/dicom_scan.py --dir path/to/folder --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _write(folder: Path) -> None:
    from ssl_domains_medical.loaders.synthetic import ct_phantom, write_ct_series

    vol = ct_phantom((50, 64, 64), seed=0)
    for s in range(12):  # 12 x 50 = 600 files of 3-D CT
        write_ct_series(folder / f"ct{s}", vol, seed=100 + s)
    for s in range(2):  # 2 x 100: GE-style 4-D, 10 positions x 10 time points
        data = np.concatenate([vol[:10] + t for t in range(10)])
        write_ct_series(folder / f"ge4d{s}", data, modality="MR", shuffle=False, seed=200 + s,
                        positions=[(0.0, 0.0, 3.0 * (k % 10)) for k in range(100)])
    me = np.concatenate([vol[:25], vol[:25] + 50])
    for s in range(2):  # 2 x 50: two echoes of 25 slices
        write_ct_series(folder / f"echo{s}", me, modality="MR", seed=300 + s,
                        positions=[(0.0, 0.0, 2.0 * (k % 25)) for k in range(50)],
                        per_slice=[{"EchoNumbers": 1 + k // 25} for k in range(50)])
    for s in range(2):  # 2 x 50: magnitude + phase of 25 slices
        write_ct_series(folder / f"phase{s}", me, modality="MR", seed=400 + s,
                        positions=[(0.0, 0.0, 2.0 * (k % 25)) for k in range(50)],
                        per_slice=[{"ImageType": ["ORIGINAL", "PRIMARY", "M" if k < 25 else "P"]}
                                   for k in range(50)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="a folder of DICOM files")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import pydicom
    from ssl_domains_medical.loaders.dicom_series import scan_dicom

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir
        if folder is None:
            folder = Path(tmp) / "dicom"
            _write(folder)
        files = sorted(Path(d) / f for d, _, fs in os.walk(folder) for f in fs)
        scan = scan_dicom(folder)  # warm-up: imports, page cache
        n_series = len({s.group for s in scan.series.values()})
        print(f"folder: {folder} ({len(files)} files, {n_series} series -> {len(scan.series)} stacks, "
              f"{sum(s.is_4d for s in scan.series.values())} of them 4-D)")
        t_scan, t_floor = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            scan_dicom(folder)
            t1 = time.perf_counter()
            for f in files:
                pydicom.dcmread(f, stop_before_pixels=True)
            t2 = time.perf_counter()
            t_scan.append(t1 - t0)
            t_floor.append(t2 - t1)
    m_scan, m_floor = statistics.median(t_scan), statistics.median(t_floor)
    print(f"scan_dicom       : median {m_scan * 1e3:8.1f} ms  -> {n_series / m_scan:6.1f} series/s, "
          f"{len(files) / m_scan:7.0f} files/s")
    print(f"dcmread (headers): median {m_floor * 1e3:8.1f} ms  -> {len(files) / m_floor:7.0f} files/s "
          f"(the floor: reading the headers alone)")
    print(f"scan / floor: {m_scan / m_floor:.2f}x")


if __name__ == "__main__":
    main()
