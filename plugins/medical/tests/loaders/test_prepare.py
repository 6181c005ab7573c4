"""The prepare step: every volume once into a store, unreadable ones reported, resumable."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from ssl_domains_medical.commands import medical
from ssl_domains_medical.loaders.nifti import NiftiDataset
from ssl_domains_medical.loaders.prepare import prepare_store
from ssl_domains_medical.loaders.store import VolumeStore, preprocessing_spec, store_key
from ssl_domains_medical.loaders.synthetic import write_noise_nifti

from ssl_domains.errors import ConfigError
from ssl_domains.plugins import get_host

ARGS = {"modality": "CT", "spacing": [2.0, 2.0, 2.0]}


@pytest.fixture()
def volumes(tmp_path: Path) -> Path:
    """Four small CT-like volumes and one whose data is cut short (header readable)."""
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.RandomState(0)
    for i in range(4):
        write_noise_nifti(folder / f"vol_{i}.nii.gz", (14, 12, 10), rng, (1.5, 1.5, 2.5), low=-300)
    raw = gzip.decompress((folder / "vol_0.nii.gz").read_bytes())
    (folder / "vol_9_cut.nii.gz").write_bytes(gzip.compress(raw[: len(raw) // 3]))
    return folder


def _dataset(volumes: Path) -> NiftiDataset:
    return NiftiDataset(str(volumes), cache="none", **ARGS)  # type: ignore[arg-type]


def _spec(volumes: Path) -> dict:
    return preprocessing_spec("nifti", NiftiDataset, {"path": str(volumes), **ARGS})


def test_prepare_stores_each_volume_and_reports_the_unreadable(tmp_path: Path, volumes: Path) -> None:
    ds = _dataset(volumes)
    seen: list[tuple[int, int, str]] = []
    report = prepare_store(ds, tmp_path / "store", _spec(volumes),
                           progress=lambda d, t, r: seen.append((d, t, r)))
    assert report.finished and report.prepared == 4 and len(report.failed) == 1
    assert "unreadable" in report.failed[0][1] or "preprocessing" in report.failed[0][1]
    assert [d for d, _, _ in seen] == [1, 2, 3, 4, 5] and sum(bool(r) for *_, r in seen) == 1
    store = VolumeStore(tmp_path / "store")
    index = store.index()
    assert len(index["records"]) == 4 and len(index["skipped"]) == 1
    assert "vol_9" not in json.dumps(index)  # opaque ids only, never file names
    # what is stored is what the loader's preprocessing gives
    rec = index["records"][1]
    expected = ds.preprocess(1)["image"]
    assert rec["key"] == store_key(ds.records[1]["id"])
    np.testing.assert_array_equal(store.read(rec["key"], "image"), expected.as_tensor().numpy())
    np.testing.assert_allclose(rec["affine"], expected.affine.numpy())


def test_a_killed_prepare_redoes_the_partial_entry_and_keeps_finished_ones(tmp_path: Path, volumes: Path) -> None:
    ds = _dataset(volumes)
    prepare_store(ds, tmp_path / "store", _spec(volumes))
    store = VolumeStore(tmp_path / "store")
    # as after a kill -9 while writing volume 2: its entry only partly written, no index yet
    (tmp_path / "store" / "index.json").unlink()
    key = store_key(ds.records[2]["id"])
    final = store.items / key
    partial = store.items / f"{key}.partial-99999"
    final.rename(partial)
    (partial / "item.json").unlink()
    (partial / "image.b2nd").write_bytes(b"cut short")
    kept = {store_key(r["id"]): (store.items / store_key(r["id"]) / "item.json").stat().st_mtime_ns
            for i, r in enumerate(ds.records) if i != 2 and store.done(store_key(r["id"]))}
    with pytest.raises(Exception, match="not finished"):
        store.index()
    report = prepare_store(_dataset(volumes), tmp_path / "store", _spec(volumes))
    assert report.finished and report.prepared == 1 and report.done_before == 3
    assert not partial.exists() and store.done(key)
    for k, mtime in kept.items():  # finished entries untouched
        assert (store.items / k / "item.json").stat().st_mtime_ns == mtime
    assert len(store.index()["records"]) == 4


def test_a_config_that_disagrees_with_the_store_is_refused(tmp_path: Path, volumes: Path) -> None:
    prepare_store(_dataset(volumes), tmp_path / "store", _spec(volumes))
    registry = get_host().registry
    source = {"name": "nifti", "args": {"path": str(volumes), **ARGS}}
    ds = registry.create("loader", "prepared", store=str(tmp_path / "store"), source=source, patch_size=4)
    assert len(ds) == 4
    other = {"name": "nifti", "args": {**source["args"], "spacing": [1.0, 1.0, 1.0]}}
    with pytest.raises(ConfigError) as err:
        registry.create("loader", "prepared", store=str(tmp_path / "store"), source=other, patch_size=4)
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "store") in message and "spacing" in message
    # a default written out is the same preprocessing; one changed is not
    same = {"name": "nifti", "args": {**source["args"], "intensity": "auto"}}
    registry.create("loader", "prepared", store=str(tmp_path / "store"), source=same)
    with pytest.raises(ConfigError, match="intensity"):
        registry.create("loader", "prepared", store=str(tmp_path / "store"),
                        source={"name": "nifti", "args": {**source["args"], "intensity": "lung"}})
    with pytest.raises(ConfigError, match="patch_size"):
        registry.create("loader", "prepared", store=str(tmp_path / "store"),
                        source={"name": "nifti", "args": {**source["args"], "patch_size": 8}})


def test_the_prepare_command_prepares_the_configs_store(tmp_path: Path, volumes: Path) -> None:
    store = tmp_path / "store"
    cfg = {"name": "ct", "backbone": {"name": "resnet_encoder", "args": {"spatial_dims": 3}},
           "pretrain": {"data": {"train": {"name": "prepared", "args": {
               "store": str(store), "source": {"name": "nifti", "args": {"path": str(volumes), **ARGS}},
               "patch_size": 4, "patches_per_volume": 2}}},
               "task": {"name": "masked_inpainting"}}}
    path = tmp_path / "ct.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(medical, ["prepare", str(path), "--workers", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "4 prepared now" in result.output and "1 unreadable" in result.output
    assert "finished" in result.output and "vol_9" not in result.output
    again = CliRunner().invoke(medical, ["prepare", str(path), "--workers", "2", "--no-progress"])
    assert again.exit_code == 0 and "0 prepared now" in again.output and "4 kept" in again.output
    changed = CliRunner().invoke(medical, ["prepare", str(path), "--no-progress",
                                           "--set", "pretrain.data.train.args.source.args.spacing=[3,3,3]"])
    assert changed.exit_code != 0 and "spacing" in str(changed.exception or changed.output)
