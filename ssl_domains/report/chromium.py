"""Render an HTML report in headless Chromium (a screenshot, to check it really displays)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ssl_domains.errors import SSLDomainsError

#: Environment variable naming a Chromium / Chrome executable to use.
ENV_VAR = "SSL_DOMAINS_CHROMIUM"
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_chromium() -> str | None:
    """Path of a Chromium-family browser (``$SSL_DOMAINS_CHROMIUM`` first), or None."""
    override = os.environ.get(ENV_VAR)
    if override:
        return shutil.which(override) or (override if Path(override).is_file() else None)
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


def screenshot(html: Path, png: Path, window_size: tuple[int, int] = (1280, 2000),
               timeout: float = 90.0, chromium: str | None = None) -> Path:
    """Render ``html`` headless and save a PNG screenshot of the top of the page.

    Network features are off (no QUIC, no background networking, no component updates), and a
    throw-away profile is used, so rendering reaches nothing outside the file.

    Args:
        html: The HTML file.
        png: Where to write the screenshot.
        window_size: Viewport width and height in pixels.
        timeout: Seconds before giving up.
        chromium: Browser executable (default: :func:`find_chromium`).

    Returns:
        ``png``.

    Raises:
        SSLDomainsError: When no browser is found, it fails, or it writes no screenshot.
    """
    exe = chromium or find_chromium()
    if exe is None:
        raise SSLDomainsError(f"no Chromium found: install it (apt-get install chromium) or "
                              f"set {ENV_VAR} to the browser executable")
    html, png = Path(html).resolve(), Path(png).resolve()
    if not html.is_file():
        raise SSLDomainsError(f"{html}: no such HTML file to render")
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="ssl-domains-chromium-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--hide-scrollbars",
               f"--user-data-dir={profile}", f"--screenshot={png}",
               f"--window-size={window_size[0]},{window_size[1]}", html.as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise SSLDomainsError(f"{exe} did not finish rendering {html.name} within "
                                  f"{timeout:.0f} s") from None
    if proc.returncode != 0 or not png.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SSLDomainsError(f"{exe} failed to render {html.name} (exit {proc.returncode}): "
                              f"{tail[0]}")
    return png


def main(argv: list[str] | None = None) -> int:
    """``python -m ssl_domains.report.chromium REPORT.html [OUT.png]``: screenshot a report."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if not args or len(args) > 2:
        print("usage: python -m ssl_domains.report.chromium REPORT.html [OUT.png]",
              file=sys.stderr)
        return 2
    html = Path(args[0])
    out = Path(args[1]) if len(args) == 2 else html.with_name("screenshot.png")
    try:
        print(screenshot(html, out))
    except SSLDomainsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
