"""Delivering what many channels hold at once: at ``close_all()`` and at exit.

``Poller.close_all(timeout)`` sends the pending output of all its channels
concurrently under one deadline, rather than one channel's linger after
another's, then closes them. Output held for a poll that never comes (the program exits after
its last write) would be lost: at exit, every live poller sends what its
channels hold and the peers take at once.
"""

from __future__ import annotations

import atexit
import logging
import select
import weakref
from typing import Any, Protocol

from ._foreign import is_native
from ._seam import PolledChannel
from ._wait import Deadline, wait_for_any
from .process import ProcessChannel, close_processes

__all__ = ["close_together", "flush_together", "send_at_exit"]

_LOG = logging.getLogger("channels.poller")


class _HoldsOutput(Protocol):
    def _send_held_output(self) -> None: ...

    def _deliver_lingering(self, timeout: float | None) -> None: ...


def close_together(channels: list[Any], timeout: float | None) -> None:
    """Close ``channels``, delivering their pending output concurrently
    within ``timeout``; what is left then is dropped (logged). Child
    processes end together too (:func:`~channels.process.close_processes`),
    within what is left of ``timeout``."""
    deadline = Deadline(timeout)
    flush_together([ch for ch in channels if is_native(ch)], timeout)
    children: list[ProcessChannel] = []
    for channel in channels:
        if is_native(channel) and channel.pending_output:
            _LOG.warning("%r: closing dropped %d pending bytes", channel, channel.pending_output)
            channel.abort()
        elif isinstance(channel, ProcessChannel):
            children.append(channel)  # ended together, below
        else:
            channel.close()
    close_processes(children, deadline.remaining())


def flush_together(channels: list[PolledChannel], timeout: float | None) -> None:
    """Send the pending output of all ``channels`` at once, within ``timeout``."""
    waiting = [ch for ch in channels if ch.pending_output and not ch._poll_flush()]
    deadline = Deadline(timeout)
    while waiting:
        if deadline.expired():
            return
        wait_for_any({channel._write_fd(): select.POLLOUT for channel in waiting}, deadline.remaining())
        waiting = [ch for ch in waiting if not ch._poll_flush()]


#: The pollers whose held output is sent at exit (see the module's docstring).
send_at_exit: weakref.WeakSet[_HoldsOutput] = weakref.WeakSet()


@atexit.register
def _send_held_output_at_exit() -> None:
    for poller in list(send_at_exit):
        poller._send_held_output()
    for poller in list(send_at_exit):
        poller._deliver_lingering(None)  # each channel within its own linger
