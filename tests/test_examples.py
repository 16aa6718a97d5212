"""The README's first command must keep working: the demo runs and exits 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_line_hub_demo_relays_every_line_and_exits_zero() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "line_hub.py")], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("hears") == 4
    assert "folder empty: True" in done.stdout


def test_cli_demo_shows_the_conversation_through_the_hub_and_exits_zero() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "cli_demo.py")], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(" hears ") == 4
    assert "bob    hears alice: hello, is anyone there?" in done.stdout
    assert done.stdout.count("exited with status 0") == 2
    assert "exit status 0; socket file removed: True" in done.stdout
    assert "folder empty before removal: True" in done.stdout


def test_interactive_example_drives_the_python_prompt_on_a_pty() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "interactive.py")], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "6 * 7 -> 42",
        "sum(range(101)) -> 5050",
        "'pty'.upper() -> 'PTY'",
        "interpreter exited with status 0",
    ]
