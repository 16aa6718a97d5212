"""``shutdown_write()``: the peer sees end of file while we go on reading."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from channels import EndpointClosedException, LineChannel, PipeChannel, ProcessChannel, SocketChannel
from channels.poller import Poller
from channels.testing import TestChannel
from tests.helpers import WAIT, open_fd_count, read_exactly, read_to_end

MIB = 1024 * 1024


@pytest.fixture
def sockets() -> Iterator[tuple[SocketChannel, socket.socket]]:
    """A channel over one end of a socketpair, and the other end (blocking, with a timeout)."""
    ours, theirs = socket.socketpair()
    theirs.settimeout(WAIT)
    channel = SocketChannel(ours)
    yield channel, theirs
    channel.abort()
    theirs.close()


def receive_all(sock: socket.socket) -> bytes:
    """Everything ``sock`` receives until end of file."""
    chunks = []
    while chunk := sock.recv(MIB):
        chunks.append(chunk)
    return b"".join(chunks)


# -- sockets ---------------------------------------------------------------------------


def test_socket_peer_sees_end_of_file_after_the_data(sockets: tuple[SocketChannel, socket.socket]) -> None:
    channel, peer = sockets
    channel.write(b"request")
    channel.shutdown_write()
    assert receive_all(peer) == b"request"


def test_socket_channel_keeps_reading_after_shutdown_write(sockets: tuple[SocketChannel, socket.socket]) -> None:
    channel, peer = sockets
    channel.shutdown_write()
    peer.sendall(b"reply")
    peer.close()
    assert b"".join(read_to_end(channel)) == b"reply"


def test_tcp_half_close_lets_the_peer_answer_after_our_end() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        channel = SocketChannel(socket.create_connection(server.getsockname()))
        peer, _ = server.accept()
    with channel, peer:
        peer.settimeout(WAIT)
        channel.write(b"question")
        channel.shutdown_write()
        assert receive_all(peer) == b"question"
        peer.sendall(b"answer")
        peer.shutdown(socket.SHUT_WR)
        assert b"".join(read_to_end(channel)) == b"answer"


def test_write_after_shutdown_write_raises_endpoint_closed(sockets: tuple[SocketChannel, socket.socket]) -> None:
    channel, _ = sockets
    channel.shutdown_write()
    with pytest.raises(EndpointClosedException, match="shut down for writing"):
        channel.write(b"late")


def test_flush_after_shutdown_write_raises_endpoint_closed(sockets: tuple[SocketChannel, socket.socket]) -> None:
    channel, _ = sockets
    channel.shutdown_write()
    with pytest.raises(EndpointClosedException):
        channel.flush()


def test_shutdown_write_twice_does_nothing_the_second_time(sockets: tuple[SocketChannel, socket.socket]) -> None:
    channel, peer = sockets
    channel.shutdown_write()
    channel.shutdown_write()
    assert receive_all(peer) == b""


def test_shutdown_write_after_close_raises_endpoint_closed(sockets: tuple[SocketChannel, socket.socket]) -> None:
    channel, _ = sockets
    channel.close()
    with pytest.raises(EndpointClosedException):
        channel.shutdown_write()


def test_shutdown_write_after_the_peer_left_does_not_raise(sockets: tuple[SocketChannel, socket.socket]) -> None:
    channel, peer = sockets
    peer.close()
    channel.shutdown_write()
    with pytest.raises(EndpointClosedException):
        channel.write(b"x")


def test_shutdown_write_after_a_failed_send_raises_endpoint_closed_with_the_cause(
    sockets: tuple[SocketChannel, socket.socket],
) -> None:
    channel, peer = sockets
    peer.close()
    with pytest.raises(EndpointClosedException):
        channel.write(b"lost")  # the send fails: these bytes never arrive

    with pytest.raises(EndpointClosedException) as caught:
        channel.shutdown_write()  # not a clean end: output was not delivered

    assert isinstance(caught.value.__cause__, OSError)


def test_shutdown_write_delivers_pending_output_first(sockets: tuple[SocketChannel, socket.socket]) -> None:
    channel, peer = sockets
    data = os.urandom(8 * MIB)
    channel.write(data)
    assert channel.pending_output > 0  # the kernel did not take it all
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(receive_all(peer)))
    reader.start()
    channel.shutdown_write()
    reader.join(WAIT)
    assert received == [data]


def test_shutdown_write_drops_what_a_stuck_peer_leaves_after_the_timeout(
    sockets: tuple[SocketChannel, socket.socket], caplog: pytest.LogCaptureFixture
) -> None:
    channel, peer = sockets
    data = os.urandom(8 * MIB)
    channel.write(data)
    with caplog.at_level(logging.WARNING, logger="channels.channel"):
        channel.shutdown_write(timeout=0.01)
    assert channel.pending_output == 0
    assert "dropped" in caplog.text
    received = receive_all(peer)
    assert len(received) < len(data)
    assert data.startswith(received)  # what went out went out whole and in order, then the end


def test_line_channel_forwards_shutdown_write(sockets: tuple[SocketChannel, socket.socket]) -> None:
    channel, peer = sockets
    with LineChannel(channel) as lines:
        lines.write(b"last\n")
        lines.shutdown_write()
        assert receive_all(peer) == b"last\n"


def test_line_channel_shutdown_write_after_close_raises_endpoint_closed(
    sockets: tuple[SocketChannel, socket.socket],
) -> None:
    channel, _ = sockets
    lines = LineChannel(channel)
    lines.close()
    with pytest.raises(EndpointClosedException):
        lines.shutdown_write()


def test_a_registered_line_channel_half_closes_and_still_receives_lines(
    sockets: tuple[SocketChannel, socket.socket],
) -> None:
    channel, peer = sockets
    with Poller() as poller:
        lines = LineChannel(channel)
        poller.register(lines)
        lines.write(b"question\n")
        lines.shutdown_write()
        assert receive_all(peer) == b"question\n"
        peer.sendall(b"answer\n")
        events: list[object] = []
        deadline = time.monotonic() + WAIT
        while (b"answer\n", lines) not in events and time.monotonic() < deadline:
            events.extend(poller.poll(0.1))
        assert events == [(b"answer\n", lines)]


def test_line_channel_over_a_channel_without_shutdown_write_raises_not_implemented() -> None:
    class Old:
        """A 0.1.1-style channel: read, write, close, get_fd and nothing else."""

        def read(self) -> bytes:  # pragma: no cover - not called
            return b""

        def write(self, *data: bytes) -> None:  # pragma: no cover - not called
            pass

        def close(self) -> None:
            pass

        def get_fd(self) -> int:  # pragma: no cover - not called
            return 0

    lines = LineChannel(Old())  # type: ignore[arg-type]
    with pytest.raises(NotImplementedError):
        lines.shutdown_write()
    lines.close()


# -- pipes and processes ---------------------------------------------------------------------


def test_pipe_shutdown_write_closes_the_sink_so_its_reader_sees_the_end() -> None:
    faucet, feed = os.pipe()
    drain, sink = os.pipe()
    with PipeChannel(faucet, sink) as channel:
        channel.write(b"bye")
        channel.shutdown_write()
        assert os.read(drain, 100) == b"bye"
        assert os.read(drain, 100) == b""  # end of file: the sink is closed
        os.write(feed, b"still here")
        assert read_exactly(channel, 10) == b"still here"
    os.close(drain)
    os.close(feed)


def test_closing_a_half_closed_pipe_channel_releases_its_descriptors() -> None:
    before = open_fd_count()
    faucet, feed = os.pipe()
    drain, sink = os.pipe()
    channel = PipeChannel(faucet, sink)
    channel.shutdown_write()
    channel.close()
    os.close(feed)
    os.close(drain)
    assert open_fd_count() == before


def test_process_child_gets_end_of_input_while_we_read_its_output() -> None:
    with ProcessChannel(["wc", "-c"]) as channel:
        channel.write(b"x" * MIB)  # more than the pipe holds: shutdown_write waits for wc to take it
        channel.shutdown_write()
        assert b"".join(read_to_end(channel)).strip() == str(MIB).encode()
        assert channel.wait(WAIT) == 0


def test_half_closing_a_registered_channel_frees_its_sink_number_for_reuse() -> None:
    faucet, feed = os.pipe()
    drain, sink = os.pipe()
    other_faucet, other_feed = os.pipe()
    with Poller() as poller:
        channel = PipeChannel(faucet, sink)
        poller.register(channel)
        channel.write(b"x" * MIB)  # nobody drains it: the poller watches the sink
        poller.poll(0)
        channel.shutdown_write(timeout=0)
        os.dup2(other_faucet, sink)  # the sink's number, reused at once
        os.close(other_faucet)
        reused = PipeChannel(sink)
        poller.register(reused)
        os.write(feed, b"one")
        os.write(other_feed, b"two")
        events: set[object] = set()
        deadline = time.monotonic() + WAIT
        while len(events) < 2 and time.monotonic() < deadline:
            events.update(poller.poll(0.1))
        assert events == {(b"one", channel), (b"two", reused)}
    for fd in (feed, drain, other_feed):
        os.close(fd)


def test_a_pipe_channel_on_one_descriptor_cannot_half_close() -> None:
    ours, theirs = socket.socketpair()
    with PipeChannel(ours, ours) as channel, theirs:
        with pytest.raises(NotImplementedError, match="one descriptor"):
            channel.shutdown_write()
        channel.write(b"still open")
        assert theirs.recv(100) == b"still open"


def test_a_read_only_pipe_channel_cannot_shut_down_writing() -> None:
    faucet, feed = os.pipe()
    with PipeChannel(faucet) as channel, pytest.raises(NotImplementedError):
        channel.shutdown_write()
    os.close(feed)


def test_a_channel_without_the_hook_raises_not_implemented_and_keeps_writing() -> None:
    with TestChannel() as channel:
        channel.write(b"kept")
        with pytest.raises(NotImplementedError):
            channel.shutdown_write()
        channel.write(b" going")
        assert channel.get() == b"kept going"
