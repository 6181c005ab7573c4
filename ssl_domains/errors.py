"""Errors the user sees as one clear line (the CLI prints ``str(error)`` and exits non-zero)."""

from __future__ import annotations

from pathlib import Path


class SSLDomainsError(Exception):
    """Base of every error meant for the user: its message is one line that says what to do."""


class ConfigError(SSLDomainsError):
    """A run config key is unknown or a value is not allowed."""


class RegistryError(SSLDomainsError):
    """A component name is unknown, duplicated, or registered in breach of its contract."""


class PluginError(SSLDomainsError):
    """A plugin could not be loaded or broke the plugin contract."""


class ContractError(RegistryError):
    """A registered object does not satisfy the contract of its kind."""


class IncompatibleError(SSLDomainsError):
    """Two components cannot be combined (e.g. a 3-D pretext task on a 1-D backbone)."""


class CheckpointError(SSLDomainsError):
    """A checkpoint or export is missing, corrupt, or does not fit the model."""


class DataError(SSLDomainsError):
    """An input file or folder cannot be used; the message names the file and the problem.

    Args:
        path: The offending file or folder.
        reason: What is wrong, in a few words (no patient identifiers).
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class RefusedInput(DataError):
    """An input a loader was told to refuse rather than use or skip (``nonfinite: refuse``):
    it stops the run, also where unreadable items are otherwise skipped."""


class WriteError(SSLDomainsError):
    """A file of a run could not be written (disk full, read-only, quota, permissions); the
    message names the path and the cause, and no partial file is left behind.

    Args:
        path: The file that was being written.
        cause: The operating system's reason (e.g. ``No space left on device``).
    """

    def __init__(self, path: str | Path, cause: str) -> None:
        self.path = str(path)
        self.cause = cause
        super().__init__(f"{self.path}: cannot write ({cause})")
