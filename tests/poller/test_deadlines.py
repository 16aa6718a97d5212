"""The Poller: servers' deadlines (``add_server(idle_timeout=, handshake_timeout=)``).

On a :class:`~channels.testing.FakeClock` (nothing sleeps) and on the real
clock with short timeouts; real TCP clients on 127.0.0.1, real TLS.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from channels import Channel, SocketChannel
from channels.poller import Poller, PollResult
from channels.testing import FakeClock
from channels.tls import TLSChannel, TLSServerSocket, connect_tls
from tests.helpers import WAIT
from tests.poller.support import accepted, channel_pair, connect, data_of, ended, poll_until, tcp_server


def end_cause(poller: Poller, channel: Channel) -> BaseException | None:
    """Why the poller ended ``channel``."""
    return channel.end_cause


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_poller(clock: FakeClock) -> Iterator[Poller]:
    with Poller(clock=clock) as poller:
        yield poller


@pytest.fixture(scope="module")
def tls_context(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context and a client context that trusts it."""
    directory: Path = tmp_path_factory.mktemp("tls")
    authority = trustme.CA()
    cert_file = str(directory / "server.pem")
    authority.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(cert_file)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file)
    client = ssl.create_default_context()
    authority.configure_trust(client)
    return server, client


def accept_one(
    poller: Poller, stack: contextlib.ExitStack, server: socket.socket
) -> tuple[SocketChannel, socket.socket]:
    """Connect a client to ``server`` and poll until the poller accepted it."""
    peer = connect(stack, server)
    [client] = accepted(poll_until(poller, lambda results: bool(accepted(results))))
    stack.callback(client.close)
    return client, peer


def tls_server(stack: contextlib.ExitStack, context: ssl.SSLContext) -> TLSServerSocket:
    server = TLSServerSocket.from_socket(tcp_server(stack), context)
    stack.callback(server.close)
    return server


# -- idle clients ----------------------------------------------------------------


def test_a_silent_client_is_closed_and_reported_after_its_idle_timeout(
    fake_poller: Poller, clock: FakeClock, stack: contextlib.ExitStack
) -> None:
    server = tcp_server(stack)
    fake_poller.add_server(server, idle_timeout=30)
    client, peer = accept_one(fake_poller, stack, server)

    clock.advance(29.9)
    assert fake_poller.poll(0) == []
    clock.advance(0.1)
    result = fake_poller.poll(0)

    assert result == [(b"", client)]
    assert client.closed
    assert isinstance(end_cause(fake_poller, client), TimeoutError)
    assert "idle_timeout" in str(end_cause(fake_poller, client))
    assert peer.recv(16) == b""  # the peer sees its connection closed
    assert len(fake_poller) == 0


def test_a_client_that_speaks_is_given_its_idle_timeout_again(
    fake_poller: Poller, clock: FakeClock, stack: contextlib.ExitStack
) -> None:
    server = tcp_server(stack)
    fake_poller.add_server(server, idle_timeout=30)
    client, peer = accept_one(fake_poller, stack, server)

    clock.advance(20)
    peer.sendall(b"still here")
    assert data_of(poll_until(fake_poller, bool), client) == [b"still here"]
    clock.advance(20)  # 40 s since it came, 20 since it spoke
    assert fake_poller.poll(0) == []

    clock.advance(10)
    assert fake_poller.poll(0) == [(b"", client)]


def test_an_idle_timed_out_client_is_reported_once(
    fake_poller: Poller, clock: FakeClock, stack: contextlib.ExitStack
) -> None:
    server = tcp_server(stack)
    fake_poller.add_server(server, idle_timeout=1)
    client, _ = accept_one(fake_poller, stack, server)

    clock.advance(1)
    assert fake_poller.poll(0) == [(b"", client)]
    clock.advance(100)
    assert fake_poller.poll(0) == []


def test_a_client_that_ended_is_not_timed_out_later(
    fake_poller: Poller, clock: FakeClock, stack: contextlib.ExitStack
) -> None:
    server = tcp_server(stack)
    fake_poller.add_server(server, idle_timeout=5)
    client, peer = accept_one(fake_poller, stack, server)

    peer.close()
    poll_until(fake_poller, ended(client))
    clock.advance(10)

    assert fake_poller.poll(0) == []
    assert end_cause(fake_poller, client) is None


def test_an_unregistered_client_is_not_timed_out(
    fake_poller: Poller, clock: FakeClock, stack: contextlib.ExitStack
) -> None:
    server = tcp_server(stack)
    fake_poller.add_server(server, idle_timeout=5)
    client, _ = accept_one(fake_poller, stack, server)

    fake_poller.unregister(client)
    clock.advance(10)

    assert fake_poller.poll(0) == []
    assert not client.closed


def test_a_paused_client_is_not_timed_out_and_gets_its_whole_timeout_when_resumed(
    fake_poller: Poller, clock: FakeClock, stack: contextlib.ExitStack
) -> None:
    server = tcp_server(stack)
    fake_poller.add_server(server, idle_timeout=5)
    client, _ = accept_one(fake_poller, stack, server)

    fake_poller.pause_reading(client)
    clock.advance(60)
    assert fake_poller.poll(0) == []
    fake_poller.resume_reading(client)
    clock.advance(4)
    assert fake_poller.poll(0) == []

    clock.advance(1)
    assert fake_poller.poll(0) == [(b"", client)]


def test_clients_of_a_server_without_idle_timeout_are_never_timed_out(
    fake_poller: Poller, clock: FakeClock, stack: contextlib.ExitStack
) -> None:
    server = tcp_server(stack)
    fake_poller.add_server(server)
    client, _ = accept_one(fake_poller, stack, server)

    clock.advance(1_000_000)

    assert fake_poller.poll(0) == []
    assert not client.closed


def test_a_channel_registered_beside_a_server_with_idle_timeout_is_never_timed_out(
    fake_poller: Poller, clock: FakeClock, stack: contextlib.ExitStack
) -> None:
    server = tcp_server(stack)
    fake_poller.add_server(server, idle_timeout=5)
    accept_one(fake_poller, stack, server)
    channel, _ = channel_pair(stack)
    fake_poller.register(channel)

    clock.advance(10)
    results = fake_poller.poll(0)
    fake_poller.unregister(channel)
    clock.advance(10)

    assert (b"", channel) not in results
    assert fake_poller.poll(0) == []
    assert not channel.closed


def test_adding_a_server_again_keeps_its_first_idle_timeout(
    fake_poller: Poller, clock: FakeClock, stack: contextlib.ExitStack
) -> None:
    server = tcp_server(stack)
    fake_poller.add_server(server, idle_timeout=5)
    fake_poller.add_server(server, idle_timeout=500)
    client, _ = accept_one(fake_poller, stack, server)

    clock.advance(5)

    assert fake_poller.poll(0) == [(b"", client)]


def test_a_silent_client_is_timed_out_on_the_real_clock(poller: Poller, stack: contextlib.ExitStack) -> None:
    server = tcp_server(stack)
    poller.add_server(server, idle_timeout=0.1)
    start = time.monotonic()
    client, peer = accept_one(poller, stack, server)

    results = poll_until(poller, ended(client))

    assert time.monotonic() - start >= 0.1
    assert results == [(b"", client)]
    assert isinstance(end_cause(poller, client), TimeoutError)
    assert peer.recv(16) == b""


def test_an_idle_timeout_drops_pending_output_and_never_blocks(
    fake_poller: Poller, clock: FakeClock, stack: contextlib.ExitStack
) -> None:
    server = tcp_server(stack)
    fake_poller.add_server(server, idle_timeout=1)
    client, _ = accept_one(fake_poller, stack, server)
    client.write(b"x" * (16 * 1024 * 1024))  # far more than the peer, which never reads, takes
    assert client.pending_output

    clock.advance(1)
    start = time.monotonic()
    result = fake_poller.poll(0)

    assert result == [(b"", client)]
    assert time.monotonic() - start < 1
    assert client.pending_output == 0


# -- TLS handshakes --------------------------------------------------------------


def test_a_tls_client_that_never_finishes_its_handshake_is_dropped_after_ten_seconds(
    fake_poller: Poller, clock: FakeClock, stack: contextlib.ExitStack, tls_context: tuple[ssl.SSLContext, ...]
) -> None:
    server = tls_server(stack, tls_context[0])
    fake_poller.add_server(server)
    client, peer = accept_one(fake_poller, stack, server)  # a plain TCP peer: it never says hello
    assert isinstance(client, TLSChannel)

    clock.advance(9.9)
    assert fake_poller.poll(0) == []
    clock.advance(0.1)

    assert fake_poller.poll(0) == [(b"", client)]
    assert isinstance(end_cause(fake_poller, client), TimeoutError)
    assert "handshake_timeout" in str(end_cause(fake_poller, client))
    assert peer.recv(16) == b""


def test_handshake_timeout_none_lets_a_tls_client_take_its_time(
    fake_poller: Poller, clock: FakeClock, stack: contextlib.ExitStack, tls_context: tuple[ssl.SSLContext, ...]
) -> None:
    server = tls_server(stack, tls_context[0])
    fake_poller.add_server(server, handshake_timeout=None)
    client, _ = accept_one(fake_poller, stack, server)

    clock.advance(1_000_000)

    assert fake_poller.poll(0) == []
    assert not client.closed


def test_a_tls_client_that_finished_its_handshake_is_not_dropped(
    fake_poller: Poller, clock: FakeClock, stack: contextlib.ExitStack, tls_context: tuple[ssl.SSLContext, ...]
) -> None:
    server = tls_server(stack, tls_context[0])
    fake_poller.add_server(server, handshake_timeout=5)
    port = server.getsockname()[1]
    connected: list[TLSChannel] = []
    connecting = threading.Thread(
        target=lambda: connected.append(
            connect_tls("127.0.0.1", port, server_hostname="localhost", context=tls_context[1], timeout=WAIT)
        )
    )
    connecting.start()

    def handshake_done(results: list[PollResult]) -> bool:
        clients = accepted(results)
        return bool(clients) and all(getattr(client, "handshake_done", False) for client in clients)

    results = poll_until(fake_poller, lambda results: not connecting.is_alive() and handshake_done(results))
    connecting.join(WAIT)
    [client] = accepted(results)
    stack.callback(client.close)
    stack.callback(connected[0].close)

    clock.advance(10)

    assert fake_poller.poll(0) == []
    assert not client.closed


def test_a_tls_client_that_never_says_hello_is_dropped_on_the_real_clock(
    poller: Poller, stack: contextlib.ExitStack, tls_context: tuple[ssl.SSLContext, ...]
) -> None:
    server = tls_server(stack, tls_context[0])
    poller.add_server(server, handshake_timeout=0.1)
    client, peer = accept_one(poller, stack, server)

    assert poll_until(poller, ended(client)) == [(b"", client)]
    assert peer.recv(16) == b""


def test_a_plain_server_ignores_handshake_timeout(
    fake_poller: Poller, clock: FakeClock, stack: contextlib.ExitStack
) -> None:
    server = tcp_server(stack)
    fake_poller.add_server(server, handshake_timeout=1)
    client, _ = accept_one(fake_poller, stack, server)

    clock.advance(100)

    assert fake_poller.poll(0) == []
    assert not client.closed


# -- arguments ---------------------------------------------------------------------


@pytest.mark.parametrize("option", ["idle_timeout", "handshake_timeout"])
@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf")])
def test_add_server_refuses_a_deadline_that_is_not_above_zero(
    poller: Poller, stack: contextlib.ExitStack, option: str, value: float
) -> None:
    server = tcp_server(stack)
    options: dict[str, Any] = {option: value}
    with pytest.raises(ValueError, match="add_server"):
        poller.add_server(server, **options)
    assert poller.poll(0) == []  # the server was not added


@pytest.mark.parametrize("option", ["idle_timeout", "handshake_timeout"])
def test_add_server_refuses_a_deadline_that_is_not_a_number(
    poller: Poller, stack: contextlib.ExitStack, option: str
) -> None:
    server = tcp_server(stack)
    options: dict[str, Any] = {option: "30"}
    with pytest.raises(TypeError, match="add_server"):
        poller.add_server(server, **options)
