"""``listen()``'s server options and inherited sockets: ``reuse_port``,
``keepalive`` and ``fd:N``.

systemd's sockets (``listen('systemd')``) are in ``test_systemd.py``.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest

from channels import Poller, SocketChannel, listen
from tests.helpers import WAIT


def accept_through_poller(server: socket.socket) -> SocketChannel:
    """Connect to ``server`` and return the client a Poller accepts from it."""
    with Poller() as poller, socket.create_connection(server.getsockname(), timeout=WAIT):
        poller.add_server(server)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            for data, source in poller.poll(0.1):
                if source is server:
                    assert isinstance(data, tuple)
                    client: SocketChannel = data[1]
                    poller.unregister(client)
                    return client
    raise AssertionError("no client accepted")


@pytest.fixture
def tcp_listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock


# -- reuse_port ----------------------------------------------------------------


def test_two_listeners_with_reuse_port_share_one_port() -> None:
    with listen("tcp:127.0.0.1:0", reuse_port=True) as first:
        port = first.getsockname()[1]
        with listen(f"tcp:127.0.0.1:{port}", reuse_port=True) as second:
            assert second.getsockname() == first.getsockname()
            assert second.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) != 0


def test_without_reuse_port_a_second_listener_on_the_port_is_refused() -> None:
    with listen("tcp:127.0.0.1:0", reuse_port=True) as first:
        port = first.getsockname()[1]
        with pytest.raises(OSError) as caught:
            listen(f"tcp:127.0.0.1:{port}")
        assert caught.value.errno == errno.EADDRINUSE
        assert f"tcp:127.0.0.1:{port}" in str(caught.value)


def test_the_kernel_spreads_connections_over_reuse_port_listeners() -> None:
    # The kernel picks a listener by a hash of each connection's addresses:
    # 64 connections all landing on one of two listeners has odds of 2**-63.
    with listen("tcp:127.0.0.1:0", reuse_port=True) as first:
        port = first.getsockname()[1]
        with listen(f"tcp:127.0.0.1:{port}", reuse_port=True) as second:
            clients = [socket.create_connection(("127.0.0.1", port), timeout=WAIT) for _ in range(64)]
            try:
                counts = []
                for server in (first, second):
                    server.setblocking(False)
                    count = 0
                    while True:
                        try:
                            accepted, _ = server.accept()
                        except BlockingIOError:
                            break
                        accepted.close()
                        count += 1
                    counts.append(count)
            finally:
                for client in clients:
                    client.close()
            assert sum(counts) == 64
            assert min(counts) > 0, counts


def test_a_listener_is_made_without_reuse_port_by_default() -> None:
    with listen("tcp:127.0.0.1:0") as server:
        assert server.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0


@pytest.mark.parametrize("value", [1, "yes", None])
def test_reuse_port_that_is_not_a_bool_raises_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="reuse_port"):
        listen("tcp:127.0.0.1:0", reuse_port=value)


def test_a_unix_listener_does_not_take_reuse_port(tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("r") / "s"
    with pytest.raises(TypeError, match="reuse_port"):
        listen(f"unix:{path}", reuse_port=True)


# -- keepalive -----------------------------------------------------------------


def test_keepalive_is_off_by_default_on_accepted_clients() -> None:
    with listen("tcp:127.0.0.1:0") as server, accept_through_poller(server) as client:
        assert client.socket.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0


def test_keepalive_true_turns_probes_on_for_accepted_clients() -> None:
    with listen("tcp:127.0.0.1:0", keepalive=True) as server, accept_through_poller(server) as client:
        assert client.socket.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0


def test_keepalive_seconds_set_the_idle_time_and_the_interval_of_accepted_clients() -> None:
    with listen("tcp:127.0.0.1:0", keepalive=30) as server, accept_through_poller(server) as client:
        sock = client.socket
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 30


def test_keepalive_fractional_seconds_round_up() -> None:
    with listen("tcp:127.0.0.1:0", keepalive=2.5) as server:
        assert server.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 3


@pytest.mark.parametrize("value", [0, 0.5, -1, 40000, float("nan")])
def test_keepalive_seconds_out_of_range_raise_value_error(value: float) -> None:
    with pytest.raises(ValueError, match="keepalive"):
        listen("tcp:127.0.0.1:0", keepalive=value)


def test_keepalive_that_is_not_a_number_raises_type_error() -> None:
    with pytest.raises(TypeError, match="keepalive"):
        listen("tcp:127.0.0.1:0", keepalive="30")


# -- fd:N ----------------------------------------------------------------------


def test_listen_fd_adopts_an_inherited_listening_socket(tcp_listener: socket.socket) -> None:
    fd = os.dup(tcp_listener.fileno())
    os.set_inheritable(fd, True)
    with listen(f"fd:{fd}") as server:
        assert server.fileno() == fd
        assert server.getsockname() == tcp_listener.getsockname()
        assert server.family == socket.AF_INET and server.type == socket.SOCK_STREAM
        assert not server.get_inheritable()
    with pytest.raises(OSError):  # the socket owned the descriptor: closed with it
        os.fstat(fd)


def test_a_child_process_serves_on_the_listening_socket_it_inherited(tcp_listener: socket.socket) -> None:
    program = textwrap.dedent(
        """
        import sys
        from channels import listen
        server = listen(sys.argv[1])
        client, _ = server.accept()
        client.sendall(b"served by the child")
        client.close()
        server.close()
        """
    )
    fd = tcp_listener.fileno()
    with socket.create_connection(tcp_listener.getsockname(), timeout=WAIT) as client:
        done = subprocess.run(
            [sys.executable, "-c", program, f"fd:{fd}"], pass_fds=(fd,), capture_output=True, timeout=WAIT, check=False
        )
        assert done.returncode == 0, done.stderr
        assert client.recv(100) == b"served by the child"


def _unopened_fd() -> int:
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    return fd


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda: os.open(os.devnull, os.O_RDONLY), "is not a socket"),
        (lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).detach(), "is not a stream socket"),
        (
            lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).detach(),
            "is a stream socket that is not listening",
        ),
    ],
    ids=["file", "datagram", "not-listening"],
)
def test_listen_fd_on_what_is_not_a_listening_socket_raises_value_error_and_leaves_it_open(
    make: object, problem: str
) -> None:
    fd = make()  # type: ignore[operator]
    try:
        with pytest.raises(ValueError, match=rf"'fd:{fd}' cannot be listened on: descriptor {fd} {problem}"):
            listen(f"fd:{fd}")
        os.fstat(fd)  # still open: refused, not adopted
        assert fcntl.fcntl(fd, fcntl.F_GETFD) is not None
    finally:
        os.close(fd)


def test_listen_fd_on_a_descriptor_not_open_raises_value_error() -> None:
    fd = _unopened_fd()
    with pytest.raises(ValueError, match=f"descriptor {fd} is not open"):
        listen(f"fd:{fd}")


@pytest.mark.parametrize("address", ["fd:", "fd:x", "fd:3,4", "fd:-1", "fd:99999999999"])
def test_listen_fd_malformed_raises_value_error(address: str) -> None:
    with pytest.raises(ValueError, match="malformed address"):
        listen(address)


def test_listen_fd_takes_no_options(tcp_listener: socket.socket) -> None:
    with pytest.raises(TypeError, match="backlog"):
        listen(f"fd:{tcp_listener.fileno()}", backlog=5)
