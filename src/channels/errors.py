"""The exceptions raised by channels.

Every error that comes from the state of a channel or its peer derives from
:class:`ChannelError`, so one ``except ChannelError`` catches them all. Bad
arguments raise the usual ``TypeError`` and ``ValueError`` instead.
"""

from __future__ import annotations

__all__ = [
    "ChannelError",
    "EndpointClosedException",
    "FrameTooLongError",
    "FramingError",
    "LineTooLongError",
    "WriteBufferFullError",
]


class ChannelError(Exception):
    """Base class of every error about a channel's state or its peer."""


class EndpointClosedException(ChannelError):
    """The channel cannot be used in this direction any more.

    Raised by ``read()`` once everything that arrived before the end has been
    returned, by ``write()`` when the peer is gone, and by both after
    ``close()``. When the end was caused by an OS error (a peer reset, a
    broken pipe) that error is chained as ``__cause__``.
    """


class FrameTooLongError(ChannelError):
    """A frame longer than its framing's ``max_length`` arrived.

    The frame is discarded as it arrives, not buffered: the next ``read()``
    goes on with the frame after it. See :mod:`channels.framing`.
    """


class LineTooLongError(FrameTooLongError):
    """A line longer than the channel's ``max_line_length`` arrived.

    The line is discarded, not buffered: the next ``read()`` goes on with the
    line after it. The line case of :class:`FrameTooLongError`.
    """


class FramingError(ChannelError):
    """The input cannot be cut into frames: it is malformed (a netstring
    without its comma, say), or it ended inside a length-prefixed frame.

    Where the next frame would begin is unknown, so the channel ends: this
    error is the ``__cause__`` of the :class:`EndpointClosedException` that
    ``read()`` raises after the frames that came before the fault.
    """

    #: The bytes of the unfinished frame, when the input ended inside one.
    partial: bytes = b""


class WriteBufferFullError(ChannelError):
    """``write()`` would take the pending output past ``max_pending``.

    Nothing of the refused call is queued, so the stream never holds half a
    message. The peer is not reading fast enough: wait with ``flush()``, or
    drop the peer.
    """
