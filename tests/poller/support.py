"""Helpers shared by the Poller tests. Every wait here is bounded."""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Callable
from pathlib import Path

from channels import (
    SocketChannel,
)
from channels.poller import Poller, PollResult
from channels.testing import TestChannel
from tests.helpers import WAIT

MiB = 1024 * 1024


def channel_pair(stack: contextlib.ExitStack, *, buffering: str = "bytes") -> tuple[SocketChannel, socket.socket]:
    """A SocketChannel over one end of a socketpair, and the other end (the peer)."""
    mine, peer = socket.socketpair()
    stack.callback(mine.close)
    channel = SocketChannel(mine, buffering=buffering)
    stack.callback(channel.close)
    # The peer is closed before the channel, so that closing the channel never
    # waits for a peer that does not read.
    stack.callback(peer.close)
    peer.settimeout(WAIT)
    return channel, peer


def make_test_channel(stack: contextlib.ExitStack, *, buffering: str = "bytes") -> TestChannel:
    channel = TestChannel(buffering=buffering)
    stack.callback(channel.close)
    return channel


def tcp_server(stack: contextlib.ExitStack, backlog: int = 64) -> socket.socket:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stack.callback(server.close)
    server.bind(("127.0.0.1", 0))
    server.listen(backlog)
    return server


def unix_server(stack: contextlib.ExitStack, directory: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stack.callback(server.close)
    server.bind(str(directory / "s.sock"))
    server.listen(64)
    return server


def connect(stack: contextlib.ExitStack, server: socket.socket) -> socket.socket:
    client = socket.socket(server.family, socket.SOCK_STREAM)
    stack.callback(client.close)
    client.settimeout(WAIT)
    client.connect(server.getsockname())
    return client


def poll_until(poller: Poller, done: Callable[[list[PollResult]], bool], timeout: float = WAIT) -> list[PollResult]:
    """Poll, collecting entries, until ``done(entries)``; fail after ``timeout``."""
    results: list[PollResult] = []
    deadline = time.monotonic() + timeout
    while not done(results):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"condition not met within {timeout}s; polled {results!r}")
        results.extend(poller.poll(min(remaining, 0.5)))
    return results


def accepted(results: list[PollResult]) -> list[SocketChannel]:
    """The client channels among poll results."""
    clients: list[SocketChannel] = []
    for first, second in results:
        if isinstance(second, socket.socket):
            assert isinstance(first, tuple)
            clients.append(first[1])
    return clients


def data_of(results: list[PollResult], channel: object) -> list[bytes]:
    """The data entries (including an end's ``b''``) reported for ``channel``."""
    out: list[bytes] = []
    for first, second in results:
        if second is channel:
            assert isinstance(first, bytes)
            out.append(first)
    return out


def ended(channel: object) -> Callable[[list[PollResult]], bool]:
    return lambda results: (b"", channel) in results


def wait_readable(fd: int, timeout: float = WAIT) -> None:
    ready, _, _ = select.select([fd], [], [], timeout)
    assert ready, f"descriptor {fd} not readable within {timeout}s"


def timed_poll(poller: Poller, timeout: float | None) -> tuple[list[PollResult], float]:
    start = time.monotonic()
    result = poller.poll(timeout)
    return result, time.monotonic() - start


def drain(peer: socket.socket, piece: int = 65536) -> bytes:
    """Everything a non-blocking socket has to read now."""
    chunks: list[bytes] = []
    while True:
        try:
            data = peer.recv(piece)
        except BlockingIOError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def receive_while_polling(poller: Poller, peer: socket.socket, size: int) -> bytes:
    """Receive ``size`` bytes on ``peer`` while polling, which reports nothing."""
    peer.setblocking(False)
    received = bytearray()
    deadline = time.monotonic() + WAIT
    while len(received) < size:
        assert time.monotonic() < deadline, f"only {len(received)} of {size} bytes arrived"
        assert poller.poll(0.01) == []  # nothing to report: the end was reported once
        received += drain(peer)
    return bytes(received)
