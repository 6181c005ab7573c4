"""Promise of README "Your own data": "patient identifiers never reach logs, reports or exports
(series get keyed opaque ids)"; `medical convert`'s output folder holds no paths and
`--mapping` writes the path -> id mapping only outside it. DICOM whose folder and headers carry
a patient's name and record number, converted and pre-trained on through the real CLI."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import yaml

from tests.promises.cli import ssl_domains

pytest.importorskip("ssl_domains_medical")

SECRETS = ("SMITH", "JANE", "MRN67890")


def _leaks(data: bytes) -> list[str]:
    return [s for s in SECRETS if s.encode() in data]


@pytest.fixture(scope="module")
def dicom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``SMITH_JANE_MRN67890/`` with four CT series whose headers name SMITH^JANE."""
    from ssl_domains_medical.loaders.synthetic import ct_phantom, write_ct_series

    root = tmp_path_factory.mktemp("dicom") / "SMITH_JANE_MRN67890"
    for k in range(4):
        write_ct_series(root / f"MRN67890_study{k}", ct_phantom((16, 16, 16), seed=k), seed=k,
                        patient_name="SMITH^JANE")
    assert _leaks(next(root.rglob("*.dcm")).read_bytes())  # the names are really there
    return root


def test_privacy_medical_convert_output_holds_no_path_and_the_mapping_stays_outside(dicom: Path,
                                                                                   tmp_path: Path) -> None:
    out = tmp_path / "shared"
    res = ssl_domains("medical", "convert", str(dicom), str(out), "--mapping", str(out / "map.json"))
    assert res.code == 1 and res.error.startswith(f"Error: --mapping {out / 'map.json'}: inside {out}, which is meant for sharing")
    mapping = tmp_path / "private" / "map.json"
    res = ssl_domains("medical", "convert", str(dicom), str(out), "--mapping", str(mapping))
    assert res.code == 0, res.err
    written = sorted(p for p in out.rglob("*") if p.is_file())
    assert len([p for p in written if p.name.endswith(".nii.gz")]) == 4
    for path in written:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        assert _leaks(data) == [] and _leaks(path.name.encode()) == [], path
    assert "SMITH_JANE_MRN67890" in mapping.read_text()  # the private mapping has the paths


def test_privacy_dicom_names_reach_no_log_and_no_run_folder_data_file(dicom: Path, tmp_path: Path) -> None:
    cfg = {
        "name": "ct", "output_dir": str(tmp_path / "runs"),
        "backbone": {"name": "resnet_encoder", "args": {"spatial_dims": 3, "depth": 10, "width": 4}},
        "pretrain": {
            "data": {"train": {"name": "dicom", "args": {"root": str(dicom), "spatial_size": 16}},
                     "batch_size": 2, "val_fraction": 0.25},
            "task": {"name": "masked_inpainting", "args": {"mask_ratio": 0.5, "block_size": 4, "decoder_width": 8}},
            "train": {"epochs": 1, "max_steps": 2, "progress": False},
        },
    }
    path = tmp_path / "ct.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = ssl_domains("pretrain", str(path))
    assert res.code == 0, res.err
    assert _leaks(res.err.encode()) == []
    run = tmp_path / "runs" / "ct"
    data_files = [p for p in run.rglob("*") if p.is_file() and p.name != "config.yaml"
                  and "checkpoints" not in p.parts]
    assert {"metrics.jsonl", "backbone.safetensors", "README.md", "config.json"} <= {p.name for p in data_files}
    for p in data_files:
        assert _leaks(p.read_bytes()) == [], p
    card = json.loads((run / "export" / "config.json").read_text())
    assert card["stage"] == "pretrain"
