"""The asyncio streams server on uvloop's event loop."""

from __future__ import annotations

import socket

import uvloop

from . import asyncio_streams


def serve(listener: socket.socket, seconds: float) -> None:
    asyncio_streams.serve(listener, seconds, uvloop.new_event_loop)
