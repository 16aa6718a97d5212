"""TLS channels: :class:`TLSChannel`, :func:`connect_tls` and :func:`listen_tls`.

A :class:`TLSChannel` is a :class:`~channels.sockets.SocketChannel` whose
socket is an :class:`ssl.SSLSocket` in non-blocking mode. The base class keeps
the outgoing buffer, line splitting, flush and close; this module only says
how bytes cross the TLS layer, and keeps the TLS state machine moving without
ever blocking a :class:`~channels.poller.Poller`.

Three things make TLS unlike a plain socket, and each is handled here:

* **The handshake** advances inside ``read()``, ``write()``/``flush()`` and
  ``Poller.poll()``, one non-blocking step at a time. Only
  :meth:`TLSChannel.handshake` and :func:`connect_tls` wait for it, on
  purpose and with a timeout.
* **A write can need a read, and a read a write.** ``SSLWantReadError`` on a
  write means the peer's reply must arrive first (the handshake, or a TLS 1.2
  renegotiation, is under way); ``SSLWantWriteError`` on a read means OpenSSL
  must send something (a handshake message, a key update) and the socket is
  full. The channel remembers which way it is blocked, so that the poller,
  ``flush()`` and :mod:`channels.aio` wait for the readiness that unblocks
  it instead of spinning on the one that does not.
* **Decrypted bytes poll cannot see.** OpenSSL reads one record at a time,
  and ``read()`` takes records until none is left (a whole one, even past
  ``read_size``), so nothing stays decrypted in memory after a read. Should a
  write leave some there (a renegotiation reads the peer's records while it
  writes), the poller is told to read the channel at its next turn.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import ssl

from . import _check
from ._wait import Deadline, wait_for
from .address import _unreachable
from .base import DEFAULT_CLOSE_TIMEOUT, DEFAULT_MAX_PENDING
from .errors import EndpointClosedException
from .framing import Framing
from .sockets import _NOSIGNAL, SocketChannel
from .splitter import DEFAULT_MAX_LINE_LENGTH

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "TLSChannel", "TLSServerSocket", "connect_tls", "listen_tls"]

_LOG = logging.getLogger("channels.tls")

#: Seconds :func:`connect_tls` waits, in all, for the connection and the
#: handshake. A live server answers in a few round trips; a dead one must not
#: hang the caller, as a default without a limit would.
DEFAULT_CONNECT_TIMEOUT = 10.0

# Plaintext taken by one _send(). The small writes of a loop turn are joined
# (a copy, cheap at that size); a large buffer is cut with a view, not copied.
_WRITE_CHUNK = 256 * 1024

# Plaintext in one TLS record, the most that one SSL_write sends and one
# SSL_read returns. The ssl module does not turn on OpenSSL's partial writes,
# so SSL_write is all or nothing: a large one that fills the socket halfway
# reports "want write" although most of it left; one record per call keeps
# the count of what left exact. And a read allocates what it asks for: asking
# for more than a record would cost an mmap and munmap per record.
_RECORD = 16 * 1024

StrPath = str | os.PathLike[str]


class TLSChannel(SocketChannel):
    """A channel speaking TLS over ``sock``, a connected stream socket.

    ``context`` is the :class:`ssl.SSLContext` to use; ``server_side`` says
    which end of the handshake this is. ``server_hostname`` (client side) is
    sent as SNI and checked against the server's certificate; it is required
    when the context checks host names, as those of
    :func:`ssl.create_default_context` do. Most programs call
    :func:`connect_tls` or :func:`listen_tls` rather than this constructor.

    The handshake runs without blocking as the channel is read, written or
    polled; :meth:`handshake` waits for it. Writes made before it completes
    are kept and sent once it has. A TLS failure (a certificate that does not
    verify, a protocol error, a peer that closes the connection without TLS
    ``close_notify`` and so may have cut the stream short) ends the channel:
    ``read()`` raises :class:`EndpointClosedException` with the
    :class:`ssl.SSLError` as ``__cause__``, after the data that came before
    it. The peer's ``close_notify`` is a clean end: no cause.

    :meth:`close` delivers pending output and then sends ``close_notify``;
    :meth:`abort` sends nothing, so that the peer can tell a stream cut short
    from a finished one. ``.socket`` is the :class:`ssl.SSLSocket`, for
    ``getpeercert()``, ``version()`` or ``cipher()``, not for I/O.
    """

    __slots__ = (
        "_tls",
        "_server_side",
        "_handshake_done",
        "_output_needs_read",
        "_input_needs_write",
        "_failure",
        "_end",
    )

    def __init__(
        self,
        sock: socket.socket,
        context: ssl.SSLContext,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        buffering: str | Framing | None = "bytes",
        max_line_length: int | None = DEFAULT_MAX_LINE_LENGTH,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        if not isinstance(context, ssl.SSLContext):
            raise TypeError(f"TLSChannel needs an ssl.SSLContext, not {type(context).__name__}")
        _check.flag(server_side, "server_side")
        super().__init__(sock, buffering=buffering, max_line_length=max_line_length, max_pending=max_pending)
        self._server_side = server_side
        self._handshake_done = False
        # Which way the TLS layer is blocked; see the module docstring.
        self._output_needs_read = False
        self._input_needs_write = False
        # The TLS error that ended the session, if one did.
        self._failure: OSError | None = None
        # The end of the input, when it came right after data that read()
        # returned first.
        self._end: EndpointClosedException | None = None
        try:
            # A peer that closes without close_notify may have been cut short
            # by an attacker or a crash; report it (as the cause of the end)
            # rather than pass it off as a clean end of stream.
            self._tls = context.wrap_socket(
                sock,
                server_side=server_side,
                server_hostname=server_hostname,
                do_handshake_on_connect=False,
                suppress_ragged_eofs=False,
            )
        except BaseException:
            self.closed = True  # nothing of ours to release: the caller keeps ``sock``
            raise
        self._sock = self._tls  # the base class reads, writes and closes it as a socket
        if not server_side:
            # Send the ClientHello now: the server speaks only once it has
            # it, so a client that is only polled would otherwise wait forever.
            with contextlib.suppress(OSError):  # kept in _failure, reported by read() and write()
                self._advance_handshake()

    @property
    def handshake_done(self) -> bool:
        """Whether the TLS handshake has completed."""
        return self._handshake_done

    def handshake(self, timeout: float | None = None) -> bool:
        """Complete the TLS handshake, waiting up to ``timeout`` seconds.

        ``None`` waits as long as it takes, ``0`` does not wait. Returns
        ``True`` once the handshake is complete, ``False`` if the time ran out
        (it goes on in later reads, writes and polls). Raises
        :class:`EndpointClosedException` if the handshake failed, with the
        :class:`ssl.SSLError` (such as :class:`ssl.SSLCertVerificationError`)
        as ``__cause__``, or if the channel is closed. Not needed for the
        channel to work: it is for a caller who wants a failure reported now.
        ``TypeError`` or ``ValueError`` for a timeout that is not a number of
        seconds >= 0.
        """
        deadline = Deadline(_check.timeout(timeout))
        while True:
            if self.closed:
                raise EndpointClosedException(f"{self!r} is closed")
            try:
                if self._handshake_done or self._advance_handshake():
                    self._resume_output()
                    return True
            except OSError as err:
                raise self._ended_by(err) from err
            if deadline.expired():
                return False
            wait_for(self._fd, select.POLLOUT if self._input_needs_write else select.POLLIN, deadline.remaining())

    # -- the hooks -------------------------------------------------------------

    def _read(self) -> bytes:
        if self._end is not None:
            end, self._end = self._end, None
            raise end
        if self._failure is not None:
            raise self._ended_by(self._failure)
        if not self._handshake_done:
            try:
                if not self._advance_handshake():
                    return b""
            except OSError as err:
                raise self._ended_by(err) from err
            self._resume_output()  # what was written while the handshake ran
        data = self._decrypt()
        if self._output_needs_read:
            # A write waited for the peer (a renegotiation): try it again.
            self._output_needs_read = False
            self._resume_output()
        return data

    def _send(self, buffers: list[bytes | memoryview]) -> int:
        if not self._handshake_done and not self._advance_handshake():
            raise BlockingIOError("the TLS handshake is under way")
        self._output_needs_read = False
        data = memoryview(_leading(buffers, _WRITE_CHUNK))
        sent = 0
        try:
            # After "want write" OpenSSL must be offered the same record
            # again: the next call starts with it, as only what was counted
            # sent is taken from the pending output.
            while sent < len(data):
                sent += self._tls.send(data[sent : sent + _RECORD])
        except ssl.SSLWantWriteError:
            pass
        except ssl.SSLWantReadError:
            self._output_needs_read = True  # a renegotiation waits for the peer's reply
        except ssl.SSLEOFError as err:
            # The ssl module reports a write to a vanished peer as an "EOF"
            # and loses errno: find the OS error (EPIPE, ECONNRESET) it
            # stands for, so that the cause says what happened.
            raise (_connection_error(self._tls) or err) from err
        self._wake_reader_if_pending()
        if not sent:
            raise BlockingIOError("TLS waits for the peer" if self._output_needs_read else "the socket is full")
        return sent

    def _poll_flushed(self, done: bool) -> bool:
        if self._input_needs_write:
            if not wait_for(self._fd, select.POLLOUT, 0):
                return False  # keep write readiness watched: the read side waits for it
            self._input_needs_write = False
            self._queue_read()
        # Output that waits for the peer's reply: watching write readiness
        # would wake the poller at once, for nothing, again and again. The
        # read side hands the output back once the reply has come.
        return done or self._output_needs_read

    def _output_wait(self) -> tuple[int, int]:
        return self._fd, select.POLLIN if self._output_needs_read else select.POLLOUT

    def _input_wait(self) -> tuple[int, int]:
        return self.get_fd(), select.POLLOUT if self._input_needs_write else select.POLLIN

    def shutdown_write(self, timeout: float | None = DEFAULT_CLOSE_TIMEOUT) -> None:
        """Not available over TLS: raises ``NotImplementedError`` (nothing is
        sent or dropped), or :class:`EndpointClosedException` if closed.

        A TLS half-close is a ``close_notify`` while reading goes on. The
        :mod:`ssl` module sends it only together with an attempt to read the
        peer's, which breaks the session if the peer's data is already
        waiting -- that data would be lost. asyncio offers no ``write_eof()``
        over TLS for the same reason. End the exchange in the protocol
        instead, or :meth:`close`.
        """
        if self.closed:
            raise EndpointClosedException(f"{self!r} is closed")
        raise NotImplementedError("TLSChannel cannot shut down its write side alone: close() it instead")

    def _end_cleanly(self) -> None:
        # Called by close() once everything written was delivered; not by
        # abort(), so that the peer can tell a stream cut short.
        if self._handshake_done:
            self._send_close_notify()

    def _describe(self) -> str:
        return f"fd={self._fd} tls {'server' if self._server_side else 'client'}"

    # -- the TLS state machine ------------------------------------------------

    def _advance_handshake(self) -> bool:
        """One non-blocking step of the handshake; ``True`` once complete.

        Raises the ``OSError`` (usually an :class:`ssl.SSLError`) that ended it.
        """
        if self._failure is not None:
            raise self._failure
        self._output_needs_read = self._input_needs_write = False
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            self._output_needs_read = True
            return False
        except ssl.SSLWantWriteError:
            self._input_needs_write = True
            self._ask_for_write_readiness()
            return False
        except OSError as err:
            self._failure = err
            _LOG.debug("%r: TLS handshake failed: %s", self, err)
            self._wake_reader()  # so that a poller reports the end
            raise
        self._handshake_done = True
        _LOG.debug("%r: TLS handshake done (%s)", self, self._tls.version())
        return True

    def _decrypt(self) -> bytes:
        """Take decrypted records until none is left (and at least
        ``read_size`` bytes' worth, or what there is)."""
        sock = self._tls
        chunks: list[bytes] = []
        size = 0
        self._input_needs_write = False
        # Stop at read_size (so that one busy peer cannot starve the others),
        # but never leave decrypted bytes behind: poll cannot see them.
        while size < self.read_size or sock.pending():
            try:
                data = sock.recv(max(min(self.read_size - size, _RECORD), sock.pending()))
            except ssl.SSLWantReadError:
                break
            except ssl.SSLWantWriteError:
                self._input_needs_write = True
                self._ask_for_write_readiness()
                break
            except OSError as err:
                return self._end_after(chunks, self._ended_by(err))
            if not data:
                return self._end_after(chunks, EndpointClosedException(f"{self!r}: the peer ended the TLS session"))
            chunks.append(data)
            size += len(data)
        return b"".join(chunks)

    def _end_after(self, chunks: list[bytes], end: EndpointClosedException) -> bytes:
        """Raise ``end`` now, or after returning ``chunks`` first."""
        if not chunks:
            raise end
        self._end = end
        self._wake_reader()
        return b"".join(chunks)

    def _ended_by(self, err: OSError) -> EndpointClosedException:
        if isinstance(err, ssl.SSLEOFError):
            why = "the peer closed the connection without TLS close_notify (the stream may be cut short)"
        elif isinstance(err, ssl.SSLError):
            why = f"TLS failed ({err})"
        else:
            why = f"read failed ({err})"
        end = EndpointClosedException(f"{self!r}: {why}")
        end.__cause__ = err
        return end

    def _send_close_notify(self) -> None:
        """Send TLS ``close_notify`` without waiting for the peer's.

        The alternatives: the two-way shutdown (``SSLSocket.unwrap()`` on a
        blocking socket) costs a round trip and hangs on a peer that never
        answers; sending nothing lets the peer mistake a cut connection for a
        finished stream. A one-way ``close_notify`` is what TLS 1.3 asks for
        (RFC 8446, 6.1), and what browsers and Go do: the peer learns that
        the stream is complete, and closing stays bounded.
        """
        try:
            self._tls.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass  # sent (or, the socket full, dropped): we do not wait for the peer's either way
        except (OSError, ValueError) as err:
            _LOG.debug("%r: close_notify not sent (%s)", self, err)

    # -- telling the poller -----------------------------------------------------

    def _ask_for_write_readiness(self) -> None:
        """The read side waits until the socket takes data: have the poller
        watch write readiness (see :meth:`_poll_flushed`)."""
        self._queue_flush()

    def _wake_reader(self) -> None:
        """Input waits in memory, where poll cannot see it: have the poller read."""
        self._queue_read()

    def _wake_reader_if_pending(self) -> None:
        if self._tls.pending():
            self._queue_read()


class TLSServerSocket(socket.socket):
    """A listening socket whose clients speak TLS.

    Given to :meth:`Poller.add_server <channels.poller.Poller.add_server>`, it
    hands out a :class:`TLSChannel` (server side) for each client, whose
    handshake then runs inside ``poll()`` without holding up other channels.
    Made by :func:`listen_tls`, or from any listening socket with
    :meth:`from_socket`.
    """

    _context: ssl.SSLContext

    @classmethod
    def from_socket(cls, sock: socket.socket, context: ssl.SSLContext) -> TLSServerSocket:
        """Take over ``sock``, a listening socket, to serve TLS with ``context``.

        ``context`` is a server context with a certificate loaded (see
        :func:`listen_tls`); ``sock`` is detached and must not be used again.
        ``TypeError`` for a context that is not an :class:`ssl.SSLContext`,
        ``ValueError`` for a socket that is closed or not listening.
        """
        if not isinstance(context, ssl.SSLContext):
            raise TypeError(f"TLSServerSocket needs an ssl.SSLContext, not {type(context).__name__}")
        if sock.fileno() < 0 or not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            raise ValueError("TLSServerSocket.from_socket() needs an open, listening socket")
        server = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        server._context = context
        return server

    @property
    def context(self) -> ssl.SSLContext:
        """The server's TLS context."""
        return self._context

    def wrap_client(
        self,
        sock: socket.socket,
        *,
        buffering: str | Framing | None = "bytes",
        max_line_length: int | None = DEFAULT_MAX_LINE_LENGTH,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> TLSChannel:
        """The channel for ``sock``, a client accepted from this server (the
        :class:`~channels.poller.Poller` calls it)."""
        return TLSChannel(
            sock,
            self._context,
            server_side=True,
            buffering=buffering,
            max_line_length=max_line_length,
            max_pending=max_pending,
        )

    def dup(self) -> TLSServerSocket:
        """A duplicate of the socket, serving TLS with the same context."""
        clone = super().dup()
        clone._context = self._context
        return clone


def connect_tls(
    host: str,
    port: int,
    *,
    cafile: StrPath | None = None,
    server_hostname: str | None = None,
    context: ssl.SSLContext | None = None,
    timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
    buffering: str | Framing | None = "bytes",
    max_line_length: int | None = DEFAULT_MAX_LINE_LENGTH,
    max_pending: int = DEFAULT_MAX_PENDING,
) -> TLSChannel:
    """Connect to ``host``:``port`` over TLS and return the channel, handshake done.

    The server's certificate is verified against the system's trusted CAs,
    plus those in ``cafile`` (a PEM file) if given, and must name
    ``server_hostname`` (default: ``host``; an IP address is checked against
    the certificate's IP addresses). Pass ``context`` instead to choose
    everything yourself (client certificates, versions, pinning).
    ``timeout`` bounds the connection and the handshake together (default
    :data:`DEFAULT_CONNECT_TIMEOUT` seconds, ``None`` for no limit).

    Raises ``OSError`` naming the address if the connection fails
    (``ConnectionRefusedError``, ``TimeoutError``) or ``cafile`` cannot be
    read (naming the file), :class:`EndpointClosedException` naming the
    address if the handshake fails, with the :class:`ssl.SSLError` (such as
    :class:`ssl.SSLCertVerificationError`) as ``__cause__``, ``ValueError``
    for both ``cafile`` and ``context``, and ``TypeError`` or ``ValueError``
    for a bad option (a ``timeout`` of ``0`` among them: a connection takes
    a round trip; a bad ``timeout`` is refused before any connection is
    made, and nothing is left open either way).
    """
    address = _tls_address(host, port)
    seconds = _check.timeout(timeout, positive=True)  # before a socket exists
    if context is None:
        if cafile is not None:
            _check.readable_file(cafile, "cafile")
        context = ssl.create_default_context()
        if cafile is not None:
            context.load_verify_locations(cafile=cafile)
    elif cafile is not None:
        raise ValueError("give cafile or context, not both: load the CA into the context with load_verify_locations()")
    deadline = Deadline(seconds)
    try:
        sock = socket.create_connection((host, port), timeout=seconds)
    except OSError as err:
        raise _unreachable(address, err) from err
    try:
        channel = TLSChannel(
            sock,
            context,
            server_hostname=server_hostname or host,
            buffering=buffering,
            max_line_length=max_line_length,
            max_pending=max_pending,
        )
    except BaseException:
        sock.close()
        raise
    try:
        if channel.handshake(deadline.remaining()):
            return channel
    except BaseException as failed:
        channel.abort()
        if isinstance(failed, EndpointClosedException):  # say where, keep why (the ssl error) as the cause
            reason = failed.__cause__ if failed.__cause__ is not None else failed
            raise EndpointClosedException(f"{address!r}: the TLS handshake failed ({reason})") from failed.__cause__
        raise
    channel.abort()
    raise TimeoutError(f"{address!r}: the TLS handshake did not complete within {timeout}s")


def listen_tls(
    host: str,
    port: int,
    *,
    certfile: StrPath,
    keyfile: StrPath | None = None,
    backlog: int | None = None,
) -> TLSServerSocket:
    """A listening socket on ``host``:``port`` for ``Poller.add_server`` whose
    clients speak TLS (see :class:`TLSServerSocket`).

    ``certfile`` is a PEM file with the server's certificate chain, and its
    private key too unless ``keyfile`` names the key's file. Clients are not
    asked for certificates. ``host`` may be a name, an IPv4 or an IPv6
    address; port ``0`` picks a free port (read it with ``getsockname()``).
    ``backlog`` is passed to ``listen()`` (``None``: the system's default).
    Raises ``OSError`` naming the file if one cannot be read, ``OSError``
    naming the address if it cannot be bound, :class:`ssl.SSLError` if the
    files do not hold a certificate and its key, and ``TypeError`` or
    ``ValueError`` for a ``backlog`` that is not a whole number >= 0.
    """
    backlog = _check.optional_count(backlog, "backlog", minimum=0)
    # The files first: a bad certificate leaves no socket behind.
    _check.readable_file(certfile, "certfile")
    if keyfile is not None:
        _check.readable_file(keyfile, "keyfile")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        sock = socket.create_server((host, port), family=family, backlog=backlog)
    except OSError as err:
        raise _unreachable(_tls_address(host, port), err) from err
    return TLSServerSocket.from_socket(sock, context)


def _tls_address(host: str, port: int) -> str:
    """``host`` and ``port`` as a ``tls:`` address, to name them in errors."""
    return f"tls:[{host}]:{port}" if ":" in host else f"tls:{host}:{port}"


def _connection_error(sock: socket.socket) -> OSError | None:
    """The OS error of a broken connection (EPIPE, ECONNRESET), found by
    sending nothing through the plain socket: no TLS record is written."""
    try:
        socket.socket.send(sock, b"", _NOSIGNAL)
    except OSError as err:
        return err
    return None  # pragma: no cover - a write failed, so the socket is broken


def _leading(buffers: list[bytes | memoryview], limit: int) -> bytes | memoryview:
    """The first ``limit`` bytes of ``buffers`` as one buffer.

    Called again after SSLWantWriteError, it offers the same bytes first and
    at least as many (OpenSSL's retry rule): the pending output only grows at
    its end.
    """
    first = buffers[0]
    if len(first) >= limit:
        return memoryview(first)[:limit]
    if len(buffers) == 1:
        return first
    parts: list[bytes | memoryview] = []
    room = limit
    for buffer in buffers:
        if len(buffer) >= room:
            parts.append(memoryview(buffer)[:room])
            break
        parts.append(buffer)
        room -= len(buffer)
    return b"".join(parts)
