"""``channels.testing.check_channel`` run against every channel kind that comes
in connected pairs, and shown to fail on channels that break the contract.

``ProcessChannel`` is not here: a child such as ``cat`` is one channel that
echoes what it is written, not two connected ends, so it cannot be closed on
one side while the other reads. ``TestChannel`` is not either: its peer is the
test itself. Both keep the contract mixins of ``test_channel.py``
(``TestCatChildChannel``, ``TestTestChannel``).
"""

from __future__ import annotations

import inspect
import os
import socket
import time
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path

import pytest

from channels import DEFAULT_MAX_PENDING, Channel, PipeChannel, ProcessChannel, SocketChannel
from channels.base import DEFAULT_CLOSE_TIMEOUT, Buffer
from channels.framing import Delimited, Framing, LengthPrefixed, Lines, Netstrings
from channels.poller import Poller
from channels.testing import check_channel
from channels.tls import TLSChannel
from tests.helpers import WAIT
from tests.test_tls import Certs, make_certs

Pair = tuple[Channel, Channel]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("conformance-tls"))


def pipe_pair() -> Pair:
    """Two ``PipeChannel``s over two ``os.pipe()`` pairs, one each way."""
    a_in, b_out = os.pipe()
    b_in, a_out = os.pipe()
    return PipeChannel(a_in, a_out), PipeChannel(b_in, b_out)


def one_way_pipe_pair() -> Pair:
    """A write-only and a read-only ``PipeChannel`` over one pipe."""
    faucet, sink = os.pipe()
    return PipeChannel(sink=sink), PipeChannel(faucet)


def socketpair_pair() -> Pair:
    left, right = socket.socketpair()
    return SocketChannel(left), SocketChannel(right)


def tcp_pair() -> Pair:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    return SocketChannel(client), SocketChannel(server)


@pytest.fixture
def unix_pair(tmp_path: Path) -> Callable[[], Pair]:
    names = count()

    def make() -> Pair:
        path = str(tmp_path / f"s{next(names)}")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(path)
            listener.listen(1)
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.connect(path)
            server, _ = listener.accept()
        os.unlink(path)
        return SocketChannel(client), SocketChannel(server)

    return make


def test_a_pipe_channel_pair_keeps_the_contract() -> None:
    check_channel(pipe_pair)


def test_a_one_way_pipe_keeps_the_contract_in_its_direction() -> None:
    check_channel(one_way_pipe_pair, one_way=True)


def test_a_socketpair_keeps_the_contract() -> None:
    check_channel(socketpair_pair)


def test_a_loopback_tcp_connection_keeps_the_contract() -> None:
    check_channel(tcp_pair)


def test_a_unix_socket_connection_keeps_the_contract(unix_pair: Callable[[], Pair]) -> None:
    check_channel(unix_pair)


FRAMINGS: list[str | Framing] = [
    "line",
    Lines(),
    Delimited(b"\0"),
    Delimited(b"\r\n"),
    LengthPrefixed(1),
    LengthPrefixed(4),
    Netstrings(),
]


@pytest.mark.parametrize("framing", FRAMINGS, ids=repr)
def test_a_socketpair_keeps_the_contract_with_each_framing(framing: str | Framing) -> None:
    def make() -> Pair:
        left, right = socket.socketpair()
        return SocketChannel(left, buffering=framing), SocketChannel(right, buffering=framing)

    check_channel(make)


def test_check_channel_fails_on_a_framed_channel_that_returns_part_of_a_frame() -> None:
    class HalfFrames(SocketChannel):
        """Returns each frame in two reads."""

        held = b""

        def read(self) -> bytes:
            if self.held:
                data, self.held = self.held, b""
                return data
            frame = super().read()
            half = len(frame) // 2
            self.held = frame[half:]
            return frame[:half]

    def make() -> Pair:
        left, right = socket.socketpair()
        return HalfFrames(left, buffering=Netstrings()), HalfFrames(right, buffering=Netstrings())

    with pytest.raises(AssertionError, match="one whole frame each"):
        check_channel(make, timeout=0.5)


def test_a_tls_connection_keeps_the_contract(certs: Certs) -> None:
    def make() -> Pair:
        ours, theirs = socket.socketpair()
        client = TLSChannel(ours, certs.client_context(), server_hostname="localhost")
        return client, TLSChannel(theirs, certs.server_context(), server_side=True)

    check_channel(make)


# -- channels that break a promise, and the check that catches each -------------


class DroppingChannel(SocketChannel):
    """Loses the last byte of every read of more than one byte."""

    def _read(self) -> bytes:
        data = super()._read()
        return data[:-1] if len(data) > 1 else data


class ReorderingChannel(SocketChannel):
    """Sends the chunks of one system call last first."""

    def _send(self, buffers: list[bytes | memoryview]) -> int:
        return super()._send(buffers[::-1])


class ForgetfulCloseChannel(SocketChannel):
    """``close()`` drops pending output instead of delivering it."""

    def close(self, timeout: float | None = DEFAULT_CLOSE_TIMEOUT) -> None:
        self.abort()


class TextAcceptingChannel(SocketChannel):
    """Encodes ``str`` instead of refusing it."""

    def write(self, *data: Buffer | str) -> None:
        super().write(*(item.encode() if isinstance(item, str) else item for item in data))


class LeakyErrorsChannel(SocketChannel):
    """Lets the OS error through when read after ``close()``."""

    def read(self) -> bytes:
        if self.closed:
            return self.socket.recv(1)
        return super().read()


class EndlessChannel(SocketChannel):
    """Never reports the end of the stream."""

    def _read(self) -> bytes:
        try:
            return super()._read()
        except Exception:
            return b""


BROKEN: list[tuple[type[SocketChannel], str]] = [
    (DroppingChannel, "intact"),
    (ReorderingChannel, "in order"),
    (ForgetfulCloseChannel, r"close\(\) delivers pending output"),
    (TextAcceptingChannel, "TypeError naming bytes"),
    (LeakyErrorsChannel, "raised OSError"),
    (EndlessChannel, "no end of stream"),
]


@pytest.fixture(params=BROKEN, ids=[kind.__name__ for kind, _ in BROKEN])
def broken(request: pytest.FixtureRequest) -> tuple[type[SocketChannel], str]:
    kind: tuple[type[SocketChannel], str] = request.param
    return kind


def test_check_channel_fails_on_a_channel_that_breaks_a_promise(broken: tuple[type[SocketChannel], str]) -> None:
    kind, promise = broken

    def make() -> Pair:
        left, right = socket.socketpair()
        return kind(left), kind(right)

    with pytest.raises(AssertionError, match=promise):
        check_channel(make, timeout=0.5)


def test_check_channel_fails_on_a_factory_that_leaks_descriptors() -> None:
    leaked: list[int] = []

    def make() -> Pair:
        leaked.append(os.open(os.devnull, os.O_RDONLY))
        return socketpair_pair()

    try:
        with pytest.raises(AssertionError, match="frees its descriptors"):
            check_channel(make)
    finally:
        for fd in leaked:
            os.close(fd)


def test_check_channel_refuses_a_factory_that_does_not_return_two_channels() -> None:
    made: list[socket.socket] = []

    def make() -> Iterator[socket.socket]:
        made.extend(socket.socketpair())
        return iter(made)

    try:
        with pytest.raises(TypeError, match="two Channels"):
            check_channel(make)  # type: ignore[arg-type]
    finally:
        for sock in made:
            sock.close()


# -- the documented defaults that protect a server (see SECURITY.md) -------------


def test_channels_and_accepted_clients_hold_at_most_64_mib_by_default() -> None:
    assert DEFAULT_MAX_PENDING == 64 * 1024 * 1024
    with socket.create_server(("127.0.0.1", 0)) as listener, Poller() as poller:
        poller.add_server(listener)
        client = SocketChannel(socket.create_connection(listener.getsockname()))
        with client:
            assert client.max_pending == DEFAULT_MAX_PENDING
            deadline = time.monotonic() + WAIT
            accepted: list[Channel] = []
            while not accepted and time.monotonic() < deadline:
                accepted = [entry[0][1] for entry in poller.poll(0.01) if isinstance(entry[0], tuple)]
            assert accepted and accepted[0].max_pending == DEFAULT_MAX_PENDING


def test_close_lingers_at_most_five_seconds_by_default() -> None:
    assert DEFAULT_CLOSE_TIMEOUT == 5.0
    for close in (Channel.close, Channel.shutdown_write, Poller.close_all, ProcessChannel.close):
        assert inspect.signature(close).parameters["timeout"].default == DEFAULT_CLOSE_TIMEOUT, close
