"""Driving the real command line (``ssl_domains.cli.main``, the console script's entry point)
in the test process: exit code, stdout and stderr as a user sees them; a tiny config."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssl_domains.cli import main
from tests.conftest import make_config, write_arrays, write_config


@dataclass
class Result:
    """What one command printed and how it ended."""

    code: int
    out: str
    err: str

    @property
    def error(self) -> str:
        """The last line on stderr (where a failing command says why)."""
        lines = self.err.strip().splitlines()
        return lines[-1] if lines else ""


def ssl_domains(*args: str) -> Result:
    """Run ``ssl-domains ARGS...`` and return its exit code and output."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return Result(code, out.getvalue(), err.getvalue())


def tiny_config(folder: Path, **overrides: Any) -> Path:
    """``folder/c.yaml``: the host's tiny pre-training and fine-tuning config
    (:func:`tests.conftest.make_config`) on ``folder/data.npz`` (written when absent), runs
    under ``folder/runs``; ``overrides`` as in ``make_config`` (``None`` drops a section)."""
    data = folder / "data.npz"
    if not data.is_file():
        write_arrays(folder)
    return write_config(folder / "c.yaml", make_config(folder, data, **overrides))
