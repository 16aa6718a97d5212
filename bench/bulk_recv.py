"""Receive one bulk transfer and report how fast it came in.

    python bench/bulk_recv.py IMPL --fd N --size BYTES [--cpu C]

``--fd`` is a listening TCP socket (socket receivers) or the read end of a
pipe (pipe receivers). The receiver takes bytes until end of file and reports
bytes, and the seconds and its own CPU seconds from the first byte to the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import select
import socket
import time
from collections.abc import Callable

import uvloop
from common import cpu_seconds, emit, pin

from channels import Channel, PipeChannel, Poller, SocketChannel

READ_SIZE = 256 * 1024


class Clock:
    """Wall and CPU time from the first byte received to the end."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0
        self.faults = 0
        self.running = False

    def start(self) -> None:
        if not self.running:
            self.running = True
            self.wall, self.cpu, self.faults = time.perf_counter(), cpu_seconds(), _minor_faults()

    def stop(self) -> tuple[float, float, int]:
        """Seconds, CPU seconds and minor page faults since :meth:`start`."""
        return time.perf_counter() - self.wall, cpu_seconds() - self.cpu, _minor_faults() - self.faults


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


CLOCK = Clock()
#: Seconds a receiver waits for the sender before giving up.
PATIENCE = 120.0


def _accept(fd: int) -> socket.socket:
    listener = socket.socket(fileno=fd)
    listener.settimeout(30)
    sock, _ = listener.accept()
    listener.close()
    return sock


def raw_recv_into(fd: int) -> int:
    """The pure-Python limit: epoll, then one recv_into a reused buffer."""
    sock = _accept(fd)
    sock.setblocking(False)
    buf = bytearray(READ_SIZE)
    ep = select.epoll()
    ep.register(sock.fileno(), select.EPOLLIN)
    total = 0
    deadline = time.monotonic() + PATIENCE
    try:
        while time.monotonic() < deadline:
            ep.poll(1.0)
            try:
                n = sock.recv_into(buf)
            except BlockingIOError:
                continue
            CLOCK.start()
            if not n:
                break
            total += n
    finally:
        ep.close()
        sock.close()
    return total


def raw_pipe_readv(fd: int) -> int:
    """The pure-Python limit for a pipe: epoll, then one readv into a reused buffer."""
    os.set_blocking(fd, False)
    buf = bytearray(READ_SIZE)
    ep = select.epoll()
    ep.register(fd, select.EPOLLIN)
    total = 0
    deadline = time.monotonic() + PATIENCE
    try:
        while time.monotonic() < deadline:
            ep.poll(1.0)
            try:
                n = os.readv(fd, [buf])
            except BlockingIOError:
                continue
            CLOCK.start()
            if not n:
                break
            total += n
    finally:
        ep.close()
        os.close(fd)
    return total


def _channels_loop(channel: Channel) -> int:
    total = 0
    deadline = time.monotonic() + PATIENCE
    with Poller() as poller:
        poller.register(channel)
        ended = False
        while not ended and time.monotonic() < deadline:
            for data, _ch in poller.poll(1.0):
                CLOCK.start()
                if not data:
                    ended = True
                total += len(data)
    channel.close()
    return total


def channels_socket(fd: int) -> int:
    """``SocketChannel.read()`` through ``Poller.poll()``, as a user would."""
    return _channels_loop(SocketChannel(_accept(fd)))


def channels_pipe(fd: int) -> int:
    """``PipeChannel.read()`` through ``Poller.poll()``."""
    return _channels_loop(PipeChannel(fd))


class _Counter(asyncio.Protocol):
    def __init__(self, done: asyncio.Future[None]) -> None:
        self.total = 0
        self.done = done

    def data_received(self, data: bytes) -> None:
        CLOCK.start()
        self.total += len(data)

    def eof_received(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


def _asyncio(fd: int, loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> int:
    sock = _accept(fd)
    loop = loop_factory()

    async def main() -> int:
        done = loop.create_future()
        transport, protocol = await loop.connect_accepted_socket(lambda: _Counter(done), sock)
        await asyncio.wait_for(done, PATIENCE)
        transport.close()
        return protocol.total

    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def asyncio_protocol(fd: int) -> int:
    """An asyncio Protocol counting what ``data_received`` gets."""
    return _asyncio(fd, asyncio.new_event_loop)


def uvloop_protocol(fd: int) -> int:
    """The same Protocol on uvloop."""
    return _asyncio(fd, uvloop.new_event_loop)


RECEIVERS: dict[str, tuple[str, Callable[[int], int]]] = {
    "raw_recv_into": ("tcp", raw_recv_into),
    "channels_socket": ("tcp", channels_socket),
    "asyncio_protocol": ("tcp", asyncio_protocol),
    "uvloop_protocol": ("tcp", uvloop_protocol),
    "raw_pipe_readv": ("pipe", raw_pipe_readv),
    "channels_pipe": ("pipe", channels_pipe),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("impl", choices=sorted(RECEIVERS))
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--cpu", type=int, default=None)
    args = parser.parse_args()
    pin(args.cpu)
    total = RECEIVERS[args.impl][1](args.fd)
    seconds, cpu, faults = CLOCK.stop()
    if total != args.size:
        emit({"error": f"received {total} bytes, expected {args.size}"})
        return
    emit(
        {
            "bytes": total,
            "seconds": seconds,
            "mb_per_s": total / seconds / 1e6,
            "cpu_seconds": cpu,
            "page_faults_per_mib": faults / (total / 2**20),
        }
    )


if __name__ == "__main__":
    main()
