"""The ``Channel`` contract, checked against every kind of channel.

In the manner of CPython's ``test_selectors``: the contract is written once,
as mixins of tests, and each kind of channel runs them through a factory that
returns a connected pair: the channel under test, and a *peer* the test acts
as. The mixins stack by what the peer can do:

``ChannelContract``
    Every kind. The peer can only receive what the channel wrote (for a
    ``cat`` child that means reading the echo back through the channel).
``PeerContract``
    The peer also sends bytes to the channel and ends its output.
``StreamContract``
    The peer is a real descriptor that can stop reading, so the kernel
    buffer fills and output has to wait in the channel; it can also vanish.
``SocketContract``
    A vanished socket peer resets the connection.
"""

from __future__ import annotations

import errno
import gc
import hashlib
import logging
import os
import random
import select
import socket
import struct
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import count
from pathlib import Path
from typing import ClassVar, Generic, TypeVar

import pytest

from channels import (
    DEFAULT_MAX_PENDING,
    Channel,
    ChannelError,
    EndpointClosedException,
    PipeChannel,
    ProcessChannel,
    SocketChannel,
    WriteBufferFullError,
)
from channels.base import Buffer
from channels.testing import TestChannel
from tests.helpers import WAIT, open_fd_count, read_exactly, read_to_end, wait_until

KIB = 1024
MIB = 1024 * KIB

#: Bytes a slow peer takes per turn of a drain loop.
SLOW_READ = 64 * KIB


def pattern(size: int, seed: int = 0) -> bytes:
    """``size`` reproducible pseudo-random bytes: misordered data shows."""
    return random.Random(seed).randbytes(size)


def _wait_for(fd: int, events: int, timeout: float) -> bool:
    """Whether ``fd`` is ready for ``events`` within ``timeout`` seconds."""
    poller = select.poll()
    poller.register(fd, events)
    return bool(poller.poll(max(0, int(timeout * 1000))))


# -- peers -------------------------------------------------------------------


class Peer(ABC):
    """The far end of a channel under test, driven by the test."""

    @abstractmethod
    def receive(self, size: int, timeout: float = WAIT) -> bytes:
        """Wait for exactly ``size`` bytes written by the channel."""

    @abstractmethod
    def close(self) -> None:
        """Free whatever the peer holds. Idempotent."""


class DuplexPeer(Peer):
    """A peer that can also send to the channel and end its output."""

    @abstractmethod
    def receive_some(self, limit: int = 256 * KIB) -> bytes | None:
        """Up to ``limit`` bytes written by the channel, ``b''`` if none are
        there now, ``None`` once the channel has closed its side."""

    @abstractmethod
    def send_now(self, data: bytes) -> int:
        """Send as much of ``data`` as fits now, without waiting; how much."""

    @abstractmethod
    def end_output(self) -> None:
        """Let the channel's read side reach end of file."""

    def wait_readable(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for output of the channel."""
        time.sleep(min(timeout, 0.001))

    def send(self, data: bytes, timeout: float = WAIT) -> None:
        """Send all of ``data`` (small enough for the kernel to hold)."""
        deadline = time.monotonic() + timeout
        view = memoryview(data)
        while view:
            if time.monotonic() > deadline:
                raise AssertionError(f"the channel did not take {len(view)} bytes within {timeout}s")
            taken = self.send_now(bytes(view))
            view = view[taken:]
            if not taken:
                time.sleep(0.001)

    def receive(self, size: int, timeout: float = WAIT) -> bytes:
        chunks: list[bytes] = []
        got = 0
        deadline = time.monotonic() + timeout
        while got < size:
            data = self.receive_some(size - got)
            if data is None:
                raise AssertionError(f"the channel closed after {got} of {size} bytes")
            if data:
                chunks.append(data)
                got += len(data)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"only {got} of {size} bytes arrived within {timeout}s")
            self.wait_readable(remaining)
        return b"".join(chunks)

    def receive_available(self) -> bytes:
        """Everything the channel wrote that is there now."""
        chunks: list[bytes] = []
        while data := self.receive_some():
            chunks.append(data)
        return b"".join(chunks)

    def receive_to_end(self, timeout: float = WAIT) -> bytes:
        """Everything the channel writes until it closes its side."""
        chunks: list[bytes] = []
        deadline = time.monotonic() + timeout
        while (data := self.receive_some()) is not None:
            if data:
                chunks.append(data)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"the channel did not close its side within {timeout}s")
            self.wait_readable(remaining)
        return b"".join(chunks)


class StreamPeer(DuplexPeer):
    """A peer over real descriptors: it can stop reading, and vanish."""

    @abstractmethod
    def vanish(self) -> None:
        """Disappear at once, as a crashed process does."""


class PipePeer(StreamPeer):
    """Reads the channel's sink through ``inbound``, feeds its faucet through ``outbound``."""

    def __init__(self, inbound: int, outbound: int) -> None:
        self._inbound = inbound
        self._outbound = outbound
        os.set_blocking(inbound, False)
        os.set_blocking(outbound, False)

    def receive_some(self, limit: int = 256 * KIB) -> bytes | None:
        try:
            return os.read(self._inbound, limit) or None
        except BlockingIOError:
            return b""

    def wait_readable(self, timeout: float) -> None:
        _wait_for(self._inbound, select.POLLIN, min(timeout, 0.1))

    def send_now(self, data: bytes) -> int:
        try:
            return os.write(self._outbound, data)
        except BlockingIOError:
            return 0

    def end_output(self) -> None:
        self._outbound = _close_fd(self._outbound)

    def vanish(self) -> None:
        self.close()

    def close(self) -> None:
        self._inbound = _close_fd(self._inbound)
        self._outbound = _close_fd(self._outbound)


def _close_fd(fd: int) -> int:
    if fd >= 0:
        os.close(fd)
    return -1


class SocketPeer(StreamPeer):
    """The other end of a connected stream socket."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock

    def receive_some(self, limit: int = 256 * KIB) -> bytes | None:
        try:
            return self.sock.recv(limit) or None
        except BlockingIOError:
            return b""

    def wait_readable(self, timeout: float) -> None:
        _wait_for(self.sock.fileno(), select.POLLIN, min(timeout, 0.1))

    def send_now(self, data: bytes) -> int:
        try:
            return self.sock.send(data)
        except BlockingIOError:
            return 0

    def end_output(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)

    def vanish(self) -> None:
        # Linger zero: close with a reset (RST), not an orderly FIN.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self) -> None:
        self.sock.close()


class PutGetPeer(DuplexPeer):
    """The test side of a ``TestChannel``: ``put()`` and ``get()``."""

    def __init__(self, channel: TestChannel) -> None:
        self._channel = channel

    def receive_some(self, limit: int = 256 * KIB) -> bytes | None:
        # get() hands over everything at once; the limit only matters to
        # peers over real descriptors.
        data = self._channel.get()
        if not data and self._channel.closed:
            return None
        return data

    def send_now(self, data: bytes) -> int:
        self._channel.put(data)
        return len(data)

    def end_output(self) -> None:
        self._channel.put_eof()

    def close(self) -> None:
        pass


class EchoPeer(Peer):
    """A ``cat`` child: what the channel writes comes back to the channel."""

    def __init__(self, channel: Channel, process: subprocess.Popen[bytes]) -> None:
        self._channel = channel
        self.process = process

    def receive(self, size: int, timeout: float = WAIT) -> bytes:
        return read_exactly(self._channel, size, timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=WAIT)


# -- the contract --------------------------------------------------------------

PeerT = TypeVar("PeerT", bound=Peer)
DuplexT = TypeVar("DuplexT", bound=DuplexPeer)

WRAPPERS: list[Callable[[bytearray], Buffer]] = [
    lambda buffer: buffer,
    memoryview,
    lambda buffer: memoryview(buffer).toreadonly(),
]
WRAPPER_IDS = ["bytearray", "memoryview", "readonly-memoryview"]


class ChannelContract(Generic[PeerT]):
    """What every channel promises, whatever its descriptors."""

    #: Pairs the leak test opens and closes.
    leak_rounds: ClassVar[int] = 100

    def open_pair(self, workdir: Path, max_pending: int) -> tuple[Channel, PeerT]:
        """A channel connected to a fresh peer."""
        raise NotImplementedError

    @pytest.fixture
    def workdir(self, tmp_path_factory: pytest.TempPathFactory) -> Path:
        # Short, unlike tmp_path: a Unix socket path holds at most 107 bytes.
        return tmp_path_factory.mktemp("ch")

    @pytest.fixture
    def make_pair(self, workdir: Path) -> Iterator[Callable[[int], tuple[Channel, PeerT]]]:
        opened: list[tuple[Channel, PeerT]] = []

        def make(max_pending: int) -> tuple[Channel, PeerT]:
            pair = self.open_pair(workdir, max_pending)
            opened.append(pair)
            return pair

        yield make
        for channel, peer in reversed(opened):
            channel.abort()
            peer.close()

    @pytest.fixture
    def pair(self, make_pair: Callable[[int], tuple[Channel, PeerT]]) -> tuple[Channel, PeerT]:
        return make_pair(DEFAULT_MAX_PENDING)

    def test_read_returns_empty_bytes_when_nothing_is_available(self, pair: tuple[Channel, PeerT]) -> None:
        channel, _ = pair
        start = time.monotonic()
        for _ in range(100):
            assert channel.read() == b""
        assert time.monotonic() - start < WAIT  # never blocks

    def test_write_sends_the_bytes(self, pair: tuple[Channel, PeerT]) -> None:
        channel, peer = pair
        channel.write(b"hello")
        assert peer.receive(5) == b"hello"

    def test_write_sends_several_chunks_in_order(self, pair: tuple[Channel, PeerT]) -> None:
        channel, peer = pair
        channel.write(b"one ", b"two ", b"three")
        assert peer.receive(13) == b"one two three"

    def test_successive_writes_arrive_in_order(self, pair: tuple[Channel, PeerT]) -> None:
        channel, peer = pair
        for number in range(100):
            channel.write(b"%03d," % number)
        assert peer.receive(400) == b"".join(b"%03d," % number for number in range(100))

    def test_a_channel_used_on_its_own_sends_at_once(self, pair: tuple[Channel, PeerT]) -> None:
        channel, _ = pair
        channel.write(b"small")
        assert channel.pending_output == 0

    def test_empty_write_is_a_no_op(self, pair: tuple[Channel, PeerT]) -> None:
        channel, peer = pair
        channel.write()
        channel.write(b"")
        channel.write(b"", bytearray(), memoryview(b""))
        assert channel.pending_output == 0
        channel.write(b"x")
        assert peer.receive(1) == b"x"

    def test_write_of_text_raises_type_error_naming_bytes(self, pair: tuple[Channel, PeerT]) -> None:
        channel, _ = pair
        with pytest.raises(TypeError, match="bytes"):
            channel.write("text")  # type: ignore[arg-type]

    def test_write_with_text_among_the_chunks_queues_none_of_them(self, pair: tuple[Channel, PeerT]) -> None:
        channel, peer = pair
        with pytest.raises(TypeError, match="bytes"):
            channel.write(b"before ", "text", b" after")  # type: ignore[arg-type]
        assert channel.pending_output == 0
        channel.write(b"next")
        assert peer.receive(4) == b"next"

    def test_write_of_an_int_raises_type_error(self, pair: tuple[Channel, PeerT]) -> None:
        channel, peer = pair
        with pytest.raises(TypeError):
            channel.write(123)  # type: ignore[arg-type]
        channel.write(b"next")
        assert peer.receive(4) == b"next"

    def test_bytearray_and_memoryview_are_accepted(self, pair: tuple[Channel, PeerT]) -> None:
        channel, peer = pair
        channel.write(bytearray(b"ab"), memoryview(b"cd"), memoryview(bytearray(b"xefx"))[1:3])
        assert peer.receive(6) == b"abcdef"

    @pytest.mark.parametrize("wrap", WRAPPERS, ids=WRAPPER_IDS)
    def test_changing_a_written_bytearray_does_not_change_what_is_sent(
        self, pair: tuple[Channel, PeerT], wrap: Callable[[bytearray], Buffer]
    ) -> None:
        channel, peer = pair
        buffer = bytearray(b"original")
        channel.write(wrap(buffer))
        buffer[:] = b"CHANGED!"
        assert peer.receive(8) == b"original"

    def test_flush_with_nothing_pending_returns_true(self, pair: tuple[Channel, PeerT]) -> None:
        channel, _ = pair
        assert channel.flush() is True
        assert channel.flush(timeout=0) is True

    def test_buffering_defaults_to_bytes(self, pair: tuple[Channel, PeerT]) -> None:
        channel, _ = pair
        assert channel.buffering == "bytes"

    def test_closed_is_false_while_open(self, pair: tuple[Channel, PeerT]) -> None:
        channel, _ = pair
        assert channel.closed is False

    def test_closed_is_true_after_close(self, pair: tuple[Channel, PeerT]) -> None:
        channel, _ = pair
        channel.close()
        assert channel.closed is True

    def test_closed_is_true_after_abort(self, pair: tuple[Channel, PeerT]) -> None:
        channel, _ = pair
        channel.abort()
        assert channel.closed is True

    def test_close_is_idempotent(self, pair: tuple[Channel, PeerT]) -> None:
        channel, _ = pair
        channel.close()
        channel.close()
        channel.abort()
        assert channel.closed

    def test_abort_is_idempotent(self, pair: tuple[Channel, PeerT]) -> None:
        channel, _ = pair
        channel.abort()
        channel.abort()
        channel.close()
        assert channel.closed

    def test_leaving_a_with_block_closes_the_channel(self, pair: tuple[Channel, PeerT]) -> None:
        channel, _ = pair
        with channel as entered:
            assert entered is channel
        assert channel.closed

    def test_read_after_close_raises_endpoint_closed(self, pair: tuple[Channel, PeerT]) -> None:
        channel, _ = pair
        channel.close()
        with pytest.raises(EndpointClosedException):
            channel.read()
        with pytest.raises(EndpointClosedException):
            channel.read()

    def test_read_after_abort_raises_endpoint_closed(self, pair: tuple[Channel, PeerT]) -> None:
        channel, _ = pair
        channel.abort()
        with pytest.raises(EndpointClosedException):
            channel.read()

    def test_write_after_close_raises_endpoint_closed(self, pair: tuple[Channel, PeerT]) -> None:
        channel, _ = pair
        channel.close()
        with pytest.raises(EndpointClosedException):
            channel.write(b"late")

    def test_write_after_abort_raises_endpoint_closed(self, pair: tuple[Channel, PeerT]) -> None:
        channel, _ = pair
        channel.abort()
        with pytest.raises(EndpointClosedException):
            channel.write(b"late")

    def test_flush_after_close_raises_endpoint_closed(self, pair: tuple[Channel, PeerT]) -> None:
        channel, _ = pair
        channel.close()
        with pytest.raises(EndpointClosedException):
            channel.flush()

    def test_get_fd_after_close_raises_endpoint_closed(self, pair: tuple[Channel, PeerT]) -> None:
        channel, _ = pair
        channel.close()
        with pytest.raises(EndpointClosedException):
            channel.get_fd()

    def test_opening_and_closing_many_channels_leaks_no_descriptors(self, workdir: Path) -> None:
        before = open_fd_count()
        for _ in range(self.leak_rounds):
            channel, peer = self.open_pair(workdir, DEFAULT_MAX_PENDING)
            try:
                channel.write(b"ping")
                assert peer.receive(4) == b"ping"
            finally:
                channel.close()
                peer.close()
        assert open_fd_count() == before


class PeerContract(ChannelContract[DuplexT]):
    """What a channel promises about the bytes its peer sends."""

    def test_read_returns_the_data_that_arrived(self, pair: tuple[Channel, DuplexT]) -> None:
        channel, peer = pair
        peer.send(b"hello")
        assert read_exactly(channel, 5) == b"hello"

    def test_read_returns_empty_bytes_once_the_arrived_data_was_read(self, pair: tuple[Channel, DuplexT]) -> None:
        channel, peer = pair
        peer.send(b"hello")
        read_exactly(channel, 5)
        assert channel.read() == b""

    def test_read_returns_everything_the_peer_sent_in_order(self, pair: tuple[Channel, DuplexT]) -> None:
        channel, peer = pair
        data = pattern(4 * MIB)
        received = bytearray()
        sent = 0
        deadline = time.monotonic() + WAIT
        while len(received) < len(data):
            assert time.monotonic() < deadline, f"{len(received)} of {len(data)} bytes arrived"
            if sent < len(data):
                sent += peer.send_now(data[sent : sent + 256 * KIB])
            chunk = channel.read()
            received += chunk
            if not chunk:
                time.sleep(0.001)
        assert received == data

    def test_get_fd_becomes_readable_when_data_arrives(self, pair: tuple[Channel, DuplexT]) -> None:
        channel, peer = pair
        assert not _wait_for(channel.get_fd(), select.POLLIN, 0)
        peer.send(b"wake")
        assert _wait_for(channel.get_fd(), select.POLLIN, WAIT)

    def test_data_sent_before_the_end_is_read_before_endpoint_closed(self, pair: tuple[Channel, DuplexT]) -> None:
        channel, peer = pair
        peer.send(b"last words")
        peer.end_output()
        assert b"".join(read_to_end(channel)) == b"last words"

    def test_every_read_after_the_end_raises_endpoint_closed(self, pair: tuple[Channel, DuplexT]) -> None:
        channel, peer = pair
        peer.end_output()
        read_to_end(channel)
        for _ in range(3):
            with pytest.raises(EndpointClosedException):
                channel.read()

    def test_write_still_works_after_the_peer_ended_its_output(self, pair: tuple[Channel, DuplexT]) -> None:
        channel, peer = pair
        peer.end_output()
        read_to_end(channel)
        channel.write(b"reply")
        assert peer.receive(5) == b"reply"

    def test_read_after_close_raises_even_with_unread_data(self, pair: tuple[Channel, DuplexT]) -> None:
        channel, peer = pair
        peer.send(b"unread")
        channel.close()
        with pytest.raises(EndpointClosedException):
            channel.read()

    def test_close_delivers_what_was_written(self, pair: tuple[Channel, DuplexT]) -> None:
        channel, peer = pair
        channel.write(b"goodbye")
        channel.close()
        assert peer.receive_to_end() == b"goodbye"


class StreamContract(PeerContract[StreamPeer]):
    """What a channel promises when the kernel buffer fills: output waits, in order."""

    #: Descriptors the channel itself owns.
    owned_fds: ClassVar[int] = 1
    #: A write this large does not fit in the kernel buffers of an idle pair.
    flood_size: ClassVar[int] = 1 * MIB

    def flood(self, channel: Channel) -> bytes:
        """Write more than the kernel takes; return what was written."""
        data = pattern(self.flood_size, seed=1)
        channel.write(data)
        assert channel.pending_output > 0, "the kernel took the whole flood: raise flood_size"
        return data

    def test_write_beyond_the_kernel_buffer_returns_at_once_and_keeps_the_rest(
        self, pair: tuple[Channel, StreamPeer]
    ) -> None:
        channel, peer = pair
        start = time.monotonic()
        data = self.flood(channel)
        assert time.monotonic() - start < WAIT
        assert 0 < channel.pending_output < len(data)
        assert drain(channel, peer, len(data)) == data

    def test_later_writes_queue_behind_pending_output_in_order(self, pair: tuple[Channel, StreamPeer]) -> None:
        channel, peer = pair
        data = self.flood(channel)
        channel.write(b"second,")
        channel.write(b"third,", b"fourth")
        tail = b"second,third,fourth"
        assert drain(channel, peer, len(data) + len(tail)) == data + tail

    def test_flush_returns_false_when_the_peer_does_not_read_in_time(self, pair: tuple[Channel, StreamPeer]) -> None:
        channel, _ = pair
        self.flood(channel)
        start = time.monotonic()
        assert channel.flush(timeout=0.05) is False
        assert time.monotonic() - start < WAIT
        assert channel.pending_output > 0

    def test_flush_returns_true_once_the_peer_has_read_everything(self, pair: tuple[Channel, StreamPeer]) -> None:
        channel, peer = pair
        data = self.flood(channel)
        with ThreadPoolExecutor(max_workers=1) as pool:
            reader = pool.submit(peer.receive, len(data))
            assert channel.flush(timeout=WAIT) is True
            assert channel.pending_output == 0
            assert reader.result(timeout=WAIT) == data

    def test_write_past_max_pending_raises_and_queues_nothing(
        self, make_pair: Callable[[int], tuple[Channel, StreamPeer]]
    ) -> None:
        channel, peer = make_pair(1 * MIB)
        accepted = fill_kernel(channel)
        room = channel.max_pending - channel.pending_output
        accepted += pattern(room, seed=2)
        channel.write(accepted[-room:])
        pending = channel.pending_output
        refused = channel.max_pending - pending + 1
        with pytest.raises(WriteBufferFullError) as raised:
            channel.write(b"HEADER", b"#" * (refused - 6))
        assert isinstance(raised.value, ChannelError)
        assert channel.pending_output == pending
        assert drain(channel, peer, len(accepted)) == accepted
        assert channel.pending_output == 0  # no part of the refused call is left to follow
        assert peer.receive_available() == b""

    def test_a_refused_text_write_leaves_pending_output_unchanged(self, pair: tuple[Channel, StreamPeer]) -> None:
        channel, peer = pair
        data = self.flood(channel)
        pending = channel.pending_output
        with pytest.raises(TypeError, match="bytes"):
            channel.write(b"half a ", "frame")  # type: ignore[arg-type]
        assert channel.pending_output == pending
        channel.write(b"!")
        assert drain(channel, peer, len(data) + 1) == data + b"!"

    @pytest.mark.parametrize("wrap", WRAPPERS, ids=WRAPPER_IDS)
    def test_changing_a_queued_bytearray_does_not_change_what_is_sent(
        self, pair: tuple[Channel, StreamPeer], wrap: Callable[[bytearray], Buffer]
    ) -> None:
        channel, peer = pair
        data = self.flood(channel)
        buffer = bytearray(pattern(256 * KIB, seed=3))
        original = bytes(buffer)
        channel.write(wrap(buffer))
        buffer[:] = bytes(len(buffer))
        assert drain(channel, peer, len(data) + len(original)) == data + original

    def test_close_delivers_pending_output_to_a_peer_that_reads_meanwhile(
        self, pair: tuple[Channel, StreamPeer]
    ) -> None:
        channel, peer = pair
        data = self.flood(channel)
        with ThreadPoolExecutor(max_workers=1) as pool:
            reader = pool.submit(peer.receive_to_end)
            channel.close()
            assert reader.result(timeout=WAIT) == data

    def test_close_with_a_timeout_returns_when_the_peer_never_reads(
        self, pair: tuple[Channel, StreamPeer], caplog: pytest.LogCaptureFixture
    ) -> None:
        channel, peer = pair
        data = self.flood(channel)
        before = open_fd_count()
        start = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="channels"):
            channel.close(timeout=0.1)
        assert time.monotonic() - start < 3.0  # well below the default close timeout
        assert channel.closed
        assert open_fd_count() == before - self.owned_fds
        assert "dropped" in caplog.text
        received = peer.receive_to_end()
        assert len(received) < len(data)
        assert received == data[: len(received)]

    def test_abort_drops_pending_output_and_closes_at_once(self, pair: tuple[Channel, StreamPeer]) -> None:
        channel, peer = pair
        data = self.flood(channel)
        before = open_fd_count()
        start = time.monotonic()
        channel.abort()
        assert time.monotonic() - start < 1.0
        assert channel.closed
        assert channel.pending_output == 0
        assert open_fd_count() == before - self.owned_fds
        received = peer.receive_to_end()
        assert len(received) < len(data)
        assert received == data[: len(received)]

    def test_write_to_a_vanished_peer_raises_endpoint_closed_caused_by_the_os_error(
        self, pair: tuple[Channel, StreamPeer]
    ) -> None:
        channel, peer = pair
        peer.vanish()
        error = write_until_refused(channel)
        assert isinstance(error.__cause__, OSError)
        assert error.__cause__.errno in (errno.EPIPE, errno.ECONNRESET)

    def test_every_write_after_the_peer_vanished_raises_with_the_cause(self, pair: tuple[Channel, StreamPeer]) -> None:
        channel, peer = pair
        peer.vanish()
        write_until_refused(channel)
        with pytest.raises(EndpointClosedException) as raised:
            channel.write(b"again")
        assert isinstance(raised.value.__cause__, OSError)
        assert channel.pending_output == 0

    def test_pending_output_is_dropped_when_the_peer_vanishes(self, pair: tuple[Channel, StreamPeer]) -> None:
        channel, peer = pair
        self.flood(channel)
        peer.vanish()
        with pytest.raises(EndpointClosedException):
            channel.flush(timeout=WAIT)
        assert channel.pending_output == 0

    def test_read_after_the_peer_vanished_raises_endpoint_closed(self, pair: tuple[Channel, StreamPeer]) -> None:
        channel, peer = pair
        peer.send(b"last")
        peer.vanish()
        assert b"".join(read_to_end(channel)) == b"last"
        with pytest.raises(EndpointClosedException):
            channel.read()

    def test_close_with_pending_output_to_a_vanished_peer_returns(self, pair: tuple[Channel, StreamPeer]) -> None:
        channel, peer = pair
        self.flood(channel)
        peer.vanish()
        start = time.monotonic()
        channel.close()
        assert time.monotonic() - start < 3.0  # well below the default close timeout
        assert channel.closed

    def test_64_mib_write_to_a_slow_reader_arrives_intact(self, pair: tuple[Channel, StreamPeer]) -> None:
        channel, peer = pair
        data = pattern(64 * MIB, seed=4)
        expected = hashlib.sha256(data).hexdigest()
        channel.write(data)
        del data  # the channel holds the only reference now
        digest = hashlib.sha256()
        size = drain_into(channel, peer, 64 * MIB, digest.update, limit=SLOW_READ)
        assert size == 64 * MIB
        assert digest.hexdigest() == expected


class SocketContract(StreamContract):
    """What a channel over a socket promises about a reset connection."""

    def test_read_after_a_peer_reset_raises_endpoint_closed_caused_by_the_reset(
        self, pair: tuple[Channel, StreamPeer]
    ) -> None:
        channel, peer = pair
        channel.write(b"never read")  # unread data makes even a Unix socket reset
        peer.vanish()
        error = read_until_refused(channel)
        assert isinstance(error.__cause__, ConnectionResetError)

    def test_every_read_after_a_peer_reset_raises_with_the_reset_chained(
        self, pair: tuple[Channel, StreamPeer]
    ) -> None:
        channel, peer = pair
        channel.write(b"never read")
        peer.vanish()
        read_until_refused(channel)
        for _ in range(2):
            with pytest.raises(EndpointClosedException) as raised:
                channel.read()
            assert isinstance(raised.value.__cause__, ConnectionResetError)


# -- helpers for the contract -------------------------------------------------


def drain_into(
    channel: Channel,
    peer: DuplexPeer,
    size: int,
    consume: Callable[[bytes], object],
    *,
    limit: int = 256 * KIB,
    timeout: float = 3 * WAIT,
) -> int:
    """Move ``size`` bytes from the channel to the peer, single-threaded.

    Each turn the channel sends what the kernel takes and the peer reads at
    most ``limit`` bytes of it. Returns how many bytes were consumed.
    """
    got = 0
    deadline = time.monotonic() + timeout
    while got < size:
        assert time.monotonic() < deadline, f"only {got} of {size} bytes arrived within {timeout}s"
        if channel.pending_output:
            channel.flush(timeout=0)
        data = peer.receive_some(min(limit, size - got))
        if data is None:
            raise AssertionError(f"the channel closed after {got} of {size} bytes")
        if data:
            consume(data)
            got += len(data)
        else:
            peer.wait_readable(0.01)
    return got


def drain(channel: Channel, peer: DuplexPeer, size: int) -> bytes:
    """The next ``size`` bytes the channel sends, flushing as the peer reads."""
    chunks: list[bytes] = []
    drain_into(channel, peer, size, chunks.append)
    return b"".join(chunks)


def fill_kernel(channel: Channel, chunk_size: int = 64 * KIB) -> bytes:
    """Write chunks until the kernel buffer is full and output waits."""
    written: list[bytes] = []
    deadline = time.monotonic() + WAIT
    for seed in count(100):
        assert time.monotonic() < deadline, "the kernel buffer never filled"
        chunk = pattern(chunk_size, seed)
        channel.write(chunk)
        written.append(chunk)
        if channel.pending_output:
            return b"".join(written)
    raise AssertionError("unreachable")  # pragma: no cover


def write_until_refused(channel: Channel) -> EndpointClosedException:
    """Write until the channel reports its peer gone; return that error."""
    deadline = time.monotonic() + WAIT
    while True:
        assert time.monotonic() < deadline, "writes to a vanished peer kept succeeding"
        try:
            channel.write(b"x")
        except EndpointClosedException as error:
            return error
        time.sleep(0.001)


def read_until_refused(channel: Channel) -> EndpointClosedException:
    """Read until the channel reports its end; return that error."""
    deadline = time.monotonic() + WAIT
    while True:
        assert time.monotonic() < deadline, "the channel never reported its end"
        try:
            channel.read()
        except EndpointClosedException as error:
            return error
        time.sleep(0.001)


def _bytes_in_pipe(fd: int) -> int:
    import fcntl  # noqa: PLC0415 - only the cat tests need it
    import termios  # noqa: PLC0415

    buffer = bytearray(struct.calcsize("i"))
    fcntl.ioctl(fd, termios.FIONREAD, buffer)
    result: int = struct.unpack("i", buffer)[0]
    return result


# -- the kinds ---------------------------------------------------------------


class TestPipeChannel(StreamContract):
    """A ``PipeChannel`` over two ``os.pipe()`` pairs."""

    owned_fds = 2

    def open_pair(self, workdir: Path, max_pending: int) -> tuple[Channel, StreamPeer]:
        faucet, peer_out = os.pipe()
        peer_in, sink = os.pipe()
        channel = PipeChannel(faucet, sink, max_pending=max_pending)
        return channel, PipePeer(peer_in, peer_out)


class TestSocketpairChannel(SocketContract):
    """A ``SocketChannel`` over ``socket.socketpair()``."""

    def open_pair(self, workdir: Path, max_pending: int) -> tuple[Channel, StreamPeer]:
        ours, theirs = socket.socketpair()
        return SocketChannel(ours, max_pending=max_pending), SocketPeer(theirs)


class TestTcpChannel(SocketContract):
    """A ``SocketChannel`` over a loopback TCP connection."""

    # Loopback TCP buffers several MiB before a writer has to wait.
    flood_size = 16 * MIB

    def open_pair(self, workdir: Path, max_pending: int) -> tuple[Channel, StreamPeer]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            ours = socket.create_connection(listener.getsockname())
            theirs, _ = listener.accept()
        return SocketChannel(ours, max_pending=max_pending), SocketPeer(theirs)


class TestUnixSocketChannel(SocketContract):
    """A ``SocketChannel`` over a Unix stream socket bound in a temporary directory."""

    _names = count()

    def open_pair(self, workdir: Path, max_pending: int) -> tuple[Channel, StreamPeer]:
        path = str(workdir / f"s{next(self._names)}")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(path)
            listener.listen(1)
            ours = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            ours.connect(path)
            theirs, _ = listener.accept()
        os.unlink(path)
        return SocketChannel(ours, max_pending=max_pending), SocketPeer(theirs)


class TestTestChannel(PeerContract[PutGetPeer]):
    """``channels.testing.TestChannel``, whose peer is the test itself."""

    def open_pair(self, workdir: Path, max_pending: int) -> tuple[Channel, PutGetPeer]:
        channel = TestChannel(max_pending=max_pending)
        return channel, PutGetPeer(channel)


class TestCatChildChannel(ChannelContract[EchoPeer]):
    """A ``PipeChannel`` over a ``cat`` child's stdout and stdin: its peer echoes."""

    leak_rounds = 20

    def open_pair(self, workdir: Path, max_pending: int) -> tuple[Channel, EchoPeer]:
        process = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert process.stdin is not None
        assert process.stdout is not None
        channel = PipeChannel(process.stdout, process.stdin, max_pending=max_pending)
        return channel, EchoPeer(channel, process)

    def test_the_child_echoes_what_is_written(self, pair: tuple[Channel, EchoPeer]) -> None:
        channel, _ = pair
        channel.write(b"marco\n")
        assert read_exactly(channel, 6) == b"marco\n"

    def test_a_write_larger_than_the_pipes_comes_back_intact(self, pair: tuple[Channel, EchoPeer]) -> None:
        channel, _ = pair
        data = pattern(4 * MIB, seed=5)
        start = time.monotonic()
        channel.write(data)
        assert time.monotonic() - start < WAIT  # the child does not keep up, the write does not wait
        assert channel.pending_output > 0
        received = bytearray()
        deadline = time.monotonic() + WAIT
        while len(received) < len(data):
            assert time.monotonic() < deadline, f"{len(received)} of {len(data)} bytes came back"
            channel.flush(timeout=0)
            chunk = channel.read()
            received += chunk
            if not chunk:
                _wait_for(channel.get_fd(), select.POLLIN, 0.01)
        assert received == data

    def test_data_echoed_before_the_child_exits_is_read_before_the_end(self, pair: tuple[Channel, EchoPeer]) -> None:
        channel, peer = pair
        channel.write(b"last words")
        wait_until(lambda: _bytes_in_pipe(channel.get_fd()) == 10)
        peer.process.kill()
        peer.process.wait(timeout=WAIT)
        assert b"".join(read_to_end(channel)) == b"last words"
        with pytest.raises(EndpointClosedException):
            channel.read()

    def test_write_to_an_exited_child_raises_endpoint_closed_caused_by_broken_pipe(
        self, pair: tuple[Channel, EchoPeer]
    ) -> None:
        channel, peer = pair
        peer.process.kill()
        peer.process.wait(timeout=WAIT)
        error = write_until_refused(channel)
        assert isinstance(error.__cause__, BrokenPipeError)

    def test_close_ends_the_childs_input(self, pair: tuple[Channel, EchoPeer]) -> None:
        channel, peer = pair
        channel.write(b"bye\n")
        assert read_exactly(channel, 4) == b"bye\n"  # else cat dies writing to the closed pipe
        channel.close()
        assert peer.process.wait(timeout=WAIT) == 0  # cat saw end of file and exited


class TestCatProcessChannel(TestCatChildChannel):
    """A ``ProcessChannel`` running ``cat``: the same contract and echo checks."""

    def open_pair(self, workdir: Path, max_pending: int) -> tuple[Channel, EchoPeer]:
        channel = ProcessChannel(["cat"], max_pending=max_pending)
        return channel, EchoPeer(channel, channel._process)


# -- edges of the base machinery ----------------------------------------------


def test_max_pending_must_be_positive() -> None:
    left, right = socket.socketpair()
    with left, right, pytest.raises(ValueError, match="max_pending"):
        SocketChannel(left, max_pending=0)


def test_an_unclosed_channel_warns_and_frees_its_descriptor_when_collected() -> None:
    faucet, sink = os.pipe()
    try:
        channel = PipeChannel(faucet=faucet)
        with pytest.warns(ResourceWarning, match="unclosed"):
            del channel
            gc.collect()
        with pytest.raises(OSError):
            os.fstat(faucet)
    finally:
        os.close(sink)


def test_more_queued_chunks_than_one_system_call_takes_go_out_in_order() -> None:
    left, right = socket.socketpair()
    with SocketChannel(left) as channel, right:
        right.setblocking(False)
        filler = b"f" * (4 * 1024 * 1024)
        channel.write(filler)  # fill the socket so that what follows queues
        pieces = [b"%05d," % n for n in range(5000)]  # more chunks than IOV_MAX
        for piece in pieces:
            channel.write(piece)
        expected = filler + b"".join(pieces)
        received = bytearray()
        deadline = time.monotonic() + WAIT
        while len(received) < len(expected) and time.monotonic() < deadline:
            channel.flush(0)
            try:
                received += right.recv(1 << 20)
            except BlockingIOError:
                time.sleep(0.001)
        assert bytes(received) == expected


def test_a_non_contiguous_view_is_sent_as_its_bytes() -> None:
    left, right = socket.socketpair()
    with SocketChannel(left) as channel, right:
        channel.write(memoryview(b"a-b-c-d")[::2])
        right.settimeout(WAIT)
        assert right.recv(100) == b"abcd"


def test_repr_names_the_kind_its_descriptors_and_its_state() -> None:
    faucet, sink = os.pipe()
    channel = PipeChannel(faucet=faucet, sink=sink, buffering="line")
    assert repr(channel) == f"<PipeChannel faucet={faucet} sink={sink} line open>"
    channel.close()
    assert repr(channel).endswith("line closed>")
