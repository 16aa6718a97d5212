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
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from ._watch import Watcher
from .base import Channel
from .sockets import SocketChannel, peer_credentials_of

__all__ = ["Acceptor"]

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


class Acceptor:
    """The listening sockets of one poller, and how their clients are accepted.

    Clients are made with ``client_options`` (``buffering``,
    ``max_line_length``, ``max_pending``). It holds nothing of its poller
    but the watcher, so that a poller dropped without ``close()`` is freed
    at once, descriptors included (no reference cycle).
    """

    def __init__(self, watch: Watcher, **client_options: Any) -> None:
        self._watch = watch
        self._client_options = client_options
        self.servers: dict[int, socket.socket] = {}  # server descriptor -> server
        self.paused: dict[int, float] = {}  # server descriptor -> resume time
        self._backoff: dict[int, float] = {}  # server descriptor -> next pause
        self._allowed_uids: dict[int, frozenset[int]] = {}  # server descriptor -> who may connect
        self._reserve: int | None = None

    def add(self, sock: socket.socket, fd: int, allowed: frozenset[int] | None) -> None:
        """Accept clients from ``sock`` on ``fd`` (checked, see :meth:`check`)."""
        if allowed is not None:
            self._allowed_uids[fd] = allowed
        sock.setblocking(False)
        self._watch.register(fd, self._watch.READ)
        self.servers[fd] = sock
        if self._reserve is None:
            self._reserve = _open_reserve()

    @staticmethod
    def check(sock: socket.socket, allow_uids: Iterable[int] | None) -> frozenset[int] | None:
        """The users ``allow_uids`` admits to ``sock`` (``None``: all); raises
        if it cannot apply to that socket."""
        return None if allow_uids is None else _check_allow_uids(sock, allow_uids)

    def accept(self, fd: int, result: list[Any], register: Callable[[Channel], None]) -> None:
        """Accept a batch of clients from the server on ``fd``, registering
        each with ``register`` and reporting it in ``result``."""
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
            register(client)
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
        self.paused[fd] = time.monotonic() + pause

    def until_resume(self, timeout: float | None) -> float:
        """``timeout``, shortened to the time left until a paused server resumes."""
        wait = max(0.0, min(self.paused.values()) - time.monotonic())
        return wait if timeout is None else min(timeout, wait)

    def resume(self) -> None:
        """Watch again the servers whose pause has passed."""
        now = time.monotonic()
        for fd, until in list(self.paused.items()):
            if until <= now:
                del self.paused[fd]
                self._watch.register(fd, self._watch.READ)

    def drop(self, fd: int) -> socket.socket:
        """Stop accepting from the server on ``fd``; return it."""
        server = self.servers.pop(fd)
        self._allowed_uids.pop(fd, None)
        self._backoff.pop(fd, None)
        if self.paused.pop(fd, None) is None:
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
