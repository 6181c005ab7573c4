"""``--mapping FILE``: opaque id -> input as given, for the data's owner only.

Shareable outputs (converted NIfTI, predictions, probability maps) name inputs by opaque id. A
hospital that scores this week's scans must still find which scan scored high: commands that
write such outputs take ``--mapping FILE`` and write there, on request, each id with the input
as the user gave it (path, series name). The file holds paths and names, so it is refused
inside the output meant for sharing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ssl_domains.errors import ConfigError
from ssl_domains.files import write_json

__all__ = ["check_mapping_path", "write_mapping", "inputs_of"]


def check_mapping_path(mapping: str | Path, folders: Iterable[str | Path] = (),
                       files: Iterable[str | Path] = ()) -> Path:
    """``mapping`` as an absolute path, refused inside a shareable folder (``folders``, at any
    depth) or beside a shareable file (``files``: in its folder, or the file itself).

    Raises:
        ConfigError: One line naming the option, the file and the shareable output.
    """
    path = Path(mapping).resolve()
    for place in folders:
        if path.is_relative_to(Path(place).resolve()):
            raise ConfigError(f"--mapping {mapping}: inside {place}, which is meant for sharing; "
                              "write the mapping somewhere private instead")
    for shared in files:
        if path.parent == Path(shared).resolve().parent:
            raise ConfigError(f"--mapping {mapping}: beside {shared}, which is meant for sharing; "
                              "write the mapping somewhere private instead")
    return path


def inputs_of(dataset: Any, loader: str) -> Mapping[str, str]:
    """The dataset's opaque id -> input as given (its ``inputs_by_id``).

    Raises:
        ConfigError: The loader cannot name its inputs.
    """
    inputs = getattr(dataset, "inputs_by_id", None)
    if inputs is None:
        raise ConfigError(f"--mapping: loader {loader!r} does not say which input each id comes from; "
                          "run without --mapping")
    return dict(inputs)


def write_mapping(path: Path, ids: Iterable[str], inputs: Mapping[str, str], about: str) -> int:
    """Write ``{"about", "items": [{"id", "input"}]}`` for ``ids`` (a row id ``<id>:<position>``
    is looked up by its ``<id>``); returns the number of rows.

    Raises:
        WriteError: The file cannot be written.
    """
    rows = []
    for ident in dict.fromkeys(ids):
        base = ident if ident in inputs else ident.split(":", 1)[0]
        rows.append({"id": ident, "input": inputs.get(base)})
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"about": about, "items": rows})
    return len(rows)
