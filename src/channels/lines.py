"""``LineChannel``: line framing over any channel (the 0.1.1 API)."""

from __future__ import annotations

from typing import Protocol, TypeGuard

from . import _check
from ._seam import WaitedChannel
from .base import DEFAULT_CLOSE_TIMEOUT, Buffer, Channel, _is_ours
from .errors import EndpointClosedException
from .splitter import DEFAULT_MAX_LINE_LENGTH

__all__ = ["ChannelLike", "LineChannel"]


class ChannelLike(Protocol):
    """What ``LineChannel`` needs of the channel it wraps (the 0.1.1 contract)."""

    def read(self) -> bytes:
        """The bytes available now, ``b''`` if none; raises at the end."""

    def write(self, *data: Buffer) -> None:
        """Send the chunks in order."""

    def close(self) -> None:
        """Close the channel."""

    def get_fd(self) -> int:
        """A descriptor to watch for reading."""


class LineChannel(Channel):
    """Wraps ``channel`` so that ``read()`` returns one line at a time.

    Exactly what ``buffering='line'`` does on the other constructors: see
    :meth:`Channel.read`. ``max_line_length`` bounds a line, not counting
    its ``b'\\n'`` (default :data:`~channels.DEFAULT_MAX_LINE_LENGTH`, 1 MiB;
    ``None`` for no bound); a longer one is discarded as it arrives and
    raises :class:`LineTooLongError` once, in its place. ``write``,
    ``flush``, ``close`` and ``get_fd`` go to the wrapped channel, which the
    ``LineChannel`` owns from now on. The wrapped channel may be any object
    with ``read()`` (returning ``b''`` when nothing is available and raising
    :class:`EndpointClosedException` at the end), ``write()``, ``close()``
    and ``get_fd()``: a channel of this package, a subclass of
    :class:`Channel` in the original library's styles, or a duck type;
    anything else (``None``, a socket, a descriptor number) raises
    ``TypeError`` here, not ``AttributeError`` at its first use.
    """

    __slots__ = ("_inner",)

    def __init__(self, channel: ChannelLike, *, max_line_length: int | None = DEFAULT_MAX_LINE_LENGTH) -> None:
        if not isinstance(channel, Channel):
            _check.channel_like(channel, "LineChannel")
        super().__init__(buffering="line", max_line_length=max_line_length)
        self._inner = channel

    @property
    def channel(self) -> ChannelLike:
        """The wrapped channel."""
        return self._inner

    @property
    def pending_output(self) -> int:
        """Bytes written but not yet taken by the operating system."""
        return int(getattr(self._inner, "pending_output", 0))

    def get_fd(self) -> int:
        """The wrapped channel's descriptor for reading."""
        if self.closed:
            raise EndpointClosedException(f"{self!r} is closed")
        return self._inner.get_fd()

    def write(self, *data: Buffer) -> None:
        """Write through the wrapped channel; see :meth:`Channel.write`."""
        if self.closed:
            raise EndpointClosedException(f"{self!r} is closed")
        self._inner.write(*data)
        if self.pending_output:
            self._queue_flush()

    def close(self, timeout: float | None = DEFAULT_CLOSE_TIMEOUT) -> None:
        """Close the wrapped channel; lines already received stay readable."""
        timeout = _check.timeout(timeout)
        if self.closed:
            return
        self._shut()
        if _is_native(self._inner):
            self._inner.close(timeout)
        else:
            self._inner.close()

    def abort(self) -> None:
        """Close the wrapped channel at once, dropping pending output."""
        if self.closed:
            return
        self._shut(clean=False)
        if _is_native(self._inner):
            self._inner.abort()
        else:
            self._inner.close()

    def shutdown_write(self, timeout: float | None = DEFAULT_CLOSE_TIMEOUT) -> None:
        """Shut down the wrapped channel's write side; see
        :meth:`Channel.shutdown_write`. ``NotImplementedError`` if the wrapped
        channel has no ``shutdown_write()``."""
        timeout = _check.timeout(timeout)
        if self.closed:
            raise EndpointClosedException(f"{self!r} is closed")
        shutdown = getattr(self._inner, "shutdown_write", None)
        if shutdown is None:
            raise NotImplementedError(f"{self._inner!r} cannot shut down its write side alone")
        self._output_ending()
        shutdown(timeout)

    def _read(self) -> bytes:
        data = self._inner.read()
        return data if type(data) is bytes else bytes(data)

    # What a wrapped Channel of this package does for itself (sending,
    # waiting) it is asked through the seam (channels._seam.WaitedChannel);
    # any other object is only read, written and closed.

    def _flush_pending(self) -> bool:
        # Any Channel keeps its output in the base buffer (empty if it
        # overrides write() itself), so it is safe to flush that.
        inner = _waited(self._inner)
        return True if inner is None else inner._flush_pending()

    def _write_fd(self) -> int:
        inner = _waited(self._inner)
        return self._inner.get_fd() if inner is None else inner._write_fd()

    def _input_wait(self) -> tuple[int, int]:
        inner = _waited(self._inner)
        return super()._input_wait() if inner is None else inner._input_wait()

    def _output_wait(self) -> tuple[int, int]:
        inner = _waited(self._inner)
        return super()._output_wait() if inner is None else inner._output_wait()

    def _describe(self) -> str:
        return f"over {self._inner!r}"


def _waited(channel: object) -> WaitedChannel | None:
    """``channel`` as the seam's waited side, if it is a Channel of this package's making."""
    return channel if isinstance(channel, Channel) else None


def _is_native(channel: object) -> TypeGuard[Channel]:
    """Whether ``channel`` closes the way this package does: ``close(timeout)``
    and ``abort()`` both release its descriptors. A subclass that overrides
    ``close()`` or ``write()`` (the original library's styles) is closed
    through its own ``close()``."""
    return isinstance(channel, Channel) and _is_ours(type(channel).close)
