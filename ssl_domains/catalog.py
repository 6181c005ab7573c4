"""What the installed plugins provide, without importing their components.

``ssl-domains plugins``, ``list`` and ``describe`` read a catalog: what :meth:`Host.describe`
and :meth:`Entry.describe` return for every component. Building it imports every component
module (torch models, MONAI), so it is cached as JSON under a key that changes whenever
anything it depends on changes: the Python interpreter, the host's version, the installed
``ssl_domains`` entry points and their distributions' versions, the size and modification
time of every ``.py`` file of the host and of each plugin's package, the modification time of
every ``sys.path`` folder (installing or removing a package changes it) and the
``SSL_DOMAINS_*`` plugin-selection variables. A miss (first run, or after any of these
changed) builds the catalog the slow way and writes it; an unwritable cache folder only costs
speed.

Cache folder: ``$SSL_DOMAINS_CACHE``, else ``$XDG_CACHE_HOME/ssl-domains``, else
``~/.cache/ssl-domains``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ssl_domains
from ssl_domains import __version__
from ssl_domains.plugins import ENTRY_POINT_GROUP, get_host, package_dirs

__all__ = ["cache_dir", "catalog_key", "load_catalog", "component_info"]

log = logging.getLogger(__name__)

_FORMAT = 2  # 2: a task's registered order of preference (``prefer``)
_ENV = ("SSL_DOMAINS_PLUGINS", "SSL_DOMAINS_DISABLE", "SSL_DOMAINS_STRICT")


def cache_dir() -> Path:
    """Where the catalog cache lives (see the module docstring)."""
    if os.environ.get("SSL_DOMAINS_CACHE"):
        return Path(os.environ["SSL_DOMAINS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ssl-domains"


def _stat_tree(h: Any, root: Path) -> None:
    paths = [root] if root.is_file() else sorted(root.rglob("*.py"))
    for p in paths:
        try:
            st = p.stat()
        except OSError:
            continue
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())


_KEYS: dict[tuple[str, ...], str] = {}


def catalog_key() -> str:
    """Hash of everything the catalog depends on (see the module docstring); computed once
    per process and plugin-selection environment."""
    env = tuple(os.environ.get(var, "") for var in _ENV)
    if env not in _KEYS:
        _KEYS[env] = _compute_key()
    return _KEYS[env]


def _compute_key() -> str:
    h = hashlib.sha256()
    h.update(f"{_FORMAT}|{sys.executable}|{sys.version}|{__version__}\n".encode())
    for var in _ENV:
        h.update(f"{var}={os.environ.get(var, '')}\n".encode())
    for entry in sys.path:
        if entry in ("", ".", os.getcwd()):
            continue  # the working folder changes with every run folder written
        try:
            h.update(f"{entry}|{os.stat(entry or '.').st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{entry}|-\n".encode())
    for host_dir in ssl_domains.__path__:
        _stat_tree(h, Path(host_dir))
    for ep in sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name, e.value)):
        dist = getattr(ep, "dist", None)
        h.update(f"{ep.name}={ep.value}|{getattr(dist, 'name', '')}|{getattr(dist, 'version', '')}\n".encode())
        for pkg in package_dirs(ep.value):
            _stat_tree(h, pkg)
    return h.hexdigest()[:32]


def _build() -> dict[str, Any]:
    host = get_host()
    data = {
        "format": _FORMAT,
        "plugins": host.describe(),
        "components": [e.describe() for e in host.registry.entries()],
    }
    return json.loads(json.dumps(data, default=str))  # what a cache hit returns, exactly


def load_catalog(*, use_cache: bool = True) -> dict[str, Any]:
    """The catalog: ``{"plugins": Host.describe(), "components": [Entry.describe(), ...]}``.

    Args:
        use_cache: False always builds it from the loaded plugins (and does not write).

    Raises:
        PluginError: Building it failed the way loading the plugins fails.
    """
    if not use_cache:
        return _build()
    path = cache_dir() / f"catalog-{catalog_key()}.json"
    try:
        data = json.loads(path.read_text())
        if data.get("format") == _FORMAT:
            return data
    except (OSError, ValueError):
        pass
    data = _build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for old in path.parent.glob("catalog-*.json"):  # other environments' stay a day
            if old.stat().st_mtime < time.time() - 86400:
                old.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("catalog cache not written (%s); the next listing is slow again", exc)
    return data


def component_info(kind: str, name: str) -> dict[str, Any]:
    """One component's description from the catalog.

    Raises:
        RegistryError: Unknown name (the registry's message: close names, or the plugin to
            install).
    """
    for c in load_catalog()["components"]:
        if c["kind"] == kind and c["name"] == name:
            return c
    return get_host().registry.get(kind, name).describe()  # raises the registry's error
