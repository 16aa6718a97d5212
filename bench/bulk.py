"""The bulk workload: SIZE bytes one way into each receiver, interleaved.

Each run is a fresh receiver process (pinned to one CPU) and a fresh sender
process (pinned to the other): over loopback TCP for the socket receivers,
through a pipe for the pipe receivers.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from typing import Any

from bulk_recv import RECEIVERS
from common import busy_cpu_seconds, least_disturbed, parse_result, rotated

HERE = os.path.dirname(os.path.abspath(__file__))
IMPLS = tuple(RECEIVERS)


def run_one(impl: str, size: int, cpus: tuple[int | None, int | None]) -> dict[str, Any]:
    recv_cpu, send_cpu = cpus
    kind = RECEIVERS[impl][0]
    recv_cmd = [sys.executable, os.path.join(HERE, "bulk_recv.py"), impl, "--size", str(size)]
    send_cmd = [sys.executable, os.path.join(HERE, "bulk_send.py"), "--size", str(size)]
    if recv_cpu is not None:
        recv_cmd += ["--cpu", str(recv_cpu)]
    if send_cpu is not None:
        send_cmd += ["--cpu", str(send_cpu)]
    if kind == "tcp":
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        recv_fd = listener.fileno()
        send_cmd += ["--port", str(listener.getsockname()[1])]
        send_fds: tuple[int, ...] = ()
        own = [listener.detach()]
    else:
        recv_fd, write_fd = os.pipe()
        send_cmd += ["--fd", str(write_fd)]
        send_fds = (write_fd,)
        own = [recv_fd, write_fd]
    timeout = 60 + size / 50e6  # far above any sane speed
    busy0, wall0 = busy_cpu_seconds(), time.monotonic()
    children0 = _children_cpu()
    recv_cmd += ["--fd", str(recv_fd)]
    receiver = subprocess.Popen(recv_cmd, pass_fds=(recv_fd,), stdout=subprocess.PIPE, text=True)
    sender = subprocess.Popen(send_cmd, pass_fds=send_fds)
    for fd in own:
        os.close(fd)  # the children hold their copies; the pipe ends when they close them
    try:
        out, _ = receiver.communicate(timeout=timeout)
        sender.wait(timeout=30)
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    finally:
        for proc in (receiver, sender):
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    wall = time.monotonic() - wall0
    foreign = (busy_cpu_seconds() - busy0 - (_children_cpu() - children0)) / wall
    try:
        result = parse_result(out)
    except ValueError:
        return {"error": f"receiver failed with exit code {receiver.returncode}"}
    result["foreign_cpus"] = foreign
    return result


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(impl: str, size: int, cpus: tuple[int | None, int | None], patience: float) -> dict[str, Any]:
    """One run on a quiet machine if possible; again if others disturbed it."""
    return least_disturbed(lambda: run_one(impl, size, cpus), patience)


def run(
    rounds: int,
    size: int,
    cpus: tuple[int | None, int | None],
    *,
    impls: tuple[str, ...] = IMPLS,
    patience: float = 1.0,
    deadline: float | None = None,
    log: Any = print,
) -> dict[str, Any]:
    """Every receiver ``rounds`` times, interleaved; no waiting for a quiet
    machine once that would push the remaining runs past ``deadline``."""
    samples: dict[str, list[dict[str, Any]]] = {impl: [] for impl in impls}
    runs_left = rounds * len(impls)
    for turn in range(rounds):
        for impl in rotated(impls, turn):
            runs_left -= 1
            late = deadline is not None and time.monotonic() + runs_left * (size / 1e9 + 0.6) + 3 * patience > deadline
            result = measure(impl, size, cpus, 0.0 if late else patience)
            result["round"] = turn
            samples[impl].append(result)
            if "error" in result:
                log(f"  bulk {impl}: {result['error']}")
            else:
                log(
                    f"  bulk {impl}: {result['mb_per_s']:,.0f} MB/s "
                    f"(round {turn + 1}, others used {result['foreign_cpus']:.2f} CPU)"
                )
    return {"size": size, "samples": samples}
