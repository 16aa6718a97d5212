"""The asyncio Protocol server on uvloop's event loop."""

from __future__ import annotations

import socket

import uvloop

from . import asyncio_protocol


def serve(listener: socket.socket, seconds: float) -> None:
    asyncio_protocol.serve(listener, seconds, uvloop.new_event_loop)
