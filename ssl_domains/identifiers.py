"""Opaque identifiers: one keyed hash for every id that may carry patient or site information.

Series UIDs, case ids, file stems and record names become ``opaque_id(...)``: the first hex digits of
HMAC-SHA256 under a per-site secret key. Ids are stable across runs of one site (same key) and cannot be
reversed by enumerating candidate MRNs or UIDs without the key, which never enters an output.

Where the key comes from, first match wins:

1. ``SSL_DOMAINS_ID_KEY``: the key itself (any string of at least 16 characters);
2. ``SSL_DOMAINS_ID_KEY_FILE``: a file holding it;
3. ``~/.config/ssl-domains/id_key`` (``$XDG_CONFIG_HOME`` respected), created with a random key and
   mode 0600 on first use.

Keep the key with the site's data, not with shared outputs; a lost key only means new ids.

This is the one hash of identifiers in host and plugins: a public module for plugins (see
:mod:`ssl_domains.contracts`); call ``opaque_id`` directly rather than wrapping it.
:func:`shareable_config` is the one redaction of a run config that every shareable writer
(report, model cards, ``export/``) applies.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ssl_domains.errors import ConfigError

KEY_ENV = "SSL_DOMAINS_ID_KEY"
KEY_FILE_ENV = "SSL_DOMAINS_ID_KEY_FILE"
MIN_KEY_CHARS = 16
DEFAULT_LENGTH = 16

_cache: dict[str, bytes] = {}


def default_key_file() -> Path:
    """Where the site key lives when no environment variable names one."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ssl-domains" / "id_key"


def _read_key_file(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the id key ({e.strerror or e}); set {KEY_ENV} or fix the file") from e
    if len(text) < MIN_KEY_CHARS:
        raise ConfigError(f"{path}: id key shorter than {MIN_KEY_CHARS} characters; write a longer random key")
    return text.encode()


def _create_key_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # created meanwhile by another process: use theirs
        return _read_key_file(path)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(key + "\n")
    return key.encode()


def site_key() -> bytes:
    """The per-site secret that keys ``opaque_id``.

    Raises:
        ConfigError: The key named by the environment is unreadable or too short.
    """
    env_key = os.environ.get(KEY_ENV)
    if env_key is not None:
        if len(env_key) < MIN_KEY_CHARS:
            raise ConfigError(f"{KEY_ENV} is shorter than {MIN_KEY_CHARS} characters; use a longer random key")
        return env_key.encode()
    named = os.environ.get(KEY_FILE_ENV)
    path = Path(named) if named else default_key_file()
    cache_key = str(path)
    if cache_key not in _cache:
        if named or path.exists():
            _cache[cache_key] = _read_key_file(path)
        else:
            _cache[cache_key] = _create_key_file(path)
    return _cache[cache_key]


def opaque_id(*parts: Any, length: int = DEFAULT_LENGTH) -> str:
    """Keyed, non-reversible id of ``parts`` (joined with ``|``): hex digits of HMAC-SHA256.

    Args:
        parts: The identifying values (UID, case id, file stem, ...); converted with ``str``.
        length: Hex digits kept (16 = 64 bits: collisions need billions of ids).
    """
    raw = "|".join(str(p) for p in parts).encode()
    return hmac.new(site_key(), raw, hashlib.sha256).hexdigest()[:length]


#: Words of a config key (split at ``_``) that name a file or folder: its value is a location.
LOCATION_WORDS = frozenset({"path", "paths", "root", "dir", "folder", "file", "files", "store",
                            "csv", "mapping", "out", "output"})
#: Config keys whose value lists (or names) inputs by their own ids.
ID_KEYS = frozenset({"ids", "series", "records", "record", "cases", "case", "patients",
                     "patient", "subjects", "subject", "series_uid", "names"})
_PATH_LIKE = re.compile(r"[/\\]|\.(nii|gz|dcm|csv|tsv|parquet|npz|npy|pt|pth|json|ya?ml|txt|edf|hea|dat)$",
                        re.IGNORECASE)
#: How a redacted value reads: ``opaque:<id>``.
REDACTED_PREFIX = "opaque:"


def _redacted(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_redacted(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _redacted(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float) or str(value).startswith(REDACTED_PREFIX):
        return value
    return REDACTED_PREFIX + opaque_id(value)


def _identifying_key(key: Any) -> bool:
    words = str(key).lower().split("_")
    return str(key).lower() in ID_KEYS or bool(LOCATION_WORDS.intersection(words)) or words[-1] == "ids"


def shareable_config(value: Any) -> Any:
    """``value`` (a run config, or part of one) as shareable outputs show it: every path and
    file name, and every list of input ids, replaced by keyed opaque ids (``opaque:<hex>``, see
    :func:`opaque_id`), so a report, a model card or an export shows inputs only by opaque id.

    A value is replaced when its key names a location or inputs (words such as ``path``,
    ``root``, ``dir``, ``file``; keys such as ``ids``, ``series``, ``cases``), or when it is a
    string that looks like a path (a slash) or a data file's name (``.csv``, ``.nii.gz``, ...).
    Numbers, booleans and component names stay; an ``opaque:`` value stays as it is (applying
    it twice changes nothing).
    """
    if isinstance(value, Mapping):
        return {k: (_redacted(v) if _identifying_key(k) else shareable_config(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [shareable_config(v) for v in value]
    if isinstance(value, str) and _PATH_LIKE.search(value) and not value.startswith(REDACTED_PREFIX):
        return REDACTED_PREFIX + opaque_id(value)
    return value
