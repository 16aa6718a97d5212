"""The echo workload: every server under the same load, interleaved and repeated.

All servers are started once, each on its own listening socket made here
(same backlog for all) and pinned to one CPU; the load generator runs in its
own process pinned to the other. For each round, level and server (in an
order that rotates every round), one load-generator run measures lines/s
and the server's CPU time per line.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

from baseline import ENV, child_env, split_name
from common import least_disturbed, parse_result, rotated
from echo_server import IMPLS, WORKERS

HERE = os.path.dirname(os.path.abspath(__file__))

#: (name, connections, lines in flight per connection)
LEVELS = (("1x1", 1, 1), ("100x16", 100, 16), ("1000x4", 1000, 4))

#: Servers measured at some levels only: the multi-process ones at 1000x4,
#: where there is work for more than one core.
ONLY_AT = {impl: ("1000x4",) for impl in WORKERS}


def measured_at(impl: str, level: str) -> bool:
    return level in ONLY_AT.get(impl, (level,))


class Server:
    """One echo server process on its own listening socket."""

    def __init__(self, impl: str, cpu: int | None, seconds: float, profile: str | None = None) -> None:
        self.impl = impl
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if impl in WORKERS:
            # Each worker after the first listens on the port too; the
            # kernel spreads the connections. Using both CPUs is the point.
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            cpu = None
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4096)
        self.port = self.listener.getsockname()[1]
        fd = self.listener.fileno()
        # ``NAME@before`` is server NAME running the baseline's code (see baseline.py).
        module, before = split_name(impl)
        env = child_env(os.environ.get(ENV)) if before else None
        cmd = [sys.executable, os.path.join(HERE, "echo_server.py"), module, "--fd", str(fd), "--seconds", str(seconds)]
        if cpu is not None:
            cmd += ["--cpu", str(cpu)]
        if profile:
            cmd += ["--profile", profile]
        # Frameworks complain on stderr when stopped by a signal; keep what a
        # server says, and show it only if the server failed.
        self.errors = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen(
            cmd, pass_fds=(fd,), stdout=subprocess.PIPE, stderr=self.errors, text=True, env=env
        )
        self.listener.close()  # the child has its own copy

    def wait_ready(self, timeout: float = 30.0) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline()  # the child prints "ready" at once
        if line.strip() != "ready" or time.monotonic() > deadline:
            raise RuntimeError(f"echo server {self.impl} did not start (exit code {self.proc.poll()})")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr_tail(self) -> str:
        self.errors.seek(0)
        return self.errors.read()[-2000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.errors.close()


def run_load(
    server: Server, *, conns: int, depth: int, warmup: float, duration: float, cpu: int | None
) -> dict[str, Any]:
    """One load-generator run against ``server``."""
    cmd = [
        sys.executable,
        os.path.join(HERE, "loadgen.py"),
        "--port", str(server.port),
        "--conns", str(conns),
        "--depth", str(depth),
        "--warmup", str(warmup),
        "--duration", str(duration),
        "--server-pid", str(server.proc.pid),
    ]  # fmt: skip
    if cpu is not None:
        cmd += ["--cpu", str(cpu)]
    try:
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=warmup + duration + 60)
    except subprocess.TimeoutExpired:
        return {"error": "load generator timed out"}
    try:
        return parse_result(done.stdout)
    except ValueError:
        return {"error": f"load generator failed: {done.stderr.strip()[-300:]}"}


def measure_cell(
    server: Server, *, conns: int, depth: int, warmup: float, duration: float, cpu: int | None, patience: float
) -> dict[str, Any]:
    """One cell, on a quiet machine if possible.

    Waits up to ``patience`` seconds for other processes to go quiet, and
    measures again once if someone else took more than a quarter of a CPU
    meanwhile (the machine may be shared); keeps the less disturbed run.
    """
    return least_disturbed(
        lambda: run_load(server, conns=conns, depth=depth, warmup=warmup, duration=duration, cpu=cpu), patience
    )


def run(
    rounds: int,
    warmup: float,
    duration: float,
    cpus: tuple[int | None, int | None],
    *,
    impls: tuple[str, ...] = IMPLS,
    levels: tuple[tuple[str, int, int], ...] = LEVELS,
    patience: float = 1.0,
    deadline: float | None = None,
    log: Any = print,
) -> dict[str, Any]:
    """Run every (level, server) cell ``rounds`` times, interleaved.

    Waiting for a quiet machine and measuring again stop when they would
    push the remaining cells past ``deadline`` (a ``time.monotonic()`` value).
    """
    server_cpu, load_cpu = cpus
    budget = rounds * len(levels) * len(impls) * (warmup + duration + 2 * patience + 30) + 60
    servers = {impl: Server(impl, server_cpu, budget) for impl in impls}
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {lv[0]: {impl: [] for impl in impls} for lv in levels}
    try:
        for server in servers.values():
            server.wait_ready()
        cells_left = rounds * sum(measured_at(impl, name) for name, _, _ in levels for impl in impls)
        for turn in range(rounds):
            for name, conns, depth in levels:
                for impl in rotated(impls, turn):
                    if not measured_at(impl, name):
                        continue
                    server = servers[impl]
                    if not server.alive():
                        samples[name][impl].append({"error": "server died"})
                        log(f"  echo server {impl} died:\n{server.stderr_tail()}")
                        continue
                    cells_left -= 1
                    expected = cells_left * (warmup + duration + 0.6)
                    late = deadline is not None and time.monotonic() + expected + 3 * patience > deadline
                    result = measure_cell(
                        server,
                        conns=conns,
                        depth=depth,
                        warmup=warmup,
                        duration=duration,
                        cpu=load_cpu,
                        patience=0.0 if late else patience,
                    )
                    result["round"] = turn
                    samples[name][impl].append(result)
                    if "error" in result:
                        log(f"  echo {name} {impl}: {result['error']}\n{server.stderr_tail()}")
                    else:
                        log(
                            f"  echo {name} {impl}: {result['lines_per_s']:,.0f} lines/s "
                            f"(round {turn + 1}, others used {result['foreign_cpus']:.2f} CPU)"
                        )
    finally:
        for server in servers.values():
            server.stop()
    return {"levels": [lv[0] for lv in levels], "samples": samples}
