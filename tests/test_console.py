"""The console policy: each warning once with a count, quiet third-party loggers, line progress
off a terminal, an end-of-run summary of repeats and skipped items."""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterator

import pytest

from ssl_domains import console


@pytest.fixture
def err() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("ssl_domains").level)
    console.setup(stream=stream)
    yield stream
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in saved[0]:
        root.addHandler(h)
    root.setLevel(saved[1])
    logging.getLogger("ssl_domains").setLevel(saved[2])
    logging.captureWarnings(False)
    console.reset()


def lines(stream: io.StringIO) -> list[str]:
    return [x for x in stream.getvalue().splitlines() if x]


def test_each_warning_once_then_counted(err: io.StringIO) -> None:
    plugin = logging.getLogger("ssl_domains_medical.tasks.patches")
    for _ in range(16):
        plugin.warning("%s: %s", "case 5", "no background patch found")
    plugin.warning("case 1: no background patch found")
    assert lines(err) == ["warning: case 5: no background patch found",
                          "warning: case 1: no background patch found"]
    assert console.summary_lines() == [
        "summary: 2 distinct warnings (17 in all)",
        "  warning: case 5: no background patch found (×16)",
    ]


def test_warn_once_groups_by_key(err: io.StringIO) -> None:
    log = logging.getLogger("ssl_domains.data")
    for start in range(5):
        console.warn_once(log, ("no-background", "case 5"), "case 5: no background patch at %d", start)
    assert lines(err) == ["warning: case 5: no background patch at 0"]
    assert "  warning: case 5: no background patch at 0 (×5)" in console.summary_lines()


def test_python_warnings_go_through_the_same_counter(err: io.StringIO) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # CI sets PYTHONWARNINGS=ignore
        for _ in range(3):
            warnings.warn_explicit("old option", UserWarning, "x.py", 1)
            warnings.warn_explicit("old option", UserWarning, "y.py", 2)
    assert lines(err) == ["warning: old option"]
    assert "  warning: old option (×6)" in console.summary_lines()


def test_third_party_loggers_quiet_unless_debug() -> None:
    stream = io.StringIO()
    try:
        console.setup(stream=stream, verbose=True)
        logging.getLogger("PIL.PngImagePlugin").debug("STREAM b'IHDR'")
        logging.getLogger("matplotlib.font_manager").info("findfont")
        logging.getLogger("ssl_domains.engine").debug("ours")
        logging.getLogger("ssl_domains_timeseries.loaders").info("plugin info")
        assert lines(stream) == ["debug ssl_domains.engine: ours", "plugin info"]
        stream.truncate(0)
        stream.seek(0)
        console.setup(stream=stream, debug=True)
        logging.getLogger("PIL.PngImagePlugin").debug("STREAM b'IHDR'")
        assert lines(stream) == ["debug PIL.PngImagePlugin: STREAM b'IHDR'"]
    finally:
        root = logging.getLogger()
        for h in list(root.handlers):
            if isinstance(h, console.ConsoleHandler):
                root.removeHandler(h)
        root.setLevel(logging.WARNING)
        logging.captureWarnings(False)
        console.reset()


def test_skipped_items_are_summarised_by_reason(err: io.StringIO) -> None:
    for i in range(7):
        console.note_skipped(f"item-{i}", "unreadable header")
    for _ in range(3):
        console.note_skipped("case 3", "no tumor patch found")
    assert console.skipped()[0] == ("item-0", "unreadable header")
    assert console.summary_lines() == [
        "summary: 10 items skipped",
        "  skipped (unreadable header): 7: item-0, item-1, item-2, item-3, item-4, ... (2 more)",
        "  skipped (no tumor patch found): 3: case 3 (×3)",
    ]
    console.reset()
    assert console.summary_lines() == []


def test_line_progress_off_a_terminal(err: io.StringIO) -> None:
    bar = console.progress(20, desc="pretrain")
    assert isinstance(bar, console.LineProgress)
    for step in range(20):
        bar.set_postfix(loss=f"{1 / (step + 1):.3f}")
        bar.update(1)
    bar.close()
    out = lines(err)
    assert len(out) == 5  # every 20 %
    assert out[0].startswith("pretrain: step 4/20 (20 %), loss 0.250, ")
    assert out[-1].startswith("pretrain: step 20/20 (100 %), loss 0.050, ")
    assert "eta" in out[0] and "eta" not in out[-1]


def test_progress_resumed_and_disabled(err: io.StringIO) -> None:
    bar = console.progress(10, initial=7, desc="finetune", every=2)
    bar.update(1)
    bar.update(1)
    bar.update(1)
    bar.close()
    assert [x.split(",")[0] for x in lines(err)] == ["finetune: step 9/10 (90 %)", "finetune: step 10/10 (100 %)"]
    quiet = console.progress(10, desc="x", enabled=False)
    for _ in range(10):
        quiet.update(1)
    quiet.close()
    assert len(lines(err)) == 2


def test_progress_is_tqdm_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    bar = console.progress(5, desc="pretrain", stream=stream)
    bar.update(5)
    bar.close()
    assert type(bar).__name__ == "tqdm" and "pretrain" in stream.getvalue()
