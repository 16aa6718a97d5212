"""The Poller: close_all and close.

Everything here runs over real descriptors: TestChannel pipes, socketpairs,
TCP on 127.0.0.1 and Unix sockets under ``tmp_path``. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import gc
import random
import socket
import threading
import time

import pytest

from channels import (
    Channel,
    EndpointClosedException,
)
from channels.poller import Poller
from channels.testing import TestChannel
from tests.helpers import WAIT, open_fd_count
from tests.poller.support import (
    MiB,
    channel_pair,
    connect,
    make_test_channel,
    tcp_server,
)


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
