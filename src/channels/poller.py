"""``Poller``: waits on many channels and servers at once, without threads."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from . import _check, signals
from ._accept import DEFAULT_HANDSHAKE_TIMEOUT, Acceptor
from ._closing import close_together, send_at_exit
from ._foreign import is_native
from ._lingering import Lingering
from ._registry import Registered, Registry
from ._seam import PolledChannel
from ._turn import HeldForTheTurn, Turn
from ._wait import Deadline
from ._wake import Waker
from ._watch import AlwaysReadyWatcher, Watcher, default_watcher
from ._writing import WriteWatch
from .base import DEFAULT_CLOSE_TIMEOUT, DEFAULT_MAX_PENDING, Channel, check_buffering
from .framing import Framing
from .signals import SignalSource
from .splitter import DEFAULT_MAX_LINE_LENGTH
from .timers import Timer, TimerQueue

__all__ = ["Poller", "PollResult"]

_LOG = logging.getLogger("channels.poller")

# What a new Poller watches descriptors with (tests swap in SelectorsWatcher
# to run the same checks over selectors).
_make_watcher: Callable[[], Watcher] = default_watcher

#: One entry of ``poll()``'s result: ``(data, channel)``, ``((address,
#: client), server)``, ``(due, timer)`` or ``(signum, source)``. ``Any``: a
#: union of tuples cannot be narrowed by the second element, as programs do.
PollResult = tuple[Any, Any]


class Poller(HeldForTheTurn, Registry):
    """Multiplexes registered channels, listening sockets, timers and signals.

    Built on epoll on Linux and on :mod:`selectors` elsewhere (kqueue on BSD
    and macOS), so a poll costs what the ready channels cost, not what the
    idle ones do. Clients accepted from servers are wrapped in
    :class:`SocketChannel` with this poller's ``buffering``,
    ``max_line_length`` and ``max_pending``.

    Writes made while the program iterates over the list :meth:`poll`
    returned (the *turn*) are held and sent when that iteration ends, so
    that what one turn writes to a channel leaves in one system call; any
    other write is sent at once. ``batch_writes=False`` sends turn writes at
    once too. Output the peer does not take at once is sent by later polls.

    Descriptors that epoll cannot watch (a regular file, ``/dev/null``) are
    taken as always ready, as poll(2) reports them: read once per poll
    (which then does not wait) until their end.

    ``clock`` (default ``time.monotonic``) times timers and deadlines; a
    test passes a :class:`channels.testing.FakeClock` to move it by hand.

    ``TypeError`` or ``ValueError`` for an option of the wrong type or value
    (``max_line_length`` and ``max_pending`` are whole numbers of bytes >= 1,
    ``batch_writes`` is ``True`` or ``False``), before anything is opened.
    """

    def __init__(
        self,
        *,
        buffering: str | Framing | None = "bytes",
        max_line_length: int | None = DEFAULT_MAX_LINE_LENGTH,
        max_pending: int = DEFAULT_MAX_PENDING,
        batch_writes: bool = True,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._buffering = check_buffering(buffering)
        # Checked here, not when the first client is accepted: a bad bound
        # would otherwise close every client, logged only at DEBUG.
        max_line_length = _check.optional_count(max_line_length, "max_line_length", unit="bytes")
        max_pending = _check.count(max_pending, "max_pending", unit="bytes")
        batch_writes = _check.flag(batch_writes, "batch_writes")
        self._closed = False
        Registry.__init__(self)
        self._watch = AlwaysReadyWatcher(_make_watcher())
        # Looked up once: poll() is the hot path.
        self._read_ready = self._watch.READ_READY
        self._write_ready = self._watch.WRITE_READY
        self._timers = TimerQueue(time.monotonic if clock is None else clock)
        self._timer_heap = self._timers.heap  # checked on every poll
        self._acceptor = Acceptor(
            self._watch,
            self._timers,
            buffering=self._buffering,
            max_line_length=max_line_length,
            max_pending=max_pending,
        )
        self._servers = self._acceptor.servers  # server descriptor -> server
        self._deadlines = self._acceptor.client_deadlines
        self._write_watch = WriteWatch(self._watch, self._channels)
        self._writing = self._write_watch.writing  # watched write descriptor -> channel
        self._batch_writes = batch_writes
        self._turn_depth = 0  # see channels._turn
        self._held_output = []
        # Channels closed in a turn, delivering their output in the background.
        self._lingering = Lingering(self._watch)
        self._closing = self._lingering.closing  # write descriptor -> (channel, end of linger)
        self._held_input = []
        self._ended: list[Registered] = []
        self._waker = Waker()  # woken by wakeup() and by watched signals
        self._wake_fd = self._waker.fd
        self._watch.register(self._wake_fd, self._watch.READ)
        send_at_exit.add(self)

    @property
    def buffering(self) -> str | Framing:
        """The buffering given to accepted clients: ``'line'``, ``'bytes'``
        or a framing (each client gets a decoder of its own from it)."""
        return self._buffering

    def __len__(self) -> int:
        """How many channels are registered (servers not counted), paused
        ones included."""
        return len(self._channels) + len(self._write_watch.paused)

    def register(self, channel: Channel) -> None:
        """Watch ``channel`` for reading; doing it twice is harmless.

        The channel keeps its own ``buffering``, ``max_line_length`` and
        ``max_pending``: the poller's apply only to the clients it accepts.
        Raises ``TypeError`` for anything but a channel (an object with
        ``read()`` and ``get_fd()``, such as every :class:`Channel`; a
        socket goes to :meth:`add_server`, or into a :class:`SocketChannel`);
        ``ValueError`` if the channel cannot be read, if another channel or
        server is registered on its descriptor, if it is registered with
        another poller, or if this poller is closed;
        :class:`EndpointClosedException` if the channel is closed.
        """
        if not isinstance(channel, Channel):
            _check.channel_like(channel, "register()", needs=("read", "get_fd"))
        self._check_open()
        if self._is_registered(channel):
            return
        if channel in self._write_watch.kept:
            self._write_watch.let_go(channel)
        self._add(channel)
        _LOG.debug("registered %r", channel)

    def unregister(self, channel: Channel | socket.socket) -> None:
        """Stop watching a channel or a server; silent if it is not watched.

        Works on channels and sockets that are already closed.
        """
        if isinstance(channel, socket.socket) and self._acceptor.drop_server(channel):
            return
        if self._is_registered(channel):
            self._forget(channel)
            if is_native(channel):
                # On its own now, the channel sends at once: no poll may come.
                channel._poll_flush()
            _LOG.debug("unregistered %r", channel)
        elif isinstance(channel, Channel) and channel in self._write_watch.kept:
            self._write_watch.release(channel)
        else:
            # Closed by its owner: its end is no longer reported either.
            self._ended = [ended for ended in self._ended if ended is not channel]

    def pause_reading(self, channel: Channel) -> None:
        """Stop reading ``channel`` for now, but go on sending its output.

        For backpressure: a relay or proxy stops taking bytes from one peer
        while what it took cannot be passed on fast enough to the other.
        :meth:`resume_reading` reads it again; :meth:`unregister` and
        ``close()`` end the pause too. A paused channel still counts as
        registered: ``len()`` counts it, :meth:`close_all` closes it, and
        closed by its owner it is reported ``(b'', channel)`` once. Does
        nothing for a channel that is not registered (or is paused already);
        ``ValueError`` for a channel of another package, whose output the
        poller does not send.
        """
        if not is_native(channel):
            raise ValueError(f"{channel!r} cannot be paused: the poller does not send its output")
        if self._is_registered(channel):
            self._forget(channel)
            self._write_watch.pause(channel, self)

    def resume_reading(self, channel: Channel) -> None:
        """Read a channel paused by :meth:`pause_reading` again.

        Does nothing for a channel that is not paused.
        """
        if channel in self._write_watch.paused:
            self.register(channel)

    def add_server(
        self,
        sock: socket.socket,
        *,
        allow_uids: Iterable[int] | None = None,
        idle_timeout: float | None = None,
        handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
    ) -> None:
        """Accept clients from ``sock``, a listening TCP or Unix socket.

        Each client is wrapped in a :class:`SocketChannel` (a ``TLSChannel``
        for a server made by :func:`~channels.tls.listen_tls`), registered,
        and reported by :meth:`poll` as ``((address, channel), sock)``.
        Adding a server again does nothing and keeps its first settings.

        ``allow_uids`` (Unix sockets only) admits only clients whose user id
        (``SO_PEERCRED``) is among these; others are closed as they are
        accepted, with a warning logged on ``channels.poller``, and never
        reported (``ValueError`` for another kind of socket,
        ``NotImplementedError`` where the platform cannot tell).

        A client that sends nothing for ``idle_timeout`` seconds, and a TLS
        client whose handshake is not done in ``handshake_timeout`` seconds
        (default 10; ``None``: no limit), is closed (its pending output
        dropped) and reported ``(b'', client)``, with :class:`TimeoutError`
        as the cause of its end. A paused client is not timed out. Each is
        a finite number of seconds above 0, or ``None`` for no limit:
        ``TypeError`` or ``ValueError`` otherwise. ``ValueError`` once the
        poller is closed.
        """
        self._check_open()
        self._acceptor.add(sock, allow_uids, idle_timeout, handshake_timeout, self._claim)

    def call_later(self, seconds: float) -> Timer:
        """A :class:`~channels.timers.Timer` due ``seconds`` from now, once.

        When it is due, :meth:`poll` returns ``(due, timer)``, ``due`` being
        the ``time.monotonic()`` value it was due at; a poll never waits past
        the earliest timer. ``timer.cancel()``; ``timer.reset()`` pushes it back.
        """
        return self._timers.add(_check.delay(seconds, "call_later()"))

    def call_every(self, seconds: float) -> Timer:
        """A :class:`~channels.timers.Timer` due every ``seconds`` (above 0),
        reported as :meth:`call_later`'s are. One that fell behind (a late
        poll) is reported once, then goes on at the next time of its schedule.
        """
        return self._timers.add(seconds := _check.delay(seconds, "call_every()", positive=True), seconds)

    def watch_signals(self, *signums: int) -> SignalSource:
        """Report the signals ``signums``: each one delivered wakes a waiting
        :meth:`poll`, which returns ``(signum, source)`` (once per poll).

        Returns the :class:`~channels.signals.SignalSource`; its ``close()``
        (or :meth:`close_all`) puts back the handlers that were there. Main
        thread only, one poller at a time: ``ValueError`` otherwise, and for
        a signal watched already or one that cannot be caught.
        """
        return signals.watch(self._waker, signums)

    def poll(self, timeout: float | None = None) -> list[PollResult]:
        """Wait up to ``timeout`` seconds (``None``: no limit) for activity.

        Returns a list of ``(data, channel)`` for channels with data (one
        entry per line for line-buffered channels, never one with empty data
        for a live channel); ``(b'', channel)`` once for each channel that
        ended, which is then no longer read (what is written to it is still
        sent, until it is closed or unregistered: its peer may only have
        half-closed); ``((address, client), server)`` for each client
        accepted (already registered); ``(due, timer)`` for each timer due,
        and ``(signum, source)`` for each watched signal delivered.

        Iterating over the list is the poller's *turn*: writes made to its
        channels meanwhile are held, and sent when the iteration ends, by
        running to its end or by ``break``, ``return`` or an exception (an
        iteration over another poll's result, nested in it, sends what is
        held when it ends). Outside a turn, writes leave at once. The list
        is a ``list`` in every other way.

        ``timeout`` is a number of seconds; ``float('inf')`` waits as
        ``None`` does, and one of ``0`` or less does not wait (as
        :mod:`selectors` reads it). ``TypeError`` for a timeout that is not
        a number, ``ValueError`` for NaN and once the poller is closed.
        """
        if timeout is not None and type(timeout) is not float and type(timeout) is not int:
            timeout = _check.poll_timeout(timeout)  # not a plain number: refused (a str, a bool), or made one
        if self._held_output:
            self._send_held_output()
        # Claims made while this poll reads (a foreign channel over its line
        # cap) are for the next poll: keep them apart from those made before.
        held_input = self._held_input
        if held_input:
            self._held_input = []
        ended = self._ended
        if ended or held_input or (timeout is not None and timeout < 0):
            timeout = 0
        if self._timer_heap:
            timeout = self._timers.wait_time(timeout)
        if self._closing:
            timeout = self._lingering.wait_time(timeout)
        try:
            ready = self._watch.wait(timeout)
        except (ValueError, OverflowError):
            # NaN, inf, or longer than the kernel can wait at once: checked
            # only now, so that the plain numbers every poll gets cost
            # nothing more. Refused, or waited as no limit or the longest wait.
            self._check_open()
            ready = self._watch.wait(_check.poll_timeout(timeout))
        result: list[Any]
        if self._batch_writes:
            result = Turn()
            result._poller = self
        else:
            result = []
        if ended:
            result.extend((b"", channel) for channel in ended)
            ended.clear()
        readers = self._readers
        read_ready = self._read_ready
        write_ready = self._write_ready
        for fd, mask in ready:
            if mask & write_ready:
                if fd in self._writing:
                    self._write_watch.on_writable(fd)
                elif fd in self._closing:
                    self._lingering.on_writable(fd)
            if mask & read_ready:
                read = readers.get(fd)
                if read is None:
                    self._on_other_readable(fd, result)
                elif read(result):
                    self._input_ended(self._channels[fd])
        if held_input:
            self._read_held_input(held_input, result)
        if self._timer_heap:
            self._timers.fire(result)
        if self._closing:
            self._lingering.release_due()
        return result

    def _on_other_readable(self, fd: int, result: list[Any]) -> None:
        if fd in self._servers:
            self._acceptor.accept(fd, result, self)
        elif fd == self._wake_fd:
            signals.report(self._waker, self._waker.drain(), result)

    def wakeup(self) -> None:
        """Make a :meth:`poll` that is waiting return now (or the next one at once).

        Safe to call from any thread and from a signal handler: it only
        writes a byte to a socket the poller watches, and takes no lock. That
        poll returns what else happened, ``[]`` if nothing did. Wake-ups made
        before a poll count as one. Does nothing once the poller is closed.
        """
        self._waker.wake()

    def close_all(self, timeout: float | None = DEFAULT_CLOSE_TIMEOUT) -> None:
        """Close every registered channel and server, and the signal sources.

        Pending output of all channels is sent concurrently, for at most
        ``timeout`` seconds in all; what is left then is dropped (logged).
        Child processes (:class:`~channels.ProcessChannel`) are ended
        together, as :func:`~channels.close_processes` does, within what is
        left of ``timeout``. Channels closed during a turn get the rest of
        their linger, within ``timeout`` too. The channels are not reported
        by later polls. Timers stay armed. ``TypeError`` or ``ValueError``
        for a timeout that is not a number of seconds >= 0 or ``None``,
        before anything is closed.
        """
        timeout = _check.timeout(timeout)
        deadline = Deadline(timeout)
        signals.close_sources_of(self._waker)
        paused = self._write_watch.let_go_paused()
        channels = list(self._channels.values())
        for channel in channels:
            self._forget(channel)
        self._ended.clear()
        close_together([*channels, *paused], timeout)
        self._deliver_lingering(deadline.remaining())
        self._acceptor.close_all()
        self._write_watch.release_all()  # ended channels are their owners' to close

    def close(self) -> None:
        """:meth:`close_all`, then free the poller's own descriptors.

        Idempotent. Afterwards :meth:`poll`, :meth:`register` and
        :meth:`add_server` raise ``ValueError`` saying the poller is closed.
        """
        self.close_all()
        self._closed = True
        self._watch.close()
        self._waker.close()
        send_at_exit.discard(self)

    def __enter__(self) -> Poller:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        """``ValueError`` once the poller is closed.

        A ``ValueError``, as Python's own objects raise once closed (a file,
        an epoll or selector object), so that code which caught the error
        epoll raised here before goes on catching it; not a
        :class:`ChannelError`, which tells of a channel's or a peer's state,
        where this is a program using what it closed.
        """
        if self._closed:
            raise ValueError("the Poller is closed: make a new one to poll again")

    # -- called by channels (see channels._seam.ChannelPoller) ----------------
    # _hold_output and _hold_input: see channels._turn.

    def _output_ended(self, channel: PolledChannel) -> None:
        self._write_watch.output_ended(channel)

    def _close_later(self, channel: PolledChannel, timeout: float | None) -> None:
        self._channel_closed(channel)
        self._lingering.add(channel, timeout)

    def _deliver_lingering(self, timeout: float | None) -> None:
        """Wait for what channels closed in turns still deliver (see
        ``channels._lingering``): at :meth:`close_all`, and at exit."""
        if self._closing:
            self._lingering.deliver(timeout)

    def _channel_closed(self, channel: PolledChannel) -> None:
        if channel in self._write_watch.kept:
            if self._write_watch.let_go(channel):  # paused: its end is news to its owner
                self._ended.append(channel)
        elif channel._ch_poller is self:
            self._forget(channel)
            self._ended.append(channel)
        channel._ch_poller = None
