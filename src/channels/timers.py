"""Timers: what a :class:`~channels.poller.Poller` reports when their time comes.

``poller.call_later(seconds)`` and ``poller.call_every(seconds)`` return a
:class:`Timer`; when it is due, ``poll()`` returns ``(due, timer)`` among its
entries, ``due`` being the clock's value (``time.monotonic()`` by default)
it was due at, and never sleeps past the earliest timer.

Operations, and what each costs with ``n`` timers armed:

* arm a timer (``call_later``, ``call_every``, ``reset()`` of one that is
  not armed): O(log n);
* push an armed timer back (``reset()`` to a later time): O(1). An idle
  timeout is a reset on every read, so this is the operation that must cost
  nothing;
* ``cancel()``: O(1);
* at each poll, the earliest due time, and the timers now due: O(log n)
  each.

Plan: a binary heap (:mod:`heapq`) of ``(when, seq, timer)`` entries, ``seq``
breaking ties in arming order. A timer knows the ``seq`` of its one live
entry; cancelling forgets it, which leaves a dead entry in the heap, dropped
when it comes to the top (or when dead entries are more than half the heap,
asyncio's rule, by rebuilding it). Pushing a timer back only changes the
timer: its entry, now early, is moved to the new time when it comes to the
top. This is how libev and the Linux kernel's timers treat a timeout that is
pushed back on every packet, instead of a remove-and-insert per reset.

Nothing here does I/O: the queue is given a clock and asked for due timers.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Callable
from typing import Any

from . import _check

__all__ = ["Timer", "TimerQueue"]

#: What an internal timer (one the poller sets for itself, never reported)
#: does when due: it is given the poll's result to add entries to.
Action = Callable[[list[Any]], None]

# Rebuild the heap when dead entries are this many and more than half of it.
_COMPACT_MIN_DEAD = 64


class Timer:
    """A time at which a :class:`~channels.poller.Poller`'s ``poll()``
    reports ``(due, timer)``; made by ``call_later()`` or ``call_every()``.

    A periodic timer is due every ``interval`` seconds after its first time;
    one that fell behind (a poll came late) is reported once, and its next
    time is the next one on its schedule still ahead.
    """

    __slots__ = ("_queue", "_when", "_entry_when", "_seq", "_delay", "_interval", "_action", "__weakref__")

    def __init__(self, queue: TimerQueue, delay: float, interval: float | None, action: Action | None) -> None:
        self._queue = queue
        self._when: float | None = None  # when it is due; None if not armed
        self._entry_when = 0.0  # the time of its live heap entry (<= _when)
        self._seq = -1  # the seq of its live heap entry; -1: none
        self._delay = delay if interval is None else interval  # what reset() pushes it back by
        self._interval = interval
        self._action = action

    @property
    def due(self) -> float | None:
        """The clock value at which it is next due; ``None`` if it is not
        armed (cancelled, or a one-shot timer that was reported)."""
        return self._when

    @property
    def active(self) -> bool:
        """Whether it is armed: it will be reported unless cancelled."""
        return self._when is not None

    @property
    def interval(self) -> float | None:
        """Seconds between the times of a periodic timer; ``None`` for a one-shot."""
        return self._interval

    def cancel(self) -> None:
        """Disarm it: it is not reported (a later ``reset()`` arms it again).

        Cancelling a timer that is not armed does nothing. A timer already
        reported in a poll's result stays in that list.
        """
        if self._seq >= 0:
            self._queue._dead += 1
            self._seq = -1
        self._when = None

    def reset(self, seconds: float | None = None) -> None:
        """Make it due ``seconds`` from now (``None``: the delay a one-shot
        timer was made with, a periodic timer's interval), armed again if it
        was not.

        For an idle timeout, reset the timer whenever the peer is heard
        from. A periodic timer goes on every ``interval`` seconds from its
        new time.
        """
        delay = self._delay if seconds is None else _check.delay(seconds, "reset()")
        self._queue._arm(self, self._queue.clock() + delay)

    def __repr__(self) -> str:
        kind = "one-shot" if self._interval is None else f"every {self._interval}s"
        state = "not armed" if self._when is None else f"due at {self._when:.3f}"
        return f"<Timer {kind} {state}>"


class TimerQueue:
    """The timers of one poller, on a heap ordered by due time.

    ``clock`` gives the time in seconds (``time.monotonic`` by default). A
    clock whose ``moves_on_its_own`` attribute is false (such as
    :class:`channels.testing.FakeClock`) only moves when a test tells it
    to: :meth:`wait_time` then never waits for a timer that is not due.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._moves = bool(getattr(clock, "moves_on_its_own", True))
        #: ``(when, seq, timer)`` entries; the poller checks it for emptiness
        #: on every poll, so it is changed in place, never replaced.
        self.heap: list[tuple[float, int, Timer]] = []
        self._dead = 0
        self._seqs = itertools.count()

    def add(self, delay: float, interval: float | None = None, action: Action | None = None) -> Timer:
        """A timer due ``delay`` seconds from now, then every ``interval``
        seconds if given; with an ``action``, it is run when due instead of
        being reported."""
        timer = Timer(self, delay, interval, action)
        self._arm(timer, self.clock() + delay)
        return timer

    def _arm(self, timer: Timer, when: float) -> None:
        timer._when = when
        if timer._seq >= 0:
            if when >= timer._entry_when:
                return  # pushed back: its entry moves when it comes to the top
            self._dead += 1  # brought forward: that entry is dead, a new one is made
        self._push(timer, when)

    def _push(self, timer: Timer, when: float) -> None:
        seq = next(self._seqs)
        timer._seq = seq
        timer._entry_when = when
        heapq.heappush(self.heap, (when, seq, timer))
        if self._dead >= _COMPACT_MIN_DEAD and self._dead * 2 > len(self.heap):
            self.heap[:] = [entry for entry in self.heap if entry[2]._seq == entry[1]]
            heapq.heapify(self.heap)
            self._dead = 0

    def next_due(self) -> float | None:
        """When the earliest armed timer is due; ``None`` if none is armed."""
        heap = self.heap
        while heap:
            when, seq, timer = heap[0]
            if timer._seq != seq:
                heapq.heappop(heap)
                self._dead -= 1
            elif timer._when is not None and timer._when > when:  # pushed back since
                timer._entry_when = timer._when
                heapq.heapreplace(heap, (timer._when, seq, timer))
            else:
                return when
        return None

    def wait_time(self, timeout: float | None) -> float | None:
        """``timeout`` (seconds, ``None``: no limit), shortened so that a wait
        of that long ends when the earliest timer is due."""
        due = self.next_due()
        if due is None:
            return timeout
        left = due - self.clock()
        if left <= 0:
            return 0
        if not self._moves:
            return timeout  # the clock cannot reach it during this wait
        return left if timeout is None else min(timeout, left)

    def fire(self, result: list[Any]) -> None:
        """Add ``(due, timer)`` to ``result`` for each timer now due, and
        run the actions of internal timers now due."""
        now = self.clock()
        heap = self.heap
        while heap and heap[0][0] <= now:
            when = self.next_due()
            if when is None or when > now:
                return
            _, _, timer = heapq.heappop(heap)
            interval = timer._interval
            if interval is None:
                timer._seq = -1
                timer._when = None
            else:
                # One report however far behind: the next time is the next
                # one on the schedule still ahead (as Twisted's LoopingCall
                # skips the calls it missed), not a burst to catch up.
                missed = math.floor((now - when) / interval)
                self._push(timer, when + (missed + 1) * interval)
                timer._when = timer._entry_when
            if timer._action is None:
                result.append((when, timer))
            else:
                timer._action(result)
