"""The ``channels`` command: ``relay`` bytes between two addresses, or run a line ``hub``.

``channels relay A B`` joins two endpoints named as :func:`channels.connect`
names them (plus ``tcp-listen:`` and ``unix-listen:``, which accept one
client) and moves bytes both ways until both directions have ended, passing
each end of file on as a half-close. ``channels hub ADDRESS`` listens and
sends every complete line from one client to all the others.

Both are built on the package's public API only: :class:`Poller`,
:func:`connect`, :func:`listen` and the channels' non-blocking writes.
``main()`` is the entry point of ``python -m channels`` and of the console
script.
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

from . import (
    DEFAULT_MAX_LINE_LENGTH,
    Channel,
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
    "tcp-listen:[HOST:]PORT, unix-listen:PATH"
)

_EPILOG = """\
addresses:
  tcp:HOST:PORT          connect over TCP (IPv6 in brackets: tcp:[::1]:80)
  unix:PATH              connect to a Unix socket
  exec:COMMAND LINE      run a program (split like a shell would, no shell)
  pty:COMMAND LINE       run a program on a new pseudo-terminal (echo off;
                         its newlines come out as CR LF; end of input is ^D)
  stdio                  this process's stdin and stdout
  fd:N, fd:IN,OUT        descriptors this process was given
  tls:HOST:PORT          TLS over TCP, certificate verified
  tcp-listen:[HOST:]PORT wait for one TCP client, then relay (HOST defaults
                         to 127.0.0.1; give 0.0.0.0 to accept from anywhere)
  unix-listen:PATH       wait for one client on a Unix socket, then relay

examples:
  channels relay stdio tcp:example.org:80
  channels relay tcp-listen:127.0.0.1:9000 exec:cat
  channels relay unix-listen:repl.sock 'pty:python3 -i'
  channels relay -v unix-listen:app.sock tcp:db.internal:5432
  channels hub unix:chat.sock
  channels hub tcp:127.0.0.1:7000 --max-line 4096

exit status: 0 when both directions ended cleanly, 1 on an endpoint error
(a message on stderr), 2 on bad arguments, 130 when interrupted.
"""


# -- endpoints -----------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One side of a relay, as named on the command line.

    ``address`` is what :func:`channels.connect` takes or, when ``listening``
    is true, what :func:`channels.listen` takes; ``text`` is the name as the
    user wrote it, for messages.
    """

    text: str
    address: str
    listening: bool = False


def parse_endpoint(text: str) -> Endpoint:
    """Parse a relay endpoint: a :func:`channels.connect` address, or a listen form.

    ``tcp-listen:HOST:PORT`` and ``unix-listen:PATH`` name a listening socket
    that accepts one client; ``tcp-listen:PORT`` listens on 127.0.0.1 only,
    so that nothing is exposed beyond this machine unless asked for. The
    kind is not case-sensitive. Raises ``ValueError`` naming the accepted
    forms for an unknown kind; the rest of a connect address is checked by
    :func:`channels.connect` when it is opened.
    """
    kind, colon, rest = text.partition(":")
    kind = kind.lower()
    if kind == "tcp-listen" and rest:
        if re.fullmatch(r"[0-9]+", rest):
            rest = f"127.0.0.1:{rest}"
        return Endpoint(text, f"tcp:{rest}", listening=True)
    if kind == "unix-listen" and rest:
        return Endpoint(text, f"unix:{rest}", listening=True)
    if kind in _CONNECT_KINDS and (colon or kind == "stdio"):
        return Endpoint(text, text)
    raise ValueError(f"unknown address {text!r}: a relay endpoint is one of {_ENDPOINT_FORMS}")


def open_endpoint(endpoint: Endpoint) -> Channel:
    """Open ``endpoint``: connect to it, or listen and wait for one client.

    A listening endpoint blocks until a client connects, then closes the
    listening socket (and removes a Unix socket's file): a relay serves one
    client. Raises what :func:`channels.connect` or :func:`channels.listen`
    raise: ``ValueError`` for a malformed address, ``OSError`` for one that
    cannot be reached or bound.
    """
    if endpoint.listening:
        return _accept_one(endpoint)
    if endpoint.address.lower() == "stdio":
        return connect("stdio")
    return connect(endpoint.address)


def _accept_one(endpoint: Endpoint) -> Channel:
    server = listen(endpoint.address, backlog=1)
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
    try:
        return SocketChannel(sock)
    except BaseException:  # pragma: no cover - the client vanished at once
        sock.close()
        raise


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

    Backpressure: while one side holds more than ``max_pending`` bytes not
    yet taken by the operating system, the other side is not read; reading
    resumes once all of them have gone. Memory stays bounded by about
    ``max_pending`` plus one read per side, whatever the speeds.

    An endpoint error (a reset, a peer gone while data was still to be
    written) ends the relay; :meth:`run` reports it in
    :attr:`RelayResult.error`. ``names`` label the sides in messages.
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

    def close(self) -> None:
        """Close both channels, delivering what they still hold (each within
        its close linger), and the poller. Idempotent."""
        for direction in self._directions:
            direction.source.close()
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

    def _pass_on(self, direction: _Direction, data: bytes) -> None:
        try:
            direction.sink.write(data)
        except (EndpointClosedException, WriteBufferFullError) as err:
            self._fail(direction, f"{direction.name}: {len(data)} bytes could not be delivered ({err})")
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
            return  # dropped in this turn; its last lines go nowhere
        if not line.endswith(b"\n"):
            _LOG.info("%s: unterminated last piece of %d bytes not sent", sender.name, len(line))
            return
        for client in list(self._clients.values()):
            if client is sender:
                continue
            try:
                client.channel.write(line)
            except WriteBufferFullError:
                self._drop(client, f"not reading: more than {self.max_pending} bytes wait for it")
            except EndpointClosedException as err:
                self._drop(client, f"gone ({err})")

    def _leave(self, source: object) -> None:
        client = self._clients.pop(id(source), None)
        if client is None:
            return  # a client we dropped: its end is reported once more
        _LOG.info("%s left (%d connected)", client.name, len(self._clients))
        # A departing client gets what it can take now, no more: waiting for
        # it would stall the others.
        client.channel.close(timeout=0)

    def _drop(self, client: _Client, reason: str) -> None:
        del self._clients[id(client.channel)]
        _LOG.warning("dropped %s: %s", client.name, reason)
        client.channel.abort()


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

    hub = commands.add_parser(
        "hub",
        help="send every line from one client to all the others",
        description="Listen on ADDRESS and send every complete line from one client to all the others. "
        "SIGINT or SIGTERM stops it cleanly.",
        epilog="examples:\n  channels hub unix:chat.sock\n  channels hub tcp:127.0.0.1:7000 --max-line 4096\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    hub.add_argument("address", metavar="ADDRESS", type=_hub_address, help="unix:PATH or tcp:HOST:PORT")
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
    return parser


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
    if args.command == "hub":
        if args.max_pending <= args.max_line:
            return _usage_error("hub", f"--max-pending ({args.max_pending}) must exceed --max-line")
        level = getattr(logging, args.log_level.upper())
    else:
        level = logging.INFO if args.verbose else logging.WARNING
    with _logging_to_stderr(level):
        try:
            if args.command == "hub":
                return _run_hub(args)
            return _run_relay(args)
        except ValueError as err:
            return _usage_error(args.command, str(err))
        except KeyboardInterrupt:
            return 130


def _run_relay(args: argparse.Namespace) -> int:
    a: Endpoint = args.a
    b: Endpoint = args.b
    try:
        with contextlib.ExitStack() as opened:
            left = open_endpoint(a)
            opened.callback(left.abort)
            right = open_endpoint(b)
            opened.callback(right.abort)
            relay = Relay(
                left, right, max_pending=args.max_pending, names=(a.text, b.text), on_write_end=_stdio_ender(a, b)
            )
            opened.pop_all()
    except OSError as err:
        return _endpoint_error("relay", str(err))
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
    try:
        server = listen(args.address)
    except OSError as err:
        return _endpoint_error("hub", str(err))
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
    if text.partition(":")[0].lower() not in ("unix", "tcp"):
        raise argparse.ArgumentTypeError(f"a hub listens on unix:PATH or tcp:HOST:PORT, not {text!r}")
    return text


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, not {value}")
    return value
