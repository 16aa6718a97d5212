"""Output that waits for its peer: the descriptors a poller watches for writing.

A channel's held output is sent at the end of the turn or at the next poll
(``Poller._send_held_output``); what the peer does not take then waits in
the channel, and the poller watches the channel's write descriptor until
it is all sent. :class:`WriteWatch` keeps those descriptors. A descriptor
that is read and written (a socket) is watched for both at once, so it
costs no second registration with the OS.

It also keeps the channels the poller writes for but no longer reads:
those whose end was reported (their peer may only have half-closed) and
those paused by ``pause_reading()``.
"""

from __future__ import annotations

import errno
import weakref
from typing import Any

from ._seam import PolledChannel
from ._watch import Watcher

__all__ = ["WriteWatch", "watch_or_refuse"]


def watch_or_refuse(watch: Watcher, fd: int, events: int, owner: object) -> None:
    """Watch ``fd`` for ``events`` on behalf of ``owner``; ``ValueError``
    naming it if the descriptor is not open or cannot be watched."""
    try:
        watch.register(fd, events)
    except (OSError, ValueError) as err:
        if isinstance(err, OSError) and err.errno == errno.EBADF:
            raise ValueError(f"{owner!r} cannot be registered: descriptor {fd} is not open") from err
        raise ValueError(f"{owner!r} cannot be registered: descriptor {fd} cannot be watched ({err})") from err


class WriteWatch:
    """The channels whose output waits for write readiness, by descriptor.

    ``reading`` is the poller's own map of read descriptors to channels:
    a channel read and written on one descriptor is watched for both.
    """

    def __init__(self, watch: Watcher, reading: dict[int, Any]) -> None:
        self._watch = watch
        self._reading = reading
        #: Watched write descriptor -> its channel.
        self.writing: dict[int, PolledChannel] = {}
        # Weakly held: a channel its owner drops is let go (unless output
        # still waits for its peer: ``writing`` holds it then).
        #: Channels written for but not read: ended or paused.
        self.kept: weakref.WeakSet[PolledChannel] = weakref.WeakSet()
        #: Among them, those paused by ``pause_reading()``.
        self.paused: weakref.WeakSet[PolledChannel] = weakref.WeakSet()

    def keep(self, channel: PolledChannel, poller: Any) -> None:
        """Go on sending ``channel``'s output for ``poller``, which no longer reads it."""
        channel._ch_poller = poller
        self.kept.add(channel)
        if channel.pending_output:
            self.add(channel)

    def pause(self, channel: PolledChannel, poller: Any) -> None:
        """:meth:`keep` ``channel``, paused by ``pause_reading()``."""
        self.keep(channel, poller)
        self.paused.add(channel)

    def let_go(self, channel: PolledChannel) -> bool:
        """Stop sending ``channel``'s output: it is on its own now. Whether
        it was paused (registered, as far as its owner knows)."""
        paused = channel in self.paused
        self.kept.discard(channel)
        self.paused.discard(channel)
        self.remove_all_of(channel)
        channel._ch_poller = None
        return paused

    def let_go_paused(self) -> list[PolledChannel]:
        """:meth:`let_go` every paused channel; they are returned."""
        paused = list(self.paused)
        for channel in paused:
            self.let_go(channel)
        return paused

    def release(self, channel: PolledChannel) -> None:
        """:meth:`let_go` ``channel``, which sends what it holds on its own from now on."""
        self.let_go(channel)
        channel._poll_flush()

    def release_all(self) -> None:
        """:meth:`release` every channel kept (their owners close them)."""
        for channel in list(self.kept):
            self.release(channel)

    def output_ended(self, channel: PolledChannel) -> None:
        """``channel`` shuts its write side down: stop watching it for writing,
        and let it go if it was kept for its output alone (its input ended)."""
        if channel in self.kept and channel not in self.paused:
            self.let_go(channel)
        else:
            self.remove_all_of(channel)

    def add(self, channel: PolledChannel) -> None:
        """Watch ``channel``'s write descriptor until its output is sent."""
        fd = channel._write_fd()
        if fd in self.writing:
            return
        self.writing[fd] = channel
        if self._reading.get(fd) is channel:
            self._watch.modify(fd, self._watch.READ | self._watch.WRITE)
        else:
            watch_or_refuse(self._watch, fd, self._watch.WRITE, channel)

    def remove(self, fd: int) -> None:
        """Stop watching ``fd`` for writing."""
        channel = self.writing.pop(fd)
        try:
            if self._reading.get(fd) is channel:
                self._watch.modify(fd, self._watch.READ)
            else:
                self._watch.unregister(fd)
        except (KeyError, ValueError, OSError):
            pass  # the descriptor is already gone

    def remove_all_of(self, channel: object) -> None:
        """Stop watching every write descriptor of ``channel``."""
        for fd, writer in list(self.writing.items()):
            if writer is channel:
                self.remove(fd)

    def on_writable(self, fd: int) -> None:
        """``fd`` can be written: send what its channel holds, and stop
        watching it once nothing is left."""
        channel = self.writing.get(fd)
        if channel is not None and channel._poll_flush() and self.writing.get(fd) is channel:
            self.remove(fd)  # (a failure that ended the channel has removed it already)
