"""One console policy for every command: readable, each warning once, a summary at the end.

The CLI calls :func:`setup` once; library code only logs (``logging.getLogger(__name__)``):

- Every warning is printed the first time; repeats are counted, not printed, and the end-of-run
  summary shows each repeated warning once with its count
  (``case 5: no background patch found (×16)``). Repeats are recognised by the message text,
  or by an explicit key: :func:`warn_once` (``warn_once(log, ("no-background", case), msg)``)
  for messages that differ in detail but mean the same thing.
- Python ``warnings`` go through the same path (one line each, counted the same way).
- The project's loggers (``ssl_domains*`` and every installed plugin's package) log at INFO
  (DEBUG with ``-v``); third-party loggers at WARNING unless ``--debug``.
- :func:`note_skipped` records an input that was left out (a file, a case, a patch) with the
  reason; the end-of-run summary lists them, grouped by reason.
- :func:`progress` is a tqdm bar on a terminal and, when stderr is not a terminal (CI, a log
  file), one line every ``every`` steps (every 20 % by default).

Outside the CLI (tests, notebooks) nothing is installed: logging behaves as Python's default
and :func:`note_skipped`/:func:`summary_lines` still collect.
"""

from __future__ import annotations

import importlib.metadata as md
import logging
import math
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Hashable
from typing import IO, Any

__all__ = [
    "ConsoleHandler",
    "setup",
    "warn_once",
    "note_skipped",
    "skipped",
    "summary_lines",
    "reset",
    "progress",
    "LineProgress",
    "project_loggers",
]

_ONCE_KEY = "ssl_domains_once_key"
_lock = threading.Lock()
_warnings: Counter[Hashable] = Counter()
_first: dict[Hashable, str] = {}
_skipped: list[tuple[str, str]] = []
_handler: ConsoleHandler | None = None


def project_loggers() -> list[str]:
    """``ssl_domains`` and the top-level package of every installed plugin (entry points are
    read, nothing is imported)."""
    names = ["ssl_domains"]
    try:
        eps = md.entry_points(group="ssl_domains")
    except Exception:  # noqa: BLE001 - broken metadata must not break logging
        eps = ()  # type: ignore[assignment]
    for ep in eps:
        top = ep.value.split(":")[0].split(".")[0]
        if top and top not in names:
            names.append(top)
    return names


def _count(key: Hashable, message: str) -> int:
    with _lock:
        _warnings[key] += 1
        _first.setdefault(key, message)
        return _warnings[key]


class ConsoleHandler(logging.Handler):
    """Writes one readable line per record to stderr (through ``tqdm.write``, so progress bars
    stay intact); a warning whose key was already seen is only counted."""

    def __init__(self, stream: IO[str] | None = None, *, names: bool = False) -> None:
        super().__init__()
        self.stream = stream
        self.names = names

    def format_line(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.exc_info and record.levelno >= logging.ERROR:
            msg += "\n" + logging.Formatter().formatException(record.exc_info)
        if self.names or record.levelno < logging.INFO:
            return f"{record.levelname.lower()} {record.name}: {msg}"
        if record.levelno >= logging.ERROR:
            return f"error: {msg}"
        if record.levelno >= logging.WARNING:
            return f"warning: {msg}"
        return msg

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.levelno >= logging.WARNING:
                key = getattr(record, _ONCE_KEY, None)
                msg = record.getMessage()
                if _count(key if key is not None else msg, msg) > 1:
                    return
            line = self.format_line(record)
            stream = self.stream or sys.stderr
            from tqdm import tqdm

            tqdm.write(line, file=stream)
            stream.flush()
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def _one_line_warning(message: Any, category: Any, filename: str, lineno: int,
                      line: str | None = None) -> str:
    return f"{message}"


def setup(*, verbose: bool = False, debug: bool = False, stream: IO[str] | None = None) -> ConsoleHandler:
    """Install the policy on the root logger (idempotent; the CLI calls it once per command).

    Args:
        verbose: The project's loggers at DEBUG (third-party ones stay at WARNING).
        debug: Everything at DEBUG, third-party loggers included, with logger names.
        stream: Where lines go (default: ``sys.stderr`` at the time of writing).
    """
    global _handler
    reset()
    root = logging.getLogger()
    for h in list(root.handlers):
        if isinstance(h, ConsoleHandler):
            root.removeHandler(h)
    _handler = ConsoleHandler(stream, names=debug)
    root.addHandler(_handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    ours = logging.DEBUG if (verbose or debug) else logging.INFO
    for name in project_loggers():
        logging.getLogger(name).setLevel(ours)
    warnings.formatwarning = _one_line_warning  # type: ignore[assignment]
    logging.captureWarnings(True)
    return _handler


def warn_once(logger: logging.Logger, key: Hashable, message: str, *args: Any) -> None:
    """Log a warning whose repeats (same ``key``) are only counted, even if the text differs
    (the first text is the one shown)."""
    logger.warning(message, *args, extra={_ONCE_KEY: key})


def note_skipped(item: str, reason: str) -> None:
    """Record that ``item`` (a file, a case, a patch: no patient identifiers) was left out."""
    with _lock:
        _skipped.append((item, reason))


def skipped() -> list[tuple[str, str]]:
    """Everything recorded by :func:`note_skipped` since the last :func:`reset`."""
    with _lock:
        return list(_skipped)


def reset() -> None:
    """Forget counted warnings and skipped items."""
    with _lock:
        _warnings.clear()
        _first.clear()
        _skipped.clear()


def summary_lines(max_items: int = 20) -> list[str]:
    """The end-of-run summary: repeated warnings with their counts, then skipped items grouped
    by reason (empty when there is nothing to say)."""
    with _lock:
        repeated = [(k, n) for k, n in _warnings.items() if n > 1]
        n_warn = len(_warnings)
        total = sum(_warnings.values())
        first = dict(_first)
        skips = list(_skipped)
    if not repeated and not skips:
        return []
    head = []
    if n_warn:
        head.append(f"{n_warn} distinct warning{'s' * (n_warn != 1)} ({total} in all)")
    if skips:
        head.append(f"{len(skips)} item{'s' * (len(skips) != 1)} skipped")
    lines = ["summary: " + ", ".join(head)]
    for key, n in sorted(repeated, key=lambda kn: -kn[1])[:max_items]:
        lines.append(f"  warning: {first[key]} (×{n})")
    by_reason: dict[str, list[str]] = {}
    for item, reason in skips:
        by_reason.setdefault(reason, []).append(item)
    for reason, items in by_reason.items():
        counts = Counter(items)  # an item skipped several times (per patch, per epoch) once
        names = [f"{item} (×{n})" if n > 1 else item for item, n in counts.items()]
        shown = ", ".join(names[:5]) + (f", ... ({len(names) - 5} more)" if len(names) > 5 else "")
        lines.append(f"  skipped ({reason}): {len(items)}: {shown}")
    return lines


class LineProgress:
    """tqdm's surface (``update``, ``set_postfix``, ``close``) for non-terminals: one INFO line
    every ``every`` steps and at the end."""

    def __init__(self, total: int, *, initial: int = 0, desc: str = "", every: int | None = None,
                 unit: str = "step", logger: logging.Logger | None = None) -> None:
        self.total = max(0, int(total))
        self.n = initial
        self.start_n = initial
        self.desc = desc
        self.unit = unit
        self.every = every or max(1, math.ceil(self.total / 5))
        self.postfix: dict[str, Any] = {}
        self.log = logger or logging.getLogger("ssl_domains.progress")
        self.t0 = time.perf_counter()
        self.last_logged = initial
        self.closed = False

    def set_postfix(self, **kwargs: Any) -> None:
        self.postfix = kwargs

    def line(self) -> str:
        elapsed = max(1e-9, time.perf_counter() - self.t0)
        rate = (self.n - self.start_n) / elapsed
        pct = f" ({100 * self.n / self.total:.0f} %)" if self.total else ""
        parts = [f"{self.desc}: {self.unit} {self.n}/{self.total}{pct}"]
        parts += [f"{k} {v}" for k, v in self.postfix.items()]
        parts.append(f"{rate:.2f} {self.unit}/s")
        if rate > 0 and self.total > self.n:
            parts.append(f"eta {(self.total - self.n) / rate:.0f} s")
        return ", ".join(parts)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.n - self.last_logged >= self.every:
            self.last_logged = self.n
            self.log.info(self.line())

    def close(self) -> None:
        if not self.closed and self.n != self.last_logged:
            self.last_logged = self.n
            self.log.info(self.line())
        self.closed = True


def progress(total: int, *, initial: int = 0, desc: str = "", enabled: bool = True,
             every: int | None = None, unit: str = "step", stream: IO[str] | None = None) -> Any:
    """A progress bar (tqdm) on a terminal, else a :class:`LineProgress`; ``enabled=False``
    gives a silent one."""
    stream = stream or sys.stderr
    is_tty = bool(getattr(stream, "isatty", lambda: False)())
    if enabled and is_tty:
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True,
                    leave=False, mininterval=0.5, file=stream)
    bar = LineProgress(total, initial=initial, desc=desc, every=every, unit=unit)
    if not enabled:
        bar.every = sys.maxsize
        bar.closed = True
    return bar
