"""Peer credentials of Unix sockets, and ``Poller.add_server(allow_uids=...)``."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from channels import EndpointClosedException, PeerCredentials, SocketChannel, connect, listen
from channels.poller import Poller
from tests.helpers import WAIT

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_PEERCRED"), reason="SO_PEERCRED is Linux's")

# A child that connects to the Unix socket named by its argument and waits
# until the other end closes.
CONNECTING_CHILD = "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.recv(1)"


@pytest.fixture
def socket_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    # Short, unlike tmp_path: a Unix socket path holds at most 107 bytes.
    return str(tmp_path_factory.mktemp("p") / "s")


@pytest.fixture
def poller() -> Iterator[Poller]:
    with Poller() as poller:
        yield poller


def accepted_clients(poller: Poller, server: socket.socket, timeout: float = WAIT) -> list[Any]:
    """Poll until ``server`` has accepted someone; the clients accepted."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        clients = [data[1] for data, source in poller.poll(0.05) if source is server]
        if clients:
            return clients
    raise AssertionError(f"no client accepted within {timeout}s")


# -- peer_credentials ------------------------------------------------------------------


def test_peer_credentials_of_a_socketpair_are_our_own() -> None:
    ours, theirs = socket.socketpair()
    with SocketChannel(ours) as channel, theirs:
        assert channel.peer_credentials == PeerCredentials(pid=os.getpid(), uid=os.getuid(), gid=os.getgid())


def test_peer_credentials_of_an_accepted_client_name_the_connecting_process(socket_path: str) -> None:
    with listen(f"unix:{socket_path}") as server:
        server.settimeout(WAIT)
        child = subprocess.Popen([sys.executable, "-c", CONNECTING_CHILD, socket_path])
        try:
            with SocketChannel(server.accept()[0]) as channel:
                credentials = channel.peer_credentials
        finally:
            assert child.wait(WAIT) == 0  # it saw our end close
    assert credentials == (child.pid, os.getuid(), os.getgid())


def test_peer_credentials_of_a_tcp_channel_are_none() -> None:
    with listen("tcp:127.0.0.1:0") as server, connect(f"tcp:127.0.0.1:{server.getsockname()[1]}") as channel:
        assert isinstance(channel, SocketChannel)
        assert channel.peer_credentials is None
        server.accept()[0].close()


def test_peer_credentials_of_a_closed_channel_raise_endpoint_closed() -> None:
    ours, theirs = socket.socketpair()
    channel = SocketChannel(ours)
    channel.close()
    theirs.close()
    with pytest.raises(EndpointClosedException):
        channel.peer_credentials  # noqa: B018 - the property is what is tested


# -- allow_uids --------------------------------------------------------------------


def test_allow_uids_admits_clients_of_the_listed_users(poller: Poller, socket_path: str) -> None:
    server = listen(f"unix:{socket_path}")
    poller.add_server(server, allow_uids=[os.getuid()])
    with connect(f"unix:{socket_path}") as client:
        client.write(b"hi")
        (accepted,) = accepted_clients(poller, server)
        assert accepted.peer_credentials.uid == os.getuid()


def test_allow_uids_closes_clients_of_other_users_with_a_log_line(
    poller: Poller, socket_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = listen(f"unix:{socket_path}")
    poller.add_server(server, allow_uids={os.getuid() + 1})
    with caplog.at_level(logging.WARNING, logger="channels.poller"), connect(f"unix:{socket_path}") as client:
        deadline = time.monotonic() + WAIT
        while True:
            assert time.monotonic() < deadline, "the refused client was never closed"
            assert poller.poll(0.05) == []  # never reported
            try:
                client.read()
            except EndpointClosedException:
                break
    assert f"refused client pid={os.getpid()} uid={os.getuid()}" in caplog.text
    assert len(poller) == 0


def test_a_server_added_again_after_unregister_takes_its_new_settings(poller: Poller, socket_path: str) -> None:
    server = listen(f"unix:{socket_path}")
    poller.add_server(server, allow_uids=[])
    poller.unregister(server)
    poller.add_server(server)
    with connect(f"unix:{socket_path}"):
        assert len(accepted_clients(poller, server)) == 1


def test_allow_uids_on_a_tcp_server_raises_value_error(poller: Poller) -> None:
    with listen("tcp:127.0.0.1:0") as server, pytest.raises(ValueError, match="Unix sockets only"):
        poller.add_server(server, allow_uids=[0])


def test_allow_uids_that_are_not_integers_raise_type_error(poller: Poller, socket_path: str) -> None:
    with listen(f"unix:{socket_path}") as server, pytest.raises(TypeError, match="user ids"):
        poller.add_server(server, allow_uids=["root"])  # type: ignore[list-item]
