"""Channels inside an asyncio program: :func:`aread`, :func:`awrite`,
:func:`alines`, :func:`aframes` and :func:`aclose`.

The same channel objects that a :class:`~channels.poller.Poller` drives work
under asyncio (or uvloop): these coroutines call the channel's own
non-blocking ``read()``, ``write()`` and ``flush()``, and in between wait for
its descriptor with ``loop.add_reader()`` / ``loop.add_writer()``. Every wait
removes its watch again on the way out, whether it returns, raises or is
cancelled. A channel used here must not also be registered with a
``Poller``, and belongs to one event loop at a time.

Several tasks may wait on one descriptor at once (one reading a TLS channel
while another's write waits for the handshake, which also needs it
readable): each loop keeps one watch per descriptor and direction, and wakes
every task waiting on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import weakref
from collections.abc import AsyncIterator

from . import _check
from ._wait import Deadline
from .base import DEFAULT_CLOSE_TIMEOUT, Buffer, Channel
from .errors import ChannelError, EndpointClosedException, FramingError
from .framing import Framing
from .splitter import DEFAULT_MAX_LINE_LENGTH, LineSplitter

__all__ = ["aclose", "aframes", "alines", "aread", "awrite"]

_LOG = logging.getLogger("channels.aio")

# One watch per descriptor and direction (select.POLLIN or POLLOUT), per
# loop: asyncio keeps a single callback per descriptor and direction, so a
# second add_reader() would silently take the first waiter's place.
_Watches = dict[tuple[int, int], set["asyncio.Future[None]"]]
_watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watches] = weakref.WeakKeyDictionary()


async def aread(channel: Channel) -> bytes:
    """Wait until ``channel.read()`` returns data, and return it.

    With ``buffering='line'`` that is one line. Raises
    :class:`EndpointClosedException` once the channel's input has ended and
    everything before the end was returned (and at once if it is closed), as
    ``read()`` does; other errors of ``read()`` (``LineTooLongError``) pass
    through too.
    """
    while True:
        data = channel.read()
        if data:
            return data
        await _ready(*channel._input_wait())


async def awrite(channel: Channel, *data: Buffer) -> None:
    """Write ``data`` as ``channel.write()`` does, then wait until the
    operating system has taken all pending output.

    ``awrite(channel)`` with no data just waits for what is pending. Raises
    what ``write()`` raises (``TypeError``, :class:`WriteBufferFullError`,
    :class:`EndpointClosedException`), and :class:`EndpointClosedException` if
    the peer goes away before taking everything. Cancelling the wait leaves
    the output pending in the channel, in order.
    """
    channel.write(*data)
    while not channel.flush(0):
        await _ready(*channel._output_wait())


async def alines(channel: Channel, *, max_line_length: int | None = DEFAULT_MAX_LINE_LENGTH) -> AsyncIterator[bytes]:
    """Iterate over the lines the channel receives, until its input ends.

    Each line ends in ``b'\\n'``, except a last, unterminated one. A channel
    with ``buffering='line'`` gives its own lines; a bytes channel is split
    here, with lines bounded by ``max_line_length``. A line too long raises
    :class:`LineTooLongError` and ends the iteration (a new ``alines()`` goes
    on with the next line). The iteration ends quietly at the peer's end of
    stream; an end caused by an error (a reset, a TLS failure) raises
    :class:`EndpointClosedException`, with that error as ``__cause__``.
    """
    # A line channel splits for itself; a bytes channel is split here.
    splitter = None if channel.buffering == "line" else LineSplitter(max_line_length)
    while True:
        line = None if splitter is None else splitter.next_line()
        if line is not None:
            yield line
            continue
        try:
            data = await aread(channel)
        except EndpointClosedException as end:
            rest = b"" if splitter is None else splitter.finish()
            if rest:
                yield rest
            if end.__cause__ is not None:
                raise
            return
        if splitter is None:
            yield data
        else:
            splitter.feed(data)


async def aframes(channel: Channel, framing: Framing | None = None) -> AsyncIterator[bytes]:
    """Iterate over the frames the channel receives, until its input ends.

    Each frame is as it was on the wire (``framing.decode(frame)`` gives its
    payload). A channel that has a framing (``buffering=`` one of
    :mod:`channels.framing`, or ``'line'``) gives its own frames, and
    ``framing`` may be left out; a bytes channel is cut here with
    ``framing``. An overlong frame raises :class:`FrameTooLongError` and ends
    the iteration (a new ``aframes()`` goes on with the next frame). The
    iteration ends quietly at the peer's end of stream after a delimited
    framing's unterminated rest; an end caused by an error (a reset, input
    that cannot be framed, a stream that ends inside a frame) raises
    :class:`EndpointClosedException`, with that error as ``__cause__``.
    """
    if channel.buffering != "bytes":
        decoder = None  # the channel frames for itself
    elif framing is None:
        raise ValueError(f"{channel!r} reads bytes: give aframes() the framing to cut them with")
    else:
        decoder = framing.decoder()
    while True:
        frame = None if decoder is None else decoder.next_frame()
        if frame is not None:
            yield frame
            continue
        try:
            data = await aread(channel)
        except EndpointClosedException as end:
            if decoder is None:
                if end.__cause__ is not None:
                    raise
                return
            try:
                rest = decoder.finish()
            except FramingError as err:
                raise EndpointClosedException(f"{channel!r}: {err}") from err
            if rest:
                yield rest
            if end.__cause__ is not None:
                raise
            return
        if decoder is None:
            yield data
            continue
        try:
            decoder.feed(data)
        except FramingError as err:
            while (frame := decoder.next_frame()) is not None:
                yield frame
            raise EndpointClosedException(f"{channel!r}: {err}") from err


async def aclose(channel: Channel, timeout: float | None = DEFAULT_CLOSE_TIMEOUT) -> None:
    """Deliver pending output without blocking the loop, then close the channel.

    Waits at most ``timeout`` seconds (``None``: no limit) for the peer to
    take pending output; what it has not taken then is dropped, with a
    warning logged, as ``close()`` does. Tasks waiting on the channel in
    :func:`aread`, :func:`awrite` or :func:`alines` wake up and get
    :class:`EndpointClosedException`. Use it rather than ``close()``, which
    would block the loop while it waits for a slow peer, and leave such tasks
    waiting. Idempotent. ``TypeError`` or ``ValueError`` for a timeout that
    is not a number of seconds >= 0 or ``None``, before anything is done.
    """
    deadline = Deadline(_check.timeout(timeout))
    if channel.closed:
        return
    try:
        while not channel.flush(0):
            if deadline.expired():
                break
            await asyncio.wait_for(_ready(*channel._output_wait()), deadline.remaining())
    except (EndpointClosedException, asyncio.TimeoutError):
        pass  # the peer is gone (nothing is pending then), or the time is up
    _release_watches(channel)
    if channel.pending_output:
        _LOG.warning(
            "%r: closing dropped %d bytes the peer did not take within %ss", channel, channel.pending_output, timeout
        )
        channel.abort()
    else:
        channel.close(0)


async def _ready(fd: int, events: int) -> None:
    """Wait until ``fd`` is ready for ``events`` (``select.POLLIN`` or ``POLLOUT``)."""
    loop = asyncio.get_running_loop()
    watches = _watches.get(loop)
    if watches is None:
        watches = _watches[loop] = {}
    key = (fd, events)
    waiters = watches.get(key)
    if waiters is None:
        waiters = set()
        if events == select.POLLIN:
            loop.add_reader(fd, _wake, waiters)
        else:
            loop.add_writer(fd, _wake, waiters)
        watches[key] = waiters
    waiter: asyncio.Future[None] = loop.create_future()
    waiters.add(waiter)
    try:
        await waiter
    finally:
        waiters.discard(waiter)
        if not waiters and watches.get(key) is waiters:
            _unwatch(loop, watches, key)


def _wake(waiters: set[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)


def _unwatch(loop: asyncio.AbstractEventLoop, watches: _Watches, key: tuple[int, int]) -> None:
    del watches[key]
    fd, events = key
    if events == select.POLLIN:
        loop.remove_reader(fd)
    else:
        loop.remove_writer(fd)


def _release_watches(channel: Channel) -> None:
    """Wake the tasks waiting on ``channel``'s descriptors and drop the
    watches, before the descriptors are closed (a loop must not watch a
    closed descriptor: its number may come back as another file)."""
    fds = set()
    for wait in (channel._input_wait, channel._output_wait):
        with contextlib.suppress(ChannelError, NotImplementedError):  # closed, or one-way
            fds.add(wait()[0])
    loop = asyncio.get_running_loop()
    watches = _watches.get(loop, {})
    for key in [key for key in watches if key[0] in fds]:
        _wake(watches[key])
        _unwatch(loop, watches, key)
