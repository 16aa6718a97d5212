"""Channels closed in a poller's turn, delivering what they hold in the background.

``close()`` made while the program iterates over a ``poll()`` result never
waits for the peer (see ``channels._seam``): the channel hands what its
peer has not taken to its poller, which keeps it here. Later polls send it
as the peer takes it; once it is all out, or the linger the ``close()`` was
given has passed, the descriptors are released. ``Poller.close_all()`` and
the program's exit wait for what is left, each channel within its own
linger.

The policy, and the alternatives: Twisted's ``loseConnection()`` and
asyncio's ``transport.close()`` likewise return at once and send what is
buffered as the peer takes it, but with no limit at all, so a peer that
never reads holds the descriptor forever; Tornado's ``close()`` drops what
is pending. Waiting for it, as ``close()`` outside a turn does, would stop
every other client for as long as the linger. So we send it as the peer
takes it, and drop what is left once the linger has passed (with a
warning, as ``close()`` does).
"""

from __future__ import annotations

import contextlib
import math
import select
import time

from ._seam import PolledChannel
from ._wait import Deadline, wait_for_any
from ._watch import Watcher

__all__ = ["Lingering"]


class Lingering:
    """The channels closed in a turn whose output is still being delivered."""

    def __init__(self, watch: Watcher) -> None:
        self._watch = watch
        #: Write descriptor -> (channel, ``time.monotonic()`` its linger ends).
        self.closing: dict[int, tuple[PolledChannel, float]] = {}

    def add(self, channel: PolledChannel, timeout: float | None) -> None:
        """Deliver what ``channel`` holds within ``timeout`` seconds (``None``:
        no limit), then release it. The poller has forgotten it already."""
        fd = channel._write_fd()
        self.closing[fd] = (channel, math.inf if timeout is None else time.monotonic() + timeout)
        # Not watchable: nothing tells when the peer takes more, so the
        # linger's end (or the exit) is all that is left to wait for.
        with contextlib.suppress(OSError, ValueError):
            self._watch.register(fd, self._watch.WRITE)

    def wait_time(self, timeout: float | None) -> float | None:
        """``timeout``, shortened so that a poll wakes when a linger ends."""
        ends = min(deadline for _, deadline in self.closing.values())
        if ends == math.inf:
            return timeout
        wait = max(0.0, ends - time.monotonic())
        return wait if timeout is None else min(timeout, wait)

    def on_writable(self, fd: int) -> None:
        """``fd`` can take more: send it, and release its channel once all is out."""
        if self.closing[fd][0]._poll_linger():
            self.release(fd)

    def release_due(self) -> None:
        """Release the channels whose linger has passed, dropping what is left."""
        now = time.monotonic()
        for fd, (_, deadline) in list(self.closing.items()):
            if deadline <= now:
                self.release(fd)

    def release(self, fd: int) -> None:
        """Stop watching ``fd`` and release its channel's descriptors."""
        channel, _ = self.closing.pop(fd)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._watch.unregister(fd)
        channel._poll_release()

    def deliver(self, timeout: float | None) -> None:
        """Wait until every channel has delivered its output, within its own
        linger and ``timeout`` seconds in all, releasing each as it is done."""
        until = Deadline(timeout)
        while self.closing:
            now = time.monotonic()
            for fd, (channel, deadline) in list(self.closing.items()):
                if deadline <= now or until.expired() or channel._poll_linger():
                    self.release(fd)
            if not self.closing:
                return
            # Until a peer takes more, or the first linger (or ``timeout``) ends.
            wait_for_any(dict.fromkeys(self.closing, select.POLLOUT), self.wait_time(until.remaining()))
