"""``SocketChannel`` specifics: which sockets it takes, and that it owns them.

The contract every channel shares is in ``test_channel.py``.
"""

from __future__ import annotations

import gc
import os
import socket
from collections.abc import Iterator

import pytest

from channels import SocketChannel
from tests.helpers import read_exactly

SocketPair = tuple[socket.socket, socket.socket]


@pytest.fixture
def socket_pair() -> Iterator[SocketPair]:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        yield ours, theirs


def test_something_that_is_not_a_socket_raises_type_error() -> None:
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(TypeError, match="socket"):
            SocketChannel(read_end)  # type: ignore[arg-type]
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_closed_socket_raises_value_error(socket_pair: SocketPair) -> None:
    ours, _ = socket_pair
    ours.close()
    with pytest.raises(ValueError, match="closed"):
        SocketChannel(ours)


def test_a_datagram_socket_raises_value_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as datagram, pytest.raises(ValueError, match="stream"):
        SocketChannel(datagram)


def test_a_listening_socket_raises_value_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        with pytest.raises(ValueError, match="add_server"):
            SocketChannel(listener)


def test_a_refused_socket_stays_open_and_blocking_for_its_owner() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        with pytest.raises(ValueError):
            SocketChannel(listener)
        gc.collect()  # a half-built channel must not warn that it was left unclosed
        assert listener.fileno() >= 0
        assert listener.getblocking()


def test_the_socket_is_switched_to_non_blocking(socket_pair: SocketPair) -> None:
    ours, _ = socket_pair
    with SocketChannel(ours):
        assert not ours.getblocking()


def test_a_socket_created_non_blocking_is_accepted() -> None:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    with theirs, SocketChannel(ours) as channel:
        theirs.sendall(b"hi")
        assert read_exactly(channel, 2) == b"hi"


def test_the_socket_property_is_the_wrapped_socket(socket_pair: SocketPair) -> None:
    ours, _ = socket_pair
    with SocketChannel(ours) as channel:
        assert channel.socket is ours


def test_get_fd_is_the_sockets_descriptor(socket_pair: SocketPair) -> None:
    ours, _ = socket_pair
    with SocketChannel(ours) as channel:
        assert channel.get_fd() == ours.fileno()


def test_socket_options_stay_reachable_through_the_socket_property() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        with SocketChannel(socket.create_connection(listener.getsockname())) as channel:
            server_side, _ = listener.accept()
            with server_side:
                assert channel.socket.getpeername() == listener.getsockname()
                assert channel.socket.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM


def test_close_closes_the_socket(socket_pair: SocketPair) -> None:
    ours, theirs = socket_pair
    SocketChannel(ours).close()
    assert ours.fileno() == -1
    assert theirs.recv(1) == b""  # the peer sees the end


def test_abort_closes_the_socket(socket_pair: SocketPair) -> None:
    ours, _ = socket_pair
    SocketChannel(ours).abort()
    assert ours.fileno() == -1
