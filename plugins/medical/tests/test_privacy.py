"""A medical run on files and folders named after a patient (pre-train, fine-tune, predict)
leaves neither the identifier nor a patient file's path in its run folder, its prediction
CSV or its log, even when some inputs are skipped."""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ssl_domains.config import ComponentRef, parse_config
from ssl_domains.engine.evaluate import predict_data
from ssl_domains.engine.finetune import finetune
from ssl_domains.engine.model_card import write_model_card, write_pretrain_card
from ssl_domains.engine.pretrain import pretrain
from ssl_domains.plugins import get_host

PATIENT = "DOE_JOHN_MRN12345"
#: every piece of the identifier that must not show up anywhere (names and the MRN alone)
NEEDLES = [PATIENT, "DOE_JOHN", "MRN12345", "12345"]


def _vol(path: Path, rng: np.random.RandomState, lesion: bool) -> None:
    data = (rng.randn(16, 16, 16) * 20 + 40).astype(np.float32)
    if lesion:
        data[5:11, 5:11, 5:11] += 150
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.diag([1.5, 1.5, 2.0, 1.0])), str(path))


def _site(root: Path) -> tuple[Path, Path, Path, list[Path]]:
    """Unlabeled scans in per-patient folders, a labeled manifest and a test manifest, all named
    after patients; one scan is cut short (skipped when read), one is not NIfTI at all (skipped
    when the loader is built)."""
    rng = np.random.RandomState(0)
    files: list[Path] = []
    for i in range(30):
        p = root / "unlabeled" / f"{PATIENT}_{i:02d}" / f"{PATIENT}_{i:02d}_ct.nii.gz"
        _vol(p, rng, lesion=bool(i % 2))
        files.append(p)
    raw = files[3].read_bytes()
    files[3].write_bytes(raw[: len(raw) // 2])
    junk = root / "unlabeled" / f"{PATIENT}_99" / f"{PATIENT}_99_ct.nii.gz"
    junk.parent.mkdir()
    junk.write_bytes(b"not a NIfTI file")  # refused when the loader is built
    files.append(junk)
    rows = ["case_id,image,label"]
    test_rows = ["case_id,image,label"]
    for i in range(24):
        p = root / "labeled" / f"{PATIENT}_case{i:02d}.nii.gz"
        _vol(p, rng, lesion=bool(i % 2))
        files.append(p)
        (test_rows if i >= 16 else rows).append(f"{PATIENT}_{i:02d},{p.name},{i % 2}")
    (root / "labeled" / "train.csv").write_text("\n".join(rows) + "\n")
    (root / "labeled" / "test.csv").write_text("\n".join(test_rows) + "\n")
    return root / "unlabeled", root / "labeled" / "train.csv", root / "labeled" / "test.csv", files


def _leaks(text: str, files: list[Path], root: Path) -> list[str]:
    found = [n for n in NEEDLES if n in text]
    found += [str(f) for f in files if str(f) in text]
    found += [f.name for f in files if f.name in text]
    if str(root) in text:
        found.append(str(root))
    return found


def test_no_identifier_or_patient_path_in_run_folder_predictions_or_logs(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "site"
    unlabeled, train_csv, test_csv, files = _site(site)
    assert _leaks(train_csv.read_text(), files, site)  # the check finds what it looks for
    caplog.set_level(logging.INFO)
    img = {"modality": "CT", "spatial_size": 16}
    cfg = parse_config({
        "name": "privacy",
        "output_dir": str(tmp_path / "runs"),
        "backbone": {"name": "resnet_encoder", "args": {"spatial_dims": 3, "depth": 10, "width": 4}},
        "pretrain": {
            "data": {"train": {"name": "nifti", "args": {"path": str(unlabeled), **img}}, "batch_size": 4},
            "task": {"name": "masked_inpainting", "args": {"mask_ratio": 0.5, "block_size": 4, "decoder_width": 8}},
            "train": {"epochs": 1, "progress": False, "warmup_steps": 0},
        },
        "finetune": {
            "data": {"train": {"name": "image_manifest", "args": {"path": str(train_csv), **img}},
                     "test": {"name": "image_manifest", "args": {"path": str(test_csv), **img}},
                     "batch_size": 4, "val_fraction": 0.25},
            "task": {"name": "tumor_classification"},
            "train": {"epochs": 2, "progress": False, "warmup_steps": 0},
        },
    })
    run = tmp_path / "runs" / "privacy"
    pretrain(cfg, run, registry=get_host().registry)
    pretrain_card = write_pretrain_card(run).read_text()  # as `ssl-domains pretrain` does
    assert "unlabeled training items" in pretrain_card and not _leaks(pretrain_card, files, site)
    finetune(cfg, run, registry=get_host().registry)
    write_model_card(run)  # as `ssl-domains finetune` does: the card is checked below too
    out_csv = tmp_path / "scores.csv"
    predict_data(run, ComponentRef(name="image_manifest", args={"path": str(test_csv), **img}), out_csv, registry=get_host().registry)

    # the damaged scan was met, skipped and listed: the check below covers a skip's messages too
    skipped = (run / "skipped.json").read_text()
    assert '"when": "reading"' in skipped and "unreadable NIfTI" in skipped
    assert len(out_csv.read_text().splitlines()) == 1 + 8

    # shareable outputs: no identifier, no patient file, not even the data folder
    outputs = [p for p in run.rglob("*") if p.is_file()] + [out_csv]
    assert any(p.name == "test.csv" for p in outputs) and any(p.suffix == ".safetensors" for p in outputs)
    for p in outputs:
        text = p.read_bytes().decode("latin-1")
        if p.name == "config.yaml" or "checkpoints" in p.parts:
            # the resolved config (kept for --resume) holds the folders the user named, as
            # written in the config: no file below them, no identifier from inside them
            assert not [n for n in _leaks(text, files, site) if n != str(site)], p
            continue
        assert not _leaks(text, files, site), (p, _leaks(text, files, site))

    logged = "\n".join(r.getMessage() for r in caplog.records)
    captured = capsys.readouterr()
    assert "unreadable, skipped" in logged and "skipped input" in logged  # both skips logged ...
    assert not _leaks(logged + captured.out + captured.err, files, site)  # ... without naming it
