"""Writing while output is pending and the peer does not read (SPEC 3.1):
no send system call that can only fail, yet nothing waits longer than it must.

Counted, not timed: each test counts the ``_send`` calls a real socket
channel makes.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest

from channels import Poller, SocketChannel

from .helpers import WAIT

LINE = b"x" * 71 + b"\n"


class CountingChannel(SocketChannel):
    """A socket channel that counts its send system calls."""

    sends = 0

    def _send(self, buffers: list[bytes | memoryview]) -> int:
        self.sends += 1
        return super()._send(buffers)


@pytest.fixture
def pair() -> Iterator[tuple[CountingChannel, socket.socket]]:
    ours, peer = socket.socketpair()
    channel = CountingChannel(ours)
    yield channel, peer
    channel.abort()
    peer.close()


def fill(channel: CountingChannel) -> int:
    """Write until the peer's side is full and output is pending; how many
    bytes were written."""
    block = LINE * 100
    for count in range(1, 1_000_000):
        channel.write(block)
        if channel.pending_output:
            return count * len(block)
    raise AssertionError("the socket never filled up")


def drain(peer: socket.socket, size: int) -> None:
    """Read ``size`` bytes on the peer's side."""
    peer.settimeout(WAIT)
    got = 0
    while got < size:
        got += len(peer.recv(1 << 20))


def test_writes_to_a_peer_that_does_not_read_make_no_send_call(pair: tuple[CountingChannel, socket.socket]) -> None:
    channel, _peer = pair
    fill(channel)
    channel.sends = 0
    pending = channel.pending_output
    for _ in range(1000):
        channel.write(LINE)
    assert channel.sends == 0
    assert channel.pending_output == pending + 1000 * len(LINE)


def test_the_first_write_after_the_peer_reads_again_sends(pair: tuple[CountingChannel, socket.socket]) -> None:
    channel, peer = pair
    fill(channel)
    channel.write(LINE)
    peer.setblocking(False)
    peer.recv(1 << 20)  # room again
    channel.sends = 0
    before = channel.pending_output
    channel.write(LINE)
    assert channel.sends >= 1
    assert channel.pending_output < before + len(LINE)


def test_everything_written_to_a_full_peer_arrives_in_order(pair: tuple[CountingChannel, socket.socket]) -> None:
    channel, peer = pair
    written = fill(channel)
    numbered = b"".join(b"%08d\n" % n for n in range(5000))
    for start in range(0, len(numbered), 9):
        channel.write(numbered[start : start + 9])
    peer.setblocking(False)
    received = bytearray()
    deadline = time.monotonic() + WAIT
    while len(received) < written + len(numbered) and time.monotonic() < deadline:
        try:
            received += peer.recv(1 << 20)
        except BlockingIOError:
            channel.flush(0)
    assert len(received) == written + len(numbered)
    assert received.endswith(numbered)


def test_a_registered_channel_leaves_pending_output_to_its_poller(pair: tuple[CountingChannel, socket.socket]) -> None:
    channel, peer = pair
    with Poller() as poller:
        poller.register(channel)
        fill(channel)
        channel.sends = 0
        for _ in range(1000):
            channel.write(LINE)  # outside a turn: the poller watches write readiness
        assert channel.sends == 0
        pending = channel.pending_output
        peer.setblocking(False)
        received = 0
        deadline = time.monotonic() + WAIT
        while channel.pending_output and time.monotonic() < deadline:
            with contextlib.suppress(BlockingIOError):
                received += len(peer.recv(1 << 20))
            poller.poll(0.01)
        assert channel.pending_output == 0
        assert channel.sends >= 1
        drain(peer, pending - received)


def test_a_poll_on_a_full_peer_makes_no_send_call(pair: tuple[CountingChannel, socket.socket]) -> None:
    channel, peer = pair
    peer.send(b"ping")
    with Poller() as poller:
        poller.register(channel)
        fill(channel)
        channel.sends = 0
        for _entry in poller.poll(WAIT):
            channel.write(LINE)  # held for the turn's end, where the peer is still full
        poller.poll(0)
        assert channel.sends == 0
        channel.abort()  # not the poller's linger for a peer that never reads
