"""What the parts of the base channel share, and what they know of one another.

:class:`~channels.base.Channel` is one class written in four modules: its
state, contract and hooks in ``channels.base``, and three parts it inherits
from, each a concern of its own (``channels._framed``: input framing;
``channels._waiting``: the waiting reads; ``channels._sending``: output).
The parts are the base channel itself, not users of it: they read and write
its ``_ch_*`` state, which no other module may.

At run time each part is a plain class with empty ``__slots__`` (a part with
a ``__dict__`` would give every channel one). To the type checker each part
derives from :class:`ChannelPart`, which declares the state and the methods
the parts use of one another and of the hooks; ``Channel`` is checked
against it like any subclass. What a user's subclass sees is unchanged.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .errors import EndpointClosedException

__all__ = ["DEFAULT_CLOSE_TIMEOUT", "LOG", "Part", "again"]

#: The logger of channels' own events (dropped output, overlong frames).
LOG = logging.getLogger("channels.channel")

#: Seconds ``close()`` waits for pending output to leave before dropping it.
DEFAULT_CLOSE_TIMEOUT = 5.0


def again(end: EndpointClosedException) -> EndpointClosedException:
    """A fresh exception like ``end`` (re-raising one instance grows its traceback)."""
    fresh = EndpointClosedException(*end.args)
    fresh.__cause__ = end.__cause__
    return fresh


if TYPE_CHECKING:
    from ._seam import ChannelPoller, PolledChannel, WaitedChannel
    from .framing import FrameDecoder, Framing
    from .outbuffer import OutputBuffer

    class ChannelPart(PolledChannel, WaitedChannel):
        """The base channel as its parts see it: its state (``Channel``'s
        ``__slots__``), its hooks, and what one part calls of another."""

        _ch_splitter: FrameDecoder | None
        _ch_framing: Framing | None
        _ch_out: OutputBuffer | None
        _ch_closed: bool | None
        _ch_eof: EndpointClosedException | None
        _ch_write_error: BaseException | None
        _ch_end_cause: BaseException | None
        _ch_poller: ChannelPoller | None
        _ch_poll_fd: int
        _ch_flush_queued: bool
        _ch_unread: bytes
        max_pending: int

        # The hooks (channels.base lists them).
        def _read(self) -> bytes: ...
        def _send(self, buffers: list[bytes | memoryview]) -> int: ...
        def _release(self) -> None: ...
        def _writable(self) -> bool: ...
        def _poll_flushed(self, done: bool) -> bool: ...
        def _end_cleanly(self) -> None: ...
        def _shutdown_write(self) -> None: ...

        # The turn and failures (channels.base).
        def _in_turn(self) -> bool: ...
        def _dropped_in_turn(self) -> bool: ...
        def _shut(self, clean: bool = True) -> None: ...

        # One part's, called by another.
        def _feed_frames(self, splitter: FrameDecoder, data: bytes) -> FrameDecoder: ...
        def _queue_read(self) -> None: ...

    Part = ChannelPart
else:
    Part = object
