"""What the stress scenarios share: a server process and a result line."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass
class Result:
    """One scenario's verdict and the figure that backs it."""

    name: str
    passed: bool
    figure: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name}: {self.figure}"


@dataclass
class ServerStats:
    cpu_seconds: float
    rss_kib: int
    clients: int
    open_fds: int


class EchoServer:
    """``server.py`` in a child process, with its control pipe."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "server.py"), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(HERE.parent / "src")},
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.address = ("127.0.0.1", self.port)

    def stats(self) -> ServerStats:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(b"stats\n")
        self.process.stdin.flush()
        cpu, rss, clients, fds = self.process.stdout.readline().split()
        return ServerStats(float(cpu), int(rss), int(clients), int(fds))

    def stop(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()

    def __enter__(self) -> EchoServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def raise_fd_limit() -> None:
    """Use the hard descriptor limit: a thousand clients need more than 1024."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))
