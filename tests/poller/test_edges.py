"""The Poller: edges: foreign line channels, dropped lines, held output.

Everything here runs over real descriptors: TestChannel pipes, socketpairs,
TCP on 127.0.0.1 and Unix sockets under ``tmp_path``. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time

import pytest

from channels import (
    EndpointClosedException,
    LineTooLongError,
)
from channels.base import Buffer
from channels.poller import Poller, PollResult
from tests.helpers import WAIT, turn_of
from tests.poller.support import (
    accepted,
    channel_pair,
    connect,
    data_of,
    poll_until,
    tcp_server,
)


class _ForeignLines:
    """A duck-typed 0.1.1-style line channel: only read/write/close/get_fd."""

    buffering = "line"

    def __init__(self) -> None:
        self.faucet, self.feed = os.pipe()
        os.set_blocking(self.faucet, False)
        self.lines: list[bytes] = []
        self.too_long_once = False

    def read(self) -> bytes:
        with contextlib.suppress(BlockingIOError):
            data = os.read(self.faucet, 65536)
            if not data:
                raise EndpointClosedException("end")
            self.lines.extend(data.splitlines(keepends=True))
        if self.too_long_once:
            self.too_long_once = False
            raise LineTooLongError("too long")
        return self.lines.pop(0) if self.lines else b""

    def write(self, *data: Buffer) -> None:
        raise NotImplementedError

    def close(self) -> None:
        os.close(self.faucet)
        if self.feed >= 0:
            os.close(self.feed)

    def get_fd(self) -> int:
        return self.faucet


def test_foreign_line_channel_gets_one_entry_per_line_and_skips_an_overlong_one(
    poller: Poller, caplog: pytest.LogCaptureFixture
) -> None:
    foreign = _ForeignLines()
    try:
        poller.register(foreign)  # type: ignore[arg-type]
        foreign.too_long_once = True
        os.write(foreign.feed, b"a\nb\n")
        results = poll_until(poller, lambda r: len(r) >= 2)
        assert results == [(b"a\n", foreign), (b"b\n", foreign)]
        assert "too long" in caplog.text
        os.close(foreign.feed)
        foreign.feed = -1
        assert poll_until(poller, bool) == [(b"", foreign)]
        assert len(poller) == 0
    finally:
        foreign.close()


def test_foreign_line_channel_with_many_lines_is_read_over_several_polls_without_blocking(poller: Poller) -> None:
    foreign = _ForeignLines()
    try:
        poller.register(foreign)  # type: ignore[arg-type]
        count = 3000  # more than one poll takes from a foreign channel
        os.write(foreign.feed, b"x\n" * count)
        got: list[PollResult] = []
        deadline = time.monotonic() + WAIT
        while len(got) < count and time.monotonic() < deadline:
            got.extend(poller.poll(1))
        assert len(got) == count
    finally:
        poller.unregister(foreign)  # type: ignore[arg-type]
        foreign.close()


def test_overlong_line_is_dropped_by_the_poller_with_a_warning_and_the_next_line_follows(
    stack: contextlib.ExitStack, caplog: pytest.LogCaptureFixture
) -> None:
    poller = stack.enter_context(Poller(buffering="line", max_line_length=8))
    server = tcp_server(stack)
    poller.add_server(server)
    client = connect(stack, server)
    (channel,) = accepted(poll_until(poller, bool))
    client.sendall(b"short\n" + b"x" * 50 + b"\nnext\n")
    results = poll_until(poller, lambda r: len(data_of(r, channel)) >= 2)
    assert data_of(results, channel) == [b"short\n", b"next\n"]
    assert "longer than 8 bytes" in caplog.text


def test_poller_buffering_property_says_what_accepted_clients_get() -> None:
    with Poller() as plain, Poller(buffering="line") as lines, Poller(buffering=None) as default:
        assert (plain.buffering, lines.buffering, default.buffering) == ("bytes", "line", "bytes")


def test_registering_a_channel_with_pending_output_makes_the_poller_send_it(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel, peer = channel_pair(stack)
    channel.write(b"z" * (8 * 1024 * 1024))  # more than the socket buffers take
    assert channel.pending_output > 0
    poller.register(channel)
    received = bytearray()
    deadline = time.monotonic() + WAIT
    while len(received) < 8 * 1024 * 1024 and time.monotonic() < deadline:
        poller.poll(0.01)
        with contextlib.suppress(BlockingIOError):
            received += peer.recv(1 << 20)
    assert len(received) == 8 * 1024 * 1024
    assert channel.pending_output == 0


def test_direct_read_sends_output_held_for_the_end_of_the_turn(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    with turn_of(poller):
        channel.write(b"request\n")
        assert channel.pending_output == len(b"request\n")  # held for the end of the turn
        assert channel.read() == b""
        assert channel.pending_output == 0
        peer.settimeout(WAIT)
        assert peer.recv(100) == b"request\n"


def test_deferred_write_of_a_bytearray_is_copied_before_write_returns(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    buffer = bytearray(b"before")
    with turn_of(poller):
        channel.write(buffer, b"!")
        assert channel.pending_output == 7  # held for the end of the turn
        buffer[:] = b"AFTER!"
    peer.settimeout(WAIT)
    assert peer.recv(100) == b"before!"


def test_held_output_is_sent_at_interpreter_exit() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        script = (
            "import socket\n"
            "from channels import SocketChannel\n"
            "from channels.poller import Poller\n"
            "from channels.testing import TestChannel\n"
            f"channel = SocketChannel(socket.socket(fileno={theirs.fileno()}))\n"
            "poller = Poller()\n"
            "poller.register(channel)\n"
            "ticker = TestChannel()\n"
            "poller.register(ticker)\n"
            "ticker.put(b'tick')\n"
            "turn = iter(poller.poll(5))\n"
            "assert next(turn)[1] is ticker\n"
            "channel.write(b'last words')\n"
            "assert channel.pending_output == 10  # held: the turn never ends\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script], pass_fds=[theirs.fileno()], capture_output=True, timeout=WAIT, check=False
        )
        assert done.returncode == 0, done.stderr
        theirs.close()
        ours.settimeout(WAIT)
        assert ours.recv(100) == b"last words"
