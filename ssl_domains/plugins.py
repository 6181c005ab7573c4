"""Plugin discovery and loading, one plugin at a time, each failure isolated.

Environment variables:
    SSL_DOMAINS_PLUGINS: comma-separated entry-point names to load (others are not loaded).
    SSL_DOMAINS_DISABLE: comma-separated entry-point names to skip.
    SSL_DOMAINS_STRICT: ``1`` makes a plugin that fails to import fatal instead of skipped.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import importlib.util
import logging
import os
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from ssl_domains import PROJECT_NAME, __version__, builtin, hookspecs
from ssl_domains.errors import PluginError, SSLDomainsError
from ssl_domains.kinds import KINDS
from ssl_domains.registry import Registrar, Registry

__all__ = ["ENTRY_POINT_GROUP", "LoadedPlugin", "Host", "get_host", "reset_host", "package_dirs",
           "marked_components"]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "ssl_domains"
HOST_PLUGIN = "ssl_domains.builtin"


class PluginImportWarning(UserWarning):
    """A plugin failed to import and was skipped."""


@dataclass
class LoadedPlugin:
    """A plugin that loaded, with where it came from."""

    name: str
    distribution: str
    version: str
    module: str
    components: dict[str, list[str]] = field(default_factory=dict)


def package_dirs(module: str) -> list[Path]:
    """Folders of the top-level package of ``module`` (an entry point's value), found without
    importing it."""
    top = module.split(":")[0].split(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return [Path(p) for p in spec.submodule_search_locations]
    return [Path(spec.origin)] if spec.origin else []


def marked_components(module: str) -> set[str]:
    """Names in the ``@component("name", ...)`` markers of the package of ``module``, read from
    its source without importing it (what a plugin that is installed but not loaded provides)."""
    names: set[str] = set()
    for root in package_dirs(module):
        for path in [root] if root.is_file() else sorted(root.rglob("*.py")):
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
                continue
            for node in ast.walk(tree):
                if not isinstance(node, ast.ClassDef | ast.FunctionDef):
                    continue
                for deco in node.decorator_list:
                    if (isinstance(deco, ast.Call) and deco.args
                            and isinstance(deco.args[0], ast.Constant) and isinstance(deco.args[0].value, str)
                            and getattr(deco.func, "id", getattr(deco.func, "attr", None)) == "component"):
                        names.add(deco.args[0].value)
    return names


def _env_list(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None or not raw.strip():
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


class Host:
    """The plugin manager plus the registry filled by every plugin's hooks.

    Loading a plugin imports only its entry-point module (for the shipped plugins a light
    module of hook implementations). With ``components=False`` the registration hooks (which
    import the component modules: torch models, MONAI) run on the first use of
    :attr:`registry`, so commands that need no component (``--help``, plugin command groups)
    stay fast.
    """

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self._registry: Registry | None = None
        self._pending: list[str] = []
        self.plugins: dict[str, LoadedPlugin] = {}
        self.skipped: dict[str, str] = {}
        self._not_loaded: dict[str, Any] = {}  # entry points skipped: name -> entry point
        self._marked: dict[str, set[str]] = {}

    @property
    def registry(self) -> Registry:
        """Every registered component; runs the registration hooks still pending.

        Raises:
            PluginError: A pending registration hook failed (see :meth:`register_module`).
        """
        if self._registry is None:
            self._registry = Registry(unavailable=self.not_loaded_hint,
                                      converter=self.pm.hook.convert_checkpoint)
        while self._pending:
            self._register_components(self._pending.pop(0))
        return self._registry

    # -- loading -----------------------------------------------------------------------------
    def load(self, entry_points: list[Any] | None = None, *, components: bool = True) -> Host:
        """Load the host's built-ins, then every entry point of the ``ssl_domains`` group.

        Args:
            entry_points: Entry points to load instead of the installed ones (tests).
            components: Run the registration hooks now (default); False defers them to the
                first use of :attr:`registry`.

        Raises:
            PluginError: A plugin broke the contract (duplicate name, bad registration,
                misspelled hook), or failed to import while ``SSL_DOMAINS_STRICT=1``.
        """
        self.register_module(builtin, name="ssl_domains", distribution="ssl-domains",
                             version=__version__, components=components)
        only = _env_list("SSL_DOMAINS_PLUGINS")
        disabled = _env_list("SSL_DOMAINS_DISABLE") or set()
        strict = os.environ.get("SSL_DOMAINS_STRICT", "") not in ("", "0", "false", "no")
        eps = entry_points if entry_points is not None else list(
            md.entry_points(group=ENTRY_POINT_GROUP)
        )
        for ep in sorted(eps, key=lambda e: e.name):
            if (only is not None and ep.name not in only) or ep.name in disabled:
                self.skipped[ep.name] = "disabled by environment"
                self._not_loaded[ep.name] = ep
                continue
            try:
                module = ep.load()
            except Exception as exc:  # noqa: BLE001 - isolation is the point
                reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
                if strict:
                    raise PluginError(
                        f'Error importing plugin "{ep.name}": {reason} '
                        "(SSL_DOMAINS_STRICT is set)"
                    ) from exc
                self.skipped[ep.name] = reason
                self._not_loaded[ep.name] = ep
                warnings.warn(
                    f'Error importing plugin "{ep.name}": {reason}; skipped '
                    "(--debug shows the traceback; set SSL_DOMAINS_STRICT=1 to make this fatal)",
                    PluginImportWarning,
                    stacklevel=2,
                )
                log.debug('plugin "%s" failed to import:\n%s', ep.name,
                          "".join(traceback.format_exception(exc)).rstrip())
                continue
            dist = getattr(ep, "dist", None)
            self.register_module(
                module,
                name=ep.name,
                distribution=getattr(dist, "name", ep.name) if dist else ep.name,
                version=getattr(dist, "version", "unknown") if dist else "unknown",
                components=components,
            )
        return self

    def register_module(
        self, module: ModuleType | object, *, name: str, distribution: str, version: str,
        components: bool = True,
    ) -> LoadedPlugin:
        """Register one plugin object and run its registration hooks (now, or with
        ``components=False`` on the first use of :attr:`registry`).

        Raises:
            PluginError: Misspelled hook, or an error in one of its registration hooks.
        """
        if name in self.plugins:
            raise PluginError(f"plugin {name!r} is loaded twice (two distributions claim it?)")
        try:
            self.pm.register(module, name=name)
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(name=name) if self.pm.has_plugin(name) else None
            raise PluginError(f"plugin {name!r}: {exc}") from exc
        self.plugins[name] = LoadedPlugin(name, distribution, version,
                                          getattr(module, "__name__", name))
        self._pending.append(name)
        if components:
            self.registry  # noqa: B018 - runs the pending registration hooks
        return self.plugins[name]

    def _register_components(self, name: str) -> None:
        assert self._registry is not None
        plugin = self.plugins[name]
        version = plugin.version
        for kind, hook_name in KINDS.items():
            hook = getattr(self.pm.hook, hook_name)
            for impl in hook.get_hookimpls():
                if impl.plugin_name != name:
                    continue
                registrar = Registrar(self._registry, kind, name, version)
                try:
                    impl.function(registry=registrar)
                except SSLDomainsError:
                    raise
                except Exception as exc:  # noqa: BLE001
                    raise PluginError(
                        f"plugin {name!r}: {hook_name} failed: {type(exc).__name__}: {exc}"
                    ) from exc
        plugin.components = self._registry.by_plugin().get(name, {})

    # -- queries -----------------------------------------------------------------------------
    def not_loaded_hint(self, kind: str, name: str) -> str | None:
        """Why component ``name`` is missing when a plugin that was not loaded (disabled by the
        environment, or failed to import) marks it with ``@component``; else None."""
        for ep_name, ep in sorted(self._not_loaded.items()):
            if ep_name not in self._marked:
                self._marked[ep_name] = marked_components(ep.value)
            if name in self._marked[ep_name]:
                dist = getattr(getattr(ep, "dist", None), "name", None) or ep_name
                reason = self.skipped.get(ep_name, "not loaded")
                if reason == "disabled by environment":
                    reason += " (SSL_DOMAINS_PLUGINS / SSL_DOMAINS_DISABLE)"
                return (f"needs plugin {ep_name!r} ({dist}), which is installed but not loaded: "
                        f"{reason}")
        return None

    def describe(self) -> dict[str, Any]:
        """What loaded (with versions and components) and what was skipped."""
        self.registry  # noqa: B018 - components are listed
        return {
            "host": {"name": "ssl-domains", "version": __version__},
            "plugins": [
                {
                    "name": p.name,
                    "distribution": p.distribution,
                    "version": p.version,
                    "module": p.module,
                    "components": p.components,
                }
                for p in self.plugins.values()
            ],
            "skipped": self.skipped,
        }


_HOST: Host | None = None


def get_host(*, components: bool = True) -> Host:
    """The process-wide host, loaded on first use.

    Args:
        components: False leaves the registration hooks to the first use of
            ``host.registry`` (the CLI's fast path).
    """
    global _HOST
    if _HOST is None:
        _HOST = Host().load(components=components)
    elif components:
        _HOST.registry  # noqa: B018 - runs pending registration hooks
    return _HOST


def reset_host() -> None:
    """Forget the loaded host (tests; after changing the environment variables)."""
    global _HOST
    _HOST = None
