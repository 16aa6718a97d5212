"""Readiness watching under the Poller: epoll itself on Linux, selectors elsewhere.

The Poller needs four things of the OS: watch a descriptor for reading and/or
writing, change that, stop, and wait for what is ready. :mod:`selectors` offers
them everywhere, but on each poll it builds a ``SelectorKey`` lookup per ready
descriptor, and it keeps a ``SelectorKey`` and a map entry per registered one:
about 1.5 µs more per poll than epoll itself and about 120 bytes more per idle
channel, measured. The Poller already maps descriptors to channels, so on Linux
it drives ``select.epoll`` directly; elsewhere selectors picks the best
mechanism (kqueue on BSD and macOS). Both watchers report ``(fd, mask)`` pairs
whose bits are tested against their own ``READ_READY`` and ``WRITE_READY``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import selectors
import stat
from collections.abc import Callable
from typing import Protocol

__all__ = ["AlwaysReadyWatcher", "EpollWatcher", "SelectorsWatcher", "Watcher", "default_watcher"]


class Watcher(Protocol):
    """What the Poller asks of the OS's readiness mechanism."""

    READ: int
    WRITE: int
    READ_READY: int
    WRITE_READY: int

    def register(self, fd: int, events: int) -> None:
        """Watch ``fd`` for ``events``; ``OSError`` if it is not open, and
        ``PermissionError`` if it cannot be watched because it is always
        ready (a regular file, ``/dev/null``), as epoll says of them."""

    def modify(self, fd: int, events: int) -> None:
        """Watch ``fd``, already registered, for ``events`` instead."""

    def unregister(self, fd: int) -> None:
        """Stop watching ``fd``; silent if it is not watched or already closed."""

    def wait(self, timeout: float | None) -> list[tuple[int, int]]:
        """Wait up to ``timeout`` seconds (``None``: no limit) for readiness."""

    def close(self) -> None:
        """Free the watcher's own descriptor."""


class EpollWatcher:
    """Linux epoll, level-triggered, with no per-descriptor Python object."""

    __slots__ = ("_epoll", "wait")

    READ = select.EPOLLIN if hasattr(select, "EPOLLIN") else 1
    WRITE = select.EPOLLOUT if hasattr(select, "EPOLLOUT") else 4
    # A hang-up or an error must wake a reader and a writer alike: the next
    # read or write is what tells them what happened.
    READ_READY = READ | (select.EPOLLHUP | select.EPOLLERR if hasattr(select, "EPOLLHUP") else 0)
    WRITE_READY = WRITE | (select.EPOLLHUP | select.EPOLLERR if hasattr(select, "EPOLLHUP") else 0)

    def __init__(self) -> None:
        self._epoll = select.epoll()
        # epoll's own poll(), unwrapped: it takes seconds or None, and rounds
        # a timeout up to whole milliseconds, so that one below a millisecond
        # does not become a busy loop. Callers pass no negative timeout.
        self.wait: Callable[[float | None], list[tuple[int, int]]] = self._epoll.poll

    def register(self, fd: int, events: int) -> None:
        """Watch ``fd`` for ``events``."""
        self._epoll.register(fd, events)

    def modify(self, fd: int, events: int) -> None:
        """Watch ``fd`` for ``events`` instead."""
        self._epoll.modify(fd, events)

    def unregister(self, fd: int) -> None:
        """Stop watching ``fd``; silent if it is not watched or closed."""
        with contextlib.suppress(OSError, ValueError):  # closed already (epoll forgot it), or never watched
            self._epoll.unregister(fd)

    def close(self) -> None:
        """Free the epoll descriptor."""
        self._epoll.close()


class SelectorsWatcher:
    """Whatever :mod:`selectors` finds best here (kqueue, devpoll, poll)."""

    __slots__ = ("_selector",)

    READ = READ_READY = selectors.EVENT_READ
    WRITE = WRITE_READY = selectors.EVENT_WRITE

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()

    def register(self, fd: int, events: int) -> None:
        """Watch ``fd`` for ``events``; ``PermissionError`` for a regular file."""
        # kqueue would take a regular file, but reports it readable only
        # while the offset is short of the end, so its end would never be
        # seen: refuse it as epoll does, and the Poller takes it as ready.
        if stat.S_ISREG(os.fstat(fd).st_mode):
            raise PermissionError(errno.EPERM, f"descriptor {fd} is a regular file, always ready")
        try:
            self._selector.register(fd, events)
        except KeyError as err:
            raise FileExistsError(f"descriptor {fd} is already watched") from err

    def modify(self, fd: int, events: int) -> None:
        """Watch ``fd`` for ``events`` instead."""
        self._selector.modify(fd, events)

    def unregister(self, fd: int) -> None:
        """Stop watching ``fd``; silent if it is not watched or closed."""
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(fd)

    def wait(self, timeout: float | None) -> list[tuple[int, int]]:
        """Ready descriptors and their event masks."""
        return [(key.fd, mask) for key, mask in self._selector.select(timeout)]

    def close(self) -> None:
        """Free the selector's descriptor, if it has one."""
        self._selector.close()


def default_watcher() -> Watcher:
    """epoll where there is epoll, else selectors' choice."""
    return EpollWatcher() if hasattr(select, "epoll") else SelectorsWatcher()


class AlwaysReadyWatcher:
    """A watcher that takes the descriptors its own refuses as always ready.

    epoll refuses regular files and devices such as ``/dev/null`` with
    ``EPERM``, where poll(2) and select(2) report them always ready (their
    reads and writes never wait). Twisted's epoll reactor hands such
    descriptors to a "continuous polling" helper that reads and writes them
    on a timer; libuv refuses them, and Node.js then reads a file stdin with
    plain file reads instead. We do as poll(2) does, as the original library
    (built on it) did: such a descriptor is reported ready by every
    :meth:`wait`, which then does not block, until it is unregistered (the
    poller does so once its end is read). No timer, no spinning once it has
    ended, and a program reads ``< file`` or ``< /dev/null`` as it reads a
    pipe.

    While no such descriptor is registered, :attr:`wait` is the wrapped
    watcher's own, so the common case pays nothing for this.
    """

    __slots__ = ("READ", "READ_READY", "WRITE", "WRITE_READY", "_always", "_inner", "wait")

    def __init__(self, inner: Watcher) -> None:
        self._inner = inner
        self.READ, self.WRITE = inner.READ, inner.WRITE
        self.READ_READY, self.WRITE_READY = inner.READ_READY, inner.WRITE_READY
        self._always: dict[int, int] = {}  # descriptor -> the READ and WRITE bits it stands ready for
        self.wait: Callable[[float | None], list[tuple[int, int]]] = inner.wait

    def register(self, fd: int, events: int) -> None:
        """Watch ``fd`` for ``events``; if the watcher refuses it as always
        ready, report it ready for them on every wait."""
        try:
            self._inner.register(fd, events)
        except PermissionError:
            self._set(fd, self._always.get(fd, 0) | events)

    def modify(self, fd: int, events: int) -> None:
        """Watch ``fd`` for ``events`` instead."""
        if fd in self._always:
            self._set(fd, events)
        else:
            self._inner.modify(fd, events)

    def unregister(self, fd: int) -> None:
        """Stop watching ``fd``; silent if it is not watched or closed."""
        if self._always.pop(fd, None) is None:
            self._inner.unregister(fd)
        elif not self._always:
            self.wait = self._inner.wait

    def close(self) -> None:
        """Free the wrapped watcher's descriptor."""
        self._inner.close()

    def _set(self, fd: int, events: int) -> None:
        self._always[fd] = events
        self.wait = self._wait_always_ready

    def _wait_always_ready(self, timeout: float | None) -> list[tuple[int, int]]:
        # Bits of READ and WRITE are bits of READ_READY and WRITE_READY too.
        ready = self._inner.wait(0)
        ready.extend(self._always.items())
        return ready
