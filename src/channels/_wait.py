"""Waiting, written once: a deadline, and a wait for readiness.

Every call that may block -- ``flush()``, ``receive()``, ``expect()``,
``close()``, ``shutdown_write()``, a TLS handshake, a terminal's close,
:mod:`channels.aio`'s ``aclose()``, ``Poller.close_all()`` -- waits through
these two, in the same shape::

    deadline = Deadline(timeout)
    while not done():
        if deadline.expired():
            return False
        wait_for(fd, select.POLLOUT, deadline.remaining())

The wait sleeps in the kernel (poll(2)) until the descriptor is ready or the
time is up, never spinning: a timeout is rounded *up* to whole milliseconds,
so that one below a millisecond sleeps a millisecond instead of returning at
once, again and again. A wait interrupted by a signal is resumed by Python
itself with the time that is left (PEP 475). A timeout longer than poll(2)
can count (a C ``int`` of milliseconds, about 24 days) is waited in pieces:
the loop above simply waits again, so it never raises ``OverflowError``.

Timeouts reach here checked (:mod:`channels._check`): ``None`` is no limit,
anything else a number of seconds ``>= 0``.
"""

from __future__ import annotations

import math
import select
import time
from collections.abc import Mapping

from ._check import LONGEST_WAIT

__all__ = ["Deadline", "wait_for", "wait_for_any"]


class Deadline:
    """The moment a wait of ``timeout`` seconds ends (``None``: never)."""

    __slots__ = ("_at",)

    def __init__(self, timeout: float | None) -> None:
        self._at = None if timeout is None else time.monotonic() + timeout

    def remaining(self) -> float | None:
        """Seconds left, ``0.0`` once passed; ``None`` for no limit."""
        if self._at is None:
            return None
        return max(0.0, self._at - time.monotonic())

    def expired(self) -> bool:
        """Whether the time is up (never, for no limit)."""
        return self._at is not None and time.monotonic() >= self._at


def wait_for(fd: int, events: int, timeout: float | None) -> bool:
    """Sleep until ``fd`` is ready for ``events`` (``select.POLLIN``,
    ``POLLOUT``, or ``0`` for a hang-up or an error only), at most ``timeout``
    seconds (``None``: no limit, ``0``: just look); whether it is ready.

    A hang-up or an error counts as ready: the next read or write is what
    tells what happened.
    """
    # Not through wait_for_any(): a write with output pending asks this of
    # one descriptor, with no timeout, and must stay cheap.
    watcher = select.poll()
    watcher.register(fd, events)
    return bool(watcher.poll(0 if timeout == 0 else _milliseconds(timeout)))


def wait_for_any(waits: Mapping[int, int], timeout: float | None) -> list[tuple[int, int]]:
    """Sleep until one of the descriptors in ``waits`` (descriptor ->
    events, as :func:`wait_for` takes them) is ready, at most ``timeout``
    seconds; the ready ones, as ``(fd, events)`` pairs (``[]``: time is up)."""
    watcher = select.poll()
    for fd, events in waits.items():
        watcher.register(fd, events)
    return watcher.poll(_milliseconds(timeout))


def _milliseconds(timeout: float | None) -> int | None:
    """``timeout`` as poll(2) takes it: whole milliseconds, rounded up."""
    if timeout is None:
        return None
    if timeout >= LONGEST_WAIT:
        return LONGEST_WAIT * 1000  # the caller's deadline loop waits again
    return max(0, math.ceil(timeout * 1000))
