"""The shareable ``export/`` folder: its typed ``config.json`` (:class:`ExportConfig`), the one
writer (:func:`write_export`) and the one reader (:func:`read_export_config`).

Three kinds, all ``format: ssl-domains-export/1``:

* ``network`` (pre-training or fine-tuning): ``backbone.safetensors``, ``model.safetensors``
  (the whole pretext or task model);
* ``baseline`` (chosen by ``select: auto``): ``baseline.safetensors`` holds its training inputs
  and labels, and loading refits it (baselines are deterministic); nothing is pickled;
* ``ensemble``: ``deep/`` (a network export) and ``baseline/`` (a baseline export), and the
  weight of ``deep``.

Every export holds ``README.md``, its model card, written with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ssl_domains.config import ComponentRef
from ssl_domains.errors import CheckpointError
from ssl_domains.files import (
    atomic_write_bytes,
    atomic_write_text,
    read_json_object,
    write_guard,
    write_json,
)
from ssl_domains.layout.names import (
    BACKBONE_FILE,
    BASELINE_FILE,
    BASELINE_MEMBER_DIR,
    CARD_FILE,
    DEEP_MEMBER_DIR,
    EXPORT_CONFIG_FILE,
    EXPORT_DIR,
    MODEL_FILE,
)
from ssl_domains.layout.run import at
from ssl_domains.layout.schema import first_problem

__all__ = ["EXPORT_FORMAT", "ExportConfig", "ExportFolder", "InputSpecRecord", "find_export",
           "read_export_config", "write_export"]

EXPORT_FORMAT: Final = "ssl-domains-export/1"


class InputSpecRecord(BaseModel):
    """What the backbone takes (:class:`~ssl_domains.contracts.InputSpec` as recorded)."""

    model_config = ConfigDict(extra="forbid")

    modality: str
    dims: int
    channels: int | None = None


class ExportConfig(BaseModel):
    """``export/config.json``: enough to rebuild the model by registry name. Components'
    arguments are recorded as :func:`~ssl_domains.identifiers.shareable_config` shows them (an
    export is shareable: it names no input).

    Fields absent from exports of earlier versions are optional here, so those still read.
    """

    model_config = ConfigDict(extra="forbid")

    format: Literal["ssl-domains-export/1"] = EXPORT_FORMAT
    stage: Literal["pretrain", "finetune"]
    #: ``network`` (written as absent: earlier exports have no ``kind``), ``baseline``, ``ensemble``
    kind: Literal["network", "baseline", "ensemble"] = "network"
    run: str | None = None
    backbone: ComponentRef
    input_spec: InputSpecRecord | None = None
    num_features: int | None = None
    host_version: str | None = None
    environment: dict[str, Any] | None = None
    #: pre-training: the pretext task; its steps, items and best validation loss
    pretext: ComponentRef | None = None
    steps: int | None = None
    n_train: int | None = None
    best_val_loss: float | None = None
    #: fine-tuning: the task, its classes and the validation-chosen decision rule
    task: ComponentRef | None = None
    num_classes: int | None = None
    threshold: float | None = None
    threshold_rule: str | None = None
    data_stats: Any = None
    #: a dense task: its sliding window and post-processing
    roi_size: list[int] | None = None
    postprocessing: Any = None
    #: select: auto: what it chose (``selection`` of eval.json)
    selection: dict[str, Any] | None = None
    #: a baseline: the registered baseline and the item key of its inputs
    baseline: ComponentRef | None = None
    input_key: str | None = None
    #: an ensemble: the weight of ``deep``, the arm it came from, both members' arms
    weight: float | None = None
    weight_of: str | None = None
    members: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``config.json`` object (unset fields left out; ``kind`` only when not a network)."""
        data = self.model_dump(mode="json", exclude_none=True)
        if data.get("kind") == "network":
            del data["kind"]
        return data


@dataclass(frozen=True)
class ExportFolder:
    """The paths of one export folder."""

    path: Path

    config = at(EXPORT_CONFIG_FILE, "``config.json``: the ExportConfig")
    backbone = at(BACKBONE_FILE, "``backbone.safetensors``: the encoder's weights")
    model = at(MODEL_FILE, "``model.safetensors``: the whole task or pretext model")
    baseline_data = at(BASELINE_FILE, "``baseline.safetensors``: a baseline's training items")
    card = at(CARD_FILE, "``README.md``: the model card")

    @property
    def deep(self) -> ExportFolder:
        """An ensemble's network member."""
        return ExportFolder(self.path / DEEP_MEMBER_DIR)

    @property
    def baseline(self) -> ExportFolder:
        """An ensemble's baseline member."""
        return ExportFolder(self.path / BASELINE_MEMBER_DIR)

    def exists(self) -> bool:
        return self.config.is_file()


def find_export(path: str | Path, needs: str = EXPORT_CONFIG_FILE) -> ExportFolder | None:
    """The export folder at ``path``: ``path/export`` when it holds ``needs``, else ``path``
    when it does; None otherwise."""
    p = Path(path)
    for folder in (p / EXPORT_DIR, p):
        if (folder / needs).is_file():
            return ExportFolder(folder)
    return None


def read_export_config(path: str | Path) -> ExportConfig:
    """The :class:`ExportConfig` of an export folder (or of its ``config.json``).

    Raises:
        CheckpointError: Missing, not JSON, or not an export config (one line naming the file
            and the first problem).
    """
    p = Path(path)
    file = ExportFolder(p).config if p.is_dir() else p
    if not file.is_file():
        raise CheckpointError(f"{file}: export config not found")
    try:
        data = read_json_object(file)
    except Exception as exc:  # noqa: BLE001 - DataError, OSError: one line either way
        raise CheckpointError(f"{file}: not a readable export config ({exc})") from None
    try:
        return ExportConfig.model_validate(data)
    except ValidationError as err:
        raise CheckpointError(f"{file}: not an ssl-domains export config: {first_problem(err)}") from None


def _tensors_bytes(tensors: Mapping[str, Any], fmt: str) -> bytes:
    from safetensors.torch import save  # loads torch: only when weights are written

    return save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata={"format": fmt})


def write_export(folder: str | Path, config: ExportConfig, *, card: str | None,
                 backbone: Mapping[str, Any] | None = None, model: Mapping[str, Any] | None = None,
                 baseline: Mapping[str, Any] | None = None) -> ExportFolder:
    """Write an export into ``folder`` (each file atomically): ``config.json``, the state
    dicts given (``backbone``, ``model``: module state dicts; ``baseline``: ``x`` and ``y``
    tensors of a baseline's training items) and the model card ``README.md`` (``card=None``
    writes none: a member of an ensemble).

    Raises:
        WriteError: Disk full, read-only or similar.
    """
    out = ExportFolder(Path(folder))
    with write_guard(out.path):
        out.path.mkdir(parents=True, exist_ok=True)
    for tensors, target, fmt in ((backbone, out.backbone, "pt"), (model, out.model, "pt"),
                                 (baseline, out.baseline_data, "np")):
        if tensors is not None:
            atomic_write_bytes(target, _tensors_bytes(tensors, fmt))
    write_json(out.config, config.to_json())
    if card is not None:
        write_card(out, card)
    return out


def write_card(export: ExportFolder, card: str) -> Path:
    """Write the model card ``README.md`` of ``export``; returns its path."""
    atomic_write_text(export.card, card)
    return export.card
