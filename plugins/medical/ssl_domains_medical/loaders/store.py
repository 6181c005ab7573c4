"""A prepared store: preprocessed volumes as chunked, compressed arrays, one folder per volume.

Written once by ``ssl-domains medical prepare``
(:mod:`ssl_domains_medical.loaders.prepare`), read by the ``prepared`` loader
(:mod:`ssl_domains_medical.loaders.prepared`). A patch is read from
the chunks it touches (Blosc2 NDArray, 64-voxel chunks of 16-voxel blocks, LZ4 with byte
shuffle), never from the whole volume. Layout::

    STORE/store.json              what made it: the source loader and its preprocessing
    STORE/items/<key>/image.b2nd  float32 (or float16) [C, *spatial] after preprocessing
    STORE/items/<key>/mask.b2nd   uint8 [1, *spatial] when the volume has a mask
    STORE/items/<key>/fg.npy      sorted flat indices of the mask's foreground voxels
    STORE/items/<key>/item.json   shape, affine, spacing of the stored volume
    STORE/items/<key>.failed      why the volume could not be prepared (retried next time)
    STORE/index.json              every record, in the source's order, once all are done

An entry is written to ``<key>.partial-<pid>`` and renamed into place when complete: a killed
``prepare`` leaves partial folders, which the next run removes and redoes; finished entries
are kept. Blosc2 was chosen by measurement (``benchmarks/archive_scale.py --formats``;
``benchmarks/HISTORY.md``): 2-5x smaller than raw memory-mapped arrays at over a thousand
64^3 patches per second from one process, where zarr read ~10x slower.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ssl_domains.errors import ConfigError, DataError

__all__ = ["VolumeStore", "preprocessing_spec", "store_key", "SAMPLING_KEYS", "STORE_DTYPES"]

FORMAT = "ssl-domains-volume-store"
VERSION = 1
#: Loader arguments that choose patches or caching, not preprocessing: not part of a store.
SAMPLING_KEYS = ("patch_size", "patches_per_volume", "pos_fraction", "seed", "cache",
                 "cache_dir", "cache_bytes")
STORE_DTYPES = ("float32", "float16")
CHUNK = 64
BLOCK = 16

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}$")


def store_key(record_id: str) -> str:
    """Folder name of a record's entry (its opaque id when that is a safe file name)."""
    if _SAFE.match(record_id) and ".partial" not in record_id and not record_id.endswith(".failed"):
        return record_id
    import hashlib

    return "h" + hashlib.sha256(record_id.encode()).hexdigest()[:24]


def _plain(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value, default=str))


def preprocessing_spec(name: str, factory: Any, args: dict[str, Any]) -> dict[str, Any]:
    """What a store made by loader ``name`` with ``args`` holds: every argument of the loader
    (its defaults filled in) except those in :data:`SAMPLING_KEYS`.

    Raises:
        ConfigError: ``args`` holds patch or cache settings (they belong to the ``prepared``
            loader, not to the store).
    """
    given = sorted(k for k in args if k in SAMPLING_KEYS and k not in ("cache", "cache_dir", "cache_bytes"))
    if given:
        raise ConfigError(f"the source of a prepared store takes preprocessing only; move "
                          f"{', '.join(given)} from source.args to the args of the prepared loader")
    params: dict[str, Any] = {}
    if factory is None:
        classes: list[Any] = []
    elif inspect.isclass(factory):
        classes = [c for c in inspect.getmro(factory) if "__init__" in vars(c)]
    else:
        classes = [factory]
    for cls in reversed(classes):
        fn = cls.__init__ if inspect.isclass(cls) else cls
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):
            continue
        for p in signature.parameters.values():
            if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.name in ("self", "registry"):
                continue
            if p.default is not p.empty:
                params[p.name] = p.default
    params.update(args)
    spec = {k: v for k, v in params.items() if k not in SAMPLING_KEYS}
    return {"loader": name, "args": _plain(spec)}


class VolumeStore:
    """One prepared store on disk (see the module docstring for the layout).

    Args:
        root: The store's folder.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # ------------------------------------------------------------------ the whole store
    @property
    def items(self) -> Path:
        return self.root / "items"

    def header(self) -> dict[str, Any] | None:
        """``store.json``, or None when there is no store here yet.

        Raises:
            DataError: The folder holds something that is not a store.
        """
        path = self.root / "store.json"
        if not path.is_file():
            return None
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise DataError(path, f"unreadable store header ({type(exc).__name__})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise DataError(path, f"not a prepared store ({FORMAT})")
        if doc.get("version") != VERSION:
            raise DataError(path, f"store version {doc.get('version')} is not {VERSION}; prepare it again")
        return doc

    def check(self, spec: dict[str, Any], dtype: str | None = None) -> dict[str, Any]:
        """The header, after checking it was made with ``spec`` (and ``dtype``).

        Raises:
            DataError: No store here.
            ConfigError: One line naming the store and the first key that differs.
        """
        doc = self.header()
        if doc is None:
            raise DataError(self.root, "no prepared store here; make it with "
                            "`ssl-domains medical prepare CONFIG`")
        made = {"loader": doc["source"]["loader"], **doc["source"]["args"]}
        want = {"loader": spec["loader"], **spec["args"]}
        if dtype is not None:
            made["dtype"], want["dtype"] = doc.get("dtype"), dtype
        for key in list(want) + [k for k in made if k not in want]:
            if key not in made or key not in want or made[key] != want[key]:
                raise ConfigError(
                    f"prepared store {self.root} was made with {key}={made.get(key, '(unset)')!r} "
                    f"but the config has {key}={want.get(key, '(unset)')!r}: prepare a new store "
                    "for this config (ssl-domains medical prepare CONFIG, another store path) or "
                    "set the config back")
        return doc

    def create_or_check(self, spec: dict[str, Any], dtype: str) -> None:
        """Start a store made with ``spec``, or check that the one here was.

        Raises:
            ConfigError: The store here was made with other settings.
        """
        if dtype not in STORE_DTYPES:
            raise ConfigError(f"store dtype must be one of {', '.join(STORE_DTYPES)}, got {dtype!r}")
        if self.header() is not None:
            self.check(spec, dtype)
            return
        import blosc2

        self.items.mkdir(parents=True, exist_ok=True)
        _write_json(self.root / "store.json", {
            "format": FORMAT, "version": VERSION, "source": spec, "dtype": dtype,
            "chunks": CHUNK, "blocks": BLOCK, "library": f"blosc2 {blosc2.__version__}"})

    def index(self) -> dict[str, Any]:
        """``index.json``: the records, in order, and what was skipped.

        Raises:
            DataError: The store is not finished (``prepare`` was stopped or is running).
        """
        path = self.root / "index.json"
        if not path.is_file():
            done = sum(1 for _ in self.items.glob("*/item.json")) if self.items.is_dir() else 0
            raise DataError(self.root, f"prepared store is not finished ({done} volumes so far): "
                            "run `ssl-domains medical prepare CONFIG` again to finish it")
        return json.loads(path.read_text())  # type: ignore[no-any-return]

    def write_index(self, records: list[dict[str, Any]], skipped: list[dict[str, str]]) -> None:
        _write_json(self.root / "index.json", {"records": records, "skipped": skipped})

    # ------------------------------------------------------------------ entries
    def done(self, key: str) -> bool:
        return (self.items / key / "item.json").is_file()

    def failure(self, key: str) -> str | None:
        path = self.items / f"{key}.failed"
        return path.read_text() if path.is_file() else None

    def info(self, key: str) -> dict[str, Any]:
        return json.loads((self.items / key / "item.json").read_text())  # type: ignore[no-any-return]

    def forget_partial(self, key: str) -> None:
        """Remove what a killed run left of entry ``key`` (and an earlier failure note)."""
        for p in self.items.glob(f"{key}.partial-*"):
            shutil.rmtree(p, ignore_errors=True)
        (self.items / f"{key}.failed").unlink(missing_ok=True)

    def write_failure(self, key: str, reason: str) -> None:
        _write_text(self.items / f"{key}.failed", reason)

    def write_entry(self, key: str, image: np.ndarray, affine: np.ndarray,
                    mask: np.ndarray | None, dtype: str) -> int:
        """Write one volume (``image`` ``[C, *spatial]``, optional ``mask``); returns bytes on disk."""
        import blosc2

        tmp = self.items / f"{key}.partial-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        arrays = {"image": np.ascontiguousarray(image, dtype=dtype)}
        if mask is not None:
            arrays["mask"] = np.ascontiguousarray(mask > 0, dtype=np.uint8)
            flat = np.flatnonzero(arrays["mask"][0])
            np.save(tmp / "fg.npy", flat.astype(np.int64))
        for name, arr in arrays.items():
            chunks = (1, *(min(CHUNK, n) for n in arr.shape[1:]))
            blocks = (1, *(min(BLOCK, n) for n in arr.shape[1:]))
            blosc2.asarray(arr, urlpath=str(tmp / f"{name}.b2nd"), mode="w", chunks=chunks,
                           blocks=blocks, cparams={"codec": blosc2.Codec.LZ4, "clevel": 5,
                                                   "filters": [blosc2.Filter.SHUFFLE],
                                                   "nthreads": 1})
        spatial = [int(n) for n in image.shape[1:]]
        aff = np.asarray(affine, dtype=np.float64)
        spacing = np.sqrt((aff[:-1, :-1] ** 2).sum(0)).tolist()
        _write_json(tmp / "item.json", {
            "shape": [int(n) for n in image.shape], "affine": aff.tolist(),
            "spacing": [round(float(s), 4) for s in spacing], "has_mask": mask is not None,
            "foreground": int(np.count_nonzero(arrays["mask"])) if mask is not None else 0,
            "spatial": spatial})
        size = sum(f.stat().st_size for f in tmp.iterdir())
        final = self.items / key
        if final.exists():  # another job finished it meanwhile (parts overlapping)
            shutil.rmtree(tmp, ignore_errors=True)
            return size
        os.replace(tmp, final)
        return size

    def read(self, key: str, name: str, box: tuple[slice, ...] | None = None) -> np.ndarray:
        """Array ``name`` of entry ``key``, or the part in ``box`` (spatial slices), decoding
        only the chunks it touches."""
        import blosc2

        arr = blosc2.open(str(self.items / key / f"{name}.b2nd"), mode="r", dparams={"nthreads": 1})
        return np.asarray(arr[(slice(None), *box)] if box is not None else arr[()])

    def foreground(self, key: str) -> np.ndarray:
        """Sorted flat indices of the foreground voxels of entry ``key``'s mask."""
        return np.load(self.items / key / "fg.npy", mmap_mode="r", allow_pickle=False)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _write_json(path: Path, doc: Any) -> None:
    _write_text(path, json.dumps(doc, indent=1, default=str))
