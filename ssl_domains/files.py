"""Writing run artifacts safely: atomic files, one-line errors on a full or read-only disk,
and strict JSON (no NaN/Infinity: a non-finite number becomes ``null``). No write follows a
symbolic link planted in a run folder: temporary files are created afresh (``O_EXCL``), a
rename replaces a link instead of writing through it, and appends refuse one (``O_NOFOLLOW``).

Every file the host writes into a run or sweep folder goes through :func:`atomic_write_bytes`
(or its text/JSON wrappers): the bytes land in a hidden temporary file next to the target,
which is fsynced and renamed over it, so a reader sees the old file or the new one, never a
torn one. When the write fails (disk full, read-only file system, quota, permissions), the
temporary file is removed and a :class:`~ssl_domains.errors.WriteError` names the path and the
cause in one line.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, cast

from ssl_domains.errors import ConfigError, DataError, WriteError

__all__ = ["read_json_object", "read_text", "atomic_write_bytes", "atomic_write_with", "atomic_write_text", "write_json", "to_json",
           "strict_json_value", "append_line", "write_guard", "refuse_foreign_folder"]


#: ``os.open`` flag that refuses a symbolic link as the last part of a path (0 where absent).
O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _cause(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "it is a symbolic link; files of a run folder are never read or written through links, remove it"
    if exc.errno is not None:
        return os.strerror(exc.errno)
    return exc.strerror or str(exc) or type(exc).__name__


@contextmanager
def write_guard(path: Path, *temporaries: Path) -> Iterator[None]:
    """Turn an ``OSError`` raised inside the block into a one-line :class:`WriteError` naming
    ``path``, after removing ``temporaries`` (partial files)."""
    try:
        yield
    except OSError as exc:
        for tmp in temporaries:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
        raise WriteError(path, _cause(exc)) from None


def refuse_foreign_folder(path: str | Path, markers: tuple[str, ...], what: str,
                          ignore: tuple[str, ...] = (".lock",)) -> None:
    """Refuse an output folder that exists, is not empty and lacks the ``markers`` files that
    ssl-domains writes into every ``what`` (the user's own folder: writing would replace their
    files). Entries named in ``ignore`` (a run lock left by a killed process) do not count.

    Raises:
        ConfigError: One line naming the folder and a file in it.
    """
    path = Path(path)
    try:
        entries = sorted(e.name for e in path.iterdir() if e.name not in ignore)
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise ConfigError(f"{path}: not a folder; choose another output folder") from None
    if not entries or all((path / m).is_file() for m in markers):
        return
    more = f" and {len(entries) - 1} more" if len(entries) > 1 else ""
    raise ConfigError(f"{path}: not empty and not {what} (it holds {entries[0]}{more}); refusing "
                      "to write there and replace your files; choose a new or empty folder")


def atomic_write_bytes(path: str | Path, data: bytes | memoryview) -> None:
    """Write ``data`` to ``path`` through a fsynced temporary file and a rename.

    Raises:
        WriteError: The disk is full, read-only, or refuses the write; nothing partial is left.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with write_guard(path, tmp):
        tmp.unlink(missing_ok=True)  # a link planted under the temporary name goes, unfollowed
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)


class _Recording(io.RawIOBase):
    """A writable file that remembers the ``OSError`` its writes raised: serialisers such as
    ``torch.save`` turn it into a ``RuntimeError`` without the cause."""

    def __init__(self, f: BinaryIO) -> None:
        super().__init__()
        self.f = f
        self.error: OSError | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        try:
            return self.f.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.f.flush()


def atomic_write_with(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Stream a file to ``path`` with ``write(file)`` (e.g. ``torch.save``), through a fsynced
    temporary file and a rename.

    Raises:
        WriteError: The disk is full, read-only, or refuses the write (also when ``write``
            reports it as some other error); nothing partial is left.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with write_guard(path, tmp):
        tmp.unlink(missing_ok=True)
        try:
            with open(tmp, "xb") as f:
                out = _Recording(f)
                try:
                    write(cast(BinaryIO, out))
                except Exception:
                    if out.error is not None:
                        raise out.error from None
                    raise
                f.flush()
                os.fsync(f.fileno())
        except BaseException as exc:
            if not isinstance(exc, OSError):
                tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, path)


def atomic_write_text(path: str | Path, text: str) -> None:
    """:func:`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def append_line(path: str | Path, line: str) -> None:
    """Append one line (a log record) to ``path`` (never through a symbolic link).

    Raises:
        WriteError: The disk is full, read-only, or refuses the write, or ``path`` is a link.
    """
    path = Path(path)
    with write_guard(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | O_NOFOLLOW, 0o644)
        with open(fd, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def strict_json_value(value: Any) -> Any:
    """``value`` with every non-finite float turned into ``None`` and numpy/torch scalars and
    arrays turned into plain Python, so ``json.dumps(..., allow_nan=False)`` accepts it."""
    if isinstance(value, dict):
        return {k if k is None or isinstance(k, str | int | float | bool) else str(k):
                strict_json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json_value(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    tolist = getattr(value, "tolist", None)  # numpy / torch scalars and arrays
    if callable(tolist):
        return strict_json_value(tolist())
    item = getattr(value, "item", None)
    if callable(item):
        return strict_json_value(item())
    return value


def to_json(value: Any, indent: int | None = 2) -> str:
    """Strict JSON text of ``value`` (see :func:`strict_json_value`); never ``NaN``/``Infinity``.

    Raises:
        TypeError: A value JSON cannot hold (a programming error, not user input).
    """
    return json.dumps(strict_json_value(value), indent=indent, allow_nan=False)


def write_json(path: str | Path, value: Any, indent: int | None = 2) -> None:
    """Write ``value`` as strict JSON to ``path``, atomically.

    Raises:
        WriteError: The disk is full, read-only, or refuses the write.
    """
    atomic_write_text(path, to_json(value, indent) + "\n")


def read_text(path: str | Path) -> str:
    """The UTF-8 text of a file of a run folder, never read through a symbolic link (a link
    planted there could show another file's content in a shared report).

    Raises:
        DataError: ``path`` is a link, missing or unreadable (one line naming the file).
    """
    try:
        fd = os.open(path, os.O_RDONLY | O_NOFOLLOW)
    except OSError as exc:
        raise DataError(path, f"cannot read ({_cause(exc)})") from None
    with open(fd, encoding="utf-8", errors="replace") as f:
        return f.read()


def read_json_object(path: str | Path) -> dict[str, Any]:
    """The JSON object in ``path`` (the reading side of :func:`write_json`; no link followed).

    Raises:
        DataError: A link, unreadable, not JSON, or not an object (one line naming the file).
    """
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(path, f"not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise DataError(path, f"expected a JSON object, got {type(data).__name__}")
    return data
