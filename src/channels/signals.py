"""Signals as poll entries: ``Poller.watch_signals()`` and :class:`SignalSource`.

``signals = poller.watch_signals(signal.SIGTERM, signal.SIGHUP)`` installs a
handler for each signal; a signal delivered then wakes a waiting ``poll()``,
which returns ``(signum, signals)`` among its entries. ``signals.close()``
puts back the handlers that were there.

How the signal reaches the poll. The interpreter runs Python signal handlers
in the main thread, between bytecodes, some time after the signal arrived; a
handler that only records the signal can run after a poll that the signal
interrupted has already looked, or a signal can arrive just before the poll
starts to wait and not end that wait at all. :func:`signal.set_wakeup_fd`
closes both gaps: the interpreter's C-level handler writes the signal's
number to a descriptor at once, and the poller watches that descriptor (its
wake-up socket, shared with ``wakeup()``). The byte is the record: a poll
reports the signals whose numbers it drained, so a signal is reported by the
poll it wakes, never by a later one as well. The Python handler installed
does nothing; it only keeps the signal from its default action (ending the
process, for SIGTERM and SIGHUP). Alternatives: Linux's signalfd needs the
signal blocked in every thread, which Python cannot do for threads it did
not start; a self-pipe written by a Python handler has the first gap above.
Like asyncio's ``add_signal_handler`` and trio's ``open_signal_receiver``,
which do the same, a signal delivered several times before a poll is
reported once by it (standard signals are not queued by the system either).

Rules, from Python's: handlers can be installed and restored only in the
main thread, so :meth:`Poller.watch_signals` and :meth:`SignalSource.close`
raise ``ValueError`` elsewhere (the poll itself may run in any thread). The
wake-up descriptor is one per process: while a poller watches signals, no
other poller can (``ValueError``), and the descriptor that was set before
(asyncio's, for one) is set back when its last source is closed.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable
from types import FrameType, TracebackType
from typing import Any

from ._wake import Waker

__all__ = ["SignalSource"]

#: The signals watched now, and by which source (of one waker only).
_sources: dict[int, SignalSource] = {}


class _WakeupFd:
    """The process's wake-up descriptor, while a waker holds it."""

    #: The waker whose socket is the process's wake-up descriptor now.
    owner: Waker | None = None
    #: The wake-up descriptor that was set before ours, to set back.
    previous = -1


_wakeup_fd = _WakeupFd()


class SignalSource:
    """Signals watched by a :class:`~channels.poller.Poller` (made by its
    ``watch_signals()``): each one delivered is reported by ``poll()`` as
    ``(signum, source)``, ``signum`` a :class:`signal.Signals`.

    A context manager: leaving the block closes it.
    """

    def __init__(self, waker: Waker, signums: frozenset[signal.Signals]) -> None:
        self._waker = waker
        self._signals = signums
        self._previous: dict[signal.Signals, Any] = {}
        self._closed = False

    @property
    def signals(self) -> frozenset[signal.Signals]:
        """The signals this source watches."""
        return self._signals

    @property
    def closed(self) -> bool:
        """Whether it was closed (its signals' handlers put back)."""
        return self._closed

    def close(self) -> None:
        """Stop watching: put back the handlers that were there before.

        ``ValueError`` outside the main thread (Python restores handlers
        there only). Closing again does nothing.
        """
        if self._closed:
            return
        _check_main_thread("SignalSource.close()")
        self._closed = True
        for signum, handler in self._previous.items():
            # None: a handler set from C, which Python cannot set back.
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
            _sources.pop(signum, None)
        self._previous.clear()
        _let_go_of_wakeup_fd(self._waker)

    def __enter__(self) -> SignalSource:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        names = ", ".join(sorted(signum.name for signum in self._signals))
        return f"<SignalSource {names}{' closed' if self._closed else ''}>"

    def _install(self) -> None:
        """Install the do-nothing handlers; all of them, or none (raising)."""
        try:
            for signum in sorted(self._signals):
                self._previous[signum] = signal.signal(signum, _noted)
                _sources[signum] = self
        except BaseException:
            self._closed = False
            self.close()
            raise


def watch(waker: Waker, signums: Iterable[object]) -> SignalSource:
    """Watch ``signums`` with a new source whose signals ``waker`` receives."""
    _check_main_thread("watch_signals()")
    wanted = frozenset(_check_signal(signum) for signum in signums)
    if not wanted:
        raise ValueError("watch_signals() needs at least one signal")
    if _wakeup_fd.owner is not None and _wakeup_fd.owner is not waker:
        raise ValueError("another Poller watches signals already (one per process): close its sources first")
    for signum in wanted:
        if signum in _sources:
            raise ValueError(f"{signum.name} is watched already, by {_sources[signum]!r}: close that first")
    _take_wakeup_fd(waker)
    source = SignalSource(waker, wanted)
    try:
        source._install()
    except OSError as err:  # SIGKILL and SIGSTOP, and whatever else this system forbids
        raise ValueError(f"these signals cannot be caught: {err}") from err
    return source


def report(waker: Waker, data: bytes, result: list[Any]) -> None:
    """Add ``(signum, source)`` to ``result`` once for each watched signal
    whose number ``data``, drained from ``waker``, holds."""
    if waker is not _wakeup_fd.owner or not data.strip(b"\0"):
        return  # no signal is watched, or only wakeup() woke the poll
    for signum in dict.fromkeys(data):  # each once, in the order they came
        source = _sources.get(signum)
        if source is not None:
            result.append((signal.Signals(signum), source))


def close_sources_of(waker: Waker) -> None:
    """Close every source whose signals ``waker`` receives."""
    for source in list(_sources.values()):
        if source._waker is waker:
            source.close()


def _take_wakeup_fd(waker: Waker) -> None:
    if _wakeup_fd.owner is None:
        _wakeup_fd.previous = signal.set_wakeup_fd(waker.send_fd, warn_on_full_buffer=False)
        _wakeup_fd.owner = waker


def _let_go_of_wakeup_fd(waker: Waker) -> None:
    """Set the wake-up descriptor back once ``waker``'s last source is closed."""
    if _wakeup_fd.owner is not waker or any(source._waker is waker for source in _sources.values()):
        return
    current = signal.set_wakeup_fd(_wakeup_fd.previous)
    if current != waker.send_fd:  # someone set theirs meanwhile: leave it
        signal.set_wakeup_fd(current)
    _wakeup_fd.owner = None


def _check_signal(signum: object) -> signal.Signals:
    if isinstance(signum, bool) or not isinstance(signum, int):
        raise TypeError(f"watch_signals() takes signal numbers, not {type(signum).__name__}")
    try:
        return signal.Signals(signum)
    except ValueError:
        raise ValueError(f"watch_signals(): {signum} is not a signal number on this system") from None


def _check_main_thread(what: str) -> None:
    if threading.current_thread() is not threading.main_thread():
        raise ValueError(f"{what} works in the main thread only: Python installs signal handlers there")


def _noted(signum: int, frame: FrameType | None) -> None:
    """The handler installed: the signal was written to the wake-up socket
    already (by the interpreter's C-level handler); nothing is left to do."""
