"""Channels the poller cannot drive through the seam, adapted once at ``register()``.

The :class:`~channels.poller.Poller` reads a channel of this package
through the seam (``channels._seam``): ``_poll_read`` appends its entries to
the poll's result. Two other kinds of channel reach ``register()``, and
programs written for the original library depend on both:

* subclasses in the original's styles, which define ``read()`` (and often
  ``close()`` and ``get_fd()``) of their own: the seam's ``_poll_read``
  would bypass their ``read()``;
* objects that are not :class:`~channels.base.Channel` at all but look like
  one (``read``, ``get_fd``), from other packages.

:func:`poll_reader` gives the poller one callable per registered channel,
with the seam's contract: append ``(data, channel)`` entries, return whether
the channel has ended. For a channel of ours it is the channel's own
``_poll_read``; for the others, a :class:`ForeignReader`. Dispatch then
sees one kind and asks nothing per poll.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any, TypeGuard

from ._seam import PolledChannel
from .base import Channel
from .errors import EndpointClosedException, FrameTooLongError
from .framing import Framing

__all__ = ["ForeignReader", "PollRead", "is_native", "poll_reader", "still_on"]

_LOG = logging.getLogger("channels.poller")

_NATIVE_READ = Channel.read

# Lines taken from a foreign (read()-overriding) line channel per poll; the
# rest waits for the next poll, which then does not block.
_FOREIGN_LINE_BATCH = 1024

#: What dispatch calls for a ready channel: append its entries to the
#: poll's result, return whether it has ended.
PollRead = Callable[[list[Any]], bool]


def is_native(channel: object) -> TypeGuard[PolledChannel]:
    """Whether the poller drives ``channel`` through the seam (``channels._seam``)."""
    return isinstance(channel, Channel)


def poll_reader(channel: Any, hold_input: Callable[[Any], None]) -> PollRead:
    """The one callable that reads ``channel`` for a poll.

    ``hold_input(channel)`` asks the poller to read it again on the next
    poll without waiting (a foreign line channel that had more lines than
    one poll takes).
    """
    if type(channel).read is _NATIVE_READ:
        read: PollRead = channel._poll_read
        return read
    return ForeignReader(channel, hold_input)


def still_on(channel: Any, fd: int) -> bool:
    """Whether ``channel`` is still open on ``fd``: asked when another
    channel is registered on that number, which a channel that closes in its
    own way (as the original library's subclasses do) leaves behind."""
    if getattr(channel, "closed", False) is True:  # the original's subclasses say so themselves
        return False
    try:
        return bool(channel.get_fd() == fd)
    except Exception:
        return False


class ForeignReader:
    """Reads a channel that overrides ``read()`` through ``read()`` itself.

    Called like ``_poll_read``: appends ``(data, channel)`` entries to the
    poll's result and returns whether the channel has ended.
    """

    __slots__ = ("channel", "_hold_input")

    def __init__(self, channel: Any, hold_input: Callable[[Any], None]) -> None:
        self.channel = channel
        # Weakly: the poller holds this adapter, and a poller dropped without
        # close() must be freed at once, descriptors included (no cycle).
        self._hold_input = weakref.WeakMethod(hold_input)

    def __call__(self, result: list[Any]) -> bool:
        """Read once (a batch of lines in line mode); ``True`` at the end."""
        channel = self.channel
        try:
            buffering = getattr(channel, "buffering", "bytes")
            if buffering != "line" and not isinstance(buffering, Framing):
                data = channel.read()
                if data:
                    result.append((data, channel))
                return False
            for _ in range(_FOREIGN_LINE_BATCH):
                try:
                    data = channel.read()
                except FrameTooLongError as err:
                    _LOG.warning("%r: %s", channel, err)
                    continue
                if not data:
                    return False
                result.append((data, channel))
            hold_input = self._hold_input()
            if hold_input is not None:
                hold_input(channel)
            return False
        except EndpointClosedException:
            result.append((b"", channel))
            return True
