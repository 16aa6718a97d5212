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
