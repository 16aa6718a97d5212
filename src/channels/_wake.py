"""What wakes a waiting poll: a byte written to the poller's wake-up socket.

``Poller.wakeup()`` writes one from any thread; a signal watched with
``Poller.watch_signals()`` has the interpreter write one (its number) from
the signal handler's C level (see :mod:`channels.signals`). The poller
watches the other end and, when it is readable, drains it.
"""

from __future__ import annotations

import contextlib
import socket
import weakref

__all__ = ["Waker"]


class Waker:
    """A socket pair: :meth:`wake` writes to one end, a poll watches :attr:`fd`."""

    def __init__(self) -> None:
        # A socket pair rather than raw pipe descriptors: once closed, a socket
        # object raises instead of writing into whatever reused its number.
        self._send, self._recv = socket.socketpair()
        self._send.setblocking(False)
        self._recv.setblocking(False)
        #: The end a poll watches for reading.
        self.fd = self._recv.fileno()
        #: The end written to, by :meth:`wake` or by the signal machinery.
        self.send_fd = self._send.fileno()
        # Closes both ends, once; a waker dropped without it must not leak
        # them (nor warn).
        self.close = weakref.finalize(self, _close_all_of, self._send, self._recv)

    def wake(self) -> None:
        """Make the watched end readable; does nothing once closed."""
        # BlockingIOError: the socket is full, a wake-up is already pending.
        # Any other OSError: closed, there is no poll left to wake.
        with contextlib.suppress(OSError):
            self._send.send(b"\0")

    def drain(self) -> bytes:
        """Everything written since the last drain: a zero byte per
        :meth:`wake`, a signal's number per signal delivered."""
        chunks = []
        with contextlib.suppress(OSError):  # BlockingIOError: all read
            while chunk := self._recv.recv(4096):
                chunks.append(chunk)
        return b"".join(chunks)


def _close_all_of(*sockets: socket.socket) -> None:
    for sock in sockets:
        sock.close()
