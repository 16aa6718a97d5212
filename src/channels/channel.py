"""The original library's module path, kept for the programs that import from it.

Code written for the original ``channels`` imports ``from channels.channel
import SocketChannel`` (and ``Channel``, ``PipeChannel``, ``LineChannel``,
``EndpointClosedException``): those names, and everything
:mod:`channels.base` offers, are importable from here. New code imports them
from :mod:`channels`.
"""

from .base import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_MAX_PENDING,
    DEFAULT_READ_SIZE,
    Buffer,
    Buffering,
    Channel,
)
from .errors import EndpointClosedException
from .lines import LineChannel
from .pipe import PipeChannel
from .sockets import SocketChannel

__all__ = [
    "Buffer",
    "Buffering",
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_MAX_PENDING",
    "DEFAULT_READ_SIZE",
    "Channel",
    "EndpointClosedException",
    "LineChannel",
    "PipeChannel",
    "SocketChannel",
]
