"""Archive scale: prepare time, patches/s per worker and peak RSS of the training data path.

Writes synthetic CT studies of realistic size (``--size`` x ``--size`` x ``--slices`` int16 HU,
0.7 x 0.7 x 1.25 mm, as ``.nii.gz`` and as DICOM series) and measures, side by side in one run:

1. ``formats``: one prepared volume as a NumPy memory-mapped array, Blosc2 NDArray (what the
   store uses) and zarr (when importable): size on disk and 64^3 patches/s (warm page cache
   and with the file's pages dropped before each read, ``posix_fadvise(DONTNEED)``).
2. ``prepare``: ``ssl-domains medical prepare``'s :func:`prepare_store` over the NIfTI and the
   DICOM studies (resampled to 1.5 mm, soft-tissue window) with 1 and 2 processes: seconds per
   study and the speed-up.
3. ``throughput``: 64^3 patches/s of one worker (one process, no DataLoader workers) from the
   store (``prepared`` loader), from MONAI ``PersistentDataset`` and ``CacheDataset`` (same
   preprocessing, warm cache), and from the ``nifti`` loader with ``cache: none`` (today's
   path without a cache).
4. ``rss``: peak RSS of one epoch of the training data path (one 64^3 patch per volume) at
   N = ``--rss-counts`` studies, each in a fresh process, for the same paths plus the
   ``nifti`` loader's bounded memory cache. These studies are smaller (``--rss-size``) and
   are symlinks to ``--rss-distinct`` distinct files (disk and time); the store is prepared
   from the N links (N entries).

Usage::

    python benchmarks/archive_scale.py --out /tmp/archive            # the RESULTS.md run
    python benchmarks/archive_scale.py --out /tmp/a --size 128 --slices 60 --studies 2 \
        --rss-counts 20,40 --quick                                   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

SPACING = (0.7, 0.7, 1.25)  # mm: rows, cols, slices of the synthetic studies
TARGET = [1.5, 1.5, 1.5]
PATCH = 64
WINDOW = (-160.0, 240.0)


# ------------------------------------------------------------------------------ data
def write_studies(folder: Path, n: int, size: int, slices: int, dicom: bool) -> tuple[Path, Path | None]:
    """``n`` synthetic CT studies as ``nifti/ct_XXX.nii.gz`` (and ``dicom/ct_XXX/``)."""
    import nibabel as nib
    from ssl_domains_medical.loaders.synthetic import ct_phantom, write_ct_series

    nii, dcm = folder / "nifti", folder / "dicom"
    nii.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        path = nii / f"ct_{i:03d}.nii.gz"
        if path.exists() and (not dicom or (dcm / f"ct_{i:03d}").exists()):
            continue
        hu = ct_phantom((slices, size, size), lesions=[((slices / 2, size / 3, size / 2), size / 12)], seed=i)
        if dicom:
            write_ct_series(dcm / f"ct_{i:03d}", hu, spacing=(SPACING[2], SPACING[0], SPACING[1]),
                            origin=(-size * SPACING[0] / 2, -size * SPACING[1] / 2, 0.0), seed=i,
                            shuffle=False, series_uid=f"2.25.{1000 + i}")
        xyz = np.ascontiguousarray(np.transpose(hu, (2, 1, 0)))  # [cols, rows, slices]
        nib.save(nib.Nifti1Image(xyz, np.diag([*SPACING, 1.0])), str(path))
    return nii, dcm if dicom else None


def _nifti_args(folder: Path) -> dict[str, Any]:
    return {"path": str(folder), "modality": "CT", "spacing": TARGET, "exclude": None}


def _dicom_args(folder: Path) -> dict[str, Any]:
    return {"root": str(folder), "spacing": TARGET}


def prepare(name: str, args: dict[str, Any], store: Path, workers: int) -> dict[str, Any]:
    from ssl_domains_medical.loaders.dicom import DicomDataset
    from ssl_domains_medical.loaders.nifti import NiftiDataset
    from ssl_domains_medical.loaders.prepare import prepare_store
    from ssl_domains_medical.loaders.store import preprocessing_spec

    cls: Any = NiftiDataset if name == "nifti" else DicomDataset
    shutil.rmtree(store, ignore_errors=True)
    t0 = time.perf_counter()
    ds = cls(**args, cache="none")
    listed = time.perf_counter() - t0
    report = prepare_store(ds, store, preprocessing_spec(name, cls, args), workers=workers)
    return {"studies": report.prepared, "seconds": report.seconds, "list_seconds": listed,
            "per_study": report.seconds / max(report.prepared, 1), "mb": report.bytes_written / 1e6}


# ------------------------------------------------------------------------------ one measured process
def _monai(kind: str, files: list[str], cache_dir: str) -> Any:
    from monai import transforms as mt
    from monai.data import CacheDataset, PersistentDataset

    det = mt.Compose([
        mt.LoadImaged("image", image_only=True), mt.EnsureChannelFirstd("image"),
        mt.Orientationd("image", axcodes="RAS"), mt.Spacingd("image", pixdim=TARGET),
        mt.ScaleIntensityRanged("image", a_min=WINDOW[0], a_max=WINDOW[1], b_min=0.0, b_max=1.0, clip=True),
    ])
    rand = mt.Compose([mt.SpatialPadd("image", spatial_size=PATCH),
                       mt.RandSpatialCropd("image", roi_size=PATCH, random_size=False)])
    pipe = mt.Compose([*det.transforms, *rand.transforms])
    data = [{"image": f} for f in files]
    if kind == "persistent":
        return PersistentDataset(data, pipe, cache_dir=cache_dir)
    return CacheDataset(data, pipe, cache_rate=1.0, num_workers=0, progress=False)


def peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``: unlike ``ru_maxrss`` it does not carry
    the parent's peak across fork and exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Build one data path and read ``items`` items in order (one epoch when ``items`` is 0)."""
    import torch

    torch.set_num_threads(1)
    kind = spec["kind"]
    base_rss = peak_rss_mb()
    t0 = time.perf_counter()
    if kind == "store":
        from ssl_domains_medical.loaders.prepared import PreparedDataset

        ds: Any = PreparedDataset(spec["store"], {"name": "nifti", "args": spec["source"]},
                                  patch_size=PATCH, seed=0)
    elif kind in ("none", "memory"):
        from ssl_domains_medical.loaders.nifti import NiftiDataset

        ds = NiftiDataset(**spec["source"], patch_size=PATCH, cache=kind,
                          cache_bytes=spec.get("cache_bytes", "auto"))
    else:
        files = sorted(str(p) for p in Path(spec["source"]["path"]).glob("*.nii.gz"))
        ds = _monai(kind, files, spec.get("cache_dir", ""))
    build = time.perf_counter() - t0
    n = len(ds)
    items = spec.get("items") or n
    order = [i % n for i in range(items)]
    if spec.get("warm"):  # fill the on-disk cache first, not timed
        for i in sorted(set(order)):
            ds[i]
    ds[order[-1]]  # imports and first-use set-up, not timed
    t0 = time.perf_counter()
    for i in order:
        item = ds[i]
        assert tuple(item["image"].shape[-3:]) == (PATCH,) * 3, item["image"].shape
    seconds = time.perf_counter() - t0
    return {"kind": kind, "n": n, "items": items, "build_s": build, "seconds": seconds,
            "per_s": items / seconds, "base_rss_mb": base_rss,
            "peak_rss_mb": peak_rss_mb()}


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"child {spec['kind']} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------ formats
def _evict(path: Path) -> None:
    for f in [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]:
        fd = os.open(f, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)


def formats(volume: np.ndarray, folder: Path, reads: int = 200) -> list[dict[str, Any]]:
    import blosc2

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    starts = [tuple(int(rng.integers(0, max(s - PATCH, 0) + 1)) for s in volume.shape) for _ in range(reads)]
    writers: dict[str, Any] = {}
    for dtype in ("float32", "float16"):
        arr = volume.astype(dtype)
        writers[f"npy memmap {dtype}"] = (folder / f"v_{dtype}.npy", lambda p, a=arr: np.save(p, a),
                                          lambda p: np.load(p, mmap_mode="r"))
        writers[f"blosc2 {dtype} (store: chunks 64, blocks 16, LZ4)"] = (
            folder / f"v_{dtype}.b2nd",
            lambda p, a=arr: blosc2.asarray(a, urlpath=str(p), mode="w", chunks=(64,) * 3, blocks=(16,) * 3,
                                            cparams={"codec": blosc2.Codec.LZ4, "clevel": 5,
                                                     "filters": [blosc2.Filter.SHUFFLE], "nthreads": 1}),
            lambda p: blosc2.open(str(p), mode="r", dparams={"nthreads": 1}))
        try:
            import zarr

            def zwrite(p: Path, a: np.ndarray = arr) -> None:
                z = zarr.create_array(str(p), shape=a.shape, dtype=a.dtype, chunks=(64,) * 3, overwrite=True)
                z[:] = a

            writers[f"zarr {zarr.__version__} {dtype} (chunks 64, default codec)"] = (
                folder / f"v_{dtype}.zarr", zwrite, lambda p: zarr.open_array(str(p), mode="r"))
        except ImportError:
            pass
    rows = []
    for name, (path, write, open_) in writers.items():
        t0 = time.perf_counter()
        write(path)
        wrote = time.perf_counter() - t0
        size = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        speeds = []
        for cold in (False, True):
            t0 = time.perf_counter()
            for s in starts:
                if cold:
                    _evict(path)
                np.asarray(open_(path)[s[0]:s[0] + PATCH, s[1]:s[1] + PATCH, s[2]:s[2] + PATCH])
            speeds.append(reads / (time.perf_counter() - t0))
        rows.append({"format": name, "mb": size / 1e6, "write_s": wrote, "warm": speeds[0], "cold": speeds[1]})
        print(f"  {name}: {size / 1e6:.1f} MB, {speeds[0]:.0f}/s warm, {speeds[1]:.0f}/s pages dropped", flush=True)
    return rows


# ------------------------------------------------------------------------------ main
def _links(src: Path, dst: Path, n: int) -> Path:
    files = sorted(src.glob("*.nii.gz"))
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for i in range(n):
        (dst / f"s{i:04d}.nii.gz").symlink_to(files[i % len(files)].resolve())
    return dst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/archive_scale"))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--studies", type=int, default=6, help="realistic-size studies (each format)")
    parser.add_argument("--rss-counts", default="50,200,800")
    parser.add_argument("--rss-size", type=int, default=96, help="rows = cols of the RSS studies")
    parser.add_argument("--rss-slices", type=int, default=64)
    parser.add_argument("--rss-distinct", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="fewer reads (a smoke run)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    os.environ.setdefault("SSL_DOMAINS_ID_KEY", "archive-scale-benchmark")
    out: Path = args.out
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    t0 = time.perf_counter()
    print(f"writing {args.studies} studies {args.size}x{args.size}x{args.slices} as NIfTI and DICOM ...", flush=True)
    nii, dcm = write_studies(out / "studies", args.studies, args.size, args.slices, dicom=True)
    print(f"  {time.perf_counter() - t0:.0f} s", flush=True)

    print("prepare (1 and 2 processes):", flush=True)
    results["prepare"] = {}
    for name, fargs in (("nifti", _nifti_args(nii)), ("dicom", _dicom_args(dcm))):  # type: ignore[arg-type]
        for workers in (1, 2):
            r = prepare(name, fargs, out / f"store_{name}_{workers}", workers)
            results["prepare"][f"{name}/{workers}"] = r
            print(f"  {name}, {workers} process(es): {r['per_study']:.2f} s per study "
                  f"({r['studies']} studies, {r['mb'] / max(r['studies'], 1):.1f} MB each in the store; "
                  f"listing {r['list_seconds']:.1f} s)", flush=True)
        one, two = results["prepare"][f"{name}/1"]["seconds"], results["prepare"][f"{name}/2"]["seconds"]
        results["prepare"][f"{name}/speedup"] = one / two
        print(f"  {name}: 1 -> 2 processes {one / two:.2f}x", flush=True)

    from ssl_domains_medical.loaders.store import VolumeStore

    store = VolumeStore(out / "store_nifti_2")
    rec = store.index()["records"][0]
    print(f"formats (one prepared volume {rec['spatial']}):", flush=True)
    results["formats"] = formats(store.read(rec["key"], "image")[0], out / "formats", 50 if args.quick else 200)

    print("patches/s per worker (64^3, one process):", flush=True)
    src = _nifti_args(nii)
    reads = 2 if args.quick else 4
    many = args.studies * (4 if args.quick else 20)
    specs = {
        "store": {"kind": "store", "store": str(out / "store_nifti_2"), "source": src, "items": many},
        "MONAI PersistentDataset": {"kind": "persistent", "source": src, "cache_dir": str(out / "pcache"),
                                    "items": args.studies * 4, "warm": True},
        "MONAI CacheDataset": {"kind": "cache", "source": src, "items": many},
        "nifti, cache: none": {"kind": "none", "source": src, "items": reads},
    }
    results["throughput"] = {}
    for label, spec in specs.items():
        r = run_child(spec)
        results["throughput"][label] = r
        print(f"  {label}: {r['per_s']:.2f} patches/s ({r['items']} patches; build {r['build_s']:.1f} s; "
              f"peak RSS {r['peak_rss_mb']:.0f} MB)", flush=True)
    shutil.rmtree(out / "pcache", ignore_errors=True)

    print(f"peak RSS of one epoch, studies {args.rss_size}x{args.rss_size}x{args.rss_slices}:", flush=True)
    small, _ = write_studies(out / "small", args.rss_distinct, args.rss_size, args.rss_slices, dicom=False)
    results["rss"] = {}
    for n in [int(v) for v in args.rss_counts.split(",")]:
        folder = _links(small, out / f"links_{n}", n)
        fsrc = _nifti_args(folder)
        prepare("nifti", fsrc, out / f"store_links_{n}", 2)
        paths = {
            "store": {"kind": "store", "store": str(out / f"store_links_{n}"), "source": fsrc},
            "nifti, cache: none": {"kind": "none", "source": fsrc},
            "nifti, cache: memory (auto budget)": {"kind": "memory", "source": fsrc},
            "nifti, cache: memory, cache_bytes 256MB": {"kind": "memory", "source": fsrc, "cache_bytes": "256MB"},
            "MONAI PersistentDataset": {"kind": "persistent", "source": fsrc, "cache_dir": str(out / f"pc_{n}")},
            "MONAI CacheDataset": {"kind": "cache", "source": fsrc},
        }
        for label, spec in paths.items():
            r = run_child(spec)
            results["rss"].setdefault(label, {})[n] = r
            print(f"  N={n} {label}: peak RSS {r['peak_rss_mb']:.0f} MB ({r['per_s']:.1f} patches/s)", flush=True)
        shutil.rmtree(out / f"pc_{n}", ignore_errors=True)
        shutil.rmtree(out / f"store_links_{n}", ignore_errors=True)
    results["seconds"] = time.perf_counter() - t0
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"done in {results['seconds']:.0f} s; {out / 'results.json'}")


if __name__ == "__main__":
    main()
