"""Drive an interactive program on a pseudo-terminal: send a line, expect the
prompt, read the answer.

Python's interactive interpreter prompts (``>>> ``) and answers only when it
believes a person is typing at a terminal, so it runs here on a pty, as
``PtyProcessChannel`` gives it. Run: ``python examples/interactive.py``.
"""

from __future__ import annotations

import sys

from channels import PtyProcessChannel

PROMPT = b">>> "
QUESTIONS = [b"6 * 7", b"sum(range(101))", b"'pty'.upper()"]


def ask(python: PtyProcessChannel, question: bytes) -> bytes:
    """Type ``question`` and return the interpreter's answer, without the prompt."""
    python.write(question + b"\n")
    answer = python.expect(PROMPT, timeout=10)
    return answer[: -len(PROMPT)].strip()  # the terminal ends lines with \r\n


def main() -> int:
    # -q: no banner; echo off (the default), so what we type does not come back.
    with PtyProcessChannel([sys.executable, "-q", "-i"]) as python:
        python.expect(PROMPT, timeout=10)
        for question in QUESTIONS:
            print(f"{question.decode()} -> {ask(python, question).decode()}")
        python.write(b"exit()\n")
        print(f"interpreter exited with status {python.wait(10)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
