"""Accepting clients for the :class:`~channels.poller.Poller`: its servers.

One :class:`Acceptor` per poller keeps the listening sockets given to
``add_server()`` and, when one is readable, accepts a batch of clients,
wraps each in the channel its server calls for, checks who may connect
(``allow_uids``) and hands the client to the poller to register. It also
owns the policy for running out of descriptors (the spare descriptor and
the back-off) and the error catalogue of ``accept()``.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import socket
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Protocol

from ._watch import Watcher
from .base import Channel
from .sockets import SocketChannel, peer_credentials_of
from .timers import Timer, TimerQueue, check_seconds

__all__ = ["DEFAULT_HANDSHAKE_TIMEOUT", "Acceptor", "Deadlines", "ResetOnRead", "deadline_action"]

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


#: What the poller does with an accepted client: register it, then watch
#: its deadlines.
Admit = Callable[[Channel, Deadlines], None]


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
        self._reserve: int | None = None

    def add(self, sock: socket.socket, fd: int, allowed: frozenset[int] | None, deadlines: Deadlines) -> None:
        """Accept clients from ``sock`` on ``fd`` (checked, see :meth:`check`)."""
        if allowed is not None:
            self._allowed_uids[fd] = allowed
        self._deadlines[fd] = deadlines
        sock.setblocking(False)
        self._watch.register(fd, self._watch.READ)
        self.servers[fd] = sock
        if self._reserve is None:
            self._reserve = _open_reserve()

    @staticmethod
    def check(sock: socket.socket, allow_uids: Iterable[int] | None) -> frozenset[int] | None:
        """The users ``allow_uids`` admits to ``sock`` (``None``: all); raises
        if it cannot apply to that socket."""
        if not isinstance(sock, socket.socket):
            raise TypeError(f"add_server() takes a listening socket.socket, not {type(sock).__name__}")
        if sock.fileno() < 0:
            raise ValueError("add_server() needs an open socket; this one is closed")
        if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            raise ValueError("add_server() needs a listening socket: call listen() on it first")
        return None if allow_uids is None else _check_allow_uids(sock, allow_uids)

    @staticmethod
    def check_deadlines(idle_timeout: float | None, handshake_timeout: float | None) -> Deadlines:
        """``add_server()``'s deadlines, checked."""
        return Deadlines(
            None if idle_timeout is None else check_seconds(idle_timeout, "add_server", positive=True),
            None if handshake_timeout is None else check_seconds(handshake_timeout, "add_server", positive=True),
        )

    def accept(self, fd: int, result: list[Any], admit: Admit) -> None:
        """Accept a batch of clients from the server on ``fd``, handing each
        to ``admit`` with its server's deadlines and reporting it in ``result``."""
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
            admit(client, self._deadlines[fd])
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


class ResetOnRead:
    """The poll read of a client with an idle timeout: a read that gives
    entries pushes the timeout back (an O(1) change of the timer, see
    :mod:`channels.timers`). Other clients' reads pay nothing for it."""

    __slots__ = ("_read", "_timer")

    def __init__(self, read: Callable[[list[Any]], bool], timer: Timer) -> None:
        self._read = read
        self._timer = timer

    def __call__(self, result: list[Any]) -> bool:
        """Read as the wrapped read does; reset the timer if the client spoke."""
        size = len(result)
        ended = self._read(result)
        if len(result) > size:
            self._timer.reset()
        return ended


class DeadlineHost(Protocol):
    """What a missed deadline asks of the poller."""

    def _is_registered(self, channel: object) -> bool: ...

    def _time_out(self, client: Any, why: str, result: list[Any]) -> None: ...


def deadline_action(
    host: Callable[[], DeadlineHost | None],
    client: Callable[[], Channel | None],
    why: str,
    *,
    handshake: bool = False,
) -> Callable[[list[Any]], None]:
    """What a client's deadline timer does when due: have the poller time
    the client out, unless it is gone, no longer read, or (``handshake``)
    done with its TLS handshake. Both are weak references (``host()`` and
    ``client()`` give ``None`` once they are gone): a timer keeps neither
    the poller nor the client alive."""

    def expired(result: list[Any]) -> None:
        poller, channel = host(), client()
        if poller is None or channel is None or not poller._is_registered(channel):
            return
        if handshake and getattr(channel, "handshake_done", True):
            return
        poller._time_out(channel, why, result)

    return expired
