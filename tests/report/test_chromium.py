"""The report renders in a real headless browser (skipped when Chromium is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ssl_domains.errors import SSLDomainsError
from ssl_domains.report import chromium
from ssl_domains.report.pages import build_report

needs_chromium = pytest.mark.skipif(chromium.find_chromium() is None,
                                    reason="Chromium not installed (apt-get install chromium)")


@needs_chromium
def test_sweep_report_renders(sweep_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    png = chromium.screenshot(build_report(sweep_dir), tmp_path / "shot.png",
                              window_size=(1280, 1600))
    image = np.asarray(Image.open(png).convert("L"), dtype=float)
    assert image.shape == (1600, 1280)
    # not blank: text, tables and inlined figures give many dark pixels and real contrast
    assert image.std() > 20 and (image < 100).mean() > 0.005


def test_missing_browser_message(monkeypatch: pytest.MonkeyPatch, run_dir: Path) -> None:
    monkeypatch.setenv(chromium.ENV_VAR, "/nonexistent/chromium")
    assert chromium.find_chromium() is None
    with pytest.raises(SSLDomainsError, match="no Chromium found: install it"):
        chromium.screenshot(run_dir / "x.html", run_dir / "x.png")


def test_missing_html_message(tmp_path: Path) -> None:
    with pytest.raises(SSLDomainsError, match="no such HTML file to render"):
        chromium.screenshot(tmp_path / "none.html", tmp_path / "x.png", chromium="/bin/true")


def test_failing_browser_message(tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_text("<p>x</p>")
    with pytest.raises(SSLDomainsError, match="failed to render p.html \\(exit 1\\)"):
        chromium.screenshot(page, tmp_path / "x.png", chromium="/bin/false")


def test_script_usage_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert chromium.main([]) == 2
    assert "usage: python -m ssl_domains.report.chromium" in capsys.readouterr().err
    assert chromium.main([str(tmp_path / "none.html")]) == 1
    assert "no such HTML file to render" in capsys.readouterr().err or \
        chromium.find_chromium() is None
