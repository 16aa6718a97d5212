"""The scale workload: one active channel among many idle ones.

    python bench/scale.py [--levels 100,1000,10000,19000] [--samples N] [--cpu C]

Idle channels are real connected Unix stream sockets whose peers live in a
helper process (so that each idle channel costs this process one
descriptor; RLIMIT_NOFILE's soft limit is raised to the hard one). At each
level the same idle sockets are registered twice: as ``SocketChannel``s in
one ``Poller``, and as plain sockets in a hand-written epoll loop. Then, in
alternating blocks, one byte is sent to the one active socket and one
``poll()`` is timed, until it returns that socket's data.

Memory: tracemalloc measures the Python memory that creating and registering
the channels keeps alive (the accepted ``socket.socket`` objects are made
before and not counted), for bytes- and line-buffered channels, and the same
for the epoll loop (a dict entry per socket).
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from typing import Any

from common import emit, pin, raise_nofile, rotated

from channels import Poller, SocketChannel

LEVELS = (100, 1_000, 10_000, 19_000)
#: The epoll loop's recv() size: 64 KiB, below glibc's mmap threshold, so that
#: a read does not map and unmap a fresh buffer each time.
READ_SIZE = 64 * 1024


def helper(path: str) -> None:
    """Hold the peers: for each count read from stdin, connect that many more
    sockets; for ``close``, close them all."""
    raise_nofile()
    peers: list[socket.socket] = []
    for line in sys.stdin:
        if not line.strip():
            break
        if line.strip() == "close":
            for sock in peers:
                sock.close()
            peers.clear()
            sys.stdout.write("ok\n")
            sys.stdout.flush()
            continue
        for _ in range(int(line)):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
            peers.append(sock)
        sys.stdout.write("ok\n")
        sys.stdout.flush()
    for sock in peers:
        sock.close()


class Idle:
    """A helper process and this side of its connections."""

    def __init__(self, tmp: str) -> None:
        self.path = os.path.join(tmp, "idle.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(4096)
        self.listener.settimeout(30)
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--helper", self.path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.socks: list[socket.socket] = []

    def grow(self, count: int) -> list[socket.socket]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{count}\n")
        self.proc.stdin.flush()
        new = []
        for _ in range(count):
            sock, _addr = self.listener.accept()
            new.append(sock)
        if self.proc.stdout.readline().strip() != "ok":
            raise RuntimeError("the idle-peer helper failed")
        self.socks += new
        return new

    def release(self) -> None:
        """Close every connection, on both sides."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        for sock in self.socks:
            sock.close()
        self.socks.clear()
        self.proc.stdin.write("close\n")
        self.proc.stdin.flush()
        if self.proc.stdout.readline().strip() != "ok":
            raise RuntimeError("the idle-peer helper failed")

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except Exception:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        for sock in self.socks:
            sock.close()
        self.listener.close()


def traced(build: Any) -> tuple[Any, int]:
    """Run ``build()`` under tracemalloc; its result and the bytes it keeps alive."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    result = build()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return result, after - before


def memory_per_channel(count: int, idle: Idle) -> dict[str, float]:
    """Python bytes kept alive per idle registered channel, over ``count`` sockets."""
    out: dict[str, float] = {}
    for buffering in ("bytes", "line"):
        socks = idle.grow(count)
        poller = Poller(buffering=buffering)

        def build(poller: Poller = poller, socks: list[socket.socket] = socks, buffering: str = buffering) -> Any:
            chans = [SocketChannel(s, buffering=buffering) for s in socks]
            for ch in chans:
                poller.register(ch)
            return chans

        chans, used = traced(build)
        out[f"channels_{buffering}"] = used / count
        for ch in chans:
            poller.unregister(ch)
            ch.close(timeout=0)
        poller.close()
        idle.release()
    socks = idle.grow(count)
    ep = select.epoll()

    def build_raw() -> dict[int, socket.socket]:
        table = {}
        for s in socks:
            ep.register(s.fileno(), select.EPOLLIN)
            table[s.fileno()] = s
        return table

    _table, used = traced(build_raw)
    out["raw_epoll"] = used / count
    ep.close()
    idle.release()
    return out


def measure(levels: list[int], samples: int, block: int) -> dict[str, Any]:
    results: dict[str, Any] = {"levels": levels, "poll_us": {}, "p90_us": {}, "ratios": []}
    with tempfile.TemporaryDirectory() as tmp:
        idle = Idle(tmp)
        try:
            active, peer = socket.socketpair()
            poller = Poller()
            ep = select.epoll()
            socks: dict[int, socket.socket] = {}
            channels: list[SocketChannel] = []
            active_ch = SocketChannel(active)
            poller.register(active_ch)
            ep.register(active.fileno(), select.EPOLLIN)
            socks[active.fileno()] = active

            def raw_poll() -> Any:
                result = []
                for fd, _mask in ep.poll(1.0):
                    sock = socks[fd]
                    result.append((sock.recv(READ_SIZE), sock))
                return result

            def channels_poll() -> Any:
                return poller.poll(1.0)

            polls = {"raw_epoll": (raw_poll, active), "channels": (channels_poll, active_ch)}
            have = 0
            for level in levels:
                for sock in idle.grow(level - have):
                    ch = SocketChannel(sock)
                    channels.append(ch)
                    poller.register(ch)
                    ep.register(sock.fileno(), select.EPOLLIN)
                    socks[sock.fileno()] = sock
                have = level
                times: dict[str, list[int]] = {name: [] for name in polls}
                block_medians: dict[str, list[float]] = {name: [] for name in polls}
                for turn in range(max(1, samples // block)):
                    for name in rotated(list(polls), turn):
                        poll, expect = polls[name]
                        these = []
                        for _ in range(block):
                            peer.send(b"x")
                            t0 = time.perf_counter_ns()
                            got = poll()
                            t1 = time.perf_counter_ns()
                            if len(got) != 1 or got[0][1] is not expect:
                                raise AssertionError(f"{name}: poll returned {got!r}")
                            these.append(t1 - t0)
                        times[name] += these
                        block_medians[name].append(statistics.median(these))
                for name, values in times.items():
                    values.sort()
                    results["poll_us"].setdefault(name, []).append(values[len(values) // 2] / 1000)
                    results["p90_us"].setdefault(name, []).append(values[len(values) * 9 // 10] / 1000)
                # Blocks next to each other in time make pairs: ratio per pair.
                results["ratios"].append(
                    [
                        ours / raw
                        for ours, raw in zip(block_medians["channels"], block_medians["raw_epoll"], strict=True)
                    ]
                )
            # Free the descriptors before the memory measurement.
            for ch in channels:
                poller.unregister(ch)
                ch.close(timeout=0)
            channels.clear()
            socks.clear()
            poller.close()
            ep.close()
            peer.close()
            idle.release()
            results["memory_count"] = min(5_000, max(levels))
            results["bytes_per_channel"] = memory_per_channel(results["memory_count"], idle)
        finally:
            idle.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--helper", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)))
    parser.add_argument("--samples", type=int, default=4000, help="timed polls per implementation and level")
    parser.add_argument("--block", type=int, default=200, help="polls in a row before switching implementation")
    parser.add_argument("--cpu", type=int, default=None)
    args = parser.parse_args()
    if args.helper:
        helper(args.helper)
        return
    pin(args.cpu)
    limit = raise_nofile()
    levels = [int(n) for n in args.levels.split(",")]
    usable = [n for n in levels if n + 64 <= limit]
    result = measure(usable, args.samples, args.block)
    result["nofile_limit"] = limit
    result["skipped_levels"] = [n for n in levels if n not in usable]
    emit(result)


if __name__ == "__main__":
    main()
