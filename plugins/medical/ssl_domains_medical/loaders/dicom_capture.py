"""Third-party console noise while reading DICOM, captured per file instead of printed.

pydicom, pylibjpeg, Pillow, nibabel and MONAI report odd files through Python warnings and
their own loggers (pydicom does both, so the console showed each message twice). Inside
:class:`capture_file_messages` those records are kept per file, once each, with quoted header
values redacted (a pydicom message can quote a PatientName), and the tracebacks attached to log
records are kept apart for ``--debug``. Nothing reaches the console while it is active.
"""

from __future__ import annotations

import logging
import re
import traceback
import warnings
from types import TracebackType
from typing import Any

__all__ = ["THIRD_PARTY_LOGGERS", "capture_file_messages", "redact"]

#: Loggers whose records are captured (their children included).
THIRD_PARTY_LOGGERS = ("pydicom", "pylibjpeg", "openjpeg", "libjpeg", "PIL", "nibabel", "monai")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_BOILERPLATE = re.compile(r"\s*Please see <[^>]*>.*$")
_MAX_CHARS = 200


def redact(text: str) -> str:
    """One line of ``text`` with quoted values replaced by ``'…'`` (they can be header values)."""
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    line = lines[0] if lines else ""
    if line.endswith(":") and len(lines) > 1:  # "raised by all available plugins:" + the first
        line += " " + lines[1]
    return _BOILERPLATE.sub("", _QUOTED.sub("'…'", line))[:_MAX_CHARS]


class _Handler(logging.Handler):
    def __init__(self, owner: capture_file_messages) -> None:
        super().__init__(logging.DEBUG)
        self.owner = owner

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.WARNING:
            return
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record must not break reading
            text = str(record.msg)
        tb = "".join(traceback.format_exception(*record.exc_info)) if record.exc_info else ""
        self.owner.add(text, tb)


class capture_file_messages:  # noqa: N801 - used as a context manager, reads like a function
    """Collect third-party warnings and log records per file while reading DICOM.

    Set :attr:`current` to the file being read; records go to ``messages[current]`` (each text
    once). Use as ``with capture_file_messages() as cap: cap.current = path; ...``.

    Attributes:
        current: Key (file path) the next records belong to.
        messages: Redacted one-line messages per key, each once, in arrival order.
        tracebacks: Full tracebacks per key (only shown with ``--debug``).
    """

    def __init__(self) -> None:
        self.current = ""
        self.messages: dict[str, list[str]] = {}
        self.tracebacks: dict[str, list[str]] = {}
        self._handler = _Handler(self)
        self._saved: list[tuple[logging.Logger, list[logging.Handler], bool]] = []
        self._warnings: Any = None

    def add(self, message: str, tb: str = "") -> None:
        """Record ``message`` (redacted, once) and ``tb`` for the current file."""
        text = redact(message)
        seen = self.messages.setdefault(self.current, [])
        if text and text not in seen:
            seen.append(text)
        if tb:
            self.tracebacks.setdefault(self.current, []).append(tb)

    def _showwarning(self, message: Any, category: Any, filename: str, lineno: int,
                     file: Any = None, line: str | None = None) -> None:
        self.add(str(message))  # pydicom logs and warns the same text: kept once

    def __enter__(self) -> capture_file_messages:
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("always")
        warnings.showwarning = self._showwarning
        for name in THIRD_PARTY_LOGGERS:
            logger = logging.getLogger(name)
            self._saved.append((logger, list(logger.handlers), logger.propagate))
            logger.handlers = [self._handler]
            logger.propagate = False
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for logger, handlers, propagate in self._saved:
            logger.handlers = handlers
            logger.propagate = propagate
        self._saved.clear()
        self._warnings.__exit__(exc_type, exc, tb)
