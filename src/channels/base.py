"""The :class:`Channel` contract, and the buffering every channel shares.

A concrete channel says only how to move bytes through its descriptors, in
these hooks:

``_read()`` (abstract)
    One non-blocking read: the bytes available now, ``b''`` if none; raises
    :class:`EndpointClosedException` at end of file or on an error. A
    subclass that defines ``read()``, ``write()`` or ``close()`` itself (the
    original library's 0.1.1 style) need not define it.
``_send(buffers)``
    One non-blocking write of as much of ``buffers`` (a list of bytes-like
    objects, to read but not to keep) as the descriptor takes; returns how
    many bytes it took. Raises ``BlockingIOError`` if it took nothing,
    ``OSError`` if the peer is gone. Without it, ``write()`` raises
    ``NotImplementedError``.
``_release()``
    Closes the descriptors.
``get_fd()`` / ``_write_fd()``
    The descriptors to watch for reading and for writing.
``_writable()`` (optional)
    Whether the channel has somewhere to write to (``True``); a read-only
    channel says ``False``, and ``write()`` raises ``NotImplementedError``.
``_describe()`` (optional)
    A few words naming the descriptors, for ``repr()``.
``_shutdown_write()`` (optional)
    Ends the write direction alone, so that the peer sees end of file (a
    socket's ``SHUT_WR``, closing a pipe's write end). Pending output has
    been sent or dropped before it is called. Without it, ``shutdown_write()``
    raises ``NotImplementedError``.
``_output_wait()`` / ``_input_wait()`` (optional)
    What pending output and ``read()`` wait for: a descriptor and
    ``POLLOUT`` or ``POLLIN``. Only a channel whose write can need a read
    first, or the reverse (TLS), says anything but the obvious.
``_poll_flushed(done)`` (optional)
    After the poller sent what it could (``done``: nothing is left), whether
    it may stop watching write readiness. A channel whose read waits for
    write readiness, or whose output waits for a read (TLS), says so.
``_end_cleanly()`` (optional)
    Called by ``close()`` once everything written was delivered, before the
    descriptors are released: ends the protocol cleanly (TLS ``close_notify``).
    Not called by ``abort()``, nor when output was dropped or the peer is gone.

What a hook or a subclass may call, besides the public methods:
``_flush_pending()`` (send what the descriptor takes now, without waiting;
whether nothing is left), ``_write_failed(err)`` (the peer is gone: drop
pending output, later writes raise), ``_queue_flush()`` and ``_queue_read()``
(have the poller send output, or read input held in memory, at its next
poll), ``_resume_output()`` (output that waited for something else than
write readiness may move), ``_output_ending()`` (before a write side ends),
``_shut(clean)`` (close now), and the public ``closed``, ``read_size`` and
``pending_output``. The base's own state, under ``_ch_`` names, is its own.

Everything else is the base's, once, for every channel kind. ``Channel``
is written in parts, each a concern of its own in a module of its own, which
it inherits from (plain classes with empty ``__slots__``; ``channels._parts``
says what they share):

* here: the state, construction, the contract's properties, ``read()``,
  ``write()`` (with the turn's short path), ``close()``, ``abort()``, the
  hooks, and how the turn and a peer's failure end a channel;
* ``channels._framed``: input framing, lines or a framing of
  :mod:`channels.framing`, for ``read()`` and for the poller, and the
  ``buffering`` property;
* ``channels._waiting``: the waiting reads, ``receive()`` and ``expect()``;
* ``channels._sending``: the output side, ``flush()``, ``shutdown_write()``,
  the general case of ``write()``, sending for the poller and a peer that is gone; the bytes wait
  in an :class:`~channels.outbuffer.OutputBuffer`.

The parts are the base channel itself: they, and no other module, read and
write its ``_ch_*`` state. The hand-off to a :class:`~channels.poller.Poller`
is ``channels._seam``.

Code written for the original library keeps working: a subclass that defines
``_read()`` (0.2 style) gets ``read()`` and line buffering from this class; a
subclass that overrides ``read()``, ``write()`` and ``close()`` itself
(0.1.1 style) is driven through those methods by the poller.
"""

from __future__ import annotations

import contextlib
import select
import warnings
from abc import ABCMeta, abstractmethod
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from . import _check
from ._framed import Buffering, FramedInput, check_buffering, decoder_for
from ._parts import DEFAULT_CLOSE_TIMEOUT
from ._parts import LOG as _LOG
from ._parts import again as _again
from ._seam import ChannelPoller
from ._sending import BATCH_LIMIT as _BATCH_LIMIT
from ._sending import Sending
from ._waiting import WaitingReads
from .errors import EndpointClosedException
from .framing import FrameDecoder, Framing
from .outbuffer import OutputBuffer
from .splitter import DEFAULT_MAX_LINE_LENGTH

#: What ``write()`` takes: any bytes-like object.
Buffer = bytes | bytearray | memoryview

__all__ = [
    "Buffer",
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_MAX_PENDING",
    "DEFAULT_READ_SIZE",
    "Buffering",
    "Channel",
    "check_buffering",
]

# ``with PipeChannel(...) as channel`` types ``channel`` as a PipeChannel.
_ChannelT = TypeVar("_ChannelT", bound="Channel")

#: The most bytes one read system call asks for. One read per ready channel
#: per ``Poller.poll()``, so this is also the per-poll read cap that keeps one
#: busy peer from starving the others. 64 KiB, what a pipe holds: a read
#: allocates what it asks for, and larger reads were slower, not faster, in
#: the bulk benchmark (256 KiB: 0.85x a raw ``recv_into`` loop, 64 KiB:
#: 1.2-1.4x), because a fresh buffer per read then no longer stays in the
#: CPU cache; past glibc's mmap threshold (128 KiB) a read may also pay an
#: mmap and munmap.
DEFAULT_READ_SIZE = 64 * 1024

#: Bound on output a channel holds for a peer that does not read. Generous, so
#: that a single large write (a file, a dump) goes through, yet finite, so that
#: a stuck peer costs a server at most this much memory.
DEFAULT_MAX_PENDING = 64 * 1024 * 1024


if TYPE_CHECKING:
    # To a type checker ``_read`` is an ordinary method: a 0.1.1-style
    # subclass, which defines read() instead, is concrete, and a checker
    # cannot know the exception _ChannelType makes for it.
    _F = TypeVar("_F")

    def _abstract_hook(hook: _F) -> _F:
        return hook
else:
    _abstract_hook = abstractmethod

# The base's methods whose override makes a subclass one of the original
# library's 0.1.1 style, which reads, writes and closes by itself.
_OWN_STYLE_METHODS = ("read", "write", "close")


class _ChannelType(ABCMeta):
    """:class:`Channel`'s metaclass: ``ABCMeta``, except that ``_read`` is not
    required of a subclass in the 0.1.1 style (one that overrides ``read()``,
    ``write()`` or ``close()``): such a subclass never reaches the base's
    ``read()``, and the original library let it be instantiated."""

    def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], /, **kwargs: Any) -> Any:
        cls = super().__new__(mcls, name, bases, namespace, **kwargs)
        base = _BASE.get("Channel")
        own_style = base is not None and any(getattr(cls, m) is not getattr(base, m) for m in _OWN_STYLE_METHODS)
        if own_style and "_read" in cls.__abstractmethods__:
            cls.__abstractmethods__ = cls.__abstractmethods__ - {"_read"}
        return cls


_BASE: dict[str, type] = {}


class Channel(FramedInput, WaitingReads, Sending, metaclass=_ChannelType):
    """A non-blocking, bidirectional byte stream over file descriptors.

    ``buffering='line'`` makes ``read()`` return one line at a time (see
    :meth:`read`); ``max_line_length`` bounds such a line. A framing of
    :mod:`channels.framing` (``Delimited``, ``LengthPrefixed``,
    ``Netstrings`` or one of your own) makes it return one frame at a time,
    bounded by the framing's own ``max_length``. ``max_pending`` bounds the
    output held for a slow peer (see :meth:`write`).
    """

    __slots__ = (
        "__weakref__",
        "_ch_splitter",
        "_ch_framing",
        "_ch_out",
        "_ch_closed",
        "_ch_eof",
        "_ch_write_error",
        "_ch_end_cause",
        "_ch_poller",
        "_ch_poll_fd",
        "_ch_flush_queued",
        "max_pending",
        "_ch_read_size",
        "_ch_unread",
    )

    _ch_splitter: FrameDecoder | None  # None in bytes mode
    _ch_framing: Framing | None  # what ``buffering`` was given, unless 'line' or 'bytes'
    _ch_out: OutputBuffer | None  # None until output first waits
    _ch_closed: bool | None  # None: never opened (see __new__)
    _ch_eof: EndpointClosedException | None
    _ch_write_error: BaseException | None
    _ch_end_cause: BaseException | None  # the peer's failure that ended it, met in a turn
    _ch_poller: ChannelPoller | None
    _ch_poll_fd: int  # the descriptor its poller reads it by
    _ch_flush_queued: bool
    max_pending: int
    _ch_read_size: int
    _ch_unread: bytes  # bytes mode: what expect() read past its match, returned first

    def __new__(cls: type[_ChannelT], *args: Any, **kwargs: Any) -> _ChannelT:
        if cls is Channel:
            raise TypeError(
                "Channel is abstract: use PipeChannel, SocketChannel or another channel kind, or subclass it "
                "(define _read() to get read() and line buffering from the base, or read(), write(), close() "
                "and get_fd() yourself)"
            )
        channel = super().__new__(cls)
        # The base's state exists before any __init__ runs: a subclass in the
        # 0.1.1 style may never call super().__init__(), and a LineChannel or
        # a Poller must still be able to use it. ``_ch_closed`` is None until
        # __init__ opens the channel, so that a construction refused half-way
        # leaves nothing that warns of being unclosed.
        channel._ch_closed = None
        channel._ch_splitter = None
        channel._ch_framing = None
        channel.max_pending = DEFAULT_MAX_PENDING
        channel._ch_read_size = DEFAULT_READ_SIZE
        # Made when output first waits, and kept once emptied: a channel that
        # never had to hold output has no buffer at all, and one that writes
        # in every turn makes none per turn (bench/echo.py, 1000x4).
        channel._ch_out = None
        channel._ch_eof = None
        channel._ch_write_error = None
        channel._ch_end_cause = None
        channel._ch_poller = None
        channel._ch_poll_fd = -1
        channel._ch_flush_queued = False
        channel._ch_unread = b""
        return channel

    def __init__(
        self,
        *,
        buffering: str | Framing | None = "bytes",
        max_line_length: int | None = DEFAULT_MAX_LINE_LENGTH,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        mode = check_buffering(buffering)
        max_line_length = _check.optional_count(max_line_length, "max_line_length", unit="bytes")
        max_pending = _check.count(max_pending, "max_pending", unit="bytes")
        # ``None`` in bytes mode; an idle line channel shares an empty one.
        self._ch_splitter = None if mode == "bytes" else decoder_for(mode, max_line_length)
        self._ch_framing = mode if isinstance(mode, Framing) else None
        #: Bound in bytes on output held for the peer; see :meth:`write`.
        self.max_pending = max_pending
        self._ch_closed = False

    # -- the contract ------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether ``close()`` or ``abort()`` was called.

        Settable, for subclasses that close in their own way (as the original
        library's did, with ``self.closed = True``).
        """
        return bool(self._ch_closed)

    @closed.setter
    def closed(self, closed: bool) -> None:
        self._ch_closed = bool(closed)

    @property
    def read_size(self) -> int:
        """The most bytes one read system call asks for (and one ``poll()``
        takes from this channel); :data:`DEFAULT_READ_SIZE` unless set."""
        return self._ch_read_size

    @read_size.setter
    def read_size(self, size: int) -> None:
        self._ch_read_size = _check.count(size, "read_size", unit="bytes")

    @property
    def pending_output(self) -> int:
        """Bytes written but not yet taken by the operating system."""
        out = self._ch_out
        return 0 if out is None else out.size

    @property
    def end_cause(self) -> BaseException | None:
        """Why the channel ended, when a failure ended it; else ``None``.

        ``None`` while the channel is open and after a clean end (the peer's
        end of file, ``close()``, ``abort()``). Otherwise the exception that
        ended it: the ``OSError`` of a reset or a broken pipe, a
        :class:`WriteBufferFullError` when a write made in a poller's turn
        would have passed ``max_pending``, or the error a read met. A
        :class:`~channels.poller.Poller` that ends a channel for such a
        failure during its turn reports ``(b'', channel)`` once, and this
        says why.
        """
        cause = self._ch_end_cause
        if cause is None and self._ch_eof is not None:
            cause = self._ch_eof.__cause__
        return cause

    def get_fd(self) -> int:
        """A descriptor to watch with poll/epoll for reading.

        Raises ``NotImplementedError`` if the channel cannot be read, and
        :class:`EndpointClosedException` once it is closed.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot be read: it has no descriptor to poll")

    def read(self) -> bytes:
        """Return the bytes available now, ``b''`` if there are none.

        Never blocks. With ``buffering='line'`` it returns exactly one line
        ending in ``b'\\n'``, or ``b''`` only when no complete line is buffered;
        call it until it returns ``b''``. A line longer than
        ``max_line_length`` raises :class:`LineTooLongError` once, in its place,
        and the next call goes on with the following line. With a framing
        (:mod:`channels.framing`) it returns one whole frame as it was on the
        wire, the same way, and :class:`FrameTooLongError` in place of an
        overlong one; input that cannot be framed ends the channel (its
        :class:`EndpointClosedException` has the
        :class:`~channels.errors.FramingError` as ``__cause__``).

        Bytes that arrived before the end are always returned first (in line
        mode also after ``close()``, and the unterminated last piece after the
        complete lines); then :class:`EndpointClosedException` is raised, on
        this and every later call. In line mode a read that brings bytes but
        no complete line reads once more, so that an end already there is
        seen in the same call: a peer that sent ``b'test'`` and closed gives
        ``b'test'`` on the first ``read()``, as with the original library.

        Output held for the end of a poller's turn is sent first: a reply is
        about to be awaited.
        """
        if self._ch_flush_queued:
            # A reply is about to be awaited: held output must be on its way.
            self._poll_flush()
        if self._ch_splitter is not None:
            return self._read_frame(self._ch_splitter)
        if self._ch_unread:
            data, self._ch_unread = self._ch_unread, b""
            return data
        if self._ch_eof is not None:
            raise _again(self._ch_eof)
        try:
            return self._read()
        except EndpointClosedException as end:
            self._ch_eof = end
            raise

    def write(self, data: Buffer = b"", /, *more: Buffer) -> None:
        """Send the chunks in order; never blocks, never drops data.

        The chunks are sent at once, with one exception, the *turn*: while
        the program iterates over the list a ``Poller.poll()`` returned,
        writes to channels registered with that poller are held, and sent
        together when that iteration ends (run to its end, or left by
        ``break``, ``return`` or an exception), so that what one turn writes
        to a channel leaves in one system call. What the operating system
        does not take is kept, in order, and sent by the next ``write()``,
        by :meth:`flush`, by ``close()``, or by the poller (which watches
        write readiness for a registered channel). If the output held would
        exceed ``max_pending`` bytes, raises :class:`WriteBufferFullError`
        and takes nothing of this call.

        Raises ``TypeError`` for anything but bytes-like objects and
        :class:`EndpointClosedException` if the peer is gone or the channel
        is closed.
        """
        # One chunk is the first parameter, not packed in a tuple: that is
        # one allocation less for the call every echoed line makes.
        poller = self._ch_poller
        if poller is not None and poller._turn_depth and not more and type(data) is bytes:
            # One line written in a turn, what an echoing server does for
            # each line it reads: appended to the output held for the turn's
            # end with the checks that keep the rules, and nothing else.
            # Inlined, not a call to _write_chunks(): a server with many
            # clients writes a few lines per client per turn, and the general
            # path's argument checks and calls showed in bench/echo.py's
            # 1000x4 row when it took the first of them.
            out = self._ch_out
            total = len(data) if out is None else out.size + len(data)
            if (
                data
                and total < _BATCH_LIMIT
                and total <= self.max_pending
                and not self._ch_closed
                and self._ch_write_error is None
                and self._writable()
            ):
                if out is None:
                    out = self._ch_out = OutputBuffer()
                out.append(data)
                if not self._ch_flush_queued:
                    self._ch_flush_queued = True
                    poller._hold_output(self)
                return
        self._write_chunks((data, *more))

    def close(self, timeout: float | None = DEFAULT_CLOSE_TIMEOUT) -> None:
        """Deliver pending output, then close the channel and its descriptors.

        Waits at most ``timeout`` seconds (default
        :data:`DEFAULT_CLOSE_TIMEOUT`, ``None`` for no limit) for a slow peer
        to take pending output; what it has not taken by then is dropped and
        a warning is logged. Call :meth:`flush` first to learn whether
        everything went out. Idempotent. ``TypeError`` or ``ValueError`` for
        a timeout that is not a number of seconds >= 0 (checked first: the
        channel stays open then).

        Closed during a turn of the poller it is registered with, it never
        waits: what the peer does not take at once, that poller delivers in
        the background within ``timeout`` seconds (its later polls, or the
        program's exit) before it releases the descriptors. The channel is
        closed for its owner at once.
        """
        timeout = _check.timeout(timeout)
        if self._ch_closed is not False:  # closed, or never opened
            return
        if self.pending_output and self._ch_write_error is None:
            poller = self._ch_poller
            if poller is not None and poller._turn_depth and timeout != 0 and self._close_later(poller, timeout):
                return
            try:
                if not self.flush(timeout):
                    _LOG.warning(
                        "%r: closing dropped %d bytes the peer did not take within %ss",
                        self,
                        self.pending_output,
                        timeout,
                    )
            except EndpointClosedException:
                pass  # the peer is gone; nothing more can be delivered
        self._shut()

    def abort(self) -> None:
        """Close at once, dropping any pending output. Idempotent."""
        if self._ch_closed is False:  # not closed, nor never opened
            self._shut(clean=False)

    # -- hooks for concrete channels ---------------------------------------

    @_abstract_hook
    def _read(self) -> bytes:
        """One non-blocking read; see the module docstring."""
        raise NotImplementedError(f"{type(self).__name__} cannot be read")

    def _send(self, buffers: list[bytes | memoryview]) -> int:
        """One non-blocking write; see the module docstring."""
        raise NotImplementedError(f"{type(self).__name__} cannot be written")

    def _release(self) -> None:
        """Close the descriptors."""

    def _writable(self) -> bool:
        """Whether the channel has somewhere to write to."""
        return True

    def _write_fd(self) -> int:
        """The descriptor to watch for write readiness."""
        return self.get_fd()

    def _output_wait(self) -> tuple[int, int]:
        """What pending output waits for: a descriptor and ``select.POLLOUT``
        or ``select.POLLIN``. Readable, for a channel whose write needs the
        peer's reply first (TLS during a handshake)."""
        return self._write_fd(), select.POLLOUT

    def _input_wait(self) -> tuple[int, int]:
        """What ``read()`` waits for, as :meth:`_output_wait` says it (a TLS
        read may need to write first)."""
        return self.get_fd(), select.POLLIN

    def _shutdown_write(self) -> None:
        """End the write direction; see the module docstring."""
        raise NotImplementedError(f"{type(self).__name__} cannot shut down its write side alone")

    def _poll_flushed(self, done: bool) -> bool:
        """Whether the poller may stop watching write readiness after its
        send; ``done``: nothing is left to send. See the module docstring."""
        return done

    def _end_cleanly(self) -> None:
        """End the protocol before ``close()`` releases the descriptors; see
        the module docstring."""

    # -- the turn, and a peer's failure --------------------------------------

    def _in_turn(self) -> bool:
        """Whether the program is iterating over a ``poll()`` result of this
        channel's poller (see ``channels._seam``)."""
        poller = self._ch_poller
        return poller is not None and poller._turn_depth > 0

    def _dropped_in_turn(self) -> bool:
        """Whether a write that cannot be sent is to be dropped without a
        word: made in a turn, to a channel that its peer's failure ended
        (now, if it had not yet). A channel closed or shut down by its owner
        is no peer's failure: that write raises, in a turn or not."""
        if not self._in_turn():
            return False
        if self._ch_end_cause is not None:
            return True
        error = self._ch_write_error
        if self._ch_closed or error is None or isinstance(error, EndpointClosedException):
            return False
        self._end_by_failure(error)
        return True

    def _end_by_failure(self, cause: BaseException) -> None:
        """A peer's failure met while a poller drives the channel ends it.

        Twisted, asyncio and Tornado all do this rather than raise: a failed
        send closes the transport (``connectionLost(reason)``,
        ``connection_lost(exc)``, the stream's ``error``), the program hears
        of it once, and writes made until it has are dropped. Raising out of
        ``write()`` instead stops a server written the natural way at the
        first client that resets or stops reading. So: the output is
        dropped, ``cause`` kept (:attr:`end_cause`), the descriptors
        released, and the poller reports ``(b'', channel)`` once. The
        channel keeps its poller, so that writes made in that poller's
        later turns are dropped too; outside a turn they raise, with
        ``cause`` chained.
        """
        poller = self._ch_poller
        _LOG.debug("%r: ended by its peer's failure (%s)", self, cause)
        self._ch_end_cause = cause
        if self._ch_eof is None:
            self._ch_eof = EndpointClosedException(f"{self!r}: the peer is gone ({cause})")
            self._ch_eof.__cause__ = cause
        self._shut(clean=False)
        self._ch_poller = poller

    def _shut(self, clean: bool = True) -> None:
        """Close now: drop pending output, tell the poller, release the
        descriptors. ``clean`` (``close()``, not ``abort()``): a channel that
        has delivered everything first ends its protocol (:meth:`_end_cleanly`)."""
        if clean and not self.pending_output and self._ch_write_error is None:
            self._end_cleanly()
        self._ch_closed = True
        self._ch_out = None
        if self._ch_eof is None:
            self._ch_eof = EndpointClosedException(f"{self!r} is closed")
        if self._ch_poller is not None:
            self._ch_poller._channel_closed(self)
        self._release()

    # -- conveniences -------------------------------------------------------

    def __enter__(self: _ChannelT) -> _ChannelT:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_ch_closed", None) is not False:
            return  # closed, or never opened
        if not _is_ours(type(self).close):
            # A subclass with its own close() (the original's styles) may
            # never call ours, so ``_ch_closed`` cannot tell whether it was closed.
            return
        warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=2, source=self)
        self._ch_closed = True
        with contextlib.suppress(Exception):  # best effort, maybe at interpreter exit
            self._release()

    def __repr__(self) -> str:
        state = "closed" if getattr(self, "_ch_closed", False) else "open"
        framing = getattr(self, "_ch_framing", None)  # may be half-built
        mode = "bytes" if getattr(self, "_ch_splitter", None) is None else "line" if framing is None else framing
        return f"<{type(self).__name__} {self._describe()} {mode} {state}>"

    def _describe(self) -> str:
        """A few words naming the descriptors, for ``repr``."""
        return ""


_BASE["Channel"] = Channel

_PACKAGE = __name__.partition(".")[0]


def _is_ours(method: object) -> bool:
    """Whether ``method`` is defined in this package, not in a user's subclass."""
    module = str(getattr(method, "__module__", ""))
    return module == _PACKAGE or module.startswith(_PACKAGE + ".")
