"""CI runs exactly the README's test command, in a virtualenv made afresh."""

from __future__ import annotations

import re

from tests.conftest import REPO


def readme_test_command() -> str:
    text = (REPO / "README.md").read_text()
    section = text[text.index("**Install and run the tests**"):]
    return re.search(r"```bash\n(.+?)\n```", section, re.S).group(1).strip()  # type: ignore[union-attr]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    command = readme_test_command()
    assert command.startswith("python3 -m venv --clear .venv && . .venv/bin/activate && ")
    assert "python -m pytest -q" in command and "ruff check ." in command and "mypy" in command
    assert "&& lint-imports &&" in command  # the layering contracts of pyproject.toml
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    start = ci.index("# --- README test command (keep in sync with README.md \"Install and run the tests\") ---")
    assert ci[start + 1] == command
    assert ci[start + 2].startswith("# --- end")
    # set -e does not stop on a failure before the last && of a list (mypy failing would let
    # CI go on and pass): the status of the list is checked on the next command line
    after = [line for line in ci[start + 3:] if line.strip() and not line.startswith("#")]
    assert after[0] == "rc=$?" and after[1] == 'if [ "$rc" -ne 0 ]; then'


def test_ci_venv_is_ignored_and_extras_pass_cannot_be_empty() -> None:
    assert ".venv/" in (REPO / ".gitignore").read_text().splitlines()
    ci = (REPO / ".ci" / "run").read_text()
    assert "SSL_DOMAINS_REQUIRE_EXTRAS=1" in ci
    assert '"$rc" -eq 5' in ci and 'grep -q "^SKIPPED"' in ci
