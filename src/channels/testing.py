"""``TestChannel``: a channel for unit tests, with no real peer."""

from __future__ import annotations

import os
from collections import deque

from .channel import DEFAULT_MAX_PENDING, Buffer, Channel, _byte_view
from .errors import EndpointClosedException
from .splitter import DEFAULT_MAX_LINE_LENGTH

__all__ = ["TestChannel"]


class TestChannel(Channel):
    """A channel whose peer is the test: ``put()`` feeds ``read()``, ``get()``
    returns what was written.

    Its read side is a real pipe, so it works inside a ``Poller`` exactly like
    a channel over a socket: the descriptor becomes readable when data is put.
    """

    __test__ = False  # not a pytest test class, despite its name

    __slots__ = ("_faucet", "_feed", "_inbox", "_eof_put", "_outbox")

    def __init__(
        self,
        *,
        buffering: str | None = "bytes",
        max_line_length: int | None = DEFAULT_MAX_LINE_LENGTH,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        # The pipe first: if it cannot be had (EMFILE), no half-built channel
        # is left to warn about itself; if the options are bad, it is closed.
        self._faucet, self._feed = os.pipe()
        try:
            super().__init__(buffering=buffering, max_line_length=max_line_length, max_pending=max_pending)
        except BaseException:
            os.close(self._faucet)
            os.close(self._feed)
            raise
        os.set_blocking(self._faucet, False)
        os.set_blocking(self._feed, False)
        # What was put but does not fit in the pipe yet.
        self._inbox: deque[bytes | memoryview] = deque()
        self._eof_put = False
        self._outbox = bytearray()

    def put(self, data: Buffer) -> None:
        """Make ``data`` readable by ``read()``, after what was put before."""
        if self._closed:
            raise EndpointClosedException(f"{self!r} is closed")
        if self._eof_put:
            raise ValueError("put() after put_eof(): the input has already ended")
        view = data if type(data) is bytes else bytes(_byte_view(data))
        if view:
            self._inbox.append(view)
            self._pump()

    def put_eof(self) -> None:
        """End the input: once what was put is read, ``read()`` raises
        :class:`EndpointClosedException`."""
        if not self._eof_put:
            self._eof_put = True
            self._pump()

    def get(self) -> bytes:
        """Return what was written since the last ``get()``."""
        self._flush_pending()  # output held for a poller counts as written
        data = bytes(self._outbox)
        self._outbox.clear()
        return data

    def get_fd(self) -> int:
        """The read end of the internal pipe."""
        if self._closed:
            raise EndpointClosedException(f"{self!r} is closed")
        return self._faucet

    def _pump(self) -> None:
        """Move what was put into the pipe, as far as it has room."""
        inbox = self._inbox
        while inbox:
            try:
                taken = os.write(self._feed, inbox[0])
            except BlockingIOError:
                return
            if taken < len(inbox[0]):
                inbox[0] = memoryview(inbox[0])[taken:]
                return
            inbox.popleft()
        if self._eof_put and self._feed >= 0:
            os.close(self._feed)
            self._feed = -1

    def _read(self) -> bytes:
        try:
            data = os.read(self._faucet, self._read_now)
        except BlockingIOError:
            return b""
        if not data:
            raise EndpointClosedException(f"{self!r}: end of input")
        self._pump()
        return data

    def _send(self, buffers: list[bytes | memoryview]) -> int:
        size = 0
        for buffer in buffers:
            self._outbox += buffer
            size += len(buffer)
        return size

    def _release(self) -> None:
        os.close(self._faucet)
        if self._feed >= 0:
            os.close(self._feed)
            self._feed = -1

    def _describe(self) -> str:
        return f"fd={self._faucet}"
