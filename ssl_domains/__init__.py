"""ssl-domains: self-supervised pre-training and few-label fine-tuning, with domain plugins."""

from __future__ import annotations

import pluggy

__all__ = ["__version__", "hookimpl", "hookspec", "PROJECT_NAME"]

__version__ = "0.1.0"
PROJECT_NAME = "ssl_domains"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
