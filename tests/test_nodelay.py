"""TCP channels send each write at once: ``TCP_NODELAY`` on every TCP channel.

Connected by ``connect()``, accepted by a ``Poller`` server, or a TCP socket
given to ``SocketChannel``: all have Nagle's algorithm off unless
``nodelay=False`` keeps the given socket's own setting.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from channels import Poller, SocketChannel, connect, listen
from tests.helpers import WAIT


def _nodelay(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock


def test_a_fresh_tcp_socket_has_nagle_on(listener: socket.socket) -> None:
    # The premise of the tests below: the kernel's default is Nagle on.
    with socket.create_connection(listener.getsockname(), timeout=WAIT) as sock:
        assert _nodelay(sock) == 0


def test_connect_tcp_sets_nodelay(listener: socket.socket) -> None:
    host, port = listener.getsockname()
    with connect(f"tcp:{host}:{port}") as channel:
        assert isinstance(channel, SocketChannel)
        assert _nodelay(channel.socket) != 0


def test_connect_tcp_with_nodelay_false_keeps_nagle(listener: socket.socket) -> None:
    host, port = listener.getsockname()
    with connect(f"tcp:{host}:{port}", nodelay=False) as channel:
        assert isinstance(channel, SocketChannel)
        assert _nodelay(channel.socket) == 0


def test_a_client_accepted_by_a_poller_server_has_nodelay() -> None:
    server = listen("tcp:127.0.0.1:0")
    # The listener itself is left as the kernel made it: the option is set
    # on each client, whatever server it came from.
    server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
    with Poller() as poller, socket.create_connection(server.getsockname(), timeout=WAIT):
        poller.add_server(server)
        accepted: list[SocketChannel] = []
        deadline = time.monotonic() + WAIT
        while not accepted and time.monotonic() < deadline:
            for data, source in poller.poll(0.1):
                if source is server:
                    assert isinstance(data, tuple)
                    accepted.append(data[1])
        assert accepted, "no client accepted"
        assert _nodelay(accepted[0].socket) != 0
    server.close()


def test_a_given_tcp_socket_gets_nodelay(listener: socket.socket) -> None:
    sock = socket.create_connection(listener.getsockname(), timeout=WAIT)
    with SocketChannel(sock) as channel:
        assert _nodelay(channel.socket) != 0


def test_a_given_tcp_socket_with_nodelay_false_is_left_as_given(listener: socket.socket) -> None:
    sock = socket.create_connection(listener.getsockname(), timeout=WAIT)
    with SocketChannel(sock, nodelay=False) as channel:
        assert _nodelay(channel.socket) == 0
    sock = socket.create_connection(listener.getsockname(), timeout=WAIT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with SocketChannel(sock, nodelay=False) as channel:
        assert _nodelay(channel.socket) != 0


def test_a_unix_socket_is_accepted_without_the_tcp_option() -> None:
    ours, theirs = socket.socketpair()
    with theirs, SocketChannel(ours) as channel:
        channel.write(b"x")
        assert theirs.recv(1) == b"x"
