"""One non-blocking interface over pipes, sockets, child processes and terminals.

Write a protocol once against :class:`Channel`, run it over any descriptor,
multiplex many with :class:`~channels.poller.Poller`, and unit-test it with
:class:`~channels.testing.TestChannel`.
"""

from .address import connect, listen
from .base import DEFAULT_CLOSE_TIMEOUT, DEFAULT_MAX_PENDING, DEFAULT_READ_SIZE, Channel
from .errors import ChannelError, EndpointClosedException, LineTooLongError, WriteBufferFullError
from .lines import ChannelLike, LineChannel
from .pipe import PipeChannel
from .poller import Poller
from .process import ProcessChannel
from .sockets import PeerCredentials, SocketChannel
from .splitter import DEFAULT_MAX_LINE_LENGTH, LineSplitter
from .terminal import PtyProcessChannel

__version__ = "0.3.0"

__all__ = [
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_MAX_LINE_LENGTH",
    "DEFAULT_MAX_PENDING",
    "DEFAULT_READ_SIZE",
    "Channel",
    "ChannelError",
    "ChannelLike",
    "EndpointClosedException",
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
    "connect",
    "listen",
]
