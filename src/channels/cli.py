"""The ``channels`` command: ``relay`` bytes between two addresses, or run a line ``hub``.

``channels relay A B`` joins two endpoints named as :func:`channels.connect`
names them (plus ``tcp-listen:``, ``unix-listen:`` and ``tls-listen:``, which
accept one client) and moves bytes both ways until both directions have
ended, passing each end of file on as a half-close. ``channels hub ADDRESS`` listens and
sends every complete line from one client to all the others.

Both are built on the package's public API only: :class:`Poller`,
:func:`connect`, :func:`listen` and the channels' non-blocking writes.
``main()`` is the entry point of ``python -m channels`` and of the console
script.

The command's promise: no traceback reaches a user. Bad arguments exit 2
and an endpoint that fails exits 1, each with one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, cast

from . import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_MAX_LINE_LENGTH,
    Channel,
    ChannelError,
    EndpointClosedException,
    Poller,
    SocketChannel,
    WriteBufferFullError,
    __version__,
    connect,
    listen,
)

__all__ = [
    "DEFAULT_HUB_MAX_PENDING",
    "DEFAULT_RELAY_MAX_PENDING",
    "Endpoint",
    "Hub",
    "Relay",
    "RelayResult",
    "build_parser",
    "main",
    "open_endpoint",
    "parse_endpoint",
]

if TYPE_CHECKING:
    from .tls import TLSChannel, TLSServerSocket

_LOG = logging.getLogger("channels.cli")

#: Unsent bytes a relay lets one side hold before it stops reading the other.
#: Large enough that the kernel's buffers, not this bound, set the pace of a
#: bulk transfer; small enough that a side that does not read costs little.
DEFAULT_RELAY_MAX_PENDING = 1024 * 1024

#: Unsent bytes the hub holds for one client before dropping it. A client
#: this far behind is not reading; holding more would only delay the verdict.
DEFAULT_HUB_MAX_PENDING = 4 * 1024 * 1024

_CONNECT_KINDS = ("tcp", "unix", "exec", "pty", "stdio", "fd", "tls")
_ENDPOINT_FORMS = (
    "tcp:HOST:PORT, unix:PATH, exec:COMMAND LINE, pty:COMMAND LINE, stdio, fd:N, fd:IN,OUT, tls:HOST:PORT, "
    "tcp-listen:[HOST:]PORT, unix-listen:PATH, tls-listen:[HOST:]PORT"
)

#: Seconds a ``tls-listen:`` endpoint gives its client to complete the TLS
#: handshake, as ``connect_tls()`` gives a server by default.
TLS_HANDSHAKE_TIMEOUT = 10.0

_EPILOG = """\
addresses:
  tcp:HOST:PORT          connect over TCP (IPv6 in brackets: tcp:[::1]:80)
  unix:PATH              connect to a Unix socket
  exec:COMMAND LINE      run a program (split like a shell would, no shell)
  pty:COMMAND LINE       run a program on a new pseudo-terminal (echo off;
                         its newlines come out as CR LF; end of input is ^D)
  stdio                  this process's stdin and stdout
  fd:N, fd:IN,OUT        descriptors this process was given
  tls:HOST:PORT          TLS over TCP, certificate verified (against the
                         system's CAs, and --cafile's if given)
  tcp-listen:[HOST:]PORT wait for one TCP client, then relay (HOST defaults
                         to 127.0.0.1; give 0.0.0.0 to accept from anywhere)
  unix-listen:PATH       wait for one client on a Unix socket, then relay
  tls-listen:[HOST:]PORT as tcp-listen, serving TLS with --cert (and --key)

A side open for reading only (fd:N on a file opened with N<FILE) makes the
relay one-way: what the other side sends towards it is read and dropped.

examples:
  channels relay stdio tcp:example.org:80
  channels relay tcp-listen:127.0.0.1:9000 exec:cat
  channels relay unix-listen:repl.sock 'pty:python3 -i'
  channels relay -v unix-listen:app.sock tcp:db.internal:5432
  channels relay --cafile ca.pem stdio tls:db.internal:5433
  channels relay --cert server.pem --key server.key tls-listen:0.0.0.0:8443 tcp:127.0.0.1:8080
  channels hub unix:chat.sock
  channels hub tcp:127.0.0.1:7000 --max-line 4096

exit status: 0 when both directions ended cleanly, 1 on an endpoint error,
2 on bad arguments (each with one line on stderr), 130 when interrupted.
"""


# -- endpoints -----------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One side of a relay, as named on the command line.

    ``address`` is what :func:`channels.connect` takes or, when ``listening``
    is true, what :func:`channels.listen` takes (``tls:`` for a
    ``tls-listen:`` endpoint); ``text`` is the name as the user wrote it,
    for messages.
    """

    text: str
    address: str
    listening: bool = False


def parse_endpoint(text: str) -> Endpoint:
    """Parse a relay endpoint: a :func:`channels.connect` address, or a listen form.

    ``tcp-listen:HOST:PORT``, ``unix-listen:PATH`` and ``tls-listen:HOST:PORT``
    name a listening socket that accepts one client; ``tcp-listen:PORT`` and
    ``tls-listen:PORT`` listen on 127.0.0.1 only, so that nothing is exposed
    beyond this machine unless asked for. The
    kind is not case-sensitive. Raises ``ValueError`` naming the accepted
    forms for an unknown kind; the rest of a connect address is checked by
    :func:`channels.connect` when it is opened.
    """
    kind, colon, rest = text.partition(":")
    kind = kind.lower()
    if kind in ("tcp-listen", "tls-listen") and rest:
        if re.fullmatch(r"[0-9]+", rest):
            rest = f"127.0.0.1:{rest}"
        return Endpoint(text, f"{kind[:3]}:{rest}", listening=True)
    if kind == "unix-listen" and rest:
        return Endpoint(text, f"unix:{rest}", listening=True)
    if kind in _CONNECT_KINDS and (colon or kind == "stdio"):
        return Endpoint(text, text)
    raise ValueError(f"unknown address {text!r}: a relay endpoint is one of {_ENDPOINT_FORMS}")


@dataclass(frozen=True)
class TLSFiles:
    """The files TLS endpoints use: ``cafile`` (PEM) holds CAs a ``tls:``
    endpoint trusts besides the system's; ``certfile`` (PEM) the certificate
    chain a ``tls-listen:`` endpoint serves, with its private key unless
    ``keyfile`` names the key's file."""

    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None


def open_endpoint(endpoint: Endpoint, tls: TLSFiles | None = None) -> Channel:
    """Open ``endpoint``: connect to it, or listen and wait for one client.

    A listening endpoint blocks until a client connects, then closes the
    listening socket (and removes a Unix socket's file): a relay serves one
    client. A ``tls-listen:`` endpoint also waits for the client's TLS
    handshake, at most :data:`TLS_HANDSHAKE_TIMEOUT` seconds. ``tls`` gives
    the files TLS endpoints need (``ValueError`` for a ``tls-listen:`` one
    without a certificate). Raises what :func:`channels.connect` or
    :func:`channels.listen` raise: ``ValueError`` for a malformed address,
    ``OSError`` for one that cannot be reached or bound, and
    :class:`~channels.EndpointClosedException` for a TLS handshake that
    failed (the :class:`ssl.SSLError` as its cause).
    """
    tls = tls or TLSFiles()
    kind = endpoint.address.partition(":")[0].lower()
    if endpoint.listening:
        if kind == "tls" and tls.certfile is None:
            raise ValueError(f"{endpoint.text} needs a certificate to serve: give --cert (and --key)")
        options = {"certfile": tls.certfile, "keyfile": tls.keyfile} if kind == "tls" else {}
        return _accept_one(endpoint, options)
    if kind == "stdio":
        return connect("stdio")
    if kind == "tls" and tls.cafile is not None:
        return connect(endpoint.address, cafile=tls.cafile)
    return connect(endpoint.address)


def _accept_one(endpoint: Endpoint, options: dict[str, str | None]) -> Channel:
    server = listen(endpoint.address, backlog=1, **options)
    path = server.getsockname() if server.family == socket.AF_UNIX else None
    try:
        _LOG.info("%s: listening on %s", endpoint.text, _format_address(server.getsockname()))
        sock, peer = server.accept()
    finally:
        server.close()
        if path:
            with contextlib.suppress(OSError):
                os.unlink(path)
    _LOG.info("%s: accepted a client from %s", endpoint.text, _format_address(peer) or "a Unix socket")
    if not options:
        try:
            return SocketChannel(sock)
        except BaseException:  # pragma: no cover - the client vanished at once
            sock.close()
            raise
    return _serve_tls(cast("TLSServerSocket", server), sock)


def _serve_tls(server: TLSServerSocket, sock: socket.socket) -> TLSChannel:
    """The TLS channel for ``sock``, a client of ``server``, handshake done."""
    try:
        channel = server.wrap_client(sock)
    except BaseException:  # pragma: no cover - the client vanished at once
        sock.close()
        raise
    try:
        # Here, not in the relay: a client that fails the handshake is an
        # endpoint error, reported as one, rather than an input that ended.
        if not channel.handshake(TLS_HANDSHAKE_TIMEOUT):
            raise TimeoutError(f"the client did not complete the TLS handshake within {TLS_HANDSHAKE_TIMEOUT}s")
    except BaseException:
        channel.abort()
        raise
    return channel


def _format_address(address: object) -> str:
    if isinstance(address, tuple):
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(address)


def _release_stdout(channel: Channel) -> None:
    """Make the end of the ``stdio`` channel's output visible to its reader.

    ``stdio`` writes to a duplicate of descriptor 1, so ending it leaves 1
    itself open and the reader would wait for the process to exit. Pointing
    1 at ``/dev/null`` lets go of the pipe or socket now, as a half-close
    should; this process prints nothing to stdout afterwards.
    """
    del channel
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
    finally:
        os.close(devnull)


# -- the relay -----------------------------------------------------------------


@dataclass
class _Direction:
    """Bytes flowing from ``source`` to ``sink``, and how far that got."""

    name: str
    source: Channel
    sink: Channel
    moved: int = 0
    reading: bool = True  # source registered with the poller
    ended: bool = False  # the source has reached its end
    done: bool = False  # ...and the end was passed on to the sink
    dropping: bool = False  # the sink cannot be written: what the source sends is dropped


@dataclass(frozen=True)
class RelayResult:
    """What a relay did: bytes each way, how long it ran, and the error that
    ended it (``None`` for a clean end)."""

    forward: int
    backward: int
    duration: float
    error: str | None = None


class Relay:
    """Moves bytes both ways between two channels until both directions end.

    ``left`` and ``right`` are read through one :class:`Poller` and written
    with their non-blocking ``write()``. The end of one side's input is
    passed on to the other side as :meth:`Channel.shutdown_write` once what
    was written to it has gone out, so the peer sees every byte, then end of
    file. A channel that cannot half-close (TLS) is left open: the relay
    then ends when its peer ends the other direction.

    A channel that can only be read (a file, ``fd:N`` opened read-only)
    makes the relay one-way: what the other side sends towards it is read
    and dropped, with a log line, so that the other side never blocks on
    output nobody takes. (The alternatives: refusing such a side, which
    forbids sending a file to a program that also talks back; or failing at
    the first byte towards it, which cuts the useful direction short. socat
    makes one-way an option, ``-u``; here the side says it.) A channel that
    cannot be read is refused with ``ValueError``.

    Backpressure: while one side holds more than ``max_pending`` bytes not
    yet taken by the operating system, the other side is not read; reading
    resumes once all of them have gone. Memory stays bounded by about
    ``max_pending`` plus one read per side, whatever the speeds.

    An endpoint error (a reset, a peer gone while data was still to be
    written) ends the relay; :meth:`run` reports it in
    :attr:`RelayResult.error`; :meth:`close` does not linger for a side
    whose answers nobody takes any more. ``names`` label the sides in messages.
    ``on_write_end`` is called with a channel once its write side has been
    shut down. The relay owns the channels: :meth:`close` closes them.
    """

    def __init__(
        self,
        left: Channel,
        right: Channel,
        *,
        max_pending: int = DEFAULT_RELAY_MAX_PENDING,
        names: tuple[str, str] = ("left", "right"),
        on_write_end: Callable[[Channel], None] | None = None,
    ) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be a positive number of bytes, not {max_pending!r}")
        self.max_pending = max_pending
        self._on_write_end = on_write_end
        self._poller = Poller()
        self._directions = (
            _Direction(f"{names[0]} -> {names[1]}", left, right),
            _Direction(f"{names[1]} -> {names[0]}", right, left),
        )
        self._error: str | None = None
        self._closed = False
        self._started = time.monotonic()
        try:
            for direction in self._directions:
                self._poller.register(direction.source)
        except BaseException:
            self._poller.close()
            raise

    @property
    def running(self) -> bool:
        """Whether a direction is still open and no endpoint error ended the relay."""
        return self._error is None and not all(direction.done for direction in self._directions)

    def run(self, timeout: float | None = None) -> RelayResult:
        """Relay until both directions end or an endpoint error stops it.

        ``timeout`` bounds the whole run in seconds (``None``: no limit);
        when it passes, the relay stops where it is and reports it as the
        error.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.running:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                self._error = f"the relay did not end within {timeout}s"
                break
            self.step(remaining)
        return self.result()

    def step(self, timeout: float | None = None) -> None:
        """One turn: wait up to ``timeout`` seconds for input, pass it on,
        then apply backpressure and pass on ends whose output has drained."""
        for data, channel in self._poller.poll(timeout):
            assert isinstance(data, bytes)  # no servers here, so no accepted clients
            direction = self._from(channel)
            if data:
                self._pass_on(direction, data)
            else:
                self._source_ended(direction)
        for direction in self._directions:
            self._settle(direction)

    def result(self) -> RelayResult:
        """The bytes moved so far each way, the time since the start, and the error if any."""
        forward, backward = self._directions
        return RelayResult(forward.moved, backward.moved, time.monotonic() - self._started, self._error)

    def close(self, timeout: float | None = DEFAULT_CLOSE_TIMEOUT) -> None:
        """Close both channels and the poller, delivering what the channels
        still hold within ``timeout`` seconds in all (``None``: no limit).

        While that output goes out, both sides are still read, and what they
        send is dropped: the relay has stopped, so it has nowhere to go. A
        side that answers what it is sent (a child such as ``cat``) would
        otherwise fill its way back to the relay, stop taking input, and
        hold the close for the whole ``timeout``; read, it takes the rest at
        once and sees its end. (``Channel.close()`` alone lingers without
        reading, as asyncio's and Twisted's transports do: they cannot know
        that the reply is unwanted; a relay that has stopped does.)
        Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            self._drain(deadline)
        finally:
            for direction in self._directions:
                direction.source.close(_remaining(deadline))
            self._poller.close()

    def __enter__(self) -> Relay:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- one direction --------------------------------------------------------

    def _from(self, channel: object) -> _Direction:
        forward, backward = self._directions
        return forward if channel is forward.source else backward

    def _drain(self, deadline: float | None) -> None:
        """Read both sides, dropping what they send, until neither holds
        output or the deadline passes; the poller sends the output."""
        for direction in self._directions:
            if not direction.reading and not direction.ended:
                self._poller.resume_reading(direction.source)
                direction.reading = True
        while any(direction.source.pending_output for direction in self._directions):
            remaining = _remaining(deadline)
            if remaining is not None and remaining <= 0:
                return
            # Bounded, so that output that went out is noticed: a poll
            # reports what was read, not what was sent.
            for data, channel in self._poller.poll(_DRAIN_TURN if remaining is None else min(remaining, _DRAIN_TURN)):
                if not data:
                    self._from(channel).ended = True

    def _pass_on(self, direction: _Direction, data: bytes) -> None:
        if direction.dropping:
            return
        sink = direction.sink
        try:
            sink.write(data)
        except (EndpointClosedException, WriteBufferFullError) as err:
            self._fail(direction, f"{direction.name}: {len(data)} bytes could not be delivered ({err})")
        except NotImplementedError:
            direction.dropping = True
            _LOG.info("%s: the destination can only be read; what comes this way is dropped", direction.name)
        else:
            if sink.closed and sink.end_cause is not None:
                # In the poller's turn a failed write ends the sink instead of raising.
                cause = sink.end_cause
                self._fail(direction, f"{direction.name}: {len(data)} bytes could not be delivered ({cause})")
            else:
                direction.moved += len(data)

    def _source_ended(self, direction: _Direction) -> None:
        direction.ended = True
        direction.reading = False  # the poller reads it no more
        cause = _end_cause(direction.source)
        if cause is not None:
            self._fail(direction, f"{direction.name}: the input failed ({cause})")

    def _settle(self, direction: _Direction) -> None:
        """Pass on a drained end, or pause/resume reading for backpressure."""
        if direction.done or self._error is not None:
            return
        held = direction.sink.pending_output
        if direction.ended:
            if not held:
                self._pass_on_end(direction)
        elif direction.reading and held > self.max_pending:
            _LOG.debug("%s: paused, %d bytes wait to be sent", direction.name, held)
            self._poller.pause_reading(direction.source)
            direction.reading = False
        elif not direction.reading and not held:
            _LOG.debug("%s: resumed", direction.name)
            self._poller.resume_reading(direction.source)
            direction.reading = True

    def _pass_on_end(self, direction: _Direction) -> None:
        direction.done = True
        if direction.dropping:
            return  # nothing was passed on, so there is no end to pass
        try:
            # Nothing is pending, so this does not wait.
            direction.sink.shutdown_write()
        except NotImplementedError:
            _LOG.info("%s: the end cannot be passed on (no half-close); waiting for the other side", direction.name)
            return
        except EndpointClosedException as err:
            # Output to the sink failed (its peer is gone): what was relayed
            # to it may not have arrived, so this is no clean end.
            self._fail(direction, f"{direction.name}: output could not be delivered ({err})")
            return
        if self._on_write_end is not None:
            self._on_write_end(direction.sink)

    def _fail(self, direction: _Direction, message: str) -> None:
        if self._error is None:
            self._error = message
        direction.done = True


# Longest wait of one poll while Relay.close() drains the channels.
_DRAIN_TURN = 0.05


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _end_cause(channel: Channel) -> BaseException | None:
    """Why ``channel``'s input ended: ``None`` for a clean end of file.

    A TLS peer that leaves without ``close_notify`` counts as clean, as most
    clients treat it: many servers end that way.
    """
    try:
        channel.read()
    except EndpointClosedException as end:
        cause = end.__cause__
        ssl = sys.modules.get("ssl")
        if ssl is not None and isinstance(cause, ssl.SSLEOFError):
            return None
        return cause
    return None  # pragma: no cover - read() raises once the end was reported


# -- the hub -------------------------------------------------------------------


@dataclass
class _Client:
    name: str
    channel: Channel


class Hub:
    """A line hub: every complete line a client sends goes to all the others.

    ``server`` is a listening socket (from :func:`channels.listen`); the hub
    owns it. Clients are read in line mode: a line longer than ``max_line``
    bytes is dropped with a warning and its sender stays connected. A client
    that holds more than ``max_pending`` bytes not yet read is dropped, with
    a warning, so that it cannot stall the others or grow memory. A client
    that ends its input leaves; an unterminated last piece is not sent.

    :meth:`serve` runs until :meth:`stop`, which is safe to call from a
    signal handler; :meth:`close` closes every client and the server.
    ``ValueError`` if ``max_pending`` is not larger than ``max_line``: a
    single line could never be queued.
    """

    def __init__(
        self,
        server: socket.socket,
        *,
        max_line: int = DEFAULT_MAX_LINE_LENGTH,
        max_pending: int = DEFAULT_HUB_MAX_PENDING,
    ) -> None:
        if max_pending <= max_line:
            raise ValueError(f"max_pending ({max_pending}) must be larger than max_line ({max_line})")
        self.server = server
        self.max_line = max_line
        self.max_pending = max_pending
        self._poller = Poller(buffering="line", max_line_length=max_line, max_pending=max_pending)
        self._poller.add_server(server)
        self._clients: dict[int, _Client] = {}  # id(channel) -> client
        self._joined = 0
        self._stopping = False

    @property
    def client_count(self) -> int:
        """How many clients are connected."""
        return len(self._clients)

    def serve(self) -> None:
        """Relay lines until :meth:`stop` is called."""
        while not self._stopping:
            self.step(None)

    def step(self, timeout: float | None = None) -> None:
        """One turn: wait up to ``timeout`` seconds, admit clients, relay lines."""
        for data, source in self._poller.poll(timeout):
            if isinstance(data, tuple):
                address, client = data
                self._admit(address, client)
            elif data:
                self._broadcast(data, source)
            else:
                self._leave(source)

    def stop(self) -> None:
        """Make :meth:`serve` return after the current turn. Signal-safe."""
        self._stopping = True
        self._poller.wakeup()

    def close(self, timeout: float = 1.0) -> None:
        """Deliver pending output to all clients (within ``timeout`` seconds
        in all), then close them and the server."""
        self._clients.clear()
        self._poller.close_all(timeout)
        self._poller.close()

    def _admit(self, address: object, client: Channel) -> None:
        self._joined += 1
        name = f"client {self._joined}{_peer_name(address, client)}"
        self._clients[id(client)] = _Client(name, client)
        _LOG.info("%s joined (%d connected)", name, len(self._clients))

    def _broadcast(self, line: bytes, source: object) -> None:
        sender = self._clients.get(id(source))
        if sender is None:
            return  # pragma: no cover - every client the poller reports was admitted
        if not line.endswith(b"\n"):
            _LOG.info("%s: unterminated last piece of %d bytes not sent", sender.name, len(line))
            return
        for client in self._clients.values():
            if client is not sender:
                # In the poller's turn: a client that is gone or not reading
                # is ended by the write, and its end is reported next.
                client.channel.write(line)

    def _leave(self, source: object) -> None:
        client = self._clients.pop(id(source), None)
        if client is None:
            return  # pragma: no cover - every client the poller reports was admitted
        channel = client.channel
        cause = channel.end_cause if channel.closed else None
        if isinstance(cause, WriteBufferFullError):
            _LOG.warning("dropped %s: not reading: more than %d bytes wait for it", client.name, self.max_pending)
        elif cause is not None:
            _LOG.warning("dropped %s: gone (%s)", client.name, cause)
        else:
            _LOG.info("%s left (%d connected)", client.name, len(self._clients))
        # A departing client gets what it can take now, no more: waiting for
        # it would stall the others.
        channel.close(timeout=0)


def _peer_name(address: object, client: Channel) -> str:
    if isinstance(address, tuple):
        return f" from {_format_address(address)}"
    credentials = getattr(client, "peer_credentials", None) if isinstance(client, SocketChannel) else None
    return f" (pid {credentials.pid})" if credentials is not None else ""


# -- the command line ----------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``channels`` command, with its subcommands."""
    parser = argparse.ArgumentParser(
        prog="channels",
        description="Relay bytes between two endpoints, or run a line hub; no threads, no dependencies.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    relay = commands.add_parser(
        "relay",
        help="move bytes both ways between two addresses",
        description="Move bytes both ways between A and B until both directions have ended. "
        "The end of one side's input is passed on to the other as a half-close.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    relay.add_argument("a", metavar="A", type=_endpoint_argument, help="the first address")
    relay.add_argument("b", metavar="B", type=_endpoint_argument, help="the second address")
    relay.add_argument("-v", "--verbose", action="store_true", help="log progress and print a summary to stderr")
    relay.add_argument(
        "--max-pending",
        metavar="BYTES",
        type=_positive_int,
        default=DEFAULT_RELAY_MAX_PENDING,
        help="stop reading a side while the other holds more than this unsent (default: %(default)s)",
    )
    relay.add_argument(
        "--cafile",
        metavar="FILE",
        type=_readable_file,
        help="trust the CA certificates in FILE (PEM) for tls: addresses, besides the system's",
    )
    _add_certificate_options(relay, "tls-listen:")

    hub = commands.add_parser(
        "hub",
        help="send every line from one client to all the others",
        description="Listen on ADDRESS and send every complete line from one client to all the others. "
        "SIGINT or SIGTERM stops it cleanly.",
        epilog="examples:\n  channels hub unix:chat.sock\n  channels hub tcp:127.0.0.1:7000 --max-line 4096\n"
        "  channels hub tls:0.0.0.0:7001 --cert hub.pem --key hub.key\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    hub.add_argument(
        "address", metavar="ADDRESS", type=_hub_address, help="unix:PATH, tcp:HOST:PORT or tls:HOST:PORT (with --cert)"
    )
    hub.add_argument(
        "--max-line",
        metavar="N",
        type=_positive_int,
        default=DEFAULT_MAX_LINE_LENGTH,
        help="longest line relayed, in bytes without its newline; longer ones are dropped (default: %(default)s)",
    )
    hub.add_argument(
        "--max-pending",
        metavar="BYTES",
        type=_positive_int,
        default=DEFAULT_HUB_MAX_PENDING,
        help="unsent bytes a client may hold before it is dropped (default: %(default)s)",
    )
    hub.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="what to log on stderr: info shows clients joining and leaving (default: %(default)s)",
    )
    _add_certificate_options(hub, "tls:")
    return parser


def _add_certificate_options(parser: argparse.ArgumentParser, kind: str) -> None:
    parser.add_argument(
        "--cert",
        metavar="FILE",
        type=_readable_file,
        help=f"the certificate chain (PEM) a {kind} address serves, with its key unless --key is given",
    )
    parser.add_argument("--key", metavar="FILE", type=_readable_file, help="the private key (PEM) of --cert")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``channels`` command with ``argv`` (default: ``sys.argv[1:]``).

    Returns the exit status: 0 on a clean end, 1 on an endpoint error (with
    a one-line message on stderr), 2 on bad arguments, 130 if interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version, or a usage error
        return stop.code if isinstance(stop.code, int) else 2
    problem = _check_hub(args) if args.command == "hub" else _check_relay(args)
    if problem is not None:
        return _usage_error(args.command, problem)
    if args.command == "hub":
        level = getattr(logging, args.log_level.upper())
    else:
        level = logging.INFO if args.verbose else logging.WARNING
    with _logging_to_stderr(level):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """Run the parsed command; every error ends as an exit status and one line."""
    try:
        if args.command == "hub":
            return _run_hub(args)
        return _run_relay(args)
    except _BAD_ARGUMENT as err:
        return _usage_error(args.command, _one_line(err))
    except KeyboardInterrupt:
        return 130
    except Exception as err:
        # The promise is one line, never a traceback: whatever escaped is
        # reported as an endpoint error, with its type for a bug report;
        # --log-level debug (hub) logs the traceback too.
        _LOG.debug("unexpected error", exc_info=True)
        return _endpoint_error(args.command, f"{type(err).__name__}: {_one_line(err)}")


#: What a malformed address or option raises, from argparse's checks or the
#: library's: exit 2. (OverflowError: a number too large for the system.)
_BAD_ARGUMENT = (ValueError, TypeError, OverflowError)

#: What an endpoint that cannot be opened raises: exit 1. ``ssl.SSLError``
#: is an ``OSError``; a failed TLS handshake is an EndpointClosedException
#: (a ``ChannelError``) with the ``ssl`` error as its cause;
#: NotImplementedError for what this platform lacks (pseudo-terminals).
_ENDPOINT_FAILURE = (OSError, ChannelError, NotImplementedError)


def _check_relay(args: argparse.Namespace) -> str | None:
    """What is wrong with the relay's options together, if anything."""
    kinds = {endpoint.address.partition(":")[0].lower() for endpoint in (args.a, args.b) if not endpoint.listening}
    serves_tls = any(
        endpoint.listening and endpoint.address.lower().startswith("tls:") for endpoint in (args.a, args.b)
    )
    if args.cafile is not None and "tls" not in kinds:
        return "--cafile is for tls:HOST:PORT addresses, and none is given"
    if serves_tls and args.cert is None:
        return "a tls-listen: address needs --cert (and --key unless the key is in the same file)"
    if args.cert is not None and not serves_tls:
        return "--cert is for tls-listen: addresses, and none is given"
    return _check_key(args)


def _check_hub(args: argparse.Namespace) -> str | None:
    """What is wrong with the hub's options together, if anything."""
    if args.max_pending <= args.max_line:
        return f"--max-pending ({args.max_pending}) must exceed --max-line"
    serves_tls = args.address.lower().startswith("tls:")
    if serves_tls and args.cert is None:
        return "a tls: address needs --cert (and --key unless the key is in the same file)"
    if args.cert is not None and not serves_tls:
        return "--cert is for a tls: address"
    return _check_key(args)


def _check_key(args: argparse.Namespace) -> str | None:
    if args.key is not None and args.cert is None:
        return "--key goes with --cert"
    return None


def _run_relay(args: argparse.Namespace) -> int:
    a: Endpoint = args.a
    b: Endpoint = args.b
    tls = TLSFiles(cafile=args.cafile, certfile=args.cert, keyfile=args.key)
    with contextlib.ExitStack() as opened:
        channels = []
        for endpoint in (a, b):
            try:
                channel = open_endpoint(endpoint, tls)
            except _BAD_ARGUMENT as err:
                return _usage_error("relay", _naming(endpoint, err))
            except _ENDPOINT_FAILURE as err:
                return _endpoint_error("relay", _naming(endpoint, err))
            opened.callback(channel.abort)
            channels.append(channel)
        left, right = channels
        relay = Relay(
            left, right, max_pending=args.max_pending, names=(a.text, b.text), on_write_end=_stdio_ender(a, b)
        )
        opened.pop_all()
    with relay:
        result = relay.run()
    if args.verbose:
        _print_summary(a, b, result)
    if result.error is not None:
        return _endpoint_error("relay", result.error)
    return 0


def _stdio_ender(a: Endpoint, b: Endpoint) -> Callable[[Channel], None] | None:
    stdio = [endpoint for endpoint in (a, b) if endpoint.address.lower() == "stdio"]
    return _release_stdout if len(stdio) == 1 else None


def _print_summary(a: Endpoint, b: Endpoint, result: RelayResult) -> None:
    print(f"channels relay: {a.text} -> {b.text}: {result.forward} bytes", file=sys.stderr)
    print(f"channels relay: {b.text} -> {a.text}: {result.backward} bytes", file=sys.stderr)
    print(f"channels relay: {result.duration:.3f} s", file=sys.stderr)


def _run_hub(args: argparse.Namespace) -> int:
    options = {"certfile": args.cert, "keyfile": args.key} if args.cert is not None else {}
    try:
        server = listen(args.address, **options)
    except _ENDPOINT_FAILURE as err:
        return _endpoint_error("hub", _naming(Endpoint(args.address, args.address, listening=True), err))
    path = server.getsockname() if server.family == socket.AF_UNIX else None
    own_file = _identity(path)
    hub = Hub(server, max_line=args.max_line, max_pending=args.max_pending)
    try:
        with _stopped_by_signals(hub):
            # Said only once the handlers are in place: whoever waits for this
            # line and then signals the hub must see it stop cleanly.
            _LOG.info("listening on %s", _format_address(server.getsockname()))
            hub.serve()
    finally:
        hub.close()
        if path and own_file is not None and _identity(path) == own_file:
            os.unlink(path)
    _LOG.info("stopped")
    return 0


def _identity(path: str | None) -> tuple[int, int] | None:
    """The device and inode of ``path``, to remove only the socket file we made."""
    if not path:
        return None
    try:
        status = os.lstat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


@contextlib.contextmanager
def _stopped_by_signals(hub: Hub) -> Iterator[None]:
    def on_signal(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        hub.stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _logging_to_stderr(level: int) -> Iterator[None]:
    """Log the package's messages (``channels.*``) to stderr while the command runs."""
    logger = logging.getLogger("channels")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(levelname)s: %(message)s"))
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def _naming(endpoint: Endpoint, err: BaseException) -> str:
    """``err`` in one line that names ``endpoint`` and, for a TLS failure, says why.

    A failed TLS handshake is an EndpointClosedException whose message is
    about the channel; the words that matter (such as "certificate verify
    failed: self-signed certificate") are its ``ssl`` cause's.
    """
    message = _one_line(err)
    cause = err.__cause__
    ssl = sys.modules.get("ssl")
    if ssl is not None and isinstance(cause, ssl.SSLCertVerificationError):
        message = f"the TLS certificate does not verify: {cause.verify_message or cause.reason}"
    elif ssl is not None and isinstance(cause, ssl.SSLError):
        message = f"TLS failed: {_one_line(cause)}"
    if endpoint.text in message or endpoint.address in message:
        return message
    return f"{endpoint.text}: {message}"


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _endpoint_error(command: str, message: str) -> int:
    print(f"channels {command}: error: {message}", file=sys.stderr)
    return 1


def _usage_error(command: str, message: str) -> int:
    print(f"usage: channels {command} ... (see channels {command} --help)", file=sys.stderr)
    print(f"channels {command}: error: {message}", file=sys.stderr)
    return 2


def _endpoint_argument(text: str) -> Endpoint:
    try:
        return parse_endpoint(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _hub_address(text: str) -> str:
    if text.partition(":")[0].lower() not in ("unix", "tcp", "tls"):
        raise argparse.ArgumentTypeError(f"a hub listens on unix:PATH, tcp:HOST:PORT or tls:HOST:PORT, not {text!r}")
    return text


def _readable_file(text: str) -> str:
    """A file that can be read, checked now: a missing certificate is a bad argument, named."""
    try:
        with open(text, "rb"):
            pass
    except OSError as err:
        raise argparse.ArgumentTypeError(f"cannot read {text!r}: {err.strerror}") from None
    return text


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, not {value}")
    return value
