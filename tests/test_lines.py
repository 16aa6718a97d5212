"""Line mode on real descriptors: ``LineChannel`` and ``buffering='line'`` (SPEC §2, §3.4).

Every behaviour runs against six kinds of line channel: ``LineChannel`` over a
pipe, a socketpair and a ``TestChannel``, and the same three constructed with
``buffering='line'``.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_MAX_LINE_LENGTH,
    Channel,
    EndpointClosedException,
    LineChannel,
    LineTooLongError,
    PipeChannel,
    SocketChannel,
)
from channels.base import Buffer
from channels.poller import Poller
from channels.testing import TestChannel

from .helpers import WAIT, read_lines, read_to_end, wait_until


@dataclass
class Endpoint:
    """A line-mode channel and the test's side of it."""

    channel: Channel
    #: Make bytes readable by ``channel``.
    feed: Callable[[bytes], None]
    #: End ``channel``'s input, as a peer closing its side.
    end_input: Callable[[], None]
    #: What ``channel`` has written so far (and not yet taken).
    take_output: Callable[[], bytes]
    #: Cleanups for the test's side, run after the channel is closed.
    cleanups: list[Callable[[], None]] = field(default_factory=list)


MakeEndpoint = Callable[..., Endpoint]


def _read_available(fd: int) -> bytes:
    """Everything readable now from a non-blocking descriptor."""
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _pipe_endpoint(wrap: bool, max_line_length: int | None) -> Endpoint:
    inward_r, inward_w = os.pipe()
    outward_r, outward_w = os.pipe()
    os.set_blocking(outward_r, False)
    channel: Channel
    if wrap:
        channel = LineChannel(PipeChannel(inward_r, outward_w), max_line_length=max_line_length)
    else:
        channel = PipeChannel(inward_r, outward_w, buffering="line", max_line_length=max_line_length)
    open_fds = {inward_w}

    def feed(data: bytes) -> None:
        os.write(inward_w, data)

    def end_input() -> None:
        open_fds.discard(inward_w)
        os.close(inward_w)

    def close_ours() -> None:
        for fd in open_fds:
            os.close(fd)
        os.close(outward_r)

    return Endpoint(channel, feed, end_input, lambda: _read_available(outward_r), [close_ours])


def _socket_endpoint(wrap: bool, max_line_length: int | None) -> Endpoint:
    ours, peer = socket.socketpair()
    channel: Channel
    if wrap:
        channel = LineChannel(SocketChannel(ours), max_line_length=max_line_length)
    else:
        channel = SocketChannel(ours, buffering="line", max_line_length=max_line_length)

    def take_output() -> bytes:
        return _read_available(peer.fileno())

    peer.setblocking(False)
    return Endpoint(
        channel,
        peer.sendall,
        lambda: peer.shutdown(socket.SHUT_WR),
        take_output,
        [peer.close],
    )


def _test_channel_endpoint(wrap: bool, max_line_length: int | None) -> Endpoint:
    inner = TestChannel(buffering="bytes" if wrap else "line", max_line_length=max_line_length)
    channel: Channel = LineChannel(inner, max_line_length=max_line_length) if wrap else inner
    return Endpoint(channel, inner.put, inner.put_eof, inner.get)


_KINDS: dict[str, Callable[[bool, int | None], Endpoint]] = {
    "pipe": _pipe_endpoint,
    "socket": _socket_endpoint,
    "test": _test_channel_endpoint,
}


@pytest.fixture(
    params=[
        pytest.param((kind, wrap), id=f"{'LineChannel' if wrap else 'buffering=line'}-{kind}")
        for wrap in (True, False)
        for kind in _KINDS
    ]
)
def make_endpoint(request: pytest.FixtureRequest) -> Iterator[MakeEndpoint]:
    """A factory of line-mode endpoints of one kind; closes all it made."""
    kind, wrap = cast(tuple[str, bool], request.param)
    made: list[Endpoint] = []

    def make(max_line_length: int | None = DEFAULT_MAX_LINE_LENGTH) -> Endpoint:
        endpoint = _KINDS[kind](wrap, max_line_length)
        made.append(endpoint)
        return endpoint

    yield make
    for endpoint in made:
        endpoint.channel.close()
        for cleanup in endpoint.cleanups:
            cleanup()


@pytest.fixture
def endpoint(make_endpoint: MakeEndpoint) -> Endpoint:
    return make_endpoint()


def _is_readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


def _read_past_errors(channel: Channel, count: int) -> tuple[list[bytes], int]:
    """Read ``count`` lines, counting the ``LineTooLongError``s met on the way."""
    lines: list[bytes] = []
    errors = 0

    def got_all() -> bool:
        nonlocal errors
        try:
            line = channel.read()
        except LineTooLongError:
            errors += 1
            return False
        if line:
            lines.append(line)
        return len(lines) == count

    wait_until(got_all)
    return lines, errors


# -- reading lines --------------------------------------------------------------


def test_buffering_is_line(endpoint: Endpoint) -> None:
    assert endpoint.channel.buffering == "line"


def test_read_with_nothing_sent_returns_empty_bytes(endpoint: Endpoint) -> None:
    assert endpoint.channel.read() == b""


def test_idle_line_channels_keep_their_lines_apart() -> None:
    # Idle line channels start out sharing one empty splitter; data for one
    # must never show up in another.
    with TestChannel(buffering="line") as first, TestChannel(buffering="line") as second:
        first.put(b"one\npartial")
        assert read_lines(first, 1) == [b"one\n"]
        assert second.read() == b""
        second.put(b"two\n")
        assert read_lines(second, 1) == [b"two\n"]
        assert first.read() == b""
        first.put_eof()
        assert read_to_end(first) == [b"partial"]


def test_one_line_is_returned_whole(endpoint: Endpoint) -> None:
    endpoint.feed(b"hello\n")
    assert read_lines(endpoint.channel, 1) == [b"hello\n"]
    assert endpoint.channel.read() == b""


def test_partial_line_returns_empty_bytes_until_completed(endpoint: Endpoint) -> None:
    endpoint.feed(b"hel")
    assert endpoint.channel.read() == b""
    assert endpoint.channel.read() == b""
    endpoint.feed(b"lo\n")
    assert read_lines(endpoint.channel, 1) == [b"hello\n"]


def test_two_lines_in_one_chunk_are_returned_by_consecutive_reads(endpoint: Endpoint) -> None:
    endpoint.feed(b"one\ntwo\n")
    assert read_lines(endpoint.channel, 1) == [b"one\n"]
    assert endpoint.channel.read() == b"two\n"
    assert endpoint.channel.read() == b""


def test_complete_line_never_waits_while_the_descriptor_is_quiet(endpoint: Endpoint) -> None:
    # The original library read b'a\nb\n' at once, returned b'a\n' and kept
    # b'b\n' where poll() could not see it: a poll loop then waited forever.
    endpoint.feed(b"a\nb\n")
    assert read_lines(endpoint.channel, 1) == [b"a\n"]
    assert not _is_readable(endpoint.channel.get_fd())
    assert endpoint.channel.read() == b"b\n"


def test_carriage_return_does_not_end_a_line(endpoint: Endpoint) -> None:
    endpoint.feed(b"a\rb\r\n")
    assert read_lines(endpoint.channel, 1) == [b"a\rb\r\n"]


def test_empty_line_is_returned_as_a_bare_newline(endpoint: Endpoint) -> None:
    endpoint.feed(b"\n\n")
    assert read_lines(endpoint.channel, 2) == [b"\n", b"\n"]


# -- end of input ---------------------------------------------------------------


def test_after_peer_ends_remaining_lines_then_unterminated_piece_then_closed(endpoint: Endpoint) -> None:
    endpoint.feed(b"one\ntwo\nthree")
    endpoint.end_input()
    assert read_to_end(endpoint.channel) == [b"one\n", b"two\n", b"three"]


def test_after_peer_ends_every_later_read_raises(endpoint: Endpoint) -> None:
    endpoint.feed(b"last\n")
    endpoint.end_input()
    assert read_to_end(endpoint.channel) == [b"last\n"]
    for _ in range(3):
        with pytest.raises(EndpointClosedException):
            endpoint.channel.read()


def test_input_ending_in_newline_gives_no_empty_last_piece(endpoint: Endpoint) -> None:
    endpoint.feed(b"done\n")
    endpoint.end_input()
    assert read_to_end(endpoint.channel) == [b"done\n"]


def test_input_ending_with_nothing_sent_gives_no_lines(endpoint: Endpoint) -> None:
    endpoint.end_input()
    assert read_to_end(endpoint.channel) == []


# -- close --------------------------------------------------------------------


def test_lines_buffered_before_close_are_still_returned(endpoint: Endpoint) -> None:
    # The original library's own tests relied on exactly this sequence.
    endpoint.feed(b"\nhello\nworld")
    assert read_lines(endpoint.channel, 1) == [b"\n"]
    endpoint.channel.close()
    assert endpoint.channel.read() == b"hello\n"
    assert endpoint.channel.read() == b"world"
    with pytest.raises(EndpointClosedException):
        endpoint.channel.read()
    with pytest.raises(EndpointClosedException):
        endpoint.channel.read()


def test_read_after_close_with_nothing_buffered_raises(endpoint: Endpoint) -> None:
    endpoint.channel.close()
    with pytest.raises(EndpointClosedException):
        endpoint.channel.read()


def test_write_after_close_raises_endpoint_closed(endpoint: Endpoint) -> None:
    endpoint.channel.close()
    with pytest.raises(EndpointClosedException):
        endpoint.channel.write(b"late\n")


def test_close_is_idempotent(endpoint: Endpoint) -> None:
    endpoint.channel.close()
    endpoint.channel.close()
    assert endpoint.channel.closed


# -- writing --------------------------------------------------------------------


def test_write_reaches_the_peer(endpoint: Endpoint) -> None:
    endpoint.channel.write(b"ping\n", b"pong\n")
    received = bytearray()

    def arrived() -> bool:
        received.extend(endpoint.take_output())
        return received == b"ping\npong\n"

    wait_until(arrived)


# -- overlong lines -----------------------------------------------------------


def test_overlong_line_raises_once_then_next_line_follows(make_endpoint: MakeEndpoint) -> None:
    endpoint = make_endpoint(max_line_length=8)
    endpoint.feed(b"short\n" + b"x" * 9 + b"\nnext\n")
    assert read_lines(endpoint.channel, 1) == [b"short\n"]
    with pytest.raises(LineTooLongError):
        endpoint.channel.read()
    assert endpoint.channel.read() == b"next\n"


def test_overlong_line_in_pieces_raises_once_then_next_line_follows(make_endpoint: MakeEndpoint) -> None:
    endpoint = make_endpoint(max_line_length=8)
    errors = 0
    for piece in (b"abc", b"defgh", b"ijk", b"lmn"):
        endpoint.feed(piece)
        try:
            assert endpoint.channel.read() == b""
        except LineTooLongError:
            errors += 1
    endpoint.feed(b"\nnext\n")
    lines, later_errors = _read_past_errors(endpoint.channel, 1)
    assert (errors + later_errors, lines) == (1, [b"next\n"])


def test_line_of_exactly_max_line_length_passes(make_endpoint: MakeEndpoint) -> None:
    endpoint = make_endpoint(max_line_length=8)
    endpoint.feed(b"12345678\n")
    assert read_lines(endpoint.channel, 1) == [b"12345678\n"]


def test_overlong_unterminated_last_piece_raises_instead_of_being_returned(make_endpoint: MakeEndpoint) -> None:
    endpoint = make_endpoint(max_line_length=4)
    endpoint.feed(b"ok\nabcdefgh")
    endpoint.end_input()
    assert read_lines(endpoint.channel, 1) == [b"ok\n"]
    with pytest.raises(LineTooLongError):
        read_lines(endpoint.channel, 1)
    assert read_to_end(endpoint.channel) == []


# -- the buffering keyword ------------------------------------------------------


def test_buffering_none_means_bytes() -> None:
    faucet, sink = os.pipe()
    ours, peer = socket.socketpair()
    channels = [PipeChannel(faucet, buffering=None), SocketChannel(ours, buffering=None), TestChannel(buffering=None)]
    try:
        assert [channel.buffering for channel in channels] == ["bytes", "bytes", "bytes"]
    finally:
        for channel in channels:
            channel.close()
        os.close(sink)
        peer.close()


def test_buffering_defaults_to_bytes() -> None:
    with TestChannel() as channel:
        assert channel.buffering == "bytes"


@pytest.mark.parametrize("buffering", ["lines", "LINE", "", "none", 1])
def test_invalid_buffering_raises_value_error(buffering: object) -> None:
    faucet, sink = os.pipe()
    ours, peer = socket.socketpair()
    try:
        with pytest.raises(ValueError, match="buffering"):
            PipeChannel(faucet, buffering=cast(str, buffering))
        with pytest.raises(ValueError, match="buffering"):
            SocketChannel(ours, buffering=cast(str, buffering))
        with pytest.raises(ValueError, match="buffering"):
            TestChannel(buffering=cast(str, buffering))
    finally:
        os.close(faucet)
        os.close(sink)
        ours.close()
        peer.close()


@pytest.mark.parametrize("max_line_length", [0, -1])
def test_invalid_max_line_length_raises_value_error(max_line_length: int) -> None:
    with TestChannel() as inner:
        with pytest.raises(ValueError, match="max_line_length"):
            LineChannel(inner, max_line_length=max_line_length)
        with pytest.raises(ValueError, match="max_line_length"):
            TestChannel(buffering="line", max_line_length=max_line_length)


def test_max_line_length_none_on_a_channel_means_unbounded() -> None:
    line = b"x" * (DEFAULT_MAX_LINE_LENGTH + 10) + b"\n"
    channel = TestChannel(buffering="line", max_line_length=None)
    try:
        channel.put(line)
        channel.put_eof()
        assert read_to_end(channel) == [line]
    finally:
        channel.close()


def test_default_max_line_length_applies_to_line_channels() -> None:
    channel = TestChannel(buffering="line")
    try:
        channel.put(b"x" * (DEFAULT_MAX_LINE_LENGTH + 1) + b"\nnext\n")
        assert _read_past_errors(channel, 1) == ([b"next\n"], 1)
    finally:
        channel.close()


# -- LineChannel delegates to the wrapped channel ---------------------------------


@pytest.fixture
def socket_line_channel() -> Iterator[tuple[LineChannel, SocketChannel, socket.socket]]:
    ours, peer = socket.socketpair()
    inner = SocketChannel(ours)
    outer = LineChannel(inner)
    yield outer, inner, peer
    outer.close()
    peer.close()


def test_line_channel_exposes_the_wrapped_channel(
    socket_line_channel: tuple[LineChannel, SocketChannel, socket.socket],
) -> None:
    outer, inner, _ = socket_line_channel
    assert outer.channel is inner


def test_line_channel_get_fd_is_the_wrapped_channels(
    socket_line_channel: tuple[LineChannel, SocketChannel, socket.socket],
) -> None:
    outer, inner, _ = socket_line_channel
    assert outer.get_fd() == inner.get_fd()


def test_line_channel_write_goes_through_the_wrapped_channel(
    socket_line_channel: tuple[LineChannel, SocketChannel, socket.socket],
) -> None:
    outer, _, peer = socket_line_channel
    outer.write(b"hello ", bytearray(b"world\n"))
    peer.settimeout(10)
    assert peer.recv(100) == b"hello world\n"


def test_line_channel_flush_sends_the_wrapped_channels_pending_output(
    socket_line_channel: tuple[LineChannel, SocketChannel, socket.socket],
) -> None:
    outer, inner, peer = socket_line_channel
    payload = bytes(range(256)) * (16 * 1024)  # 4 MiB: more than the socket takes at once
    outer.write(payload)
    assert outer.pending_output == inner.pending_output > 0
    assert outer.flush(timeout=0) is False
    peer.setblocking(False)
    received = bytearray()

    def drained() -> bool:
        with contextlib.suppress(BlockingIOError):
            received.extend(peer.recv(1 << 20))
        return outer.flush(timeout=0)

    wait_until(drained)
    assert outer.pending_output == inner.pending_output == 0
    received += _read_available(peer.fileno())
    assert bytes(received) == payload


def test_line_channel_close_closes_the_wrapped_channel(
    socket_line_channel: tuple[LineChannel, SocketChannel, socket.socket],
) -> None:
    outer, inner, peer = socket_line_channel
    outer.close()
    assert inner.closed
    peer.settimeout(10)
    assert peer.recv(10) == b""  # the peer sees the end
    with pytest.raises(EndpointClosedException):
        outer.get_fd()


def test_line_channel_close_delivers_pending_output(
    socket_line_channel: tuple[LineChannel, SocketChannel, socket.socket],
) -> None:
    outer, _, peer = socket_line_channel
    outer.write(b"bye\n")
    outer.close()
    peer.settimeout(10)
    assert peer.recv(100) == b"bye\n"


def test_line_channel_abort_closes_the_wrapped_channel(
    socket_line_channel: tuple[LineChannel, SocketChannel, socket.socket],
) -> None:
    outer, inner, _ = socket_line_channel
    outer.abort()
    assert outer.closed and inner.closed


class LoggingSocketChannel(SocketChannel):
    """A user's subclass that overrides ``write()`` and keeps the base buffering."""

    __slots__ = ("log",)

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self.log: list[int] = []

    def write(self, *data: Buffer) -> None:
        self.log.append(sum(len(chunk) for chunk in data))
        super().write(*data)


@pytest.fixture
def subclass_line_channel() -> Iterator[tuple[LineChannel, LoggingSocketChannel, socket.socket]]:
    ours, peer = socket.socketpair()
    inner = LoggingSocketChannel(ours)
    outer = LineChannel(inner)
    yield outer, inner, peer
    outer.abort()
    peer.close()


def test_line_channel_flush_sends_pending_output_of_a_subclass_that_overrides_write(
    subclass_line_channel: tuple[LineChannel, LoggingSocketChannel, socket.socket],
) -> None:
    outer, inner, peer = subclass_line_channel
    payload = b"y" * (4 * 1024 * 1024)
    outer.write(payload)
    assert inner.log == [len(payload)]
    assert outer.pending_output > 0
    assert outer.flush(timeout=0) is False
    peer.setblocking(False)
    received = bytearray()

    def drained() -> bool:
        with contextlib.suppress(BlockingIOError):
            received.extend(peer.recv(1 << 20))
        return outer.flush(timeout=0)

    wait_until(drained)
    assert outer.pending_output == 0
    received += _read_available(peer.fileno())
    assert len(received) == len(payload)


def test_line_channel_abort_of_a_subclass_that_overrides_write_drops_output_at_once(
    subclass_line_channel: tuple[LineChannel, LoggingSocketChannel, socket.socket],
    caplog: pytest.LogCaptureFixture,
) -> None:
    outer, inner, _ = subclass_line_channel
    outer.write(b"z" * (4 * 1024 * 1024))  # far more than the peer, not reading, takes
    assert outer.pending_output > 0
    started = time.monotonic()
    outer.abort()
    # close() would linger DEFAULT_CLOSE_TIMEOUT seconds for the peer, then warn.
    assert time.monotonic() - started < DEFAULT_CLOSE_TIMEOUT / 2
    assert inner.closed
    assert "closing dropped" not in caplog.text


class ForeignChannel:
    """A minimal duck-typed channel, as code written for 0.1.1 might bring."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.written: list[bytes] = []
        self.closed = False

    def read(self) -> bytes:
        try:
            data = self.sock.recv(4096)
        except BlockingIOError:
            return b""
        if not data:
            raise EndpointClosedException("peer closed")
        return data

    def write(self, *data: bytes) -> None:
        self.written.extend(data)
        self.sock.sendall(b"".join(data))

    def close(self) -> None:
        self.closed = True
        self.sock.close()

    def get_fd(self) -> int:
        return self.sock.fileno()


@pytest.fixture
def foreign_line_channel() -> Iterator[tuple[LineChannel, ForeignChannel, socket.socket]]:
    ours, peer = socket.socketpair()
    foreign = ForeignChannel(ours)
    # LineChannel documents any object with read/write/close/get_fd, but is
    # annotated as taking a Channel.
    outer = LineChannel(cast(Channel, foreign))
    yield outer, foreign, peer
    outer.close()
    peer.close()


def test_line_channel_over_foreign_channel_reads_lines_then_ends(
    foreign_line_channel: tuple[LineChannel, ForeignChannel, socket.socket],
) -> None:
    outer, _, peer = foreign_line_channel
    peer.sendall(b"one\ntwo\nthr")
    assert read_lines(outer, 2) == [b"one\n", b"two\n"]
    peer.sendall(b"ee")
    peer.shutdown(socket.SHUT_WR)
    assert read_to_end(outer) == [b"three"]


def test_line_channel_over_foreign_channel_delegates_write_and_get_fd(
    foreign_line_channel: tuple[LineChannel, ForeignChannel, socket.socket],
) -> None:
    outer, foreign, peer = foreign_line_channel
    assert outer.get_fd() == foreign.get_fd()
    outer.write(b"hi\n")
    assert foreign.written == [b"hi\n"]
    peer.settimeout(10)
    assert peer.recv(100) == b"hi\n"
    assert outer.flush(timeout=0) is True


def test_line_channel_over_foreign_channel_delegates_close(
    foreign_line_channel: tuple[LineChannel, ForeignChannel, socket.socket],
) -> None:
    outer, foreign, _ = foreign_line_channel
    outer.close()
    assert foreign.closed
    with pytest.raises(EndpointClosedException):
        outer.write(b"late\n")


# -- any stream, any chunking, through a real socket --------------------------------


def _model_lines(data: bytes) -> list[bytes]:
    """``data`` cut after each b'\\n' only, the unterminated rest last (if any)."""
    pieces = [piece + b"\n" for piece in data.split(b"\n")]
    pieces[-1] = pieces[-1][:-1]
    return [piece for piece in pieces if piece]


_PIECES = [b"a", b"bc", b"\n", b"\r", b"\r\n", b"\n\n", b"xyz"]


@settings(max_examples=50, deadline=None)
@given(chunks=st.lists(st.lists(st.sampled_from(_PIECES), max_size=8).map(b"".join), max_size=12))
def test_socket_line_mode_matches_the_splitter_for_any_chunking(chunks: list[bytes]) -> None:
    ours, peer = socket.socketpair()
    try:
        with SocketChannel(ours, buffering="line") as channel:
            lines: list[bytes] = []
            for chunk in chunks:
                peer.sendall(chunk)
                # A read between chunks sees the stream cut where it was sent.
                while line := channel.read():
                    lines.append(line)
            peer.shutdown(socket.SHUT_WR)
            lines += read_to_end(channel)
    finally:
        peer.close()
    assert lines == _model_lines(b"".join(chunks))


# -- the mode set by a subclass ---------------------------------------------------


def test_setting_buffering_to_line_makes_read_return_lines() -> None:
    with TestChannel() as channel:
        channel.buffering = "line"
        channel.put(b"one\ntwo\n")

        assert channel.buffering == "line"
        assert channel.read() == b"one\n"


def test_setting_buffering_to_bytes_with_a_partial_line_buffered_is_refused() -> None:
    with TestChannel(buffering="line") as channel:
        channel.put(b"half a li")
        assert channel.read() == b""

        with pytest.raises(ValueError, match="9 bytes of lines not read yet"):
            channel.buffering = "bytes"
        assert channel.buffering == "line"


def test_setting_buffering_to_bytes_when_nothing_is_buffered_reads_bytes() -> None:
    with TestChannel(buffering="line") as channel:
        channel.buffering = None
        channel.put(b"no\nlines")

        assert channel.buffering == "bytes"
        assert channel.read() == b"no\nlines"


def test_setting_buffering_to_another_word_is_refused() -> None:
    with TestChannel() as channel, pytest.raises(ValueError, match="buffering must be 'line', 'bytes' or None"):
        channel.buffering = "lines"


def test_setting_closed_is_what_closed_then_says() -> None:
    with TestChannel() as channel:
        channel.closed = True
        assert channel.closed
        channel.closed = False
        assert not channel.closed


def test_a_registered_line_channel_s_output_the_peer_is_slow_to_take_is_sent_by_polls() -> None:
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    data = os.urandom(8 * 1024 * 1024)
    with theirs, LineChannel(SocketChannel(ours)) as channel, Poller() as poller:
        poller.register(channel)
        channel.write(data)
        assert channel.pending_output > 0
        received = bytearray()
        deadline = time.monotonic() + WAIT
        while len(received) < len(data):
            assert time.monotonic() < deadline, f"only {len(received)} bytes arrived"
            poller.poll(0.01)
            with contextlib.suppress(BlockingIOError):
                received += theirs.recv(1 << 20)
        assert received == data
