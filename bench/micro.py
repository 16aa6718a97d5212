"""Micro-benchmarks of the hot paths, each beside its hand-written equivalent (pyperf).

    python bench/micro.py [pyperf options, e.g. -o before.json]
    python -m pyperf compare_to before.json after.json

For measuring a change to ``src/channels`` precisely, in one process, on a
socketpair. Each ``ours/...`` benchmark has a ``raw/...`` twin doing the
same work with plain sockets, epoll and bytes methods:

``poll_one``    one ``poll()`` returning the one ready channel's 64 bytes
``echo_turn``   one turn of a line-echo loop: 16 lines of 64 B arrive on one
                channel, ``poll()`` returns them, each is written back and
                sent when the loop ends (line-buffered poller); a
                ``poll(0)`` follows, in both twins
``write16``     a byte arrives, ``poll()`` returns it, and the loop over the
                result writes 16 lines of 64 B back: held by the turn and
                sent in one system call when the loop ends
``split_4k``    splitting one 4 KiB chunk of 64-byte lines
``write_idle``  one 72-byte ``write()`` outside a turn with nothing pending
                (the peer reads): one send system call
``write_pending`` the same ``write()`` while output is pending and the peer
                does not read (up to 100,000 chunks pending); no raw twin:
                its goal is ``write_idle``'s cost, within 2x (bench/report.py)
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable

import pyperf

from channels import LineSplitter, Poller, SocketChannel

LINE = b"x" * 63 + b"\n"
BURST = LINE * 16
CHUNK = LINE * 64


def _drain(sock: socket.socket, size: int) -> None:
    got = 0
    while got < size:
        got += len(sock.recv(65536))


def ours_poll_one(loops: int) -> float:
    a, b = socket.socketpair()
    with Poller() as poller:
        poller.register(SocketChannel(a))
        elapsed = 0.0
        for _ in range(loops):
            b.send(LINE)
            t0 = time.perf_counter()
            poller.poll(1.0)
            elapsed += time.perf_counter() - t0
    b.close()
    return elapsed


def raw_poll_one(loops: int) -> float:
    a, b = socket.socketpair()
    a.setblocking(False)
    ep = select.epoll()
    ep.register(a.fileno(), select.EPOLLIN)
    socks = {a.fileno(): a}
    elapsed = 0.0
    for _ in range(loops):
        b.send(LINE)
        t0 = time.perf_counter()
        result = [(socks[fd].recv(65536), socks[fd]) for fd, _ in ep.poll(1.0)]
        elapsed += time.perf_counter() - t0
    del result
    ep.close()
    a.close()
    b.close()
    return elapsed


def ours_echo_turn(loops: int) -> float:
    a, b = socket.socketpair()
    with Poller(buffering="line") as poller:
        poller.register(SocketChannel(a, buffering="line"))
        elapsed = 0.0
        for _ in range(loops):
            b.send(BURST)
            t0 = time.perf_counter()
            for line, ch in poller.poll(1.0):
                ch.write(line)
            poller.poll(0)  # the raw twin's ep.poll(0): same work on both sides
            elapsed += time.perf_counter() - t0
            _drain(b, len(BURST))
    b.close()
    return elapsed


def raw_echo_turn(loops: int) -> float:
    a, b = socket.socketpair()
    a.setblocking(False)
    ep = select.epoll()
    ep.register(a.fileno(), select.EPOLLIN)
    socks = {a.fileno(): a}
    rest = {a.fileno(): b""}
    elapsed = 0.0
    for _ in range(loops):
        b.send(BURST)
        t0 = time.perf_counter()
        for fd, _ in ep.poll(1.0):
            sock = socks[fd]
            data = rest[fd] + sock.recv(65536)
            end = data.rfind(b"\n") + 1
            rest[fd] = data[end:]
            out = list(data[:end].splitlines(keepends=True))  # a line at a time, as written
            sock.send(b"".join(out))
        ep.poll(0)
        elapsed += time.perf_counter() - t0
        _drain(b, len(BURST))
    ep.close()
    a.close()
    b.close()
    return elapsed


def ours_write16(loops: int) -> float:
    a, b = socket.socketpair()
    with Poller() as poller:
        poller.register(SocketChannel(a))
        elapsed = 0.0
        for _ in range(loops):
            b.send(b"?")
            t0 = time.perf_counter()
            for _data, ch in poller.poll(1.0):
                for _ in range(16):
                    ch.write(LINE)
            elapsed += time.perf_counter() - t0
            _drain(b, len(BURST))
    b.close()
    return elapsed


def raw_write16(loops: int) -> float:
    a, b = socket.socketpair()
    a.setblocking(False)
    ep = select.epoll()
    ep.register(a.fileno(), select.EPOLLIN)
    socks = {a.fileno(): a}
    elapsed = 0.0
    for _ in range(loops):
        b.send(b"?")
        t0 = time.perf_counter()
        for fd, _ in ep.poll(1.0):
            sock = socks[fd]
            sock.recv(65536)
            held = []
            for _ in range(16):
                held.append(LINE)
            sock.send(b"".join(held))
        elapsed += time.perf_counter() - t0
        _drain(b, len(BURST))
    ep.close()
    a.close()
    b.close()
    return elapsed


def ours_split_4k(loops: int) -> float:
    splitter = LineSplitter()
    t0 = time.perf_counter()
    for _ in range(loops):
        splitter.feed(CHUNK)
        splitter.take_lines()
    return time.perf_counter() - t0


def raw_split_4k(loops: int) -> float:
    t0 = time.perf_counter()
    for _ in range(loops):
        buf = bytearray(CHUNK)
        start = 0
        end = buf.find(b"\n") + 1
        while end:
            _line = buf[start:end]
            start = end
            end = buf.find(b"\n", start) + 1
    return time.perf_counter() - t0


MESSAGE = b"x" * 71 + b"\n"

# write_pending starts over from a freshly filled socket this often, so that
# the pending output stays within max_pending however many loops pyperf runs.
_PENDING_RESTART = 100_000


def ours_write_idle(loops: int) -> float:
    a, b = socket.socketpair()
    channel = SocketChannel(a)
    b.setblocking(False)
    elapsed = 0.0
    for i in range(loops):
        t0 = time.perf_counter()
        channel.write(MESSAGE)
        elapsed += time.perf_counter() - t0
        if i % 32 == 31:
            b.recv(1 << 20)  # keep the socket from filling up
    channel.close()
    b.close()
    return elapsed


def raw_write_idle(loops: int) -> float:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    elapsed = 0.0
    for i in range(loops):
        t0 = time.perf_counter()
        a.send(MESSAGE)
        elapsed += time.perf_counter() - t0
        if i % 32 == 31:
            b.recv(1 << 20)
    a.close()
    b.close()
    return elapsed


def _filled() -> tuple[SocketChannel, socket.socket]:
    """A channel whose peer's side is full, with output pending."""
    a, b = socket.socketpair()
    channel = SocketChannel(a)
    while not channel.pending_output:
        channel.write(MESSAGE * 100)
    return channel, b


def ours_write_pending(loops: int) -> float:
    channel, b = _filled()
    elapsed = 0.0
    for i in range(loops):
        if i and i % _PENDING_RESTART == 0:
            channel.abort()
            b.close()
            channel, b = _filled()
        t0 = time.perf_counter()
        channel.write(MESSAGE)
        elapsed += time.perf_counter() - t0
    channel.abort()
    b.close()
    return elapsed


BENCHMARKS: dict[str, Callable[[int], float]] = {
    "ours/poll_one": ours_poll_one,
    "raw/poll_one": raw_poll_one,
    "ours/echo_turn": ours_echo_turn,
    "raw/echo_turn": raw_echo_turn,
    "ours/write16": ours_write16,
    "raw/write16": raw_write16,
    "ours/split_4k": ours_split_4k,
    "raw/split_4k": raw_split_4k,
    "ours/write_idle": ours_write_idle,
    "raw/write_idle": raw_write_idle,
    "ours/write_pending": ours_write_pending,
}


def main() -> None:
    runner = pyperf.Runner()
    runner.metadata["description"] = "io-channels hot paths beside hand-written equivalents"
    for name, func in BENCHMARKS.items():
        runner.bench_time_func(name, func)


if __name__ == "__main__":
    main()
