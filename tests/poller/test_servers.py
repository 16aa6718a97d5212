"""The Poller: servers.

Everything here runs over real descriptors: TestChannel pipes, socketpairs,
TCP on 127.0.0.1 and Unix sockets under ``tmp_path``. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import socket

import pytest

from channels import (
    SocketChannel,
)
from channels.poller import Poller
from tests.poller.support import (
    accepted,
    channel_pair,
    connect,
    ended,
    poll_until,
    tcp_server,
)


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
