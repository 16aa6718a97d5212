"""The Poller contract (SPEC §2 Poller, §3.1 poller part, §3.5, §3.6, §3.7).

Everything here runs over real descriptors: TestChannel pipes, socketpairs,
TCP on 127.0.0.1 and Unix sockets under ``tmp_path``. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import hashlib
import os
import random
import resource
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import channels.poller
from channels import (
    Channel,
    EndpointClosedException,
    LineChannel,
    LineTooLongError,
    PipeChannel,
    SocketChannel,
)
from channels._watch import EpollWatcher, SelectorsWatcher
from channels.base import Buffer
from channels.poller import Poller, PollResult
from channels.testing import TestChannel
from tests.helpers import WAIT, open_fd_count, turn_of

MiB = 1024 * 1024

# -- fixtures and helpers -----------------------------------------------------


@pytest.fixture(autouse=True, params=["epoll", "selectors"])
def watcher(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every poller test runs over epoll itself and over selectors."""
    if request.param == "epoll":
        if not hasattr(select, "epoll"):
            pytest.skip("no epoll on this system")
        monkeypatch.setattr(channels.poller, "_make_watcher", EpollWatcher)
    else:
        monkeypatch.setattr(channels.poller, "_make_watcher", SelectorsWatcher)
    return str(request.param)


@pytest.fixture
def poller() -> Iterator[Poller]:
    p = Poller()
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def line_poller() -> Iterator[Poller]:
    p = Poller(buffering="line")
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    """Closes what a test opened, last opened first."""
    with contextlib.ExitStack() as exits:
        yield exits


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


# -- timeouts ------------------------------------------------------------------


def test_poll_with_nothing_ready_returns_empty_after_the_timeout(poller: Poller, stack: contextlib.ExitStack) -> None:
    poller.register(make_test_channel(stack))

    result, elapsed = timed_poll(poller, 0.2)

    assert result == []
    assert 0.15 <= elapsed < 0.2 + 2.0


def test_poll_zero_does_not_wait(poller: Poller, stack: contextlib.ExitStack) -> None:
    poller.register(make_test_channel(stack))

    result, elapsed = timed_poll(poller, 0)

    assert result == []
    assert elapsed < 0.1


def test_poll_with_a_negative_timeout_does_not_wait(poller: Poller, stack: contextlib.ExitStack) -> None:
    poller.register(make_test_channel(stack))

    result, elapsed = timed_poll(poller, -1.0)  # epoll would read -1 as "forever"

    assert result == []
    assert elapsed < 0.1


def test_poll_with_a_sub_millisecond_timeout_waits_rather_than_spins(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    poller.register(make_test_channel(stack))
    start = time.process_time()

    for _ in range(20):
        assert poller.poll(0.0001) == []

    # Each poll sleeps about a millisecond: 20 of them cannot use 20 ms of CPU
    # unless they spin.
    assert time.process_time() - start < 0.02 * 20


def test_poll_without_timeout_waits_until_data_arrives(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    sender = threading.Timer(0.1, peer.sendall, [b"late"])
    sender.start()
    try:
        result, elapsed = timed_poll(poller, None)
    finally:
        sender.join(WAIT)

    assert result == [(b"late", channel)]
    assert elapsed >= 0.05


# -- data ------------------------------------------------------------------------


def test_poll_returns_data_with_its_channel(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    peer.sendall(b"hello")

    assert poller.poll(WAIT) == [(b"hello", channel)]


def test_poll_reports_each_ready_channel(poller: Poller, stack: contextlib.ExitStack) -> None:
    first = make_test_channel(stack)
    second = make_test_channel(stack)
    poller.register(first)
    poller.register(second)
    first.put(b"one")
    second.put(b"two")

    assert sorted(poller.poll(WAIT), key=lambda entry: entry[0]) == [(b"one", first), (b"two", second)]


def test_line_buffered_channel_gives_one_entry_per_line(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = make_test_channel(stack, buffering="line")
    poller.register(channel)
    channel.put(b"one\ntwo\nthree\n")

    assert poller.poll(WAIT) == [(b"one\n", channel), (b"two\n", channel), (b"three\n", channel)]


def test_partial_line_is_reported_only_when_completed(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack, buffering="line")
    poller.register(channel)
    peer.sendall(b"par")

    assert poller.poll(0.2) == []

    peer.sendall(b"tial\nnext")
    assert poller.poll(WAIT) == [(b"partial\n", channel)]


def test_live_line_channel_never_gets_an_empty_entry(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = make_test_channel(stack, buffering="line")
    poller.register(channel)
    results: list[PollResult] = []
    for piece in (b"a", b"b", b"c\nd", b"\n", b"e", b"f", b"\n\n"):
        channel.put(piece)
        results.extend(poller.poll(0.05))

    assert results == [(b"abc\n", channel), (b"d\n", channel), (b"ef\n", channel), (b"\n", channel)]


# -- a channel ending -------------------------------------------------------------


def test_peer_closing_is_reported_once_after_the_data(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    peer.sendall(b"last words")
    peer.close()

    results = poll_until(poller, ended(channel))

    assert b"".join(data_of(results, channel)) == b"last words"
    assert data_of(results, channel)[-1] == b""
    assert data_of(results, channel).count(b"") == 1
    assert poller.poll(0.1) == []


def test_ended_channel_is_forgotten(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    other = make_test_channel(stack)
    poller.register(channel)
    poller.register(other)
    assert len(poller) == 2
    peer.close()

    poll_until(poller, ended(channel))

    assert len(poller) == 1
    assert poller.poll(0.1) == []


def test_line_channel_end_reports_lines_then_rest_then_end(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack, buffering="line")
    poller.register(channel)
    peer.sendall(b"one\ntwo\nunterminated")
    peer.close()

    results = poll_until(poller, ended(channel))

    assert data_of(results, channel) == [b"one\n", b"two\n", b"unterminated", b""]


def test_test_channel_eof_is_reported_once(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = make_test_channel(stack)
    poller.register(channel)
    channel.put(b"data")
    channel.put_eof()

    results = poll_until(poller, ended(channel))

    assert data_of(results, channel) == [b"data", b""]
    assert poller.poll(0.05) == []


# -- writing to a channel whose input ended -----------------------------------------


def _half_closed(poller: Poller, stack: contextlib.ExitStack) -> tuple[SocketChannel, socket.socket]:
    """A registered channel whose peer has ended its output (and still reads),
    with the end already reported."""
    channel, peer = channel_pair(stack)
    poller.register(channel)
    peer.shutdown(socket.SHUT_WR)
    poll_until(poller, ended(channel))
    return channel, peer


def _receive_while_polling(poller: Poller, peer: socket.socket, size: int) -> bytes:
    peer.setblocking(False)
    received = bytearray()
    deadline = time.monotonic() + WAIT
    while len(received) < size:
        assert time.monotonic() < deadline, f"only {len(received)} of {size} bytes arrived"
        assert poller.poll(0.01) == []  # nothing to report: the end was reported once
        received += drain(peer)
    return bytes(received)


def test_output_written_after_the_end_is_sent_by_later_polls(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = _half_closed(poller, stack)
    data = random.Random(7).randbytes(8 * 1024 * 1024)  # far more than the socket buffers hold

    channel.write(data)
    assert channel.pending_output > 0

    assert _receive_while_polling(poller, peer, len(data)) == data
    assert channel.pending_output == 0


def test_small_replies_after_the_end_leave_at_the_next_poll(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = _half_closed(poller, stack)

    channel.write(b"last ")
    channel.write(b"words\n")

    assert _receive_while_polling(poller, peer, 11) == b"last words\n"


def test_an_ended_channel_is_not_counted_nor_reported_again(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, _peer = _half_closed(poller, stack)

    assert len(poller) == 0
    channel.write(b"bye\n")
    assert poller.poll(0.05) == []
    channel.close()
    assert poller.poll(0.05) == []  # closing it does not report its end a second time


def test_unregister_stops_sending_for_an_ended_channel(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = _half_closed(poller, stack)
    channel.write(b"x" * (8 * 1024 * 1024))
    poller.poll(0)  # sends what fits, then watches for room
    poller.unregister(channel)
    stuck = channel.pending_output
    assert stuck > 0

    peer.setblocking(False)
    drain(peer)  # room again
    assert poller.poll(0.05) == []

    assert channel.pending_output == stuck  # the poller no longer sends it


def test_an_ended_channel_its_owner_drops_is_let_go(poller: Poller) -> None:
    mine, peer = socket.socketpair()
    with peer:
        channel = SocketChannel(mine)
        poller.register(channel)
        peer.shutdown(socket.SHUT_WR)
        poll_until(poller, ended(channel))
        gone = weakref.ref(channel)

        with pytest.warns(ResourceWarning, match="unclosed"):
            del channel
            gc.collect()

        assert gone() is None  # the poller does not keep it alive


def test_an_ended_channel_can_be_registered_again(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, _peer = _half_closed(poller, stack)

    poller.register(channel)

    assert poll_until(poller, ended(channel)) == [(b"", channel)]


def test_close_all_lets_go_of_ended_channels_without_closing_them(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = _half_closed(poller, stack)
    with turn_of(poller):
        channel.write(b"held ")  # held for the end of the turn
        assert channel.pending_output == 5

        poller.close_all()
        channel.write(b"after\n")  # sent at once: no poller holds it any more

    assert not channel.closed
    assert peer.recv(100) == b"held after\n"


def test_output_pending_when_the_end_arrives_is_still_delivered(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    data = random.Random(8).randbytes(8 * 1024 * 1024)
    channel.write(data)
    peer.shutdown(socket.SHUT_WR)

    poll_until(poller, ended(channel))  # the peer is not reading yet: output waits
    assert channel.pending_output > 0

    assert _receive_while_polling(poller, peer, len(data)) == data


def test_shutdown_write_on_an_ended_channel_delivers_then_ends_its_output(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel, peer = _half_closed(poller, stack)
    channel.write(b"the answer\n")

    channel.shutdown_write()

    assert poller.poll(0.05) == []
    peer.settimeout(WAIT)
    assert peer.recv(100) == b"the answer\n"
    assert peer.recv(100) == b""  # both directions have ended


def test_unregister_sends_what_an_ended_channel_held_for_the_next_poll(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel, peer = _half_closed(poller, stack)
    with turn_of(poller):
        channel.write(b"bye\n")  # held for the end of the turn
        assert channel.pending_output == 4

        poller.unregister(channel)

        assert peer.recv(100) == b"bye\n"


# -- pausing reading ------------------------------------------------------------------


def test_a_paused_channel_is_not_read_until_resumed(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)

    poller.pause_reading(channel)
    peer.sendall(b"later")
    assert poller.poll(0.05) == []

    poller.resume_reading(channel)
    assert poll_until(poller, bool) == [(b"later", channel)]


def test_a_paused_channels_output_is_still_sent(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    poller.pause_reading(channel)
    data = random.Random(9).randbytes(8 * 1024 * 1024)

    channel.write(data)

    assert _receive_while_polling(poller, peer, len(data)) == data


def test_a_paused_channel_counts_as_registered(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, _peer = channel_pair(stack)
    poller.register(channel)

    poller.pause_reading(channel)
    poller.pause_reading(channel)  # twice is harmless

    assert len(poller) == 1
    poller.register(channel)  # registering again resumes it
    poller.resume_reading(channel)  # not paused: nothing to do
    assert len(poller) == 1


def test_a_paused_channel_closed_by_its_owner_is_reported_once(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, _peer = channel_pair(stack)
    poller.register(channel)
    poller.pause_reading(channel)

    channel.close()

    assert poller.poll(0) == [(b"", channel)]
    assert poller.poll(0.05) == []
    assert len(poller) == 0


def test_close_all_closes_paused_channels(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    poller.pause_reading(channel)
    channel.write(b"last\n")

    poller.close_all()

    assert channel.closed
    assert peer.recv(100) == b"last\n"


def test_unregister_ends_a_pause(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    poller.pause_reading(channel)

    poller.unregister(channel)
    poller.resume_reading(channel)  # no longer paused: nothing happens
    peer.sendall(b"unseen")

    assert poller.poll(0.05) == []
    assert len(poller) == 0


def test_a_paused_channel_half_closed_is_read_again_when_resumed(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    poller.pause_reading(channel)
    channel.write(b"request\n")

    channel.shutdown_write()
    peer.sendall(b"answer\n")
    poller.resume_reading(channel)

    assert poll_until(poller, bool) == [(b"answer\n", channel)]
    assert peer.recv(100) == b"request\n"


def test_pause_reading_refuses_a_foreign_channel(poller: Poller) -> None:
    class Foreign:
        def get_fd(self) -> int:
            return 0

    with pytest.raises(ValueError, match="cannot be paused"):
        poller.pause_reading(Foreign())  # type: ignore[arg-type]


# -- a channel closed by its owner ------------------------------------------------


def test_channel_closed_by_owner_is_reported_once_and_forgotten(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, _peer = channel_pair(stack)
    poller.register(channel)

    channel.close()

    result, elapsed = timed_poll(poller, WAIT)
    assert result == [(b"", channel)]
    assert elapsed < WAIT / 2
    assert len(poller) == 0
    assert poller.poll(0.05) == []


def _pipe_channel(stack: contextlib.ExitStack) -> tuple[Channel, Callable[[bytes], None]]:
    faucet, feed = os.pipe()
    channel = PipeChannel(faucet)
    stack.callback(channel.close)
    stack.callback(os.close, feed)

    def send(data: bytes) -> None:
        assert os.write(feed, data) == len(data)

    return channel, send


def _socket_channel(stack: contextlib.ExitStack) -> tuple[Channel, Callable[[bytes], None]]:
    channel, peer = channel_pair(stack)
    return channel, peer.sendall


@pytest.mark.parametrize("make", [_pipe_channel, _socket_channel], ids=["pipe", "socket"])
def test_new_channel_reusing_a_closed_channels_descriptor_registers_and_works(
    poller: Poller,
    stack: contextlib.ExitStack,
    make: Callable[[contextlib.ExitStack], tuple[Channel, Callable[[bytes], None]]],
) -> None:
    gc.collect()  # no stray descriptor is freed behind our back below
    old, _ = make(stack)
    poller.register(old)
    old_fd = old.get_fd()

    old.close()
    new, send = make(stack)
    assert new.get_fd() == old_fd, "the new descriptor should take the freed number"
    poller.register(new)
    send(b"fresh")

    results = poll_until(poller, lambda r: (b"fresh", new) in r)
    assert data_of(results, old) == [b""]
    assert len(poller) == 1
    assert poller.poll(0.05) == []


# -- unregister ---------------------------------------------------------------------


def test_unregister_unknown_channel_is_silent(poller: Poller, stack: contextlib.ExitStack) -> None:
    poller.unregister(make_test_channel(stack))
    unknown_server = tcp_server(stack)
    poller.unregister(unknown_server)

    assert len(poller) == 0


def test_unregistered_channel_is_not_reported(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = make_test_channel(stack)
    poller.register(channel)
    channel.put(b"ignored")

    poller.unregister(channel)

    assert poller.poll(0.1) == []
    assert len(poller) == 0
    assert channel.read() == b"ignored"


def test_unregister_twice_is_silent(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = make_test_channel(stack)
    poller.register(channel)

    poller.unregister(channel)
    poller.unregister(channel)

    assert len(poller) == 0


def test_unregister_works_on_a_closed_channel(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = make_test_channel(stack)
    poller.register(channel)
    channel.close()

    poller.unregister(channel)

    assert len(poller) == 0
    assert poller.poll(0.05) == []


def test_unregister_server_stops_accepting(poller: Poller, stack: contextlib.ExitStack) -> None:
    server = tcp_server(stack)
    poller.add_server(server)

    poller.unregister(server)
    connect(stack, server)

    assert poller.poll(0.2) == []
    assert server.fileno() >= 0, "unregister must not close the server"


def test_unregistered_channel_can_be_registered_again(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = make_test_channel(stack)
    poller.register(channel)
    poller.unregister(channel)

    poller.register(channel)
    channel.put(b"back")

    assert poller.poll(WAIT) == [(b"back", channel)]


def test_register_twice_is_harmless(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = make_test_channel(stack)
    poller.register(channel)
    poller.register(channel)
    channel.put(b"once")

    assert len(poller) == 1
    assert poller.poll(WAIT) == [(b"once", channel)]


def test_unregister_sends_output_held_for_the_end_of_the_turn(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    with turn_of(poller):
        channel.write(b"held")
        assert channel.pending_output == 4

        poller.unregister(channel)

        peer.settimeout(WAIT)
        assert peer.recv(16) == b"held"


# -- register errors -----------------------------------------------------------------


def test_register_write_only_channel_says_it_cannot_be_read(poller: Poller, stack: contextlib.ExitStack) -> None:
    faucet, feed = os.pipe()
    stack.callback(os.close, faucet)
    sink_only = PipeChannel(sink=feed)
    stack.callback(sink_only.close)

    with pytest.raises(ValueError, match="cannot be read"):
        poller.register(sink_only)
    assert len(poller) == 0


def test_register_second_channel_on_same_descriptor_raises(poller: Poller, stack: contextlib.ExitStack) -> None:
    inner, _peer = channel_pair(stack)
    poller.register(inner)
    wrapper = LineChannel(inner)
    stack.callback(wrapper.close)

    with pytest.raises(ValueError, match=f"descriptor {inner.get_fd()}"):
        poller.register(wrapper)
    assert len(poller) == 1


def test_register_closed_channel_raises_endpoint_closed(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = make_test_channel(stack)
    channel.close()

    with pytest.raises(EndpointClosedException):
        poller.register(channel)
    assert len(poller) == 0


def test_register_with_a_second_poller_raises(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = make_test_channel(stack)
    poller.register(channel)
    with Poller() as other, pytest.raises(ValueError, match="another Poller"):
        other.register(channel)


# -- servers ----------------------------------------------------------------------------


@pytest.fixture(params=["tcp", "unix"])
def server(request: pytest.FixtureRequest, stack: contextlib.ExitStack, tmp_path: Path) -> socket.socket:
    if request.param == "tcp":
        return tcp_server(stack)
    return unix_server(stack, tmp_path)


def test_add_server_reports_accepted_clients_already_registered(
    poller: Poller, stack: contextlib.ExitStack, server: socket.socket
) -> None:
    poller.add_server(server)
    client = connect(stack, server)

    results = poll_until(poller, lambda r: bool(accepted(r)))

    assert len(results) == 1
    (address, client_channel), reported_server = results[0]
    assert reported_server is server
    assert isinstance(client_channel, SocketChannel)
    if server.family == socket.AF_INET:
        assert address == client.getsockname()
    assert len(poller) == 1
    client.sendall(b"hello")
    assert poll_until(poller, bool) == [(b"hello", client_channel)]
    client_channel.write(b"reply")
    poller.poll(0)
    assert client.recv(16) == b"reply"


def test_line_poller_gives_line_buffered_clients(
    line_poller: Poller, stack: contextlib.ExitStack, server: socket.socket
) -> None:
    line_poller.add_server(server)
    client = connect(stack, server)
    (client_channel,) = accepted(poll_until(line_poller, lambda r: bool(accepted(r))))

    client.sendall(b"one\ntwo\nthr")

    assert client_channel.buffering == "line"
    assert poll_until(line_poller, bool) == [(b"one\n", client_channel), (b"two\n", client_channel)]


def test_bytes_poller_gives_bytes_clients(poller: Poller, stack: contextlib.ExitStack) -> None:
    server = tcp_server(stack)
    poller.add_server(server)
    connect(stack, server)

    (client_channel,) = accepted(poll_until(poller, lambda r: bool(accepted(r))))

    assert client_channel.buffering == "bytes"


def test_accepted_client_disconnecting_is_reported_once(poller: Poller, stack: contextlib.ExitStack) -> None:
    server = tcp_server(stack)
    poller.add_server(server)
    client = connect(stack, server)
    (client_channel,) = accepted(poll_until(poller, lambda r: bool(accepted(r))))
    stack.callback(client_channel.close)  # an ended channel is the owner's to close

    client.close()

    assert poll_until(poller, ended(client_channel)) == [(b"", client_channel)]
    assert len(poller) == 0
    assert poller.poll(0.05) == []


def test_add_server_rejects_a_socket_that_is_not_listening(poller: Poller, stack: contextlib.ExitStack) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stack.callback(sock.close)
    sock.bind(("127.0.0.1", 0))

    with pytest.raises(ValueError, match="listen"):
        poller.add_server(sock)


def test_add_server_rejects_a_connected_socket(poller: Poller, stack: contextlib.ExitStack) -> None:
    _channel, peer = channel_pair(stack)

    with pytest.raises(ValueError, match="listening"):
        poller.add_server(peer)


def test_add_server_rejects_what_is_not_a_socket(poller: Poller, stack: contextlib.ExitStack) -> None:
    server = tcp_server(stack)

    with pytest.raises(TypeError, match="socket"):
        poller.add_server(server.fileno())  # type: ignore[arg-type]


def test_add_server_rejects_a_closed_socket(poller: Poller) -> None:
    sock = socket.socket()
    sock.close()

    with pytest.raises(ValueError, match="closed"):
        poller.add_server(sock)


# -- writes ----------------------------------------------------------------------------


def test_writes_between_polls_are_delivered_after_the_next_poll(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)

    for i in range(100):
        channel.write(b"%03d," % i)
    poller.poll(0)

    expected = b"".join(b"%03d," % i for i in range(100))
    peer.setblocking(False)
    wait_readable(peer.fileno())
    assert drain(peer) == expected
    assert channel.pending_output == 0


def test_large_write_is_completed_by_polls_without_flush(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    payload = random.randbytes(8 * MiB)
    peer.setblocking(False)

    channel.write(payload)
    assert channel.pending_output > 0, "the peer cannot take 8 MiB at once"
    received = bytearray()
    polls = 0
    deadline = time.monotonic() + WAIT
    while len(received) < len(payload):
        assert time.monotonic() < deadline, f"{len(received)} of {len(payload)} bytes after {polls} polls"
        assert poller.poll(0.5) == []
        polls += 1
        received += drain(peer, piece=16384)  # a slow reader: small pieces, between polls

    assert received == payload
    assert channel.pending_output == 0
    assert polls > 1


def test_poller_stops_watching_write_readiness_once_output_is_sent(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    peer.setblocking(False)
    channel.write(random.randbytes(4 * MiB))
    deadline = time.monotonic() + WAIT
    got = 0
    while got < 4 * MiB:
        assert time.monotonic() < deadline
        poller.poll(0.5)
        got += len(drain(peer))
    assert channel.pending_output == 0

    # Idle now: a poll sleeps its whole timeout instead of returning at once
    # for a writable socket with nothing to write.
    result, elapsed = timed_poll(poller, 0.2)
    assert result == []
    assert elapsed >= 0.15
    fast = 0
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        result, elapsed = timed_poll(poller, 0.05)
        assert result == []
        fast += elapsed < 0.001
    assert fast <= 2


def test_64_mib_write_arrives_intact_while_another_channel_is_served(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    bulk, bulk_peer = channel_pair(stack)
    chat, chat_peer = channel_pair(stack, buffering="line")
    poller.register(bulk)
    poller.register(chat)
    bulk_peer.setblocking(False)
    chat_peer.setblocking(False)
    size = 64 * MiB
    payload = random.randbytes(size)
    expected = hashlib.sha256(payload).hexdigest()

    bulk.write(payload)
    del payload
    digest = hashlib.sha256()
    received = 0
    answers = 0
    asked = False
    chat_buffer = b""
    deadline = time.monotonic() + 30
    while received < size:
        assert time.monotonic() < deadline, f"{received} of {size} bytes, {answers} answers"
        for data, channel in poller.poll(1.0):
            assert channel is chat, "only the chat channel has input"
            assert isinstance(data, bytes)
            chat.write(b"re: " + data)
        for _ in range(64):  # the bulk peer reads in small pieces
            try:
                piece = bulk_peer.recv(16384)
            except BlockingIOError:
                break
            digest.update(piece)
            received += len(piece)
        chat_buffer += drain(chat_peer)
        while b"\n" in chat_buffer:
            line, chat_buffer = chat_buffer.split(b"\n", 1)
            assert line == b"re: question %d" % answers
            answers += 1
            asked = False
        if not asked:
            chat_peer.sendall(b"question %d\n" % answers)
            asked = True

    assert digest.hexdigest() == expected
    assert bulk.pending_output == 0
    assert answers >= 5, "the other channel was starved during the transfer"


# -- fairness ----------------------------------------------------------------------------


def test_busy_channel_does_not_starve_a_quiet_one(poller: Poller, stack: contextlib.ExitStack) -> None:
    busy, busy_peer = channel_pair(stack)
    quiet, quiet_peer = channel_pair(stack, buffering="line")
    poller.register(busy)
    poller.register(quiet)
    stop = threading.Event()
    give_up = time.monotonic() + WAIT  # a starving poller still gets control back

    def flood() -> None:
        """Keep the busy channel's socket buffer full, all the time."""
        busy_peer.settimeout(0.05)
        chunk = b"x" * 65536
        while not stop.is_set() and time.monotonic() < give_up:
            try:
                busy_peer.send(chunk)
            except TimeoutError:
                continue
            except OSError:
                return

    flooder = threading.Thread(target=flood)
    flooder.start()
    stack.callback(flooder.join, WAIT)
    stack.callback(stop.set)
    wait_readable(busy.get_fd())
    quiet_peer.sendall(b"hello\n")
    wait_readable(quiet.get_fd())

    reported_at = None
    for turn in range(10):
        results = poller.poll(WAIT)
        assert data_of(results, busy), "the busy channel has data on every turn"
        if (b"hello\n", quiet) in results:
            reported_at = turn
            break

    assert reported_at is not None and reported_at <= 1, f"quiet line reported at turn {reported_at}"


def test_quiet_line_is_reported_before_a_busy_backlog_is_drained(poller: Poller, stack: contextlib.ExitStack) -> None:
    # A TestChannel refills its pipe on every read: this peer always has more.
    busy = make_test_channel(stack)
    backlog = 16 * MiB
    busy.put(b"x" * backlog)
    quiet, quiet_peer = channel_pair(stack, buffering="line")
    poller.register(busy)
    poller.register(quiet)
    quiet_peer.sendall(b"hello\n")
    wait_readable(quiet.get_fd())

    consumed = 0
    reported_at = None
    for turn in range(10):
        results = poller.poll(WAIT)
        consumed += sum(map(len, data_of(results, busy)))
        if (b"hello\n", quiet) in results:
            reported_at = turn
            break

    assert reported_at is not None and reported_at <= 1, f"quiet line reported at turn {reported_at}"
    assert consumed < backlog // 2, f"the busy channel's {consumed} bytes were all read before the quiet line"


# -- accept errors --------------------------------------------------------------------------


@contextlib.contextmanager
def descriptor_limit(limit: int) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def lowest_free_descriptor() -> int:
    probe = os.open(os.devnull, os.O_RDONLY)
    os.close(probe)
    return probe


def poll_while_exhausted(poller: Poller, seconds: float = 1.0) -> tuple[int, int]:
    """Poll for ``seconds`` while no descriptor is free: (polls, polls that returned at once)."""
    with pytest.raises(OSError) as exhausted:
        os.close(os.open(os.devnull, os.O_RDONLY))
    assert exhausted.value.errno == errno.EMFILE
    polls = 0
    fast = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        result, elapsed = timed_poll(poller, 0.05)
        assert result == [], "no client can be accepted without descriptors"
        polls += 1
        fast += elapsed < 0.001
    return polls, fast


def accepted_again(poller: Poller, stack: contextlib.ExitStack, server: socket.socket) -> None:
    """A new client is accepted and served once descriptors are available."""
    latecomer = connect(stack, server)
    latecomer.sendall(b"hi")

    def latecomer_served(results: list[PollResult]) -> bool:
        return any(
            client.socket.getpeername() == latecomer.getsockname() and (b"hi", client) in results
            for client in accepted(results)
        )

    poll_until(poller, latecomer_served)  # the back-off pause passes within WAIT


def test_accept_out_of_descriptors_neither_raises_nor_spins(poller: Poller, stack: contextlib.ExitStack) -> None:
    server = tcp_server(stack)
    poller.add_server(server)
    waiting = [connect(stack, server) for _ in range(60)]
    gc.collect()

    with descriptor_limit(lowest_free_descriptor()):
        polls, fast = poll_while_exhausted(poller)

    assert fast <= 20, f"{fast} of {polls} polls returned at once: poll() spins on EMFILE"
    # The reserve descriptor let the poller refuse the first client cleanly.
    assert waiting[0].recv(16) == b""
    accepted_again(poller, stack, server)


def test_accept_out_of_descriptors_without_a_spare_backs_off(poller: Poller, stack: contextlib.ExitStack) -> None:
    server = tcp_server(stack)
    waiting = connect(stack, server)
    gc.collect()

    with descriptor_limit(lowest_free_descriptor()):
        poller.add_server(server)  # no spare descriptor can be opened now
        polls, fast = poll_while_exhausted(poller)

    assert fast <= 20, f"{fast} of {polls} polls returned at once: poll() spins on EMFILE"
    waiting.sendall(b"still waiting")
    clients = accepted(poll_until(poller, lambda r: bool(accepted(r))))
    assert [client.socket.getpeername() for client in clients] == [waiting.getsockname()]
    accepted_again(poller, stack, server)


def test_client_reset_before_accept_does_not_break_poll(line_poller: Poller, stack: contextlib.ExitStack) -> None:
    server = tcp_server(stack)
    line_poller.add_server(server)
    quitter = connect(stack, server)
    quitter.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    quitter.close()  # RST while the connection waits in the backlog
    good = connect(stack, server)
    good.sendall(b"still here\n")

    def good_served(results: list[PollResult]) -> bool:
        return any(data_of(results, client) == [b"still here\n"] for client in accepted(results))

    results = poll_until(line_poller, good_served)
    for client in accepted(results):  # the reset one may have ended and been forgotten
        client.close()


# -- scale -----------------------------------------------------------------------------------


def _best_poll_time(poller: Poller, runs: int = 200) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        result = poller.poll(0)
        best = min(best, time.perf_counter() - start)
        assert result == []
    return best


def test_poll_cost_does_not_grow_with_idle_channels(poller: Poller, stack: contextlib.ExitStack) -> None:
    idle_pairs = 5000  # both ends of each socketpair are idle channels: 10,000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = open_fd_count() + 2 * idle_pairs + 100
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"needs {needed} descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
        stack.callback(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))

    def idle_channels(pairs: int) -> list[SocketChannel]:
        made: list[SocketChannel] = []
        for _ in range(pairs):
            for sock in socket.socketpair():
                stack.callback(sock.close)
                made.append(SocketChannel(sock))
                stack.callback(made[-1].close)
        return made

    active, active_peer = channel_pair(stack)
    poller.register(active)
    for channel in idle_channels(5):
        poller.register(channel)
    assert len(poller) == 11
    few = _best_poll_time(poller)

    for channel in idle_channels(idle_pairs - 5):
        poller.register(channel)
    assert len(poller) == 2 * idle_pairs + 1
    many = _best_poll_time(poller)

    active_peer.sendall(b"ping")
    assert poller.poll(WAIT) == [(b"ping", active)]
    assert many <= 20 * max(few, 1e-6), f"poll(0): {many * 1e6:.0f}us with 10,000 idle vs {few * 1e6:.0f}us with 10"


# -- descriptor leaks ----------------------------------------------------------------------


def test_connect_exchange_close_cycles_leak_no_descriptors(line_poller: Poller, stack: contextlib.ExitStack) -> None:
    server = tcp_server(stack, backlog=128)
    line_poller.add_server(server)
    address = server.getsockname()
    line_poller.poll(0)
    gc.collect()
    start = open_fd_count()

    for _ in range(2000):
        # The client lives in the same loop, so every step wakes the poll.
        client = SocketChannel(socket.create_connection(address, timeout=WAIT), buffering="line")
        stack.callback(client.close)
        line_poller.register(client)
        client.write(b"ping\n")
        served: list[Channel] = []
        replies: list[bytes] = []
        deadline = time.monotonic() + WAIT
        while not (served and replies and replies[-1] == b""):
            assert time.monotonic() < deadline, f"cycle stalled: replies={replies} served={served}"
            for data, channel in line_poller.poll(1.0):
                if isinstance(channel, socket.socket):
                    continue
                if channel is client:
                    assert isinstance(data, bytes)
                    replies.append(data)
                    if data:
                        client.close()  # reported (b'', client) on the next poll
                elif data:
                    channel.write(b"pong\n")
                else:
                    channel.close()
                    served.append(channel)
        assert replies == [b"pong\n", b""]
        assert len(served) == 1

    assert len(line_poller) == 0
    gc.collect()
    assert open_fd_count() == start


# -- close_all and close ---------------------------------------------------------------


def test_close_all_closes_every_registered_channel(poller: Poller, stack: contextlib.ExitStack) -> None:
    channels: list[Channel] = [
        make_test_channel(stack),
        channel_pair(stack)[0],
        make_test_channel(stack, buffering="line"),
    ]
    for channel in channels:
        poller.register(channel)

    poller.close_all()

    for channel in channels:
        with pytest.raises(EndpointClosedException):
            channel.read()
    assert len(poller) == 0


def test_close_all_closes_servers(poller: Poller, stack: contextlib.ExitStack, server: socket.socket) -> None:
    poller.add_server(server)

    poller.close_all()

    with pytest.raises(OSError):
        server.accept()


def test_close_all_delivers_pending_output_first(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    channel.write(b"last ", b"words")

    poller.close_all()

    assert read_exactly_socket(peer, 10) == b"last words"
    assert peer.recv(16) == b""


def read_exactly_socket(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        piece = sock.recv(size - len(data))
        assert piece, f"end of stream after {len(data)} of {size} bytes"
        data += piece
    return bytes(data)


def test_close_all_delivers_large_pending_output_to_a_reading_peer(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    payload = random.randbytes(2 * MiB)
    channel.write(payload)
    assert channel.pending_output > 0
    received = bytearray()
    reader = threading.Thread(target=lambda: received.extend(read_all(peer)))
    reader.start()
    try:
        poller.close_all()
    finally:
        reader.join(WAIT)
    assert not reader.is_alive()
    assert received == payload


def read_all(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    while piece := sock.recv(65536):
        chunks.append(piece)
    return b"".join(chunks)


def test_close_all_gives_up_after_its_timeout(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, _peer = channel_pair(stack)  # the peer never reads
    poller.register(channel)
    channel.write(random.randbytes(8 * MiB))
    assert channel.pending_output > 0

    start = time.monotonic()
    poller.close_all(timeout=0.2)

    assert time.monotonic() - start < 0.2 + 2.0
    assert channel.closed
    assert channel.pending_output == 0


def test_nothing_is_reported_after_close_all(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    closed_before = make_test_channel(stack)
    poller.register(channel)
    poller.register(closed_before)
    closed_before.close()
    peer.sendall(b"unread")

    poller.close_all()

    assert poller.poll(0.1) == []


def test_poller_as_context_manager_frees_its_descriptors(stack: contextlib.ExitStack) -> None:
    gc.collect()
    start = open_fd_count()

    with Poller() as poller:
        server = tcp_server(stack)
        poller.add_server(server)
        channel = TestChannel()
        poller.register(channel)
        connect(stack, server).close()
        poller.poll(0.1)

    assert channel.closed
    assert server.fileno() == -1
    gc.collect()
    assert open_fd_count() == start


# -- channel kinds and subclasses ------------------------------------------------------


def test_line_channel_is_polled_line_by_line_to_its_end(poller: Poller, stack: contextlib.ExitStack) -> None:
    inner, peer = channel_pair(stack)
    channel = LineChannel(inner)
    stack.callback(channel.close)
    poller.register(channel)
    peer.sendall(b"one\ntwo\nthr")

    assert poll_until(poller, bool) == [(b"one\n", channel), (b"two\n", channel)]

    peer.sendall(b"ee\n")
    peer.close()
    results = poll_until(poller, ended(channel))
    assert data_of(results, channel) == [b"three\n", b""]
    assert len(poller) == 0


class OldStyleChannel(Channel):
    """A channel written for 0.1.1: overrides everything, never calls ``super().__init__``."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._sock.setblocking(False)

    def read(self) -> bytes:
        try:
            result = self._sock.recv(4096)
        except BlockingIOError:
            return b""
        except OSError as ex:
            raise EndpointClosedException(ex) from ex
        if not result:
            raise EndpointClosedException()
        return result

    def write(self, *data: Buffer) -> None:
        try:
            for chunk in data:
                self._sock.send(chunk)
        except OSError as ex:
            raise EndpointClosedException(ex) from ex

    def close(self) -> None:  # type: ignore[override]  # the 0.1.1 signature
        self._sock.close()

    def get_fd(self) -> int:
        return self._sock.fileno()


def old_style_pair(stack: contextlib.ExitStack) -> tuple[OldStyleChannel, socket.socket]:
    mine, peer = socket.socketpair()
    stack.callback(mine.close)
    stack.callback(peer.close)
    peer.settimeout(WAIT)
    return OldStyleChannel(mine), peer


def test_old_style_subclass_is_polled_to_its_end(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = old_style_pair(stack)
    poller.register(channel)
    peer.sendall(b"hello")

    assert poller.poll(WAIT) == [(b"hello", channel)]
    channel.write(b"reply")
    assert peer.recv(16) == b"reply"

    peer.close()
    assert poll_until(poller, ended(channel)) == [(b"", channel)]
    assert len(poller) == 0
    assert poller.poll(0.05) == []


def test_old_style_subclass_closed_by_owner_yields_its_descriptor(poller: Poller, stack: contextlib.ExitStack) -> None:
    gc.collect()
    old, _ = old_style_pair(stack)
    poller.register(old)
    old_fd = old.get_fd()

    old.close()
    new, peer = channel_pair(stack)
    assert new.get_fd() == old_fd, "the new descriptor should take the freed number"
    poller.register(new)
    peer.sendall(b"fresh")

    results = poll_until(poller, lambda r: (b"fresh", new) in r)
    assert data_of(results, old) == [b""]
    assert len(poller) == 1


def test_old_style_line_channel_is_polled_line_by_line(poller: Poller, stack: contextlib.ExitStack) -> None:
    inner, peer = old_style_pair(stack)
    channel = LineChannel(inner)
    stack.callback(channel.close)
    poller.register(channel)
    peer.sendall(b"a\nb\nc")

    assert poll_until(poller, bool) == [(b"a\n", channel), (b"b\n", channel)]
    peer.close()
    assert data_of(poll_until(poller, ended(channel)), channel) == [b"c", b""]


class NewStyleChannel(Channel):
    """A channel written for 0.2: defines ``_read()``, ``write()``, ``close()``."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(buffering="line")
        self._sock = sock
        self._sock.setblocking(False)

    def _read(self) -> bytes:
        try:
            result = self._sock.recv(4096)
        except BlockingIOError:
            return b""
        if not result:
            raise EndpointClosedException()
        return result

    def write(self, *data: Buffer) -> None:
        for chunk in data:
            self._sock.send(chunk)

    def close(self) -> None:  # type: ignore[override]  # the 0.2 signature
        self._sock.close()

    def get_fd(self) -> int:
        return self._sock.fileno()


def test_new_style_subclass_gets_lines_split_by_the_poller(poller: Poller, stack: contextlib.ExitStack) -> None:
    mine, peer = socket.socketpair()
    stack.callback(mine.close)
    stack.callback(peer.close)
    channel = NewStyleChannel(mine)
    stack.callback(channel.close)
    poller.register(channel)
    peer.sendall(b"one\ntwo\nthr")

    assert poll_until(poller, bool) == [(b"one\n", channel), (b"two\n", channel)]

    peer.sendall(b"ee\n")
    assert poll_until(poller, bool) == [(b"three\n", channel)]
    channel.write(b"ok\n")
    assert peer.recv(16) == b"ok\n"
    peer.close()
    assert poll_until(poller, ended(channel)) == [(b"", channel)]


# -- lines held in memory --------------------------------------------------------------


def test_lines_left_by_a_direct_read_are_reported_without_new_input(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel, peer = channel_pair(stack, buffering="line")
    poller.register(channel)
    peer.sendall(b"one\ntwo\n")
    wait_readable(channel.get_fd())

    assert channel.read() == b"one\n"
    result, elapsed = timed_poll(poller, WAIT)

    assert result == [(b"two\n", channel)]
    assert elapsed < WAIT / 2
    assert poller.poll(0.05) == []


def test_lines_left_in_a_test_channel_are_reported_without_new_input(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel = make_test_channel(stack, buffering="line")
    poller.register(channel)
    channel.put(b"one\ntwo\nthree\n")

    assert channel.read() == b"one\n"
    result, elapsed = timed_poll(poller, WAIT)

    assert result == [(b"two\n", channel), (b"three\n", channel)]
    assert elapsed < WAIT / 2


def test_lines_buffered_before_register_are_reported(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = make_test_channel(stack, buffering="line")
    channel.put(b"one\ntwo\n")
    assert channel.read() == b"one\n"

    poller.register(channel)
    result, elapsed = timed_poll(poller, WAIT)

    assert result == [(b"two\n", channel)]
    assert elapsed < WAIT / 2


# -- edges: foreign line channels, dropped lines, held output ----------------


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


# -- descriptors epoll cannot watch: regular files and devices --------------------------


def file_channel(stack: contextlib.ExitStack, tmp_path: Path, content: bytes, **options: str) -> PipeChannel:
    """A channel reading a regular file, as ``program < file`` gives stdin."""
    path = tmp_path / "input"
    path.write_bytes(content)
    return stack.enter_context(PipeChannel(os.open(path, os.O_RDONLY), **options))  # type: ignore[arg-type]


def test_a_regular_file_is_read_to_its_end_then_reported_once_and_forgotten(
    poller: Poller, stack: contextlib.ExitStack, tmp_path: Path
) -> None:
    content = random.Random(3).randbytes(300_000)
    channel = file_channel(stack, tmp_path, content)

    poller.register(channel)
    results = poll_until(poller, ended(channel))

    pieces = data_of(results, channel)
    assert b"".join(pieces) == content
    assert pieces.count(b"") == 1
    assert len(poller) == 0


def test_a_file_read_to_its_end_leaves_no_busy_loop(
    poller: Poller, stack: contextlib.ExitStack, tmp_path: Path
) -> None:
    channel = file_channel(stack, tmp_path, b"one line\n")
    idle, _peer = channel_pair(stack)
    poller.register(idle)
    poller.register(channel)
    poll_until(poller, ended(channel))

    result, waited = timed_poll(poller, 0.2)

    assert result == []
    assert waited >= 0.15


def test_a_regular_file_in_line_mode_gives_its_lines_then_the_last_piece(
    poller: Poller, stack: contextlib.ExitStack, tmp_path: Path
) -> None:
    channel = file_channel(stack, tmp_path, b"pear\napple\nfig", buffering="line")

    poller.register(channel)

    assert data_of(poll_until(poller, ended(channel)), channel) == [b"pear\n", b"apple\n", b"fig", b""]


def test_a_file_does_not_hold_up_the_other_channels(
    poller: Poller, stack: contextlib.ExitStack, tmp_path: Path
) -> None:
    channel = file_channel(stack, tmp_path, b"x" * (4 * MiB))
    other, peer = channel_pair(stack)
    poller.register(channel)
    poller.register(other)
    peer.sendall(b"hello")

    result = poll_until(poller, lambda results: bool(data_of(results, other)))

    assert data_of(result, other) == [b"hello"]
    assert sum(map(len, data_of(result, channel))) < 4 * MiB  # one read a poll: the file is not done yet


def test_dev_null_as_input_ends_at_once(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = stack.enter_context(PipeChannel(os.open(os.devnull, os.O_RDONLY)))

    poller.register(channel)

    assert poller.poll(WAIT) == [(b"", channel)]
    assert len(poller) == 0


def test_a_paused_file_is_not_read_and_the_poll_waits(
    poller: Poller, stack: contextlib.ExitStack, tmp_path: Path
) -> None:
    channel = file_channel(stack, tmp_path, b"later\n")
    poller.register(channel)
    poller.pause_reading(channel)

    result, waited = timed_poll(poller, 0.2)
    assert result == []
    assert waited >= 0.15

    poller.resume_reading(channel)
    assert data_of(poll_until(poller, ended(channel)), channel) == [b"later\n", b""]


class ShortWritePipeChannel(PipeChannel):
    """Hands the OS three bytes a call, as a disk that is nearly full does."""

    __slots__ = ()

    def _send(self, buffers: list[bytes | memoryview]) -> int:
        return super()._send([memoryview(buffers[0])[:3]])


def test_a_file_as_sink_is_written_in_full_even_a_few_bytes_a_call(
    poller: Poller, stack: contextlib.ExitStack, tmp_path: Path
) -> None:
    path = tmp_path / "output"
    faucet, feeder = os.pipe()
    stack.callback(os.close, feeder)
    channel = stack.enter_context(ShortWritePipeChannel(faucet, os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)))
    poller.register(channel)

    with turn_of(poller):
        channel.write(b"0123456789" * 10)
    poll_until(poller, lambda _results: channel.pending_output == 0)

    assert path.read_bytes() == b"0123456789" * 10


def test_a_device_read_and_written_on_one_descriptor_is_served_both_ways(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    fd = os.open("/dev/zero", os.O_RDWR)
    channel = stack.enter_context(ShortWritePipeChannel(fd, fd))
    poller.register(channel)

    with turn_of(poller):
        channel.write(b"x" * 10)
    results = poll_until(poller, lambda _results: channel.pending_output == 0)

    assert set(b"".join(data_of(results, channel))) == {0}  # read all along
    assert data_of(poller.poll(0), channel)  # and still read once the output is out


def test_a_full_disk_is_an_endpoint_closed_error_caused_by_the_os_error(stack: contextlib.ExitStack) -> None:
    channel = stack.enter_context(PipeChannel(sink=os.open("/dev/full", os.O_WRONLY)))

    with pytest.raises(EndpointClosedException) as end:
        channel.write(b"no room for this")

    assert isinstance(end.value.__cause__, OSError)
    assert end.value.__cause__.errno == errno.ENOSPC


def test_register_of_a_closed_descriptor_says_it_is_not_open(poller: Poller) -> None:
    class Stale(TestChannel):
        __slots__ = ()

        def get_fd(self) -> int:
            return 987

    with Stale() as channel, pytest.raises(ValueError, match="descriptor 987 is not open"):
        poller.register(channel)
