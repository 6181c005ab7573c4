"""Named components with provenance: which plugin registered what, at which version.

Plugins never touch :class:`Registry` directly: each hook receives a :class:`Registrar` bound
to one kind and one plugin, which validates at ``add()`` time and names the plugin in errors.
A component that builds other components (a loader that wraps another loader) declares a
``registry`` parameter; :meth:`Registry.create` passes itself there, so no component reaches for
a global host.
"""

from __future__ import annotations

import difflib
import inspect
import os
import re
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ssl_domains.contracts import MODALITIES, Example
from ssl_domains.errors import ConfigError, ContractError, RegistryError, SSLDomainsError
from ssl_domains.kinds import KINDS

__all__ = ["KINDS", "REGISTRY_PARAMETER", "Entry", "Registry", "Registrar", "component"]

#: A factory parameter of this name receives the registry that builds it (see :meth:`Registry.create`).
REGISTRY_PARAMETER = "registry"

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Entry:
    """One registered component.

    Attributes:
        kind: One of :data:`KINDS`.
        name: Unique name within the kind (``snake_case``).
        factory: Callable that builds the component.
        plugin: Name of the plugin that registered it.
        version: That plugin's distribution version.
        description: One line for ``ssl-domains list``.
        modalities: Modalities it accepts or produces (``image``/``signal``).
        dims: Spatial dimensionalities it supports.
        examples: Small configurations for the conformance kit.
        meta: Any further metadata the plugin attached.
    """

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    version: str
    description: str = ""
    modalities: tuple[str, ...] = ()
    dims: tuple[int, ...] = ()
    examples: tuple[Example, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """JSON-friendly description (for ``ssl-domains describe``)."""
        try:
            full = inspect.signature(self.factory)
            # the registry parameter is supplied by the host, not by a config
            signature = str(full.replace(parameters=[
                p for p in full.parameters.values() if p.name != REGISTRY_PARAMETER]))
        except (TypeError, ValueError):
            signature = "(...)"
        doc = inspect.getdoc(self.factory) or ""
        extra = {}
        if self.meta.get("prefer") is not None:  # a task's order of preference for auto
            extra["prefer"] = [str(p) for p in self.meta["prefer"]]
        return {
            "kind": self.kind,
            "name": self.name,
            "plugin": self.plugin,
            "version": self.version,
            "description": self.description,
            "modalities": list(self.modalities),
            "dims": list(self.dims),
            "signature": signature,
            "doc": doc,
            "examples": [{"args": e.args, "input_shape": e.input_shape} for e in self.examples],
            **extra,
        }


def component(
    name: str,
    *,
    description: str = "",
    modalities: Sequence[str] = (),
    dims: Sequence[int] = (),
    examples: Sequence[Example | dict[str, Any]] = (),
    **meta: Any,
) -> Callable[[Any], Any]:
    """Attach registration metadata next to a definition (``@component("unet_encoder", ...)``).

    The plugin's hook then registers it with ``registry.add(UNetEncoder)``.
    """

    def mark(obj: Any) -> Any:
        obj.__ssl_component__ = {
            "name": name,
            "description": description,
            "modalities": tuple(modalities),
            "dims": tuple(dims),
            "examples": tuple(examples),
            "meta": meta,
        }
        return obj

    return mark


#: What a component's constructor raises on arguments it refuses.
_ARGUMENT_ERRORS = (ValueError, TypeError, RuntimeError, AssertionError, KeyError, IndexError, ZeroDivisionError)

_SCALARS: dict[Any, str] = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _scalar_type(annotation: Any) -> tuple[Any, bool] | None:
    """``(type, optional)`` for ``int``/``float``/``bool``/``str`` annotations, optionally
    ``| None``; None for anything else (left unchecked)."""
    if annotation in _SCALARS:
        return annotation, False
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        other = next(a for a in args if a is not type(None))
        if other in _SCALARS:
            return other, True
    return None


def _coerce(value: Any, expected: Any) -> Any:
    """``value`` as ``expected`` (a text number is converted); raises ValueError otherwise."""
    if expected is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no"):
            return value.strip().lower() in ("true", "yes")
        raise ValueError
    if isinstance(value, bool):
        raise ValueError
    if expected is int:
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            return int(value.strip())
        raise ValueError
    if expected is float:
        if isinstance(value, int | float):
            return value
        if isinstance(value, str):
            return float(value.strip())
        raise ValueError
    if expected is str:
        if isinstance(value, int | float):
            return str(value)  # a YAML number where text is meant (a column named 1)
        if not isinstance(value, str | os.PathLike):
            raise ValueError
    return value


def _coerce_kwargs(factory: Any, signature: inspect.Signature, kwargs: dict[str, Any], where: str) -> dict[str, Any]:
    try:
        target = factory.__init__ if inspect.isclass(factory) else factory
        hints = typing.get_type_hints(target)
    except Exception:  # noqa: BLE001 - unresolvable annotations: leave the arguments as given
        return kwargs
    out = dict(kwargs)
    for key, value in kwargs.items():
        if key not in signature.parameters or key not in hints:
            continue
        scalar = _scalar_type(hints[key])
        if scalar is None:
            continue
        expected, optional = scalar
        if value is None and optional:
            continue
        try:
            out[key] = _coerce(value, expected)
        except (ValueError, TypeError):
            raise ConfigError(f"{where}: {key}={value!r}: expected {_SCALARS[expected]}"
                              + (" or null" if optional else "")) from None
    return out


def _blame(exc: BaseException, kwargs: dict[str, Any]) -> str:
    """The factory's error with the argument it is about, when the message tells."""
    message = (str(exc).strip().splitlines() or [""])[0] or type(exc).__name__
    if isinstance(exc, KeyError | AssertionError | IndexError | ZeroDivisionError) or not str(exc).strip():
        message = f"{type(exc).__name__}: {message}"
    for key, value in kwargs.items():  # named in the message
        if re.search(rf"\b{re.escape(key)}\b", message):
            return f"{key}={value!r}: {message}"
    for key, value in kwargs.items():  # or its value is
        if isinstance(value, int | float | str) and not isinstance(value, bool) and str(value) and \
                re.search(rf"(?<![\w.-]){re.escape(str(value))}(?![\w.])", message):
            return f"{key}={value!r}: {message}"
    shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if not hasattr(v, "state_dict"))
    return f"{message} (arguments: {shown or 'none'})"


class Registry:
    """All components of all loaded plugins, by kind and name.

    Args:
        unavailable: Asked on an unknown name, ``unavailable(kind, name)`` returns why it is not
            here (e.g. "in plugin X, which is installed but not loaded") or None; the plugin
            host passes one that reads the plugins it did not load.
        converter: The plugins' ``convert_checkpoint`` hook, called by :meth:`convert` (the
            plugin host passes its hook; a registry without one converts nothing).
    """

    def __init__(self, unavailable: Callable[[str, str], str | None] | None = None,
                 converter: Callable[..., Any] | None = None) -> None:
        self._entries: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
        self._unavailable = unavailable
        self._converter = converter

    def convert(self, state_dict: dict[str, Any], source: str, backbone: Any) -> Any:
        """Foreign weights mapped onto ``backbone`` by the first plugin whose
        ``convert_checkpoint`` recognises them (a :class:`~ssl_domains.contracts.Conversion`),
        or None."""
        if self._converter is None:
            return None
        return self._converter(state_dict=state_dict, source=source, backbone=backbone)

    def _check_kind(self, kind: str) -> None:
        if kind not in KINDS:
            raise RegistryError(f"unknown kind {kind!r}; kinds are: {', '.join(KINDS)}")

    def add(self, entry: Entry) -> None:
        """Add an entry; a duplicate name is an error naming both plugins."""
        self._check_kind(entry.kind)
        existing = self._entries[entry.kind].get(entry.name)
        if existing is not None:
            raise RegistryError(
                f"plugin {entry.plugin!r}: {entry.kind} {entry.name!r} is already registered "
                f"by plugin {existing.plugin!r}; rename one of them"
            )
        self._entries[entry.kind][entry.name] = entry

    def get(self, kind: str, name: str) -> Entry:
        """The entry ``kind``/``name``.

        Raises:
            RegistryError: Unknown name; the message names the plugin that has it when one is
                installed but not loaded, else suggests close names.
        """
        self._check_kind(kind)
        try:
            return self._entries[kind][name]
        except KeyError:
            pass
        why = self._unavailable(kind, name) if self._unavailable is not None else None
        if why:
            raise RegistryError(f"{kind} {name!r} {why}")
        known = sorted(self._entries[kind])
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(known) if known else "none registered"
        raise RegistryError(f"unknown {kind} {name!r}{hint} (known: {listing})")

    def create(self, kind: str, name: str, *args: Any, **kwargs: Any) -> Any:
        """Build component ``name`` with ``factory(*args, **kwargs)``.

        Keyword arguments are checked against the factory's annotations first (``int``,
        ``float``, ``bool``, ``str``, optionally ``| None``; numbers written as text are
        converted), and an error the factory raises on its arguments is re-raised naming the
        component and, where it can be told, the key: ``backbone 'tcn' (plugin timeseries):
        kernel_size='abc': expected an integer``. A factory with a ``registry`` parameter
        (:data:`REGISTRY_PARAMETER`) gets this registry there, to build the components it wraps.

        Raises:
            RegistryError: Unknown name, or arguments the factory does not take.
            ConfigError: An argument of the wrong type or one the factory refuses.
        """
        entry = self.get(kind, name)
        where = f"{kind} {name!r} (plugin {entry.plugin})"
        try:
            signature: inspect.Signature | None = inspect.signature(entry.factory)
        except (TypeError, ValueError):
            signature = None
        if signature is not None and REGISTRY_PARAMETER in signature.parameters:
            if REGISTRY_PARAMETER in kwargs:
                raise RegistryError(f"{where}: {REGISTRY_PARAMETER!r} is supplied by the host; "
                                    "remove it from the arguments")
            kwargs = {**kwargs, REGISTRY_PARAMETER: self}
        if signature is not None:
            try:
                signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise RegistryError(f"{where}: {exc}; see `ssl-domains describe {kind} {name}`") from None
            kwargs = _coerce_kwargs(entry.factory, signature, kwargs, where)
        if kind == "loader":  # loaders read files: their errors name the data (build_dataset)
            return entry.factory(*args, **kwargs)
        try:
            return entry.factory(*args, **kwargs)
        except SSLDomainsError:
            raise
        except _ARGUMENT_ERRORS as exc:
            given = {k: v for k, v in kwargs.items() if k != REGISTRY_PARAMETER}
            raise ConfigError(f"{where}: {_blame(exc, given)}") from exc

    def names(self, kind: str) -> list[str]:
        """Registered names of a kind, sorted."""
        self._check_kind(kind)
        return sorted(self._entries[kind])

    def entries(self, kind: str | None = None) -> list[Entry]:
        """Entries of one kind (or all), sorted by kind then name."""
        kinds: Iterable[str] = [kind] if kind else KINDS
        out: list[Entry] = []
        for k in kinds:
            self._check_kind(k)
            out.extend(self._entries[k][n] for n in sorted(self._entries[k]))
        return out

    def by_plugin(self) -> dict[str, dict[str, list[str]]]:
        """``{plugin: {kind: [names]}}``."""
        out: dict[str, dict[str, list[str]]] = {}
        for e in self.entries():
            out.setdefault(e.plugin, {}).setdefault(e.kind, []).append(e.name)
        return out


class Registrar:
    """What a registration hook receives: adds components of one kind for one plugin."""

    def __init__(self, registry: Registry, kind: str, plugin: str, version: str) -> None:
        self.registry = registry
        self.kind = kind
        self.plugin = plugin
        self.version = version

    def add(
        self,
        name_or_factory: str | Callable[..., Any],
        factory: Callable[..., Any] | None = None,
        *,
        description: str | None = None,
        modalities: Sequence[str] | None = None,
        dims: Sequence[int] | None = None,
        examples: Sequence[Example | dict[str, Any]] | None = None,
        **meta: Any,
    ) -> None:
        """Register a component: ``add(Factory)`` (metadata from :func:`component`) or
        ``add("name", factory, ...)``.

        Raises:
            ContractError: Bad name, non-callable factory, or malformed metadata; the message
                names the plugin.
        """
        if factory is None and callable(name_or_factory):
            factory = name_or_factory
            marked = getattr(factory, "__ssl_component__", None)
            if marked is None:
                raise ContractError(
                    f"plugin {self.plugin!r}: {self.kind} {factory!r} has no @component(...) "
                    "marker; pass a name: registry.add('name', factory)"
                )
            name = marked["name"]
        else:
            if not isinstance(name_or_factory, str):
                raise ContractError(
                    f"plugin {self.plugin!r}: {self.kind} name must be a string, "
                    f"got {name_or_factory!r}"
                )
            name = name_or_factory
            marked = getattr(factory, "__ssl_component__", None) or {}
        if not callable(factory):
            raise ContractError(
                f"plugin {self.plugin!r}: {self.kind} {name!r} factory is not callable "
                f"({type(factory).__name__})"
            )
        if not _NAME.match(name):
            raise ContractError(
                f"plugin {self.plugin!r}: {self.kind} name {name!r} must be snake_case "
                "(lower-case letters, digits, underscores)"
            )
        mods = tuple(modalities if modalities is not None else marked.get("modalities", ()))
        bad = [m for m in mods if m not in MODALITIES]
        if bad:
            raise ContractError(
                f"plugin {self.plugin!r}: {self.kind} {name!r} has unknown modalities {bad}; "
                f"allowed: {list(MODALITIES)}"
            )
        dim_t = tuple(dims if dims is not None else marked.get("dims", ()))
        if any(d not in (1, 2, 3) for d in dim_t):
            raise ContractError(
                f"plugin {self.plugin!r}: {self.kind} {name!r} dims must be among 1, 2, 3; "
                f"got {list(dim_t)}"
            )
        raw_examples = examples if examples is not None else marked.get("examples", ())
        ex: list[Example] = []
        for e in raw_examples:
            if isinstance(e, dict):
                e = Example(**e)
            if not isinstance(e, Example):
                raise ContractError(
                    f"plugin {self.plugin!r}: {self.kind} {name!r} examples must be Example "
                    f"or dict, got {type(e).__name__}"
                )
            ex.append(e)
        desc = description if description is not None else marked.get("description", "")
        if not desc:
            doc = inspect.getdoc(factory) or ""
            desc = doc.splitlines()[0] if doc else ""
        self.registry.add(
            Entry(
                kind=self.kind,
                name=name,
                factory=factory,
                plugin=self.plugin,
                version=self.version,
                description=desc,
                modalities=mods,
                dims=dim_t,
                examples=tuple(ex),
                meta={**marked.get("meta", {}), **meta},
            )
        )
