"""The package's conventions: its version agrees everywhere, and it prints nothing unasked."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import channels

from .helpers import WAIT

ROOT = Path(__file__).resolve().parent.parent


def newest_release(changelog: str) -> str:
    """The version of the first ``## [X.Y.Z] - DATE`` heading (``[Unreleased]`` is no release)."""
    match = re.search(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", changelog, re.MULTILINE)
    assert match is not None, "the changelog names no release"
    return match.group(1)


def project_table(pyproject: str) -> str:
    """The text of the ``[project]`` table of ``pyproject.toml``."""
    match = re.search(r"^\[project\]\n(.*?)(?=^\[)", pyproject, re.MULTILINE | re.DOTALL)
    assert match is not None
    return match.group(1)


def test_the_package_version_is_the_changelogs_newest_release() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert newest_release(changelog) == channels.__version__


def test_the_changelog_keeps_an_unreleased_section_above_the_releases() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\]", changelog, re.MULTILINE)
    assert headings[0] == "Unreleased"
    assert headings.count("Unreleased") == 1


def test_the_metadata_version_is_the_package_version() -> None:
    project = project_table((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    version = re.search(r'^version = "([^"]+)"$', project, re.MULTILINE)
    assert version is not None
    assert version.group(1) == channels.__version__


def test_the_metadata_names_the_source_docs_issues_and_changelog() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r"^\[project\.urls\]\n(.*?)(?=^\[|\Z)", pyproject, re.MULTILINE | re.DOTALL)
    assert match is not None
    urls = dict(re.findall(r'^(\w+) = "(https://[^"]+)"$', match.group(1), re.MULTILINE))
    assert {"Source", "Documentation", "Issues", "Changelog"} <= set(urls)
    assert urls["Issues"].startswith(urls["Source"])
    assert urls["Changelog"].startswith(urls["Source"])


# Fills a socket whose peer never reads, then closes without waiting: the
# library warns "closing dropped N bytes" through its logger.
_DROPPING_PROGRAM = """
import socket, sys
import channels
{setup}
ours, theirs = socket.socketpair()
channel = channels.SocketChannel(ours)
channel.write(b"x" * (8 * 1024 * 1024))
channel.close(timeout=0)
theirs.close()
print("done")
"""


def run_dropping_program(setup: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _DROPPING_PROGRAM.format(setup=setup)],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=True,
    )


def test_a_program_without_logging_set_up_sees_no_library_warning() -> None:
    done = run_dropping_program()
    assert done.stdout == "done\n"
    assert done.stderr == ""


def test_a_program_that_sets_up_logging_sees_the_warning() -> None:
    done = run_dropping_program("import logging; logging.basicConfig()")
    assert done.stdout == "done\n"
    assert "closing dropped" in done.stderr
