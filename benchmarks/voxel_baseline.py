"""Few-label 3-D tumour segmentation with the ``voxel_statistics`` baseline on IBSI sarcoma MR-T1.

Training cases: k = 1, 2, 5 drawn without replacement from the first 25 cases with an MR-T1
image (one draw per seed, ``numpy.random.default_rng(seed)``); test set: the last 24 cases with
an image, the same for every run. Each image is downsampled in-plane by 2 (``scipy.ndimage.zoom``,
order 1; masks order 0, so voxels are about 1.95 x 1.95 x 3.27 mm) and scaled by its 1st-99th
percentile to [0, 1] (clipped). The score is the voxel Dice of the probability map at 0.5,
averaged over the test cases; the table gives its mean and standard deviation over the seeds.
Timings are wall-clock on this machine: fit (features of the training cases + classifier) and
predict per test case (features + classifier). Example (the numbers in the lead's report)::

    OMP_NUM_THREADS=1 python benchmarks/voxel_baseline.py                  # about 8 min
    OMP_NUM_THREADS=1 python benchmarks/voxel_baseline.py --variants boosting-30,logistic-C0.01,logistic-sigma8

``centre-only`` is a reference, not a model (:class:`CentreOnly`); ``+centre`` adds the
``center_distance`` feature.

Data: ``../shared/data/sarcoma_ibsi`` (see its SOURCE.md); the script exits with a message when
it is absent.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage
from ssl_domains_medical.segmentation_baseline import VoxelStatistics, center_distance

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sarcoma_ibsi"

#: The classifier variants compared (arguments of VoxelStatistics besides the seed).
VARIANTS: dict[str, dict[str, Any]] = {
    "centre-only": {},  # the CentreOnly reference
    "boosting": {"classifier": "boosting"},
    "logistic": {},  # the default
    "boosting-30": {"classifier": "boosting", "max_iter": 30},
    "logistic-C0.01": {"C": 0.01},
    "logistic-sigma8": {"sigmas": (1.0, 2.0, 4.0, 8.0)},
    "logistic+centre": {"center_distance": True},
}


def load_case(folder: Path, image: str, mask: str, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """``([1, X, Y, Z] float32 in [0, 1], [X, Y, Z] bool)``, downsampled in-plane by ``factor``."""
    import nibabel as nib

    image_file: Any = nib.load(folder / image)
    mask_file: Any = nib.load(folder / mask)
    x = np.asarray(image_file.get_fdata(dtype=np.float32))
    m = np.asarray(mask_file.dataobj) != 0
    if factor > 1:
        zoom = (1 / factor, 1 / factor, 1)
        x = ndimage.zoom(x, zoom, order=1)
        m = ndimage.zoom(m.astype(np.uint8), zoom, order=0) != 0
    lo, hi = np.percentile(x, [1, 99])
    x = np.clip((x - lo) / max(float(hi - lo), 1e-6), 0, 1).astype(np.float32)
    return x[None], m


class CentreOnly:
    """Reference, not a model: a voxel is lesion when its normalised distance to the crop's
    centre (the ``center_distance`` feature) is below the radius that gives the training
    cases the best mean Dice. It measures how much a centred crop gives away by itself."""

    radii = np.linspace(0.05, 1.0, 39)

    def fit(self, images: list[np.ndarray], masks: list[np.ndarray]) -> CentreOnly:
        scores = [[dice((center_distance(m.shape) < r).astype(np.float32), m) for r in self.radii]
                  for m in masks]
        self.radius_ = float(self.radii[int(np.argmax(np.mean(scores, axis=0)))])
        return self

    def predict_map(self, shape: tuple[int, ...]) -> np.ndarray:
        return (center_distance(shape) < self.radius_).astype(np.float32)


def dice(p: np.ndarray, m: np.ndarray) -> float:
    b = p >= 0.5
    denom = b.sum() + m.sum()
    return float(2 * (b & m).sum() / denom) if denom else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="centre-only,logistic,boosting,logistic+centre",
                        help=f"comma-separated, of: {', '.join(VARIANTS)}")
    parser.add_argument("--ks", default="1,2,5", help="training cases per run")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--factor", type=int, default=2, help="in-plane downsampling factor")
    parser.add_argument("--max-voxels", type=int, default=200_000)
    args = parser.parse_args()
    if not (DATA / "cases.csv").is_file():
        sys.exit(f"{DATA} is absent: it holds the IBSI sarcoma crops (see its SOURCE.md)")
    variants = args.variants.split(",")
    ks = [int(k) for k in args.ks.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]

    t0 = time.perf_counter()
    with open(DATA / "cases.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["mr_t1"]]
    cases = [load_case(DATA, r["mr_t1"], r["mr_t1_mask"], args.factor) for r in rows]
    pool, test = cases[:25], cases[-24:]
    print(f"loaded {len(cases)} cases in {time.perf_counter() - t0:.0f} s "
          f"(train pool {len(pool)}, test {len(test)}; median test shape "
          f"{tuple(int(v) for v in np.median([c[1].shape for c in test], axis=0))})",
          file=sys.stderr)

    results: list[tuple[str, int, list[float], float, float]] = []
    features: dict[tuple[Any, bool], tuple[list[np.ndarray], float]] = {}
    for name in variants:
        if name == "centre-only":
            for k in ks:
                scores = []
                for seed in seeds:
                    picks = np.random.default_rng(seed).choice(len(pool), k, replace=False)
                    ref = CentreOnly().fit([pool[i][0] for i in picks], [pool[i][1] for i in picks])
                    scores.append(float(np.mean([dice(ref.predict_map(m.shape), m)
                                                 for _, m in test])))
                results.append((name, k, scores, 0.0, 0.0))
                print(f"{name} k={k}: {np.round(scores, 3).tolist()}", file=sys.stderr)
            continue
        kw = VARIANTS[name]
        key = (tuple(kw.get("sigmas", ())), bool(kw.get("center_distance", False)))
        if key not in features:  # test features depend only on the feature settings
            features.clear()
            t = time.perf_counter()
            feats = [VoxelStatistics(**kw).features(x) for x, _ in test]
            features[key] = (feats, (time.perf_counter() - t) / len(test))
        feats, feature_s = features[key]
        for k in ks:
            scores, fit_s, clf_s = [], 0.0, 0.0
            for seed in seeds:
                picks = np.random.default_rng(seed).choice(len(pool), k, replace=False)
                t = time.perf_counter()
                model = VoxelStatistics(max_voxels=args.max_voxels, seed=seed, **kw).fit(
                    [pool[i][0] for i in picks], [pool[i][1] for i in picks])
                fit_s += time.perf_counter() - t
                t = time.perf_counter()
                per_case = [dice(model.predict_voxels(f).reshape(m.shape), m)
                            for f, (_, m) in zip(feats, test)]
                clf_s += time.perf_counter() - t
                scores.append(float(np.mean(per_case)))
            results.append((name, k, scores, fit_s / len(seeds),
                            feature_s + clf_s / len(seeds) / len(test)))
            print(f"{name} k={k}: {np.round(scores, 3).tolist()}", file=sys.stderr)

    print(f"\n| variant | k | Dice@0.5 (mean ± sd over {len(seeds)} seeds) | fit s | "
          "predict s/case |")
    print("|---|---|---|---|---|")
    for name, k, scores, fit_s, pred_s in results:
        print(f"| {name} | {k} | {np.mean(scores):.3f} ± {np.std(scores):.3f} | {fit_s:.1f} | "
              f"{pred_s:.2f} |")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
