"""The examples run and exit as they say: the README's demo, the interactive
one, the length-prefixed protocol, and the N-worker server stopped by SIGTERM."""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.helpers import WAIT

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


def test_length_prefixed_example_skips_the_overlong_answer_and_ends_the_half_frame() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "length_prefixed.py")], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "server: a client ended: FramingError('the input ended inside a frame, after 8 of its bytes')",
        "client: b'Welcome!'",
        "client: skipped: a frame longer than max_length=1024 bytes was discarded",
        "client: b'1.0'",
        "client: b'no such document: nothing'",
    ]


class Workers:
    """``examples/workers.py`` running in a child process; every wait bounded."""

    def __init__(self, *args: str, pass_fds: tuple[int, ...] = ()) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "workers.py"), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            pass_fds=pass_fds,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], WAIT)
        assert ready, "the example did not say it was listening"
        self.banner = self.proc.stdout.readline()

    def workers(self) -> list[int]:
        with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as children:
            return [int(pid) for pid in children.read().split()]

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        _, errors = self.proc.communicate(timeout=WAIT)
        return self.proc.returncode, errors

    def kill(self) -> None:
        if self.proc.poll() is None:
            for pid in self.workers():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.proc.kill()
            self.proc.communicate(timeout=WAIT)


def echo_through(address: tuple[str, int], clients: int) -> None:
    """Each of ``clients`` connections sends two lines and gets them back."""
    socks = [socket.create_connection(address, timeout=WAIT) for _ in range(clients)]
    try:
        for number, sock in enumerate(socks):
            sock.sendall(b"line %d\nand more\n" % number)
        for number, sock in enumerate(socks):
            expected = b"line %d\nand more\n" % number
            received = b""
            while len(received) < len(expected):
                chunk = sock.recv(1024)
                assert chunk, "the connection ended early"
                received += chunk
            assert received == expected
    finally:
        for sock in socks:
            sock.close()


def test_workers_example_serves_from_reuse_port_workers_and_stops_on_sigterm() -> None:
    example = Workers("tcp:127.0.0.1:0", "--workers", "2")
    try:
        match = re.fullmatch(r"listening on tcp:127\.0\.0\.1:(\d+) with 2 workers\n", example.banner)
        assert match, example.banner
        workers = example.workers()
        assert len(workers) == 2
        echo_through(("127.0.0.1", int(match.group(1))), 20)
        code, errors = example.stop()
        assert code == 0, errors
        assert errors == ""
        for pid in workers:  # reaped by the example
            assert not os.path.exists(f"/proc/{pid}")
    finally:
        example.kill()


def test_workers_example_shares_an_inherited_listener() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        fd = listener.fileno()
        example = Workers(f"fd:{fd}", "--workers", "2", pass_fds=(fd,))
        try:
            assert example.banner.startswith(f"listening on fd:{fd} ")
            assert len(example.workers()) == 2
            echo_through(listener.getsockname(), 20)
            code, errors = example.stop()
            assert code == 0, errors
        finally:
            example.kill()


def test_workers_example_stops_every_worker_and_exits_1_when_one_dies() -> None:
    example = Workers("tcp:127.0.0.1:0", "--workers", "2")
    try:
        first, second = example.workers()
        os.kill(first, signal.SIGKILL)
        example.proc.communicate(timeout=WAIT)
        assert example.proc.returncode == 1
        assert not os.path.exists(f"/proc/{second}")
    finally:
        example.kill()
