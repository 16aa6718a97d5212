"""TLS channels: handshakes that never block a poller, certificates verified
by default, clean and cut ends told apart, interop with the ``openssl`` tools.

Certificates are made for each run with ``trustme``; every peer is on the
loopback interface or a socket pair.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
import trustme

from channels import Channel, EndpointClosedException
from channels.poller import Poller
from channels.tls import TLSChannel, TLSServerSocket, connect_tls, listen_tls
from tests.helpers import WAIT, open_fd_count, read_exactly, read_lines
from tests.test_channel import KIB, SocketContract, StreamPeer, read_until_refused

MIB = 1024 * KIB

needs_openssl = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="the openssl command-line tool is not on PATH"
)


@dataclass(frozen=True)
class Certs:
    """A test CA's certificate file, and the server's certificate and key."""

    ca_file: str
    cert_file: str

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file)
        return context


def make_certs(directory: Path) -> Certs:
    """A fresh CA, and a certificate it signed for ``localhost``, in ``directory``."""
    authority = trustme.CA()
    ca_file = str(directory / "ca.pem")
    cert_file = str(directory / "server.pem")
    authority.cert_pem.write_to_path(ca_file)
    # Only the name: an IP address must be checked against it, and refused.
    authority.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(cert_file)
    return Certs(ca_file, cert_file)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("tls"))


# Before 3.13 the ssl module reports an error OpenSSL met while reading,
# ECONNRESET included, as SSLEOFError (CPython gh-115627); the errno is lost.
RESET_CAUSES: tuple[type[OSError], ...] = (
    (ConnectionResetError,) if sys.version_info >= (3, 13) else (ConnectionResetError, ssl.SSLEOFError)
)


# -- helpers -------------------------------------------------------------------


def lazy_client(address: tuple[str, int], certs: Certs, **options: Any) -> TLSChannel:
    """A TLS client whose handshake runs as the channel is used."""
    return TLSChannel(socket.create_connection(address), certs.client_context(), server_hostname="localhost", **options)


def tls_pair(certs: Certs, client_context: ssl.SSLContext | None = None) -> tuple[TLSChannel, TLSChannel]:
    """A TLS client and server over a socket pair, handshakes not done."""
    ours, theirs = socket.socketpair()
    client = TLSChannel(ours, client_context or certs.client_context(), server_hostname="localhost")
    return client, TLSChannel(theirs, certs.server_context(), server_side=True)


class Loop:
    """Drives a poller and keeps what it reports, channel by channel."""

    def __init__(self, poller: Poller, on_data: Callable[[bytes, Channel], object] | None = None) -> None:
        self.poller = poller
        self.on_data = on_data
        self.received: defaultdict[Channel, bytearray] = defaultdict(bytearray)
        self.ended: list[Channel] = []
        self.accepted: list[TLSChannel] = []

    def run_until(self, predicate: Callable[[], object], timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"condition not met within {timeout}s"
            for data, source in self.poller.poll(0.05):
                if isinstance(data, tuple):
                    client = data[1]
                    assert isinstance(client, TLSChannel)
                    self.accepted.append(client)
                else:
                    assert isinstance(source, Channel)
                    if data:
                        self.received[source] += data
                        if self.on_data is not None:
                            self.on_data(data, source)
                    else:
                        self.ended.append(source)


def end_of(channel: Channel) -> EndpointClosedException:
    """The exception that ended ``channel``'s input."""
    with pytest.raises(EndpointClosedException) as raised:
        channel.read()
    return raised.value


def serve_in_thread(server: socket.socket) -> Iterator[tuple[str, int]]:
    """Run an echo server on ``server`` in a thread; yield its address."""
    poller = Poller()
    poller.add_server(server)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            for data, source in poller.poll(WAIT):
                if isinstance(source, Channel) and isinstance(data, bytes):
                    if data:
                        source.write(data)
                    else:
                        source.close()

    thread = threading.Thread(target=serve, name="tls-echo")
    thread.start()
    try:
        yield server.getsockname()[:2]
    finally:
        stop.set()
        poller.wakeup()
        thread.join(WAIT)
        poller.close()


@pytest.fixture
def echo_server(certs: Certs) -> Iterator[tuple[str, int]]:
    """A poller TLS echo server on 127.0.0.1, in a thread."""
    yield from serve_in_thread(listen_tls("127.0.0.1", 0, certfile=certs.cert_file))


@pytest.fixture
def silent_server() -> Iterator[tuple[str, int]]:
    """A listener that never accepts: connections complete, nothing answers."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield listener.getsockname()[:2]


def handshake_both(loop: Loop, *channels: TLSChannel) -> None:
    loop.run_until(lambda: all(channel.handshake_done for channel in channels))


# -- connect_tls -----------------------------------------------------------------


def test_connect_tls_returns_a_channel_that_talks_to_a_poller_tls_server(
    echo_server: tuple[str, int], certs: Certs
) -> None:
    with connect_tls(*echo_server, cafile=certs.ca_file, server_hostname="localhost") as channel:
        assert channel.handshake_done
        channel.write(b"ping\n")
        assert read_exactly(channel, 5) == b"ping\n"


def test_connect_tls_refuses_a_certificate_from_an_unknown_ca(echo_server: tuple[str, int]) -> None:
    with pytest.raises(EndpointClosedException) as raised:
        connect_tls(*echo_server, server_hostname="localhost")
    assert isinstance(raised.value.__cause__, ssl.SSLCertVerificationError)


def test_connect_tls_refuses_a_certificate_for_another_name(echo_server: tuple[str, int], certs: Certs) -> None:
    with pytest.raises(EndpointClosedException) as raised:
        connect_tls(*echo_server, cafile=certs.ca_file, server_hostname="example.org")
    assert isinstance(raised.value.__cause__, ssl.SSLCertVerificationError)


def test_connect_tls_checks_the_host_it_was_given_by_default(echo_server: tuple[str, int], certs: Certs) -> None:
    host, port = echo_server  # 127.0.0.1, which the certificate does not name
    with pytest.raises(EndpointClosedException) as raised:
        connect_tls(host, port, cafile=certs.ca_file)
    assert isinstance(raised.value.__cause__, ssl.SSLCertVerificationError)


def test_connect_tls_with_a_context_uses_that_context(echo_server: tuple[str, int], certs: Certs) -> None:
    with connect_tls(*echo_server, context=certs.client_context(), server_hostname="localhost") as channel:
        assert channel.handshake_done


def test_connect_tls_refuses_both_cafile_and_context(certs: Certs) -> None:
    with pytest.raises(ValueError, match="cafile or context"):
        connect_tls("127.0.0.1", 1, cafile=certs.ca_file, context=certs.client_context())


def test_connect_tls_closes_the_socket_when_the_channel_cannot_be_made(silent_server: tuple[str, int]) -> None:
    before = open_fd_count()
    with pytest.raises(ValueError, match="buffering"):
        connect_tls(*silent_server, buffering="lines")
    assert open_fd_count() == before


def test_connect_tls_gives_up_on_a_server_that_never_answers(silent_server: tuple[str, int], certs: Certs) -> None:
    before = open_fd_count()
    with pytest.raises(TimeoutError):
        connect_tls(*silent_server, cafile=certs.ca_file, server_hostname="localhost", timeout=0.2)
    assert open_fd_count() == before


# -- the handshake inside a poller --------------------------------------------------


def test_a_handshake_in_progress_does_not_block_another_channel(certs: Certs) -> None:
    server = listen_tls("127.0.0.1", 0, certfile=certs.cert_file)
    with Poller() as poller, socket.create_connection(server.getsockname()) as stalled:
        poller.add_server(server)
        stalled.sendall(b"\x16\x03\x01")  # the start of a ClientHello, and then nothing
        loop = Loop(poller, on_data=lambda data, source: source.write(data))
        loop.run_until(lambda: loop.accepted)
        client = lazy_client(server.getsockname(), certs)
        poller.register(client)
        client.write(b"hello")
        loop.run_until(lambda: loop.received[client] == b"hello")
        assert len(loop.accepted) == 2
        assert not loop.accepted[0].handshake_done
        assert loop.accepted[0] not in loop.ended


def test_writes_made_before_the_handshake_completes_are_delivered_after_it(certs: Certs) -> None:
    server = listen_tls("127.0.0.1", 0, certfile=certs.cert_file)
    with Poller() as poller:
        poller.add_server(server)
        client = lazy_client(server.getsockname(), certs)
        poller.register(client)
        client.write(b"ping\n")
        loop = Loop(poller)
        loop.run_until(lambda: loop.accepted)
        accepted = loop.accepted[0]
        assert not accepted.handshake_done
        accepted.write(b"greeting\n")
        loop.run_until(lambda: loop.received[client] == b"greeting\n" and loop.received[accepted] == b"ping\n")


def test_flush_on_its_own_completes_the_handshake_to_deliver_output(certs: Certs) -> None:
    client, server = tls_pair(certs)
    with client, server:
        client.write(b"ping\n")
        assert client.pending_output == 5  # the server's part of the handshake has to come first

        def echo_once() -> None:
            server.handshake(WAIT)
            server.write(read_exactly(server, 5))
            server.flush(WAIT)

        thread = threading.Thread(target=echo_once)
        thread.start()
        try:
            assert client.flush(WAIT)
            assert read_exactly(client, 5) == b"ping\n"
        finally:
            thread.join(WAIT)


def test_handshake_returns_false_when_the_time_runs_out(silent_server: tuple[str, int], certs: Certs) -> None:
    with lazy_client(silent_server, certs) as client:
        assert not client.handshake(0.05)
        assert not client.handshake_done


def test_handshake_on_a_closed_channel_raises_endpoint_closed(silent_server: tuple[str, int], certs: Certs) -> None:
    client = lazy_client(silent_server, certs)
    client.close()
    with pytest.raises(EndpointClosedException):
        client.handshake(0)


def test_a_failed_handshake_ends_both_channels_with_the_tls_error_chained(certs: Certs) -> None:
    client, server = tls_pair(certs, client_context=ssl.create_default_context())  # the test CA is unknown
    with client, server, Poller() as poller:
        poller.register(client)
        poller.register(server)
        loop = Loop(poller)
        loop.run_until(lambda: client in loop.ended and server in loop.ended)
        assert isinstance(end_of(client).__cause__, ssl.SSLCertVerificationError)
        assert isinstance(end_of(server).__cause__, ssl.SSLError)


def test_a_certificate_refused_while_writing_ends_the_read_side_too(certs: Certs) -> None:
    client, server = tls_pair(certs, client_context=ssl.create_default_context())  # the test CA is unknown
    with client, server:
        server.handshake(0)  # the server's certificate is on its way
        with pytest.raises(EndpointClosedException):
            client.write(b"x")  # the write meets the certificate first, and refuses it
        assert isinstance(end_of(client).__cause__, ssl.SSLCertVerificationError)


def test_handshake_after_a_failed_one_raises_with_the_cause(certs: Certs) -> None:
    client, server = tls_pair(certs, client_context=ssl.create_default_context())
    with client, server:
        server.handshake(0)
        for _ in range(2):
            with pytest.raises(EndpointClosedException) as raised:
                client.handshake(WAIT)
            assert isinstance(raised.value.__cause__, ssl.SSLCertVerificationError)


def test_a_reset_during_the_handshake_ends_the_channel_with_the_reset_as_cause(certs: Certs) -> None:
    ours, theirs = socket.socketpair()
    with TLSChannel(ours, certs.client_context(), server_hostname="localhost") as client:
        theirs.close()  # with the ClientHello unread: a reset
        assert isinstance(end_of(client).__cause__, RESET_CAUSES)


def test_a_handshake_that_must_wait_for_room_to_write_resumes_when_the_socket_drains(certs: Certs) -> None:
    ours, theirs = socket.socketpair()
    client = TLSChannel(ours, certs.client_context(), server_hostname="localhost")  # sends its ClientHello
    theirs.setblocking(False)
    junk = 0  # bytes sent ahead of the server's handshake, filling the client's socket
    for size in (4096, 256, 1):
        with contextlib.suppress(BlockingIOError):
            while True:
                junk += theirs.send(bytes(size))
    server = TLSChannel(theirs, certs.server_context(), server_side=True)
    with client, server, Poller() as poller:
        poller.register(server)
        poller.poll(WAIT)  # the server reads the ClientHello and cannot send its answer
        poller.poll(0)  # it waits for room now, watching write readiness
        assert not server.handshake_done
        while junk:
            junk -= len(socket.socket.recv(client.socket, junk))  # past the TLS layer
        poller.register(client)
        handshake_both(Loop(poller), client, server)


def test_a_read_that_completes_the_handshake_sends_what_waited_for_it(certs: Certs) -> None:
    client, server = tls_pair(certs)
    with client, server:
        client.write(b"request")
        assert client.pending_output == 7  # the server's part of the handshake has to come first
        server.handshake(0)
        assert client.read() == b""  # the handshake completes here, and the request leaves
        assert client.pending_output == 0
        assert read_exactly(server, 7) == b"request"


# -- moving data ------------------------------------------------------------------


def test_large_transfers_go_through_intact_in_both_directions(certs: Certs) -> None:
    size = 4 * MIB
    data = os.urandom(size)
    server = listen_tls("127.0.0.1", 0, certfile=certs.cert_file)
    with Poller() as poller:
        poller.add_server(server)
        client = lazy_client(server.getsockname(), certs)
        poller.register(client)
        loop = Loop(poller, on_data=lambda chunk, source: source.write(chunk) if source is not client else None)
        client.write(data)
        loop.run_until(lambda: len(loop.received[client]) >= size, timeout=3 * WAIT)
        (accepted,) = loop.accepted
        assert hashlib.sha256(loop.received[accepted]).digest() == hashlib.sha256(data).digest()
        assert hashlib.sha256(loop.received[client]).digest() == hashlib.sha256(data).digest()


def test_decrypted_bytes_poll_cannot_see_are_delivered_without_another_packet(certs: Certs) -> None:
    client, server = tls_pair(certs)
    with client, server, Poller() as poller:
        poller.register(client)
        poller.register(server)
        handshake_both(Loop(poller), client, server)
        client.read_size = 5  # far less than the record about to arrive
        payload = os.urandom(3000)
        server.write(payload)
        assert server.flush(WAIT)  # one record, and then the server stays silent
        entries = poller.poll(WAIT)
        assert b"".join(data for data, source in entries if source is client and isinstance(data, bytes)) == payload


def test_a_line_channel_reports_every_line_of_one_record(certs: Certs) -> None:
    ours, theirs = socket.socketpair()
    client = TLSChannel(ours, certs.client_context(), server_hostname="localhost", buffering="line")
    server = TLSChannel(theirs, certs.server_context(), server_side=True)
    with client, server, Poller() as poller:
        poller.register(client)
        poller.register(server)
        handshake_both(Loop(poller), client, server)
        server.write(b"one\ntwo\nthree\n")
        assert server.flush(WAIT)
        entries = poller.poll(WAIT)
        assert [data for data, source in entries if source is client] == [b"one\n", b"two\n", b"three\n"]


# -- ending -------------------------------------------------------------------------


def test_close_sends_close_notify_so_the_peer_sees_a_clean_end(certs: Certs) -> None:
    client, server = tls_pair(certs)
    with client, server, Poller() as poller:
        poller.register(client)
        poller.register(server)
        loop = Loop(poller)
        handshake_both(loop, client, server)
        client.close()
        loop.run_until(lambda: server in loop.ended)
        assert end_of(server).__cause__ is None


def test_abort_sends_no_close_notify_so_the_peer_sees_a_cut_stream(certs: Certs) -> None:
    client, server = tls_pair(certs)
    with client, server, Poller() as poller:
        poller.register(client)
        poller.register(server)
        loop = Loop(poller)
        handshake_both(loop, client, server)
        client.abort()
        loop.run_until(lambda: server in loop.ended)
        assert isinstance(end_of(server).__cause__, ssl.SSLEOFError)


def test_data_that_came_with_the_close_notify_is_read_before_the_end(certs: Certs) -> None:
    client, server = tls_pair(certs)
    with client, server, Poller() as poller:
        poller.register(client)
        poller.register(server)
        loop = Loop(poller)
        handshake_both(loop, client, server)
        server.write(b"last words")
        server.close()  # both reach the client before its next poll
        loop.run_until(lambda: client in loop.ended)
        assert loop.received[client] == b"last words"


def test_shutdown_write_is_refused_over_tls(certs: Certs) -> None:
    client, server = tls_pair(certs)
    with client, server, pytest.raises(NotImplementedError):
        client.shutdown_write()


def test_shutdown_write_on_a_closed_tls_channel_raises_endpoint_closed(certs: Certs) -> None:
    client, server = tls_pair(certs)
    client.close()
    server.close()
    with pytest.raises(EndpointClosedException):
        client.shutdown_write()


# -- construction ------------------------------------------------------------------


def test_a_context_that_is_not_an_ssl_context_is_refused_and_the_socket_left_open() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        with pytest.raises(TypeError, match="SSLContext"):
            TLSChannel(ours, "not a context")  # type: ignore[arg-type]
        ours.sendall(b"still usable")


def test_a_client_without_server_hostname_is_refused_and_the_socket_left_open(certs: Certs) -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        with pytest.raises(ValueError, match="server_hostname"):
            TLSChannel(ours, certs.client_context())
        ours.sendall(b"still usable")


def test_listen_tls_refuses_a_file_without_a_certificate_and_leaves_no_socket(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate\n")
    before = open_fd_count()
    with pytest.raises(ssl.SSLError):
        listen_tls("127.0.0.1", 0, certfile=bogus)
    assert open_fd_count() == before


def test_listen_tls_serves_ipv6_loopback(certs: Certs) -> None:
    if not socket.has_ipv6:
        pytest.skip("this Python has no IPv6 support")
    try:
        server = listen_tls("::1", 0, certfile=certs.cert_file)
    except OSError as err:
        pytest.skip(f"no IPv6 loopback on this machine ({err})")
    with Poller() as poller:
        poller.add_server(server)
        client = lazy_client(server.getsockname()[:2], certs)
        poller.register(client)
        client.write(b"over v6")
        loop = Loop(poller)
        loop.run_until(lambda: loop.accepted and loop.received[loop.accepted[0]] == b"over v6")


def test_from_socket_refuses_a_socket_that_is_not_listening(certs: Certs) -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs, pytest.raises(ValueError, match="listening"):
        TLSServerSocket.from_socket(ours, certs.server_context())


def test_from_socket_refuses_what_is_not_an_ssl_context() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener, pytest.raises(TypeError, match="SSLContext"):
        TLSServerSocket.from_socket(listener, None)  # type: ignore[arg-type]


def test_a_duplicated_tls_server_socket_serves_with_the_same_context(certs: Certs) -> None:
    with listen_tls("127.0.0.1", 0, certfile=certs.cert_file) as server, server.dup() as twin:
        assert isinstance(twin, TLSServerSocket)
        assert twin.context is server.context


# -- interop with the openssl tools ---------------------------------------------------


class OpenSSL:
    """An ``openssl`` child whose output is read without blocking."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            ["openssl", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert self.process.stdout is not None
        self._out = self.process.stdout.fileno()
        os.set_blocking(self._out, False)
        self.output = bytearray()

    def read_available(self) -> bytes:
        try:
            while chunk := os.read(self._out, 64 * KIB):
                self.output += chunk
        except BlockingIOError:
            pass
        return bytes(self.output)

    def wait_for(self, marker: bytes, timeout: float = WAIT) -> bytes:
        deadline = time.monotonic() + timeout
        while marker not in self.read_available():
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"openssl never printed {marker!r}: {bytes(self.output)!r}"
            select.select([self._out], [], [], min(remaining, 0.1))
        return bytes(self.output)

    def send(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate(timeout=WAIT)


@pytest.fixture
def s_server(certs: Certs) -> Iterator[Callable[..., tuple[OpenSSL, int]]]:
    """Start ``openssl s_server`` with extra options; returns it and its port."""
    started: list[OpenSSL] = []

    def start(*options: str) -> tuple[OpenSSL, int]:
        server = OpenSSL("s_server", "-accept", "127.0.0.1:0", "-cert", certs.cert_file, "-naccept", "1", *options)
        started.append(server)
        output = server.wait_for(b"ACCEPT")
        line = output[output.index(b"ACCEPT") :].split(b"\n")[0]
        return server, int(line.rsplit(b":", 1)[1])

    yield start
    for server in started:
        server.stop()


@needs_openssl
def test_our_client_talks_to_openssl_s_server(s_server: Callable[..., tuple[OpenSSL, int]], certs: Certs) -> None:
    _, port = s_server("-rev")
    with connect_tls("127.0.0.1", port, cafile=certs.ca_file, server_hostname="localhost", buffering="line") as ch:
        ch.write(b"hello\n")
        assert read_lines(ch, 1) == [b"olleh\n"]


@needs_openssl
def test_openssl_s_client_talks_to_our_poller_server(certs: Certs) -> None:
    server = listen_tls("127.0.0.1", 0, certfile=certs.cert_file)
    port = server.getsockname()[1]
    with Poller(buffering="line") as poller:
        poller.add_server(server)
        client = OpenSSL(
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-CAfile",
            certs.ca_file,
            "-servername",
            "localhost",
            "-verify_return_error",
            "-quiet",
        )
        try:
            client.send(b"hello\n")
            loop = Loop(poller)
            loop.run_until(lambda: loop.accepted and loop.received[loop.accepted[0]] == b"hello\n")
            loop.accepted[0].write(b"HELLO\n")
            loop.accepted[0].close()
            output, _ = client.process.communicate(timeout=WAIT)
            assert (bytes(client.output) + output).endswith(b"HELLO\n")
            assert client.process.returncode == 0
        finally:
            client.stop()


@dataclass(frozen=True)
class Midway:
    """A handshake s_server starts on an established session, and our answer."""

    version: str  # s_server's protocol option
    command: bytes  # the s_server input line that starts it
    started: bytes  # what s_server prints (with -msg) once it did
    answer: bytes  # what it prints when our answer arrives
    answers: int  # how often that is printed in all


MIDWAY = [
    # "r" renegotiates (TLS 1.2): we answer its HelloRequest with a second ClientHello.
    pytest.param(Midway("-tls1_2", b"r\n", b"HelloRequest", b"ClientHello", 2), id="renegotiation"),
    # "K" updates the server's keys and asks us to update ours (TLS 1.3).
    pytest.param(
        Midway(
            "-tls1_3",
            b"K\n",
            b">>> TLS 1.3, Handshake [length 0005], KeyUpdate",
            b"<<< TLS 1.3, Handshake [length 0005], KeyUpdate",
            1,
        ),
        id="key-update",
    ),
]


@needs_openssl
@pytest.mark.parametrize("midway", MIDWAY)
def test_a_handshake_the_server_starts_midway_leaves_the_stream_intact(
    s_server: Callable[..., tuple[OpenSSL, int]], certs: Certs, midway: Midway
) -> None:
    server, port = s_server(midway.version, "-msg")
    with (
        connect_tls("127.0.0.1", port, cafile=certs.ca_file, server_hostname="localhost") as client,
        Poller() as poller,
    ):
        poller.register(client)
        loop = Loop(poller)
        client.write(b"hello\n")
        loop.run_until(lambda: b"hello\n" in server.read_available())  # the server is in its data loop
        server.send(midway.command)
        # s_server takes a whole read of its input as the command: one line at a time.
        loop.run_until(lambda: midway.started in server.read_available())
        server.send(b"after\n")
        loop.run_until(lambda: loop.received[client] == b"after\n")
        client.write(b"pong\n")  # may have to wait for the server's part of the handshake
        loop.run_until(lambda: b"pong\n" in server.read_available())
        assert server.read_available().count(midway.answer) == midway.answers


# -- the Channel contract ------------------------------------------------------------


class TLSPeer(StreamPeer):
    """The server end of a TLS session, over plain :mod:`ssl`."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock

    def receive_some(self, limit: int = 256 * KIB) -> bytes | None:
        try:
            return self.sock.recv(limit) or None
        except ssl.SSLWantReadError:
            return b""
        except OSError:  # a cut stream, or a reset
            return None

    def wait_readable(self, timeout: float) -> None:
        select.select([self.sock], [], [], min(timeout, 0.1))

    def send_now(self, data: bytes) -> int:
        try:
            return self.sock.send(data)
        except ssl.SSLWantWriteError:
            return 0

    def end_output(self) -> None:
        with contextlib.suppress(ssl.SSLWantReadError):
            self.sock.unwrap()  # close_notify; we do not wait for the channel's

    def vanish(self) -> None:
        # Linger zero: close with a reset (RST), not an orderly FIN.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self) -> None:
        self.sock.close()


class TestTLSChannelContract(SocketContract):
    """A client ``TLSChannel`` over a socket pair, its handshake done."""

    leak_rounds = 20
    certs: ClassVar[Certs]

    def test_read_after_a_peer_reset_raises_endpoint_closed_caused_by_the_reset(
        self, pair: tuple[Channel, StreamPeer]
    ) -> None:
        channel, peer = pair
        channel.write(b"never read")  # unread data makes even a Unix socket reset
        peer.vanish()
        assert isinstance(read_until_refused(channel).__cause__, RESET_CAUSES)

    def test_every_read_after_a_peer_reset_raises_with_the_reset_chained(
        self, pair: tuple[Channel, StreamPeer]
    ) -> None:
        channel, peer = pair
        channel.write(b"never read")
        peer.vanish()
        read_until_refused(channel)
        for _ in range(2):
            assert isinstance(end_of(channel).__cause__, RESET_CAUSES)

    @pytest.fixture(autouse=True)
    def _certs(self, certs: Certs) -> None:
        type(self).certs = certs

    def open_pair(self, workdir: Path, max_pending: int) -> tuple[Channel, StreamPeer]:
        ours, theirs = socket.socketpair()
        server_context = self.certs.server_context()
        server_context.num_tickets = 0  # nothing unasked-for arrives after the handshake
        peer = server_context.wrap_socket(theirs, server_side=True, do_handshake_on_connect=False)
        peer.setblocking(False)
        channel = TLSChannel(ours, self.certs.client_context(), server_hostname="localhost", max_pending=max_pending)
        deadline = time.monotonic() + WAIT
        peer_done = False
        while not (peer_done and channel.handshake_done):
            assert time.monotonic() < deadline, "the handshake did not complete"
            if not peer_done:
                try:
                    peer.do_handshake()
                    peer_done = True
                except ssl.SSLWantReadError:
                    select.select([peer], [], [], 0.01)
            channel.handshake(0)
        return channel, TLSPeer(peer)


# -- waiting reads ----------------------------------------------------------------


def test_receive_and_expect_wait_through_the_handshake(certs: Certs) -> None:
    client, server = tls_pair(certs)
    with client, server:

        def serve() -> None:
            request = server.expect(b"\n", WAIT)
            server.write(b"you said: " + request + b"$ ")

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            client.write(b"hello\n")  # held until the handshake is done, sent while waiting
            assert client.expect(b"$ ", WAIT) == b"you said: hello\n$ "
        finally:
            thread.join(WAIT)
        with pytest.raises(TimeoutError):
            client.receive(0.05)
