"""Component kinds and the hook that registers each (no heavy imports: the CLI reads it for
``--help``)."""

from __future__ import annotations

__all__ = ["KINDS"]

#: Component kinds, with the hook that registers each.
KINDS: dict[str, str] = {
    "loader": "register_loaders",
    "backbone": "register_backbones",
    "pretext": "register_pretext_tasks",
    "finetune": "register_finetune_tasks",
    "baseline": "register_baselines",
}
