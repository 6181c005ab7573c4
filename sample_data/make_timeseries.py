"""Write the time-series sample data in ``sample_data/timeseries/`` (deterministic).

Synthetic three-channel sensor signals (sinusoids + noise + slow drifts, NaN gaps) with injected
anomalies (spikes, level shifts, frequency changes):

- ``pretrain_unlabeled.csv``: one long recording, wide form, no labels (pre-training).
- ``finetune_labeled.parquet``: 24 shorter recordings (long ``series`` id column, ``t``
  step column) with a per-point ``label`` column (1 inside an injected anomaly).
- ``nab/``: one real NAB series with its anomaly windows (MIT), copied from ``--nab`` when
  that folder exists.

Run from the repository root: ``python sample_data/make_timeseries.py``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

CHANNELS = ("vibration", "temperature", "pressure")
SEED = 20240601
NAB_SERIES = "realKnownCause/ec2_request_latency_system_failure.csv"


def base_signal(rng: np.random.Generator, length: int) -> np.ndarray:
    """Normal behaviour ``[3, length]``: periodic components, noise and slow drifts."""
    t = np.arange(length, dtype=np.float64)
    p1 = rng.uniform(40, 60)
    vib = np.sin(2 * np.pi * t / p1) + 0.3 * np.sin(2 * np.pi * t / 7.3 + rng.uniform(0, 6))
    vib += 0.15 * rng.standard_normal(length)
    temp = 20 + 2 * np.sin(2 * np.pi * t / 720 + rng.uniform(0, 6))
    temp += np.cumsum(0.01 * rng.standard_normal(length)) + 0.1 * rng.standard_normal(length)
    pres = 5 + 0.8 * np.sin(2 * np.pi * t / 120 + rng.uniform(0, 6)) + 0.3 * np.sin(2 * np.pi * t / p1)
    pres += 0.0002 * t * rng.uniform(-1, 1) + 0.1 * rng.standard_normal(length)
    return np.stack([vib, temp, pres])


def add_gaps(rng: np.random.Generator, x: np.ndarray, count: int) -> None:
    """Blank ``count`` random runs of 3-30 samples in random channels with NaN (in place)."""
    for _ in range(count):
        c = rng.integers(0, x.shape[0])
        s = rng.integers(0, x.shape[1] - 30)
        x[c, s : s + rng.integers(3, 31)] = np.nan


def inject(rng: np.random.Generator, x: np.ndarray, labels: np.ndarray, kind: str) -> None:
    """Inject one anomaly of ``kind`` (``spike``, ``level_shift``, ``frequency``) in place."""
    length = x.shape[1]
    if kind == "spike":
        s = int(rng.integers(20, length - 20))
        c = rng.integers(0, x.shape[0])
        x[c, s : s + 2] += rng.choice([-1, 1]) * rng.uniform(4, 8)
        labels[s - 2 : s + 4] = 1
    elif kind == "level_shift":
        n = int(rng.integers(40, 120))
        s = int(rng.integers(0, length - n))
        c = rng.integers(0, x.shape[0])
        x[c, s : s + n] += rng.choice([-1, 1]) * rng.uniform(1.5, 3.0)
        labels[s : s + n] = 1
    elif kind == "frequency":
        n = int(rng.integers(60, 150))
        s = int(rng.integers(0, length - n))
        t = np.arange(n)
        x[0, s : s + n] = np.sin(2 * np.pi * t / rng.uniform(6, 12)) + 0.15 * rng.standard_normal(n)
        labels[s : s + n] = 1
    else:  # pragma: no cover - programming error
        raise ValueError(kind)


def pretrain_table(rng: np.random.Generator, length: int = 12_000) -> pd.DataFrame:
    """One long unlabeled recording (it still holds a few unlabelled anomalies, like real data)."""
    x = base_signal(rng, length)
    ignored = np.zeros(length, dtype=np.int64)
    for kind in ("spike", "level_shift", "frequency"):
        inject(rng, x, ignored, kind)
    add_gaps(rng, x, 12)
    df = pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=length, freq="min")})
    for name, row in zip(CHANNELS, x):
        df[name] = row.round(4)
    df["timestamp"] = df["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
    return df


def labeled_table(rng: np.random.Generator, series: int = 24, length: int = 1024) -> pd.DataFrame:
    """Shorter recordings with per-point labels; about two thirds carry 1-3 anomalies."""
    frames = []
    kinds = ("spike", "level_shift", "frequency")
    for i in range(series):
        x = base_signal(rng, length)
        labels = np.zeros(length, dtype=np.int64)
        if i % 3 != 0:
            for _ in range(int(rng.integers(1, 4))):
                inject(rng, x, labels, kinds[int(rng.integers(0, 3))])
        add_gaps(rng, x, 2)
        df = pd.DataFrame({"series": f"unit{i:02d}", "t": np.arange(length, dtype=np.int32)})
        for name, row in zip(CHANNELS, x):
            df[name] = row.astype(np.float32)
        df["label"] = labels.astype(np.int8)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def copy_nab(nab_root: Path, out: Path) -> bool:
    """Copy one NAB series, its anomaly windows and the MIT license; False if NAB is absent."""
    src = nab_root / "data" / NAB_SERIES
    if not src.is_file():
        return False
    dst = out / "data" / NAB_SERIES
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    windows = json.loads((nab_root / "labels" / "combined_windows.json").read_text())
    (out / "labels").mkdir(parents=True, exist_ok=True)
    (out / "labels" / "combined_windows.json").write_text(
        json.dumps({NAB_SERIES: windows[NAB_SERIES]}, indent=4) + "\n"
    )
    shutil.copyfile(nab_root / "LICENSE.txt", out / "LICENSE.txt")
    return True


def main() -> None:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=here / "timeseries")
    ap.add_argument("--nab", type=Path, default=here.parent.parent / "shared" / "data" / "nab")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    pretrain_table(rng).to_csv(args.out / "pretrain_unlabeled.csv", index=False)
    labeled_table(rng).to_parquet(args.out / "finetune_labeled.parquet", index=False)
    nab = copy_nab(args.nab, args.out / "nab")
    print(f"wrote {args.out}" + ("" if nab else f" (NAB excerpt skipped: {args.nab} not found)"))


if __name__ == "__main__":
    main()
