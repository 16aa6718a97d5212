"""The base channel's waiting reads: ``receive()`` and ``expect()``.

A part of :class:`~channels.base.Channel` (see ``channels._parts``), not a
user of it: :class:`WaitingReads` reads and writes the base's ``_ch_*``
state. For code that awaits an answer without a poll loop: both sleep in
the kernel through ``channels._wait`` (never spinning), send pending output
meanwhile, and leave what arrived readable when they give up.
"""

from __future__ import annotations

import contextlib
import re
import select
from collections.abc import Callable

from . import _check
from ._parts import Part
from ._wait import Deadline, wait_for_any
from .errors import EndpointClosedException, FramingError

__all__ = ["WaitingReads"]


class WaitingReads(Part):
    """The base channel's waiting reads (a part of :class:`~channels.base.Channel`)."""

    __slots__ = ()

    def receive(self, timeout: float | None = None) -> bytes:
        """Wait at most ``timeout`` seconds for input, and return it: the
        next line in line mode, the bytes available in bytes mode.

        For code that awaits an answer without a poll loop: ``read()`` stays
        non-blocking. ``None`` waits as long as it takes, ``0`` does not
        wait. Output still pending is sent while waiting (the peer may need
        it before it answers), and the wait sleeps in the kernel, never
        spinning. Raises ``TimeoutError`` if nothing came in time (nothing
        is consumed then), :class:`EndpointClosedException` at the end once
        everything before it was returned, as :meth:`read` does, and
        ``TypeError`` or ``ValueError`` for a timeout that is not a number
        of seconds >= 0 (``float('inf')``, like ``None``, is no limit).
        """
        deadline = Deadline(_check.timeout(timeout))
        while True:
            data = self.read()
            if data:
                return data
            self._await_input(deadline, timeout)

    def expect(self, pattern: bytes | re.Pattern[bytes], timeout: float | None = None) -> bytes:
        """Wait at most ``timeout`` seconds until the input matches
        ``pattern``, and return it up to and including the match.

        ``pattern`` is a bytes string, found as it is, or a compiled regular
        expression over bytes, searched for (``re.search``) in what arrived
        since the last read. What came after the match is kept: the next
        ``read()``, ``receive()`` or ``expect()`` starts with it (in line
        mode, as lines). The wait is :meth:`receive`'s: pending output is
        sent meanwhile, nothing spins. Raises ``TimeoutError`` when time runs
        out, and :class:`EndpointClosedException` when the input ends
        without a match; either way nothing is consumed, and what arrived
        stays readable. ``TypeError`` for a pattern that is neither bytes nor
        a bytes regular expression; ``TypeError`` or ``ValueError`` for a
        timeout as :meth:`receive` says.
        """
        search = _searcher(pattern)
        deadline = Deadline(_check.timeout(timeout))
        if self._ch_flush_queued:
            self._poll_flush()  # a reply is about to be awaited
        seen = bytearray(self._take_unread())
        checked = 0  # where a match can still begin, for a bytes pattern
        while True:
            match_end = search(seen, checked)
            if match_end >= 0:
                self._put_back(bytes(seen[match_end:]))
                return bytes(seen[:match_end])
            checked = max(0, len(seen) - len(pattern) + 1) if isinstance(pattern, bytes) else 0
            try:
                data = b"" if self._ch_eof is not None else self._read()
            except EndpointClosedException as ended:
                self._ch_eof = ended
                data = b""
            if data:
                seen += data
                continue
            if self._ch_eof is not None:
                self._put_back(bytes(seen))
                raise EndpointClosedException(
                    f"{self!r}: the input ended before {_shown(pattern)} arrived{_kept(seen)}"
                ) from self._ch_eof
            try:
                self._await_input(deadline, timeout)
            except TimeoutError as late:
                self._put_back(bytes(seen))
                raise TimeoutError(
                    f"{self!r}: {_shown(pattern)} did not arrive within {timeout}s{_kept(seen)}"
                ) from late

    def _take_unread(self) -> bytes:
        """Take every byte received but not yet read, in order."""
        unread, self._ch_unread = self._ch_unread, b""
        splitter = self._ch_splitter
        if splitter is None or (not splitter.has_frame() and not splitter.buffered):
            return unread
        frames, _dropped = splitter.take_frames()
        try:
            rest = splitter.finish()
        except FramingError as err:  # a frame in progress: its bytes as they came
            rest = err.partial
        return b"".join([*frames, rest, unread])

    def _put_back(self, data: bytes) -> None:
        """Make ``data`` the next bytes read (all taken by _take_unread first)."""
        if not data:
            return
        splitter = self._ch_splitter
        if splitter is None:
            self._ch_unread = data
        else:
            self._feed_frames(splitter, data)
        if self._ch_poller is not None and self._ch_poll_fd >= 0:
            self._ch_poller._hold_input(self)  # in memory, where poll() cannot see it

    def _await_input(self, deadline: Deadline, timeout: float | None) -> None:
        """Sleep until the channel may be readable, sending pending output
        meanwhile; ``TimeoutError`` once ``deadline`` has passed."""
        while True:
            sending = self.pending_output > 0 and self._poll_can_write()
            if sending:
                with contextlib.suppress(EndpointClosedException):  # read() will tell of the end
                    sending = not self._flush_pending()
            if deadline.expired():
                raise TimeoutError(f"{self!r}: nothing arrived within {timeout}s")
            in_fd, in_events = self._input_wait()
            waits = {in_fd: in_events}
            if sending:
                out_fd, out_events = self._output_wait()
                waits[out_fd] = waits.get(out_fd, 0) | out_events
            ready = wait_for_any(waits, deadline.remaining())
            if any(fd == in_fd and events & (in_events | select.POLLHUP | select.POLLERR) for fd, events in ready):
                return


def _searcher(pattern: object) -> Callable[[bytearray, int], int]:
    """How expect() looks for ``pattern`` in what arrived, from a start
    offset: the end of the first match, or -1."""
    if isinstance(pattern, bytes):
        if not pattern:
            raise ValueError("expect() needs a non-empty pattern: b'' matches before anything arrives")

        def find(seen: bytearray, start: int) -> int:
            at = seen.find(pattern, start)
            return at if at < 0 else at + len(pattern)

        return find
    if isinstance(pattern, re.Pattern) and isinstance(pattern.pattern, bytes):
        compiled: re.Pattern[bytes] = pattern

        def search(seen: bytearray, start: int) -> int:
            # A match may begin before ``start`` and end past it: search all
            # that arrived again, as pexpect does without a search window.
            match = compiled.search(seen)
            return -1 if match is None else match.end()

        return search
    if isinstance(pattern, (str, re.Pattern)):
        raise TypeError(f"expect() takes bytes or a compiled bytes pattern, not text ({pattern!r}): encode it")
    raise TypeError(
        f"expect() takes bytes or a compiled bytes pattern (re.compile(rb'...')), not {type(pattern).__name__}"
    )


def _shown(pattern: bytes | re.Pattern[bytes]) -> str:
    return repr(pattern if isinstance(pattern, bytes) else pattern.pattern)


def _kept(seen: bytearray) -> str:
    return f"; the {len(seen)} bytes that did are kept for read()" if seen else ""
