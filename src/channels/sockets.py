"""A channel over a connected stream socket: TCP, Unix, socketpair."""

from __future__ import annotations

import socket

from .channel import DEFAULT_MAX_PENDING, Channel
from .errors import EndpointClosedException
from .splitter import DEFAULT_MAX_LINE_LENGTH

__all__ = ["SocketChannel"]

# Report a vanished peer as EPIPE rather than a signal, whatever the
# process's SIGPIPE disposition is.
_NOSIGNAL = getattr(socket, "MSG_NOSIGNAL", 0)


class SocketChannel(Channel):
    """A channel over ``sock``, a connected stream socket.

    The socket is switched to non-blocking mode and owned by the channel:
    ``close()`` closes it. Raises ``TypeError`` if ``sock`` is not a socket
    and ``ValueError`` if it is closed, not a stream socket, or listening
    (give a listening socket to ``Poller.add_server`` instead).
    """

    __slots__ = ("_sock", "_fd")

    def __init__(
        self,
        sock: socket.socket,
        *,
        buffering: str | None = "bytes",
        max_line_length: int | None = DEFAULT_MAX_LINE_LENGTH,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        super().__init__(buffering=buffering, max_line_length=max_line_length, max_pending=max_pending)
        _check_stream_socket(sock)
        sock.setblocking(False)
        self._sock = sock
        self._fd = sock.fileno()

    @property
    def socket(self) -> socket.socket:
        """The wrapped socket (for options and addresses, not for I/O)."""
        return self._sock

    def get_fd(self) -> int:
        """The socket's descriptor."""
        if self._closed:
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

    def _release(self) -> None:
        self._sock.close()

    def _describe(self) -> str:
        return f"fd={self._fd}"


def _check_stream_socket(sock: object) -> None:
    if not isinstance(sock, socket.socket):
        raise TypeError(f"SocketChannel wraps a socket.socket, not {type(sock).__name__}")
    if sock.fileno() < 0:
        raise ValueError("SocketChannel needs an open socket; this one is closed")
    if sock.type != socket.SOCK_STREAM:
        raise ValueError(f"SocketChannel needs a stream socket, not {sock.type!r}")
    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        raise ValueError("this socket is listening: give it to Poller.add_server(), not SocketChannel")
