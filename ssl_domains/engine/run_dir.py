"""The run folder: resolved config, environment, metrics log, checkpoints, export, report."""

from __future__ import annotations

import json
import math
import platform
import sys
from pathlib import Path
from typing import Any

import torch

from ssl_domains import __version__
from ssl_domains.config import RunConfig, dump_config

__all__ = ["RunDir", "environment_info", "atomic_write_text"]


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def environment_info() -> dict[str, Any]:
    """Versions of the host, plugins, torch and Python, and the device."""
    from ssl_domains.plugins import get_host

    host = get_host()
    return {
        "host": __version__,
        "plugins": {p.name: {"distribution": p.distribution, "version": p.version}
                    for p in host.plugins.values()},
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "threads": torch.get_num_threads(),
    }


class RunDir:
    """Paths and writers of one run folder (only rank 0 writes).

    Args:
        path: The run folder.
        enabled: False on non-main ranks: every write is skipped.
    """

    def __init__(self, path: str | Path, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self._tb: Any = None

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def export(self) -> Path:
        return self.path / "export"

    @property
    def figures(self) -> Path:
        return self.path / "figures"

    @property
    def predictions(self) -> Path:
        return self.path / "predictions"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.jsonl"

    def create(self, cfg: RunConfig) -> None:
        """Make the folder and write ``config.yaml`` and ``environment.json``."""
        if not self.enabled:
            return
        for p in (self.path, self.checkpoints, self.figures):
            p.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path / "config.yaml", dump_config(cfg))
        atomic_write_text(self.path / "environment.json", json.dumps(environment_info(), indent=2))

    def log(self, record: dict[str, Any]) -> None:
        """Append one JSON line to ``metrics.jsonl`` (and TensorBoard when installed)."""
        if not self.enabled:
            return
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                 for k, v in record.items()}
        with self.metrics_file.open("a") as f:
            f.write(json.dumps(clean) + "\n")
        tb = self._tensorboard()
        if tb is not None:
            step = int(record.get("step", 0))
            prefix = f"{record.get('stage', 'run')}/{record.get('split', 'train')}"
            for k, v in record.items():
                if isinstance(v, int | float) and k not in ("step", "epoch"):
                    tb.add_scalar(f"{prefix}/{k}", v, step)

    def _tensorboard(self) -> Any:
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self._tb = False
                return None
            self._tb = SummaryWriter(str(self.path / "tensorboard"))
        return self._tb or None

    def resume_state(self, stage: str) -> dict[str, Any]:
        """The last resume checkpoint of ``stage``.

        Raises:
            SSLDomainsError: The folder has no checkpoint of that stage.
        """
        from ssl_domains.engine.checkpoints import latest_checkpoint, load_checkpoint
        from ssl_domains.errors import SSLDomainsError

        ckpt = latest_checkpoint(self.checkpoints / stage)
        if ckpt is None:
            raise SSLDomainsError(f"{self.path}: nothing to resume (no checkpoints/{stage}/last.pt)")
        return load_checkpoint(ckpt)

    def truncate_log_after(self, stage: str, step: int) -> None:
        """On resume, drop log lines of ``stage`` written after ``step`` (they will be redone)."""
        if not self.enabled or not self.metrics_file.exists():
            return
        keep = []
        for line in self.metrics_file.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill
            if rec.get("stage") == stage and int(rec.get("step", 0)) > step:
                continue
            keep.append(line)
        atomic_write_text(self.metrics_file, "".join(k + "\n" for k in keep))

    def close(self) -> None:
        if self._tb:
            self._tb.close()
            self._tb = None
