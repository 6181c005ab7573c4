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
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
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
