"""``Poller``: waits on many channels and servers at once, without threads."""

from __future__ import annotations

import atexit
import contextlib
import errno
import logging
import math
import os
import select
import socket
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, TypeGuard, cast

from ._seam import ForeignChannel, PolledChannel
from ._watch import Watcher, default_watcher
from .base import DEFAULT_CLOSE_TIMEOUT, DEFAULT_MAX_PENDING, Channel, check_buffering
from .errors import EndpointClosedException, LineTooLongError
from .process import ProcessChannel, close_processes
from .sockets import SocketChannel, peer_credentials_of
from .splitter import DEFAULT_MAX_LINE_LENGTH

__all__ = ["Poller", "PollResult"]

_LOG = logging.getLogger("channels.poller")

_NATIVE_READ = Channel.read

# What a new Poller watches descriptors with (tests swap in SelectorsWatcher
# to run the same checks over selectors).
_make_watcher: Callable[[], Watcher] = default_watcher

#: One entry of ``poll()``'s result: ``(data, channel)`` or
#: ``((address, client_channel), server_socket)``.
PollResult = tuple[bytes, Any] | tuple[tuple[Any, SocketChannel], socket.socket]

# A registered channel: one of this package's, driven through the seam, or
# any other object with read() and get_fd() (see channels._seam).
_Registered = PolledChannel | ForeignChannel

# Clients accepted per server per poll: enough to drain a burst, few enough
# that a connection storm cannot starve channels that already have data.
_ACCEPT_BATCH = 64

# Lines taken from a foreign (read()-overriding) line channel per poll; the
# rest waits for the next poll, which then does not block.
_FOREIGN_LINE_BATCH = 1024

# accept() errors that concern one client only: skip it and go on.
_CLIENT_GONE = {errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EINTR}

# accept() errors that say the process is out of something: back off.
_EXHAUSTED = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}

_BACKOFF_FIRST = 0.05
_BACKOFF_MAX = 1.0


class Poller:
    """Multiplexes registered channels and listening sockets.

    Built on epoll on Linux and on :mod:`selectors` elsewhere (kqueue on BSD
    and macOS), so a poll costs what the ready channels cost, not what the
    idle ones do.
    Clients accepted from servers are wrapped in :class:`SocketChannel` with
    this poller's ``buffering``, ``max_line_length`` and ``max_pending``.

    Writes made while the program iterates over the list :meth:`poll`
    returned (the *turn*) are held and sent when that iteration ends, so
    that what one turn writes to a channel leaves in one system call; any
    other write is sent at once. ``batch_writes=False`` sends turn writes at
    once too. Output the peer does not take at once is sent as it becomes
    writable, by later polls.

    Descriptors that epoll cannot watch (a regular file, ``/dev/null``) are
    taken as always ready, as poll(2) reports them: read once per poll
    (which then does not wait) until their end.
    """

    def __init__(
        self,
        *,
        buffering: str | None = "bytes",
        max_line_length: int | None = DEFAULT_MAX_LINE_LENGTH,
        max_pending: int = DEFAULT_MAX_PENDING,
        batch_writes: bool = True,
    ) -> None:
        self._buffering = check_buffering(buffering)
        self._max_line_length = max_line_length
        self._max_pending = max_pending
        self._watch = _make_watcher()
        # Looked up once: poll() is the hot path.
        self._wait = self._watch.wait
        self._read_ready = self._watch.READ_READY
        self._write_ready = self._watch.WRITE_READY
        self._channels: dict[int, _Registered] = {}  # read descriptor -> channel
        # id(channel) -> read descriptor, for foreign channels only: this
        # package's own channels keep theirs in ``_poll_fd``.
        self._foreign: dict[int, int] = {}
        self._servers: dict[int, socket.socket] = {}
        self._paused: dict[int, float] = {}  # server descriptor -> resume time
        self._backoff: dict[int, float] = {}  # server descriptor -> next pause
        self._allowed_uids: dict[int, frozenset[int]] = {}  # server descriptor -> who may connect
        self._writing: dict[int, PolledChannel] = {}  # watched write descriptor -> channel
        # Descriptors the watcher refuses (regular files, /dev/null): ready
        # whenever asked, read or sent to on every poll. Descriptor -> the
        # watcher's READ and WRITE bits it stands in for; see _watch_or_not().
        self._always_ready: dict[int, int] = {}
        self._batch_writes = batch_writes
        self._turn_depth = 0  # iterations over poll() results under way; see _Turn
        self._held_output: list[PolledChannel] = []
        # Channels closed in a turn whose output is still being delivered:
        # write descriptor -> (channel, monotonic time its linger ends).
        self._closing: dict[int, tuple[PolledChannel, float]] = {}
        self._held_input: list[_Registered] = []
        self._ended: list[_Registered] = []
        # Channels no longer read, whose output is still sent: those whose
        # end was reported (their peer may only have half-closed) and those
        # paused by pause_reading(). Weakly held: a channel its owner drops is
        # let go (unless output still waits for its peer; see _writing).
        self._draining: weakref.WeakSet[PolledChannel] = weakref.WeakSet()
        self._reading_paused: weakref.WeakSet[PolledChannel] = weakref.WeakSet()  # among them
        self._reserve: int | None = None
        # wakeup() writes a byte to one end, the selector watches the other. A
        # socket pair rather than raw pipe descriptors: once closed, a socket
        # object raises instead of writing into whatever reused its number.
        self._wake_send, self._wake_recv = socket.socketpair()
        self._wake_send.setblocking(False)
        self._wake_recv.setblocking(False)
        self._wake_fd = self._wake_recv.fileno()
        self._watch.register(self._wake_fd, self._watch.READ)
        # A poller dropped without close() must not leak them (nor warn).
        self._close_wake = weakref.finalize(self, _close_all_of, self._wake_send, self._wake_recv)
        _live_pollers.add(self)

    @property
    def buffering(self) -> str:
        """The buffering given to accepted clients: ``'line'`` or ``'bytes'``."""
        return self._buffering

    def __len__(self) -> int:
        """How many channels are registered (servers not counted), paused
        ones included."""
        return len(self._channels) + len(self._reading_paused)

    def register(self, channel: Channel) -> None:
        """Watch ``channel`` for reading; doing it twice is harmless.

        The channel keeps its own ``buffering``, ``max_line_length`` and
        ``max_pending``: the poller's apply only to the clients it accepts.
        Raises ``ValueError`` if the channel cannot be read, if another
        channel or server is registered on its descriptor, or if it is
        registered with another poller; :class:`EndpointClosedException` if
        it is closed.
        """
        if self._is_registered(channel):
            return
        if channel in self._draining:
            self._stop_draining(channel)
        try:
            fd = channel.get_fd()
        except NotImplementedError as err:
            raise ValueError(f"{channel!r} cannot be registered: it cannot be read") from err
        self._claim(fd, channel)
        native = _is_native(channel)
        if native and channel._ch_poller is not None:
            raise ValueError(f"{channel!r} is already registered with another Poller")
        self._watch_or_not(fd, self._watch.READ, channel)
        self._channels[fd] = channel
        if not native:
            self._foreign[id(channel)] = fd
        else:
            channel._ch_poller = self
            channel._ch_poll_fd = fd
            if channel.pending_output:
                self._watch_write(channel)
            if channel._poll_has_input():
                self._held_input.append(channel)
        _LOG.debug("registered %r", channel)

    def unregister(self, channel: Channel | socket.socket) -> None:
        """Stop watching a channel or a server; silent if it is not watched.

        Works on channels and sockets that are already closed.
        """
        for fd, server in list(self._servers.items()):
            if server is channel:
                self._drop_server(fd)
                return
        if self._is_registered(channel):
            self._forget(channel)
            if _is_native(channel):
                # On its own now, the channel sends at once: no poll may come.
                channel._poll_flush()
            _LOG.debug("unregistered %r", channel)
        elif isinstance(channel, Channel) and channel in self._draining:
            self._stop_draining(channel)
            channel._poll_flush()
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
        if not _is_native(channel):
            raise ValueError(f"{channel!r} cannot be paused: the poller does not send its output")
        if self._is_registered(channel):
            self._keep_writing(channel)
            self._reading_paused.add(channel)

    def resume_reading(self, channel: Channel) -> None:
        """Read a channel paused by :meth:`pause_reading` again.

        Does nothing for a channel that is not paused.
        """
        if channel in self._reading_paused:
            self.register(channel)

    def add_server(self, sock: socket.socket, *, allow_uids: Iterable[int] | None = None) -> None:
        """Accept clients from ``sock``, a listening TCP or Unix socket.

        Each client is wrapped in a :class:`SocketChannel`, registered, and
        reported by :meth:`poll` as ``((address, channel), sock)``.

        ``allow_uids`` (Unix sockets only) admits only clients whose user id,
        as the kernel reports it (``SO_PEERCRED``), is among these; others are
        closed as they are accepted, with a warning logged on
        ``channels.poller``, and never reported. ``ValueError`` for another
        kind of socket, ``NotImplementedError`` where the platform cannot tell
        a peer's user. Adding a server again does nothing and keeps its first
        settings.
        """
        if not isinstance(sock, socket.socket):
            raise TypeError(f"add_server() takes a listening socket.socket, not {type(sock).__name__}")
        if sock.fileno() < 0:
            raise ValueError("add_server() needs an open socket; this one is closed")
        if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            raise ValueError("add_server() needs a listening socket: call listen() on it first")
        allowed = None if allow_uids is None else _check_allow_uids(sock, allow_uids)
        fd = sock.fileno()
        if fd in self._servers:
            return
        self._claim(fd, sock)
        if allowed is not None:
            self._allowed_uids[fd] = allowed
        sock.setblocking(False)
        self._watch.register(fd, self._watch.READ)
        self._servers[fd] = sock
        if self._reserve is None:
            self._reserve = _open_reserve()

    def poll(self, timeout: float | None = None) -> list[PollResult]:
        """Wait up to ``timeout`` seconds (``None``: no limit) for activity.

        Returns a list of ``(data, channel)`` for channels with data (one
        entry per line for line-buffered channels, never one with empty data
        for a live channel); ``(b'', channel)`` once for each channel that
        ended, which is then no longer read (what is written to it is still
        sent, until it is closed or unregistered: its peer may only have
        half-closed); and ``((address, client), server)`` for each client
        accepted (already registered).

        Iterating over the list is the poller's *turn*: writes made to its
        channels meanwhile are held, and sent when the iteration ends, by
        running to its end or by ``break``, ``return`` or an exception (an
        iteration over another poll's result, nested in it, sends what is
        held when it ends). Outside a turn, writes leave at once. The list
        is a ``list`` in every other way.
        """
        if self._held_output:
            self._send_held_output()
        # Claims made while this poll reads (a foreign channel over its line
        # cap) are for the next poll: keep them apart from those made before.
        held_input = self._held_input
        if held_input:
            self._held_input = []
        ended = self._ended
        if ended or held_input or self._always_ready or (timeout is not None and timeout < 0):
            timeout = 0
        if self._paused:
            timeout = self._until_resume(timeout)
        if self._closing:
            timeout = self._until_linger_ends(timeout)
        ready = self._wait(timeout)
        result: list[Any]
        if self._batch_writes:
            result = _Turn()
            result._poller = self
        else:
            result = []
        if ended:
            result.extend((b"", channel) for channel in ended)
            ended.clear()
        channels = self._channels
        read_ready = self._read_ready
        write_ready = self._write_ready
        for fd, mask in ready:
            if mask & write_ready:
                self._on_writable(fd)
            if mask & read_ready:
                channel = channels.get(fd)
                if channel is None:
                    self._on_other_readable(fd, result)
                elif type(channel).read is _NATIVE_READ:
                    if cast("PolledChannel", channel)._poll_read(result):
                        self._input_ended(channel)
                else:
                    self._read_from(channel, result)
        if self._always_ready:
            self._serve_always_ready(result)
        if held_input:
            self._read_held_input(held_input, result)
        if self._paused:
            self._resume_servers()
        if self._closing:
            self._release_lingered(time.monotonic())
        return result

    def _on_other_readable(self, fd: int, result: list[Any]) -> None:
        if fd in self._servers:
            self._accept(fd, result)
        elif fd == self._wake_fd:
            self._drain_wakeups()

    def wakeup(self) -> None:
        """Make a :meth:`poll` that is waiting return now (or the next one at once).

        Safe to call from any thread and from a signal handler: it only
        writes a byte to a socket the poller watches, and takes no lock. That
        poll returns what else happened, ``[]`` if nothing did. Wake-ups made
        before a poll count as one. Does nothing once the poller is closed.
        """
        # BlockingIOError: the socket is full, a wake-up is already pending.
        # Any other OSError: closed, there is no poll left to wake.
        with contextlib.suppress(OSError):
            self._wake_send.send(b"\0")

    def close_all(self, timeout: float | None = DEFAULT_CLOSE_TIMEOUT) -> None:
        """Close every registered channel and server.

        Pending output of all channels is sent concurrently, for at most
        ``timeout`` seconds in all; what is left then is dropped (logged).
        Child processes (:class:`~channels.ProcessChannel`) are ended
        together, as :func:`~channels.close_processes` does, within
        what is left of ``timeout``. Channels closed during a turn get the
        rest of their linger, within ``timeout`` too. The channels are not
        reported by later polls.
        """
        paused = list(self._reading_paused)
        for each in paused:
            self._stop_draining(each)
        channels = list(self._channels.values())
        for channel in channels:
            self._forget(channel)
        channels += paused
        self._ended.clear()
        deadline = None if timeout is None else time.monotonic() + timeout
        _flush_together([ch for ch in channels if _is_native(ch)], timeout)
        children: list[ProcessChannel] = []
        for channel in channels:
            if _is_native(channel) and channel.pending_output:
                _LOG.warning("%r: closing dropped %d pending bytes", channel, channel.pending_output)
                channel.abort()
            elif isinstance(channel, ProcessChannel):
                children.append(channel)  # ended together, below
            else:
                channel.close()
        close_processes(children, None if deadline is None else max(0.0, deadline - time.monotonic()))
        self._deliver_closing(None if deadline is None else max(0.0, deadline - time.monotonic()))
        for fd, server in list(self._servers.items()):
            self._drop_server(fd)
            server.close()
        for channel in list(self._draining):
            # Ended channels are their owners' to close; they send on their own now.
            self._stop_draining(channel)
            channel._poll_flush()
        if self._reserve is not None:
            # Programs written for the original call only close_all(), never
            # close(): free the spare too; add_server() opens it again.
            os.close(self._reserve)
            self._reserve = None

    def close(self) -> None:
        """:meth:`close_all`, then free the poller's own descriptors."""
        self.close_all()
        self._watch.close()
        self._close_wake()
        if self._reserve is not None:
            os.close(self._reserve)
            self._reserve = None
        _live_pollers.discard(self)

    def __enter__(self) -> Poller:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- called by channels --------------------------------------------------

    def _hold_output(self, channel: PolledChannel) -> None:
        """``channel`` holds output: send it at the end of the turn, or at
        the next poll, then watch write readiness for what is left."""
        self._held_output.append(channel)

    def _hold_input(self, channel: PolledChannel) -> None:
        """``channel`` has lines in memory, where the selector cannot see them."""
        self._held_input.append(channel)

    def _output_ended(self, channel: PolledChannel) -> None:
        """``channel`` is shutting its write side down: stop watching it."""
        if channel in self._draining and channel not in self._reading_paused:
            self._stop_draining(channel)  # its input ended too: nothing is left to do
        else:
            self._unwatch_writes_of(channel)

    def _channel_closed(self, channel: PolledChannel) -> None:
        """``channel`` is being closed by its owner: report its end once
        (a channel whose end was reported already is only let go)."""
        if channel in self._draining:
            paused = channel in self._reading_paused
            self._stop_draining(channel)
            if paused:  # registered, as far as its owner knows: its end is news
                self._ended.append(channel)
        elif channel._ch_poller is self:
            self._forget(channel)
            self._ended.append(channel)
        channel._ch_poller = None

    # -- reading --------------------------------------------------------------

    def _read_from(self, channel: _Registered, result: list[Any]) -> None:
        if type(channel).read is _NATIVE_READ:
            ended = cast("PolledChannel", channel)._poll_read(result)
        else:
            ended = _read_foreign(channel, result, self)
        if ended:
            self._input_ended(channel)

    def _input_ended(self, channel: _Registered) -> None:
        """``channel`` has ended (its ``(b'', channel)`` is in this poll's
        result): stop reading it, but go on sending what is written to it."""
        if _is_native(channel) and channel._poll_can_write():
            self._keep_writing(channel)
        else:
            self._forget(channel)

    def _keep_writing(self, channel: PolledChannel) -> None:
        """Stop reading ``channel`` but go on sending its output."""
        self._forget(channel)
        channel._ch_poller = self
        self._draining.add(channel)
        if channel.pending_output:
            self._watch_write(channel)

    def _stop_draining(self, channel: PolledChannel) -> None:
        self._draining.discard(channel)
        self._reading_paused.discard(channel)
        self._unwatch_writes_of(channel)
        channel._ch_poller = None

    def _drain_wakeups(self) -> None:
        with contextlib.suppress(OSError):  # BlockingIOError: all read
            while self._wake_recv.recv(4096):
                pass

    def _read_held_input(self, held: list[_Registered], result: list[Any]) -> None:
        done = {id(entry[1]) for entry in result}
        for channel in held:
            if self._is_registered(channel) and id(channel) not in done:
                done.add(id(channel))
                self._read_from(channel, result)

    # -- writing --------------------------------------------------------------

    def _send_held_output(self) -> None:
        if not self._held_output:
            return
        held, self._held_output = self._held_output, []
        for channel in held:
            if not channel._poll_flush() and channel._ch_poller is self:
                self._watch_write(channel)

    def _watch_write(self, channel: PolledChannel) -> None:
        fd = channel._write_fd()
        if fd in self._writing:
            return
        self._writing[fd] = channel
        if fd in self._always_ready:  # read too, and refused by the watcher
            self._always_ready[fd] |= self._watch.WRITE
        elif self._channels.get(fd) is channel:
            self._watch.modify(fd, self._watch.READ | self._watch.WRITE)
        else:
            self._watch_or_not(fd, self._watch.WRITE, channel)

    def _unwatch_write(self, fd: int) -> None:
        channel = self._writing.pop(fd)
        if fd in self._always_ready:
            self._stop_always_ready(fd, self._watch.WRITE)
            return
        try:
            if self._channels.get(fd) is channel:
                self._watch.modify(fd, self._watch.READ)
            else:
                self._watch.unregister(fd)
        except (KeyError, ValueError, OSError):
            pass  # the descriptor is already gone

    def _watch_or_not(self, fd: int, events: int, owner: object) -> None:
        """Watch ``fd`` for ``events``, or take it as always ready for them
        if the watcher refuses it; ``ValueError`` if it is not open.

        epoll refuses regular files and devices such as ``/dev/null`` with
        ``EPERM``, where poll(2) and select(2) report them always ready
        (their reads and writes never wait). Twisted's epoll reactor hands
        such descriptors to a "continuous polling" helper that reads and
        writes them on a timer; libuv refuses them, and Node.js then reads a
        file stdin with plain file reads instead. We do as poll(2) does, as
        the original library (built on it) did: such a descriptor is ready
        on every poll, which then does not wait, until its end is read and
        it is forgotten. No timer, no spinning once it has ended, and a
        program reads ``< file`` or ``< /dev/null`` as it reads a pipe.
        """
        try:
            self._watch.register(fd, events)
        except PermissionError:
            self._always_ready[fd] = self._always_ready.get(fd, 0) | events
        except (OSError, ValueError) as err:
            if isinstance(err, OSError) and err.errno == errno.EBADF:
                raise ValueError(f"{owner!r} cannot be registered: descriptor {fd} is not open") from err
            raise ValueError(f"{owner!r} cannot be registered: descriptor {fd} cannot be watched ({err})") from err

    def _stop_always_ready(self, fd: int, events: int) -> None:
        left = self._always_ready.pop(fd, 0) & ~events
        if left:
            self._always_ready[fd] = left

    def _serve_always_ready(self, result: list[Any]) -> None:
        """What a ready descriptor gets, for each that the watcher refused."""
        for fd, events in list(self._always_ready.items()):
            if events & self._watch.WRITE:
                self._on_writable(fd)
            channel = self._channels.get(fd)
            if events & self._watch.READ and channel is not None:
                self._read_from(channel, result)

    def _on_writable(self, fd: int) -> None:
        channel = self._writing.get(fd)
        if channel is None:
            if fd in self._closing and self._closing[fd][0]._poll_linger():
                self._end_closing(fd)
        elif channel._poll_flush() and self._writing.get(fd) is channel:  # a failure forgets it itself
            self._unwatch_write(fd)

    # -- closing in the background ---------------------------------------------

    def _close_later(self, channel: PolledChannel, timeout: float | None) -> None:
        """``channel`` is closed in a turn with output its peer has not taken
        (see ``channels._seam``): deliver it in the background.

        The linger is the one ``close()`` was given (5 s by default).
        Twisted's ``loseConnection()`` and asyncio's ``transport.close()``
        likewise return at once and send what is buffered as the peer takes
        it, but with no limit at all, so a peer that never reads holds the
        descriptor forever; Tornado's ``close()`` drops what is pending.
        Waiting for it, as ``close()`` outside a turn does, would stop every
        other client for as long as the linger. We send it as the peer
        takes it, from later polls (and at exit, for a program that does
        not poll again), and release the descriptor once it is all out or
        the linger has passed, dropping the rest with a warning.
        """
        fd = channel._write_fd()
        self._channel_closed(channel)
        self._closing[fd] = (channel, math.inf if timeout is None else time.monotonic() + timeout)
        self._watch_or_not(fd, self._watch.WRITE, channel)

    def _until_linger_ends(self, timeout: float | None) -> float | None:
        wait = max(0.0, min(deadline for _, deadline in self._closing.values()) - time.monotonic())
        if wait == math.inf:
            return timeout
        return wait if timeout is None else min(timeout, wait)

    def _release_lingered(self, now: float) -> None:
        for fd, (_, deadline) in list(self._closing.items()):
            if deadline <= now:
                self._end_closing(fd)

    def _end_closing(self, fd: int) -> None:
        channel, _ = self._closing.pop(fd)
        if fd in self._always_ready:
            self._stop_always_ready(fd, self._watch.WRITE)
        else:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._watch.unregister(fd)
        channel._poll_release()

    def _deliver_closing(self, timeout: float | None) -> None:
        """Wait until the channels closed in turns have delivered their
        output, within their lingers and ``timeout`` seconds, then release them."""
        until = math.inf if timeout is None else time.monotonic() + timeout
        while self._closing:
            now = time.monotonic()
            for fd, (channel, deadline) in list(self._closing.items()):
                if min(deadline, until) <= now or channel._poll_linger():
                    self._end_closing(fd)
            if not self._closing:
                return
            wait = min(until, *(deadline for _, deadline in self._closing.values())) - now
            watcher = select.poll()
            for fd in self._closing:
                watcher.register(fd, select.POLLOUT)
            watcher.poll(None if wait == math.inf else int(wait * 1000) + 1)

    # -- servers --------------------------------------------------------------

    def _accept(self, fd: int, result: list[Any]) -> None:
        server = self._servers[fd]
        for _ in range(_ACCEPT_BATCH):
            try:
                sock, address = server.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as err:
                if err.errno in _CLIENT_GONE:
                    _LOG.debug("accept on %r: client gone (%s)", server, err)
                    continue
                self._out_of_resources(fd, err)
                return
            allowed = self._allowed_uids.get(fd)
            if allowed is not None and not _admitted(sock, allowed, server):
                sock.close()
                continue
            try:
                client = self._make_client(server, sock)
            except (OSError, ValueError) as err:  # pragma: no cover - the client vanished at once
                _LOG.debug("accepted client unusable (%s)", err)
                sock.close()
                continue
            self.register(client)
            result.append(((address, client), server))
        self._backoff.pop(fd, None)

    def _make_client(self, server: socket.socket, sock: socket.socket) -> Channel:
        """Wrap a socket accepted from ``server`` in the channel it calls for.

        A server that knows its clients' kind says so with a ``wrap_client``
        method taking this constructor's arguments (the TLS servers of
        :mod:`channels.tls` do); any other gets a :class:`SocketChannel`.
        """
        wrap_client = getattr(server, "wrap_client", None)
        client: Channel = (SocketChannel if wrap_client is None else wrap_client)(
            sock,
            buffering=self._buffering,
            max_line_length=self._max_line_length,
            max_pending=self._max_pending,
        )
        return client

    def _out_of_resources(self, fd: int, err: OSError) -> None:
        """Accept failed for lack of descriptors or memory: back off.

        Twisted, Tornado and asyncio log and try again on the next loop turn,
        which spins while the client waits in the backlog; trio sleeps, and
        the client waits, unanswered, for as long as the shortage lasts.
        libuv keeps a spare descriptor: it frees it, accepts the waiting
        client and closes it at once, so the client sees a clean refusal.
        We do as libuv does, and also stop watching the server for a
        doubling pause (50 ms up to 1 s) so that poll() never spins.
        """
        server = self._servers[fd]
        if err.errno in (errno.EMFILE, errno.ENFILE) and self._reserve is not None:
            os.close(self._reserve)
            self._reserve = None
            try:
                sock, _ = server.accept()
                sock.close()
            except OSError:
                pass
            self._reserve = _open_reserve()
        pause = self._backoff.get(fd, _BACKOFF_FIRST)
        self._backoff[fd] = min(pause * 2, _BACKOFF_MAX)
        _LOG.warning("accept on %r failed (%s); pausing it for %.2fs", server, err, pause)
        self._watch.unregister(fd)
        self._paused[fd] = time.monotonic() + pause

    def _until_resume(self, timeout: float | None) -> float:
        wait = max(0.0, min(self._paused.values()) - time.monotonic())
        return wait if timeout is None else min(timeout, wait)

    def _resume_servers(self) -> None:
        now = time.monotonic()
        for fd, until in list(self._paused.items()):
            if until <= now:
                del self._paused[fd]
                self._watch.register(fd, self._watch.READ)

    def _drop_server(self, fd: int) -> None:
        del self._servers[fd]
        self._allowed_uids.pop(fd, None)
        self._backoff.pop(fd, None)
        if self._paused.pop(fd, None) is None:
            with contextlib.suppress(KeyError, ValueError):
                self._watch.unregister(fd)

    # -- bookkeeping ----------------------------------------------------------

    def _claim(self, fd: int, owner: object) -> None:
        """Check that nothing else is registered on ``fd``."""
        if fd in self._servers:
            raise ValueError(f"descriptor {fd} is already registered for server {self._servers[fd]!r}")
        current = self._channels.get(fd)
        if current is None:
            return
        if not _still_on(current, fd):
            # Closed without telling us (a channel that closes in its own
            # way, as the original library's subclasses do); its number is reused.
            self._forget(current)
            self._ended.append(current)
            return
        raise ValueError(f"descriptor {fd} is already registered for {current!r}")

    def _is_registered(self, channel: object) -> TypeGuard[_Registered]:
        if _is_native(channel):
            return channel._ch_poller is self and channel._ch_poll_fd >= 0
        return id(channel) in self._foreign

    def _forget(self, channel: _Registered) -> None:
        fd = channel._ch_poll_fd if _is_native(channel) else self._foreign.pop(id(channel))
        del self._channels[fd]
        if fd in self._always_ready:
            self._stop_always_ready(fd, self._watch.READ)
        self._unwatch_writes_of(channel)
        with contextlib.suppress(KeyError, ValueError):
            self._watch.unregister(fd)
        if _is_native(channel):
            channel._ch_poller = None
            channel._ch_poll_fd = -1

    def _unwatch_writes_of(self, channel: _Registered) -> None:
        for fd, writer in list(self._writing.items()):
            if writer is channel:
                self._unwatch_write(fd)


def _check_allow_uids(sock: socket.socket, allow_uids: Iterable[int]) -> frozenset[int]:
    if sock.family != socket.AF_UNIX:
        raise ValueError("allow_uids works on Unix sockets only: other peers have no user id to check")
    if not hasattr(socket, "SO_PEERCRED"):  # pragma: no cover - not Linux
        raise NotImplementedError("allow_uids needs SO_PEERCRED, which this platform does not have")
    allowed = frozenset(allow_uids)
    if not all(isinstance(uid, int) and not isinstance(uid, bool) for uid in allowed):
        raise TypeError(f"allow_uids takes user ids (int), not {sorted(map(repr, allowed))}")
    return allowed


def _admitted(sock: socket.socket, allowed: frozenset[int], server: socket.socket) -> bool:
    """Whether the client on ``sock`` runs as one of the ``allowed`` users."""
    try:
        peer = peer_credentials_of(sock)
    except OSError as err:  # pragma: no cover - the client vanished at once
        _LOG.debug("accepted client gone before its credentials were read (%s)", err)
        return False
    if peer.uid in allowed:
        return True
    _LOG.warning(
        "refused client pid=%d uid=%d gid=%d on %r: uid not in allow_uids", peer.pid, peer.uid, peer.gid, server
    )
    return False


def _is_native(channel: object) -> TypeGuard[PolledChannel]:
    """Whether the poller drives ``channel`` through the seam (``channels._seam``)."""
    return isinstance(channel, Channel)


def _still_on(channel: _Registered, fd: int) -> bool:
    """Whether ``channel`` is still open on ``fd``: asked when another
    channel is registered on that number, which a channel that closes in its
    own way (as the original library's subclasses do) leaves behind."""
    if getattr(channel, "closed", False) is True:  # the original's subclasses say so themselves
        return False
    try:
        return bool(channel.get_fd() == fd)
    except Exception:
        return False


def _read_foreign(channel: _Registered, result: list[Any], poller: Poller) -> bool:
    """Read a channel that overrides ``read()`` through ``read()`` itself."""
    try:
        if getattr(channel, "buffering", "bytes") != "line":
            data = channel.read()
            if data:
                result.append((data, channel))
            return False
        for _ in range(_FOREIGN_LINE_BATCH):
            try:
                data = channel.read()
            except LineTooLongError as err:
                _LOG.warning("%r: %s", channel, err)
                continue
            if not data:
                return False
            result.append((data, channel))
        poller._held_input.append(channel)
        return False
    except EndpointClosedException:
        result.append((b"", channel))
        return True


class _Turn(list[Any]):
    """The list ``poll()`` returns: iterating over it is the poller's turn.

    Writes made meanwhile are held by their channels (see ``channels._seam``)
    and sent here, when the iteration ends: run to the end, or the iterator
    closed by ``break``, ``return`` or an exception.
    """

    __slots__ = ("_poller",)

    _poller: Poller

    def __iter__(self) -> Iterator[Any]:
        poller = self._poller
        poller._turn_depth += 1
        try:
            yield from list.__iter__(self)
        finally:
            poller._turn_depth -= 1
            if poller._held_output:
                poller._send_held_output()


def _flush_together(channels: list[PolledChannel], timeout: float | None) -> None:
    """Send the pending output of all ``channels`` at once, within ``timeout``."""
    waiting = [ch for ch in channels if ch.pending_output and not ch._poll_flush()]
    deadline = None if timeout is None else time.monotonic() + timeout
    while waiting:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return
        watcher = select.poll()
        for channel in waiting:
            watcher.register(channel._write_fd(), select.POLLOUT)
        watcher.poll(None if remaining is None else int(remaining * 1000) + 1)
        waiting = [ch for ch in waiting if not ch._poll_flush()]


def _close_all_of(*sockets: socket.socket) -> None:
    for sock in sockets:
        sock.close()


def _open_reserve() -> int | None:
    try:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


# Output held for a poll that never comes (the program exits after its last
# write) would be lost; send what the peers take at exit.
_live_pollers: weakref.WeakSet[Poller] = weakref.WeakSet()


@atexit.register
def _send_held_output_at_exit() -> None:
    for poller in list(_live_pollers):
        poller._send_held_output()
    for poller in list(_live_pollers):
        poller._deliver_closing(None)  # each within its own linger
