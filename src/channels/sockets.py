"""A channel over a connected stream socket: TCP, Unix, socketpair."""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import NamedTuple

from .base import DEFAULT_MAX_PENDING, Channel
from .errors import EndpointClosedException
from .framing import Framing
from .splitter import DEFAULT_MAX_LINE_LENGTH

__all__ = ["PeerCredentials", "SocketChannel"]

# struct ucred: pid_t pid, uid_t uid, gid_t gid.
_UCRED = struct.Struct("iII")


class PeerCredentials(NamedTuple):
    """Who is at the other end of a Unix socket, as the kernel saw it when
    the connection was made: process id, user id and group id. The pid is 0
    when the peer lives in another pid namespace."""

    pid: int
    uid: int
    gid: int


def peer_credentials_of(sock: socket.socket) -> PeerCredentials:
    """Read the peer's credentials of a connected Unix socket (``SO_PEERCRED``).

    Raises ``NotImplementedError`` where the platform has no ``SO_PEERCRED``
    (it is Linux's; macOS and the BSDs spell it differently and are not
    supported yet), and ``OSError`` if the kernel refuses.
    """
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:  # pragma: no cover - not Linux
        raise NotImplementedError("peer credentials need SO_PEERCRED, which this platform does not have")
    return PeerCredentials(*_UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, option, _UCRED.size)))


# Report a vanished peer as EPIPE rather than a signal, whatever the
# process's SIGPIPE disposition is.
_NOSIGNAL = getattr(socket, "MSG_NOSIGNAL", 0)


class SocketChannel(Channel):
    """A channel over ``sock``, a connected stream socket.

    The socket is switched to non-blocking mode and owned by the channel:
    ``close()`` closes it. On a TCP socket, ``nodelay=True`` (the default)
    sets ``TCP_NODELAY``: each write leaves at once instead of waiting, as
    Nagle's algorithm would, for the peer to acknowledge what is in flight.
    ``nodelay=False`` leaves the socket's option as it was given. Raises ``TypeError`` if ``sock`` is not a socket
    and ``ValueError`` if it is closed, not a stream socket, or listening
    (give a listening socket to ``Poller.add_server`` instead).
    """

    __slots__ = ("_sock",)

    def __init__(
        self,
        sock: socket.socket,
        *,
        buffering: str | Framing | None = "bytes",
        max_line_length: int | None = DEFAULT_MAX_LINE_LENGTH,
        max_pending: int = DEFAULT_MAX_PENDING,
        nodelay: bool = True,
    ) -> None:
        _check_stream_socket(sock)  # first: a refused socket makes no half-built, "unclosed" channel
        super().__init__(buffering=buffering, max_line_length=max_line_length, max_pending=max_pending)
        sock.setblocking(False)
        if nodelay and sock.family in _TCP_FAMILIES:
            _set_nodelay(sock)
        self._sock = sock

    @property
    def socket(self) -> socket.socket:
        """The wrapped socket (for options and addresses, not for I/O)."""
        return self._sock

    @property
    def _fd(self) -> int:
        # Asked of the socket, not stored: an int per idle channel adds up.
        return self._sock.fileno()

    def get_fd(self) -> int:
        """The socket's descriptor."""
        if self.closed:
            raise EndpointClosedException(f"{self!r} is closed")
        return self._fd

    def _read(self) -> bytes:
        try:
            data = self._sock.recv(self.read_size)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError as err:
            raise EndpointClosedException(f"{self!r}: read failed ({err})") from err
        if not data:
            raise EndpointClosedException(f"{self!r}: the peer closed the connection")
        return data

    def _send(self, buffers: list[bytes | memoryview]) -> int:
        if len(buffers) == 1:
            return self._sock.send(buffers[0], _NOSIGNAL)
        return self._sock.sendmsg(buffers, (), _NOSIGNAL)

    @property
    def peer_credentials(self) -> PeerCredentials | None:
        """The peer process's pid, uid and gid, for a Unix socket.

        What the kernel recorded when the connection was made
        (``SO_PEERCRED``), so the peer cannot lie about it. ``None`` for a
        socket that is not a Unix socket (a TCP peer has no credentials the
        kernel can vouch for). Raises ``NotImplementedError`` on platforms
        without ``SO_PEERCRED`` (only Linux is supported), and
        :class:`EndpointClosedException` once the channel is closed.
        """
        if self.closed:
            raise EndpointClosedException(f"{self!r} is closed")
        if self._sock.family != socket.AF_UNIX:
            return None
        return peer_credentials_of(self._sock)

    def _shutdown_write(self) -> None:
        with contextlib.suppress(OSError):  # not connected any more: the peer has seen the end
            self._sock.shutdown(socket.SHUT_WR)

    def _release(self) -> None:
        self._sock.close()

    def _describe(self) -> str:
        return f"fd={self._fd}"


_TCP_FAMILIES = (socket.AF_INET, socket.AF_INET6)


def _set_nodelay(sock: socket.socket) -> None:
    """Turn Nagle's algorithm off on the TCP socket ``sock``.

    Nagle holds a small segment back while an earlier one is unacknowledged;
    with the peer's delayed acknowledgement, a request written in two pieces
    can wait 40 ms (Linux) to 200 ms for its second. This library already
    gathers the writes of a turn into one send, which is what Nagle exists
    to do for programs that write byte by byte. asyncio and trio set
    ``TCP_NODELAY`` on every TCP stream they make, including one over a
    socket the program gives them; Twisted and Tornado leave it to the
    program (``setTcpNoDelay``, ``set_nodelay``). We do as asyncio and trio,
    for accepted, connected and given sockets alike, so that a channel
    behaves the same however it was made; ``nodelay=False`` is there for a
    program that wants its own setting kept.
    """
    # Some TCP-like sockets (such as MPTCP on old kernels) refuse the option;
    # the channel works without it, as trio's does.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _check_stream_socket(sock: object) -> None:
    if not isinstance(sock, socket.socket):
        raise TypeError(f"SocketChannel wraps a socket.socket, not {type(sock).__name__}")
    if sock.fileno() < 0:
        raise ValueError("SocketChannel needs an open socket; this one is closed")
    if sock.type != socket.SOCK_STREAM:
        raise ValueError(f"SocketChannel needs a stream socket, not {sock.type!r}")
    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        raise ValueError("this socket is listening: give it to Poller.add_server(), not SocketChannel")
