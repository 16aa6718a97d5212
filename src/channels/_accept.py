"""Accepting clients for the :class:`~channels.poller.Poller`: its servers.

One :class:`Acceptor` per poller keeps the listening sockets given to
``add_server()`` and, when one is readable, accepts a batch of clients,
wraps each in the channel its server calls for, checks who may connect
(``allow_uids``) and hands the client to the poller to register. It also
owns the policy for running out of descriptors (the spare descriptor and
the back-off) and the error catalogue of ``accept()``; and its clients' deadlines
(``idle_timeout``, ``handshake_timeout``), as timers of the poller's.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import socket
import weakref
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Protocol

from . import _check
from ._foreign import PollRead
from ._watch import Watcher
from .base import Channel
from .sockets import SocketChannel, peer_credentials_of
from .timers import Timer, TimerQueue

__all__ = ["DEFAULT_HANDSHAKE_TIMEOUT", "Acceptor", "ClientDeadlines", "Deadlines"]

_LOG = logging.getLogger("channels.poller")

# Clients accepted per server per poll: enough to drain a burst, few enough
# that a connection storm cannot starve channels that already have data.
_ACCEPT_BATCH = 64

# accept() errors that concern one client only: skip it and go on.
_CLIENT_GONE = {errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EINTR}

# accept() errors that say the process is out of something: back off.
_EXHAUSTED = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}

_BACKOFF_FIRST = 0.05
_BACKOFF_MAX = 1.0

#: Seconds a TLS client has to finish its handshake, unless ``add_server()``
#: says otherwise: asyncio's default (``ssl_handshake_timeout``), which it
#: added after clients that never finished held connections open forever.
DEFAULT_HANDSHAKE_TIMEOUT = 10.0


class Deadlines(NamedTuple):
    """What a server asks of its clients' timing (``None``: no limit)."""

    #: Seconds a client may stay silent before it is dropped.
    idle: float | None
    #: Seconds a TLS client has to finish its handshake.
    handshake: float | None


class Acceptor:
    """The listening sockets of one poller, and how their clients are accepted.

    Clients are made with ``client_options`` (``buffering``,
    ``max_line_length``, ``max_pending``). It holds nothing of its poller
    but the watcher, so that a poller dropped without ``close()`` is freed
    at once, descriptors included (no reference cycle).
    """

    def __init__(self, watch: Watcher, timers: TimerQueue, **client_options: Any) -> None:
        self._watch = watch
        self._timers = timers
        self._client_options = client_options
        self.servers: dict[int, socket.socket] = {}  # server descriptor -> server
        self._paused: dict[int, Timer] = {}  # server descriptor -> its resumption
        self._backoff: dict[int, float] = {}  # server descriptor -> next pause
        self._allowed_uids: dict[int, frozenset[int]] = {}  # server descriptor -> who may connect
        self._deadlines: dict[int, Deadlines] = {}  # server descriptor -> its clients' deadlines
        self.client_deadlines = ClientDeadlines(timers)
        self._reserve: int | None = None

    def add(
        self,
        sock: socket.socket,
        allow_uids: Iterable[int] | None,
        idle_timeout: float | None,
        handshake_timeout: float | None,
        claim: Callable[[int, object], None],
    ) -> None:
        """Accept clients from ``sock`` (see ``Poller.add_server()``);
        ``claim(fd, sock)`` raises if the poller has a channel on its descriptor."""
        allowed = _check_server(sock, allow_uids)
        deadlines = Deadlines(
            _check.optional_delay(idle_timeout, "add_server()", "idle_timeout", positive=True),
            _check.optional_delay(handshake_timeout, "add_server()", "handshake_timeout", positive=True),
        )
        fd = sock.fileno()
        if fd in self.servers:
            return
        claim(fd, sock)
        if allowed is not None:
            self._allowed_uids[fd] = allowed
        self._deadlines[fd] = deadlines
        sock.setblocking(False)
        self._watch.register(fd, self._watch.READ)
        self.servers[fd] = sock
        if self._reserve is None:
            self._reserve = _open_reserve()

    def accept(self, fd: int, result: list[Any], host: DeadlineHost) -> None:
        """Accept a batch of clients from the server on ``fd``: arm each
        one's deadlines, register it with ``host`` (the poller), and report
        it in ``result``."""
        server = self.servers[fd]
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
            self.client_deadlines.arm(host, client, self._deadlines[fd])
            host.register(client)
            result.append(((address, client), server))
        self._backoff.pop(fd, None)

    def _make_client(self, server: socket.socket, sock: socket.socket) -> Channel:
        """Wrap a socket accepted from ``server`` in the channel it calls for.

        A server that knows its clients' kind says so with a ``wrap_client``
        method taking this constructor's arguments (the TLS servers of
        :mod:`channels.tls` do); any other gets a :class:`SocketChannel`.
        """
        wrap_client = getattr(server, "wrap_client", None)
        client: Channel = (SocketChannel if wrap_client is None else wrap_client)(sock, **self._client_options)
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
        server = self.servers[fd]
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
        self._paused[fd] = self._timers.add(pause, action=functools.partial(self._resume, fd))

    def _resume(self, fd: int, result: list[Any]) -> None:
        """The pause of the server on ``fd`` has passed: watch it again."""
        del self._paused[fd]
        self._watch.register(fd, self._watch.READ)

    def claim(self, fd: int) -> None:
        """``ValueError`` if a server is added on ``fd``."""
        if fd in self.servers:
            raise ValueError(f"descriptor {fd} is already registered for server {self.servers[fd]!r}")

    def drop_server(self, sock: socket.socket) -> bool:
        """Stop accepting from ``sock``, if it is one of ours: say whether it was."""
        for fd, server in self.servers.items():
            if server is sock:
                self.drop(fd)
                return True
        return False

    def drop(self, fd: int) -> socket.socket:
        """Stop accepting from the server on ``fd``; return it."""
        server = self.servers.pop(fd)
        self._allowed_uids.pop(fd, None)
        self._backoff.pop(fd, None)
        self._deadlines.pop(fd, None)
        resumption = self._paused.pop(fd, None)
        if resumption is not None:
            resumption.cancel()
        else:
            with contextlib.suppress(KeyError, ValueError):
                self._watch.unregister(fd)
        return server

    def close_all(self) -> None:
        """Stop accepting from every server and close them; free the spare descriptor."""
        for fd in list(self.servers):
            self.drop(fd).close()
        if self._reserve is not None:
            # Programs written for the original call only close_all(), never
            # close(): free the spare too; add() opens it again.
            os.close(self._reserve)
            self._reserve = None


def _check_server(sock: socket.socket, allow_uids: Iterable[int] | None) -> frozenset[int] | None:
    """The users ``allow_uids`` admits to ``sock`` (``None``: all); raises
    if ``sock`` cannot be a server, or ``allow_uids`` cannot apply to it."""
    if not isinstance(sock, socket.socket):
        raise TypeError(f"add_server() takes a listening socket.socket, not {type(sock).__name__}")
    if sock.fileno() < 0:
        raise ValueError("add_server() needs an open socket; this one is closed")
    if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        raise ValueError("add_server() needs a listening socket: call listen() on it first")
    return None if allow_uids is None else _check_allow_uids(sock, allow_uids)


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


def _open_reserve() -> int | None:
    try:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


class ClientDeadlines:
    """The deadlines of the clients accepted by one poller.

    A client with an idle timeout gets a timer, pushed back by every poll
    read that gives entries (:meth:`reader` wraps its read) and disarmed
    while the poller does not read it (:meth:`not_read`); a TLS client gets
    a timer for its handshake. When one is due, :meth:`time_out` ends the
    client, unless it is gone, no longer read, or done with its handshake.
    Timers hold the poller and the client weakly: they keep neither alive.
    """

    def __init__(self, timers: TimerQueue) -> None:
        self._timers = timers
        #: Clients with an idle timeout -> its timer.
        self.idle: weakref.WeakKeyDictionary[Channel, Timer] = weakref.WeakKeyDictionary()

    def arm(self, host: DeadlineHost, client: Channel, deadlines: Deadlines) -> None:
        """Arm ``client``'s deadlines (before it is registered)."""
        this, ref = weakref.ref(host), weakref.ref(client)
        if deadlines.idle is not None:
            why = f"silent for {deadlines.idle}s (idle_timeout)"
            self.idle[client] = self._timers.add(deadlines.idle, action=_expiry(this, ref, self, why))
        if deadlines.handshake is not None and not getattr(client, "handshake_done", True):
            why = f"TLS handshake not done in {deadlines.handshake}s (handshake_timeout)"
            self._timers.add(deadlines.handshake, action=_expiry(this, ref, self, why, handshake=True))

    def reader(self, channel: Any, read: PollRead) -> PollRead:
        """``read``, or for a client with an idle timeout, ``read`` that
        pushes it back; its whole timeout starts again now."""
        timer = self.idle.get(channel)
        if timer is None:
            return read
        timer.reset()
        return _ResetOnRead(read, timer)

    def time_out(self, host: DeadlineHost, client: Any, why: str, result: list[Any]) -> None:
        """``client`` missed a deadline: close it, report its end in ``result``."""
        _LOG.info("%r: closed, %s", client, why)
        host._forget(client)
        client._end_by_failure(TimeoutError(f"{client!r}: {why}"))
        result.append((b"", client))

    def not_read(self, channel: Any) -> None:
        """``channel`` is not read now (paused, ended, unregistered): no idle timeout."""
        timer = self.idle.get(channel)
        if timer is not None:
            timer.cancel()


class DeadlineHost(Protocol):
    """What accepting a client and timing it out ask of the poller."""

    def register(self, channel: Channel) -> None: ...

    def _is_registered(self, channel: object) -> bool: ...

    def _forget(self, channel: Any) -> None: ...


class _ResetOnRead:
    """The poll read of a client with an idle timeout: a read that gives
    entries pushes the timeout back (an O(1) change of the timer, see
    :mod:`channels.timers`). Other clients' reads pay nothing for it."""

    __slots__ = ("_read", "_timer")

    def __init__(self, read: PollRead, timer: Timer) -> None:
        self._read = read
        self._timer = timer

    def __call__(self, result: list[Any]) -> bool:
        size = len(result)
        ended = self._read(result)
        if len(result) > size:
            self._timer.reset()
        return ended


def _expiry(
    host: Callable[[], DeadlineHost | None],
    client: Callable[[], Channel | None],
    deadlines: ClientDeadlines,
    why: str,
    *,
    handshake: bool = False,
) -> Callable[[list[Any]], None]:
    """What a client's deadline timer does when due."""

    def expired(result: list[Any]) -> None:
        poller, channel = host(), client()
        if poller is None or channel is None or not poller._is_registered(channel):
            return  # gone, ended, paused or unregistered
        if not (handshake and getattr(channel, "handshake_done", True)):
            deadlines.time_out(poller, channel, why, result)

    return expired
