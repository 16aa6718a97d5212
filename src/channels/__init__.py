"""One non-blocking interface over pipes, sockets, child processes and terminals.

Write a protocol once against :class:`Channel`, run it over any descriptor,
multiplex many with :class:`~channels.poller.Poller`, and unit-test it with
:class:`~channels.testing.TestChannel`.
"""

import logging

from .address import connect, listen
from .base import DEFAULT_CLOSE_TIMEOUT, DEFAULT_MAX_PENDING, DEFAULT_READ_SIZE, Channel
from .errors import (
    ChannelError,
    EndpointClosedException,
    FrameTooLongError,
    FramingError,
    LineTooLongError,
    WriteBufferFullError,
)
from .lines import ChannelLike, LineChannel
from .pipe import PipeChannel
from .poller import Poller
from .process import ProcessChannel, close_processes
from .sockets import PeerCredentials, SocketChannel
from .splitter import DEFAULT_MAX_LINE_LENGTH, LineSplitter
from .terminal import PtyProcessChannel

__version__ = "0.4.0"

# A library says nothing unless the program asks: without a handler of its
# own, Python's last-resort handler would print our warnings (such as
# "closing dropped N bytes") on stderr of a program that set up no logging.
# The logging HOWTO's advice for libraries; configure logging to see them.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_MAX_LINE_LENGTH",
    "DEFAULT_MAX_PENDING",
    "DEFAULT_READ_SIZE",
    "Channel",
    "ChannelError",
    "ChannelLike",
    "EndpointClosedException",
    "FrameTooLongError",
    "FramingError",
    "LineChannel",
    "LineSplitter",
    "LineTooLongError",
    "PeerCredentials",
    "PipeChannel",
    "Poller",
    "ProcessChannel",
    "PtyProcessChannel",
    "SocketChannel",
    "WriteBufferFullError",
    "close_processes",
    "connect",
    "listen",
]
