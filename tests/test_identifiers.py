"""opaque_id: keyed, stable per site, different across sites, key file created private."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from ssl_domains import identifiers
from ssl_domains.errors import ConfigError
from ssl_domains.identifiers import opaque_id


@pytest.fixture(autouse=True)
def _no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identifiers, "_cache", {})


def test_keyed_stable_and_not_a_plain_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(identifiers.KEY_ENV, "site-a-" + "x" * 20)
    a1, a2 = opaque_id("MRN0001234"), opaque_id("MRN0001234")
    assert a1 == a2 and len(a1) == 16 and all(c in "0123456789abcdef" for c in a1)
    assert a1 != hashlib.sha256(b"MRN0001234").hexdigest()[:16]
    assert opaque_id("MRN0001235") != a1
    assert opaque_id("a", "b") != opaque_id("a|c")
    monkeypatch.setenv(identifiers.KEY_ENV, "site-b-" + "x" * 20)
    assert opaque_id("MRN0001234") != a1


def test_short_env_key_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(identifiers.KEY_ENV, "short")
    with pytest.raises(ConfigError, match="SSL_DOMAINS_ID_KEY is shorter"):
        opaque_id("x")


def test_key_file_created_private_and_reused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(identifiers.KEY_ENV, raising=False)
    monkeypatch.delenv(identifiers.KEY_FILE_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    first = opaque_id("case 7")
    key_file = tmp_path / "ssl-domains" / "id_key"
    assert key_file.exists() and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    monkeypatch.setattr(identifiers, "_cache", {})
    assert opaque_id("case 7") == first  # read back, not regenerated


def test_named_key_file_missing_is_one_line_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(identifiers.KEY_ENV, raising=False)
    monkeypatch.setenv(identifiers.KEY_FILE_ENV, str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="nope: cannot read the id key"):
        opaque_id("x")


def test_shareable_config_replaces_paths_file_names_and_id_lists_only() -> None:
    from ssl_domains.identifiers import shareable_config

    config = {"name": "ct", "output_dir": "/home/smith/runs", "backbone": {"name": "mlp", "args": {"hidden": 8}},
              "finetune": {"data": {"train": {"name": "csv", "args": {
                  "path": "SMITH_JANE_MRN67890.csv", "ids": ["MRN1", "MRN2"], "id_column": "patient",
                  "window": 128, "cache": "memory", "channel_names": ["ecg"], "labels_file": "y.csv",
                  "source": {"name": "dicom", "args": {"root": "/data/SMITH"}}, "exclude": "*_mask.nii*"}}}}}
    shown = shareable_config(config)
    args = shown["finetune"]["data"]["train"]["args"]
    assert args["path"] == "opaque:" + opaque_id("SMITH_JANE_MRN67890.csv")
    assert args["ids"] == ["opaque:" + opaque_id("MRN1"), "opaque:" + opaque_id("MRN2")]
    assert args["labels_file"].startswith("opaque:") and args["source"]["args"]["root"].startswith("opaque:")
    assert shown["output_dir"].startswith("opaque:")
    kept = {k: args[k] for k in ("id_column", "window", "cache", "channel_names", "exclude")}
    assert kept == {"id_column": "patient", "window": 128, "cache": "memory", "channel_names": ["ecg"],
                    "exclude": "*_mask.nii*"}
    assert shown["backbone"] == config["backbone"] and shown["name"] == "ct"
    assert shareable_config(shown) == shown  # applying it twice changes nothing
    assert "SMITH" not in str(shown) and "MRN" not in str(shown)
