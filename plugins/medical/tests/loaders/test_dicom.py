"""The ``dicom`` loader: items, caching, patches, skipping, no patient identifiers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ssl_domains_medical.loaders import dicom_series
from ssl_domains_medical.loaders.dicom import DicomDataset
from ssl_domains_medical.loaders.synthetic import write_colour_image, write_ct_series

from ssl_domains.errors import ConfigError

from .conftest import SAMPLE


@pytest.fixture()
def two_series(tmp_path, ct_volume):
    write_ct_series(tmp_path / "a", ct_volume, spacing=(2.0, 1.0, 1.0), seed=21)
    write_ct_series(tmp_path / "b" / "c", ct_volume[:6], spacing=(2.0, 1.0, 1.0), seed=22, suffix="")
    (tmp_path / "README").write_text("not dicom")
    return tmp_path


def test_items_are_ras_channel_first_hu_windowed(two_series, ct_volume):
    ds = DicomDataset(str(two_series), intensity="none")
    assert len(ds) == 2 and ds.labels is None and ds.skipped == []
    items = {it["meta"]["slices"]: it for it in (ds[0], ds[1])}
    image = items[10]["image"]
    assert image.dtype == torch.float32 and image.shape == (1, 20, 16, 10)
    # LPS storage -> RAS: x (columns) and y (rows) flipped, values in HU
    expected = ct_volume.astype(np.float32).transpose(2, 1, 0)[::-1, ::-1]
    np.testing.assert_array_equal(image[0].numpy(), expected)
    assert items[10]["meta"]["spacing"] == [1.0, 1.0, 2.0]
    assert items[10]["meta"]["modality"] == "CT"
    assert ds.groups == [ds[0]["meta"]["id"], ds[1]["meta"]["id"]]


def test_auto_intensity_uses_ct_window(two_series):
    ds = DicomDataset(str(two_series), spatial_size=[16, 16, 8])
    image = ds[0]["image"]
    assert image.shape == (1, 16, 16, 8)
    assert float(image.min()) == 0.0 and float(image.max()) == 1.0  # air and bone clipped


def test_patches_are_seeded_and_vary_between_epochs(two_series):
    def draws(seed):
        ds = DicomDataset(str(two_series), patch_size=[8, 8, 4], patches_per_volume=3, seed=seed)
        items = [ds[i]["image"] for i in range(len(ds))] + [ds[0]["image"]]
        ds.set_epoch(1)
        return [*items, ds[0]["image"]]

    a, b, c = draws(1), draws(1), draws(2)
    assert len(a) == 8 and a[0].shape == (1, 8, 8, 4)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    assert torch.equal(a[0], a[6])  # within an epoch an item is one patch
    assert not torch.equal(a[0], a[-1])  # the next epoch draws a new patch


def test_series_decoded_once_across_epochs(two_series, monkeypatch):
    calls = []
    original = dicom_series.DicomSeries.load

    def counting(self, allow_4d=False, colour="luminance"):
        calls.append(self.series_id)
        return original(self, allow_4d, colour)

    monkeypatch.setattr(dicom_series.DicomSeries, "load", counting)
    ds = DicomDataset(str(two_series), patch_size=8, patches_per_volume=2)
    for _epoch in range(3):
        for i in range(len(ds)):
            ds[i]
    assert sorted(calls) == sorted({s.series_id for s in ds.series})


def test_disk_cache_is_reused(two_series, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = DicomDataset(str(two_series), spatial_size=8, cache="disk", cache_dir=str(cache))[0]
    assert len(list(cache.glob("*.pt"))) == 1

    def fail(self, allow_4d=False, colour="luminance"):
        raise AssertionError("decoded again")

    monkeypatch.setattr(dicom_series.DicomSeries, "load", fail)
    again = DicomDataset(str(two_series), spatial_size=8, cache="disk", cache_dir=str(cache))[0]
    assert torch.equal(first["image"], again["image"])


def test_4d_series_skipped_with_reason_or_kept(tmp_path, ct_volume):
    vol = np.concatenate([ct_volume, ct_volume])
    write_ct_series(tmp_path, vol, positions=[(0.0, 0.0, 2.0 * (k % 10)) for k in range(20)],
                    per_slice=[{"AcquisitionNumber": 1 + k // 10} for k in range(20)], seed=23)
    ds = DicomDataset(str(tmp_path))
    assert len(ds) == 0
    assert ds.skipped[0][1] == ("4-D series (2 time points x 10 slices); pass allow_4d=True to keep it")
    kept = DicomDataset(str(tmp_path), allow_4d=True, intensity="none")
    assert kept[0]["image"].shape == (2, 20, 16, 10)


def test_filters_modality_and_min_slices(two_series):
    assert len(DicomDataset(str(two_series), min_slices=8)) == 1
    ds = DicomDataset(str(two_series), modalities=["MR"])
    assert len(ds) == 0 and all("modality CT not in ['MR']" == r for _, r in ds.skipped)


def test_option_errors_are_clear(two_series):
    with pytest.raises(ConfigError, match="patches_per_volume > 1 needs patch_size"):
        DicomDataset(str(two_series), patches_per_volume=2)
    with pytest.raises(ConfigError, match="cache='disk' needs cache_dir"):
        DicomDataset(str(two_series), cache="disk")
    with pytest.raises(ConfigError, match="unknown intensity 'lungs'"):
        DicomDataset(str(two_series), intensity="lungs")


def test_sample_data_series_and_no_patient_name():
    ds = DicomDataset(str(SAMPLE / "dicom"), patch_size=32, patches_per_volume=2)
    assert len(ds) == 8
    assert [p.split("/")[-1] for p, _ in ds.skipped] == ["corrupt.dcm"]
    for i in range(len(ds)):
        item = ds[i]
        assert item["image"].shape == (1, 32, 32, 32)
        text = json.dumps(item["meta"])
        assert "DEMO" not in text and "PATIENT" not in text


def test_colour_stills_are_2d_items_luminance_by_default(tmp_path):
    rgb = np.zeros((64, 72, 3), np.uint8)
    rgb[..., 0], rgb[..., 2] = 200, 40
    rgb[10:20, 30:40] = (10, 250, 10)
    for k in range(3):  # three ultrasound stills of one series, no positions
        write_colour_image(tmp_path / f"s{k}.dcm", np.roll(rgb, 9 * k, axis=1), seed=24, instance=k + 1)
    ds = DicomDataset(str(tmp_path), dims=2, intensity="none")
    assert len(ds) == 3 and ds.skipped == []
    assert len(set(ds.groups)) == 1  # the stills of one series stay on one side of a split
    luma = 0.299 * 200 + 0.114 * 40
    first = ds[0]["image"]
    assert first.shape == (1, 72, 64)  # [C, x, y] in RAS
    assert float(first.max()) == pytest.approx(0.587 * 250 + 0.299 * 10 + 0.114 * 10, abs=1e-3)
    assert float(torch.median(first)) == pytest.approx(luma, abs=1e-3)
    assert not torch.equal(ds[0]["image"], ds[1]["image"])
    rgb_items = DicomDataset(str(tmp_path), dims=2, intensity="none", colour="rgb")
    image = rgb_items[1]["image"]
    assert image.shape == (3, 72, 64)
    # RAS flips x and y of the stored [row, col]: back to the picture, still rolled by 9
    np.testing.assert_array_equal(image.numpy().transpose(2, 1, 0)[::-1, ::-1], np.roll(rgb, 9, axis=1))
    with pytest.raises(ConfigError, match="unknown colour='cmyk'"):
        DicomDataset(str(tmp_path), colour="cmyk")


def test_stacks_of_one_series_share_a_group_and_refusals_are_skipped(tmp_path, ct_volume):
    vol = np.concatenate([ct_volume, ct_volume + 40])
    write_ct_series(tmp_path / "me", vol, positions=[(0.0, 0.0, 2.0 * (k % 10)) for k in range(20)],
                    per_slice=[{"EchoNumbers": 1 + k // 10} for k in range(20)], seed=25, modality="MR")
    z = [0, 2, 4, 4, 6, 8]
    write_ct_series(tmp_path / "dup", ct_volume[:6], positions=[(0.0, 0.0, v) for v in z], seed=26)
    ds = DicomDataset(str(tmp_path), intensity="none")
    assert sorted(r["id"].rsplit("_", 1)[1] for r in ds.records) == ["e1", "e2"]
    assert len(set(ds.groups)) == 1
    (refused,) = [r for p, r in ds.skipped if p.startswith("series ")]
    assert "do not make whole time points" in refused
