"""A channel over a pair of descriptors: pipes, a child's stdio, a terminal."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import weakref
from typing import Protocol

from . import _check
from .base import DEFAULT_MAX_PENDING, Channel
from .errors import EndpointClosedException
from .framing import Framing
from .splitter import DEFAULT_MAX_LINE_LENGTH

__all__ = ["PipeChannel"]


class _HasFileno(Protocol):
    def fileno(self) -> int: ...  # pragma: no cover


#: A descriptor number or an object with ``fileno()``.
FileLike = int | _HasFileno


class _End:
    """One owned descriptor: its number, its original flags, its file object."""

    __slots__ = ("__weakref__", "fd", "flags", "owner", "closed", "identity")

    def __init__(self, target: FileLike, role: str, access: tuple[int, ...]) -> None:
        self.closed = False
        self.owner = None if isinstance(target, int) else target
        self.fd = _fileno(target, role)
        try:
            self.flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
        except OSError as err:
            raise ValueError(f"{role} {self.fd} is not an open file descriptor") from err
        if self.flags & os.O_ACCMODE not in access:
            raise ValueError(f"{role} {self.fd} is not open for {'reading' if role == 'faucet' else 'writing'}")
        self.identity = _identity(self.fd)

    def make_non_blocking(self) -> None:
        if not self.flags & os.O_NONBLOCK:
            fcntl.fcntl(self.fd, fcntl.F_SETFL, self.flags | os.O_NONBLOCK)

    def close(self) -> None:
        if self.closed:
            return  # a write side shut down earlier: its number may be someone else's now
        self.closed = True
        _unclaim(self)  # before the number is freed, and may be claimed again
        # The flags live in the open file description, which a terminal or an
        # inherited stdout shares with other processes: put them back.
        if not self.flags & os.O_NONBLOCK:
            with contextlib.suppress(OSError):
                fcntl.fcntl(self.fd, fcntl.F_SETFL, self.flags)
        if self.owner is not None and hasattr(self.owner, "close"):
            self.owner.close()
        else:
            with contextlib.suppress(OSError):  # closed behind our back: nothing to free
                os.close(self.fd)


class PipeChannel(Channel):
    """A channel reading from ``faucet`` and writing to ``sink``.

    Each may be a descriptor number or an object with ``fileno()`` (such as
    ``Popen.stdout``); at least one must be given, and both make the channel
    bidirectional. Both are switched to non-blocking mode. The channel owns
    them: ``close()`` closes them (a file object through its own ``close()``),
    after restoring their original blocking mode. Raises ``ValueError`` for a
    descriptor that is not open, or not open in the needed direction.

    One descriptor belongs to one channel at a time: a second
    ``PipeChannel`` on a descriptor that a live one owns raises
    ``ValueError`` naming it, since closing either would close the other's
    descriptor, or a file that reused its number. (One channel may take a
    descriptor open for both as faucet and sink.) A closed channel, or one
    shut down for writing, gives its descriptors up; to share one, share the
    channel, or give each channel a duplicate (``os.dup()``).

    ``shutdown_write()`` closes the sink alone, so that its reader sees end of
    file; it raises ``NotImplementedError`` when faucet and sink are one
    descriptor.
    """

    __slots__ = ("_in", "_out")

    def __init__(
        self,
        faucet: FileLike | None = None,
        sink: FileLike | None = None,
        *,
        buffering: str | Framing | None = "bytes",
        max_line_length: int | None = DEFAULT_MAX_LINE_LENGTH,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        if faucet is None and sink is None:
            raise ValueError("PipeChannel needs a faucet (to read), a sink (to write) or both")
        # Check everything before changing a descriptor's mode, and before the
        # base class counts the channel as open: a refused construction leaves
        # the caller's descriptors as they were and warns of no unclosed channel.
        faucet_end = None if faucet is None else _End(faucet, "faucet", (os.O_RDONLY, os.O_RDWR))
        sink_end = None if sink is None else _End(sink, "sink", (os.O_WRONLY, os.O_RDWR))
        ends = [end for end in (faucet_end, sink_end) if end is not None]
        _claim(ends, self)
        try:
            super().__init__(buffering=buffering, max_line_length=max_line_length, max_pending=max_pending)
        except BaseException:  # a bad option: the descriptors stay the caller's
            for end in ends:
                _unclaim(end)
            raise
        self._in = faucet_end
        self._out = sink_end
        for end in ends:
            end.make_non_blocking()

    def get_fd(self) -> int:
        """The faucet's descriptor; ``NotImplementedError`` if there is none."""
        if self.closed:
            raise EndpointClosedException(f"{self!r} is closed")
        if self._in is None:
            return super().get_fd()
        return self._in.fd

    def _read(self) -> bytes:
        if self._in is None:
            return super()._read()
        try:
            data = os.read(self._in.fd, self.read_size)
        except BlockingIOError:
            return b""
        except OSError as err:
            if err.errno == errno.EINTR:  # pragma: no cover - PEP 475 retries
                return b""
            raise EndpointClosedException(f"{self!r}: read failed ({err})") from err
        if not data:
            raise EndpointClosedException(f"{self!r}: end of file")
        return data

    def _writable(self) -> bool:
        return self._out is not None

    def _send(self, buffers: list[bytes | memoryview]) -> int:
        assert self._out is not None
        if len(buffers) == 1:
            return os.write(self._out.fd, buffers[0])
        return os.writev(self._out.fd, buffers)

    def _write_fd(self) -> int:
        assert self._out is not None
        return self._out.fd

    def _shutdown_write(self) -> None:
        assert self._out is not None
        if self._in is not None and self._in.fd == self._out.fd:
            raise NotImplementedError(
                f"{self!r} reads and writes one descriptor: closing the write side would close the read side too"
            )
        self._out.close()

    def _release(self) -> None:
        ends = [end for end in (self._in, self._out) if end is not None]
        if len(ends) == 2 and ends[0].fd == ends[1].fd and ends[0].owner is ends[1].owner:
            ends.pop()  # one descriptor given as both faucet and sink
        for end in ends:
            end.close()

    def _describe(self) -> str:
        faucet = "-" if self._in is None else str(self._in.fd)
        sink = "-" if self._out is None else str(self._out.fd)
        return f"faucet={faucet} sink={sink}"


def _fileno(target: FileLike, role: str) -> int:
    if isinstance(target, bool) or not (isinstance(target, int) or hasattr(target, "fileno")):
        raise TypeError(f"{role} must be a descriptor number or have fileno(), not {type(target).__name__}")
    try:
        fd = target if isinstance(target, int) else target.fileno()
    except (OSError, ValueError) as err:
        raise ValueError(f"{role} {target!r} has no usable descriptor: {err}") from err
    return _check.descriptor(fd, role)


# -- one channel per descriptor ---------------------------------------------------
#
# Two channels that own one descriptor each close it: the second close then
# hits nothing (EBADF), or, worse, whatever file took the number meanwhile.
# asyncio refuses a second transport on a descriptor it watches ("File
# descriptor is used by transport"), and Python's socket objects forget their
# number once closed. Here each descriptor owned by a live PipeChannel is
# claimed, and a second claim is refused; the claim goes when the channel
# closes the descriptor (close(), abort(), shutdown_write(), or the garbage
# collector's warning close). Claims are weak, and a claim whose descriptor
# now names another file (its owner, a subclass in the original library's
# style, closed it in its own way) is stale: neither can hold a number that
# the channel no longer owns.

_claims: dict[int, tuple[weakref.ref[_End], weakref.ref[PipeChannel]]] = {}


def _claim(ends: list[_End], channel: PipeChannel) -> None:
    """Claim the descriptors of ``ends`` for ``channel``; ``ValueError``
    (claiming none) if one belongs to another live channel."""
    for end in ends:
        current = _claims.get(end.fd)
        if current is None:
            continue
        owned, owner = current[0](), current[1]()
        if owned is None or owner is None or owned.closed or owned.identity != end.identity:
            continue  # stale: taken over below
        raise ValueError(
            f"descriptor {end.fd} already belongs to {owner!r}: two channels on one descriptor would each "
            f"close it; use that channel, or give this one a duplicate (os.dup({end.fd}))"
        )
    for end in ends:
        current = _claims.get(end.fd)
        if current is not None and any(current[0]() is other for other in ends):
            continue  # one descriptor as both faucet and sink: claimed once
        _claims[end.fd] = (weakref.ref(end), weakref.ref(channel))


def _unclaim(end: _End) -> None:
    """Give up ``end``'s claim (a claim another end holds stays)."""
    current = _claims.get(end.fd)
    if current is not None and current[0]() in (end, None):
        del _claims[end.fd]


def _identity(fd: int) -> tuple[int, int]:
    """What file ``fd`` names now: its device and inode."""
    info = os.fstat(fd)
    return info.st_dev, info.st_ino
