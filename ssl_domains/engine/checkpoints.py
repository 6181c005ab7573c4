"""Checkpoints (resume state) and foreign-weight conversion results."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["Conversion"]


@dataclass
class Conversion:
    """Foreign weights mapped onto a backbone's parameter names by a plugin.

    Attributes:
        state_dict: Tensors keyed by the *backbone's* parameter names.
        source: The format the plugin recognised (e.g. ``"models_genesis"``).
        notes: Anything the user should know (renamed blocks, dropped heads).
    """

    state_dict: dict[str, torch.Tensor]
    source: str
    notes: list[str] = field(default_factory=list)
