"""ssl-domains: self-supervised pre-training and few-label fine-tuning, with domain plugins."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

__all__ = ["__version__", "hookimpl", "hookspec", "PROJECT_NAME", "add_plugin_command"]

__version__ = "0.1.0"
PROJECT_NAME = "ssl_domains"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


def add_plugin_command(cli: click.Group, name: str, import_path: str, short_help: str) -> None:
    """Add a plugin's command group ``module:attribute`` to ``cli`` (a ``register_commands`` hook).

    On the host's own group (one with ``add_lazy_command``) the module is imported only when
    the command is used, so ``ssl-domains --help`` stays fast; on any other click group the
    command is imported and added now.
    """
    add_lazy = getattr(cli, "add_lazy_command", None)
    if add_lazy is not None:
        add_lazy(name, import_path, short_help)
        return
    module, attr = import_path.split(":", 1)
    cli.add_command(getattr(importlib.import_module(module), attr))
