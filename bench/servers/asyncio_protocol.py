"""An asyncio Protocol that splits lines itself and writes each one."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable


class LineEcho(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.BaseTransport | None = None  # uvloop's is no asyncio.Transport
        self.rest = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.rest:
            data = self.rest + data
        end = data.rfind(b"\n") + 1
        self.rest = data[end:]
        write = self.transport.write  # type: ignore[union-attr]
        for line in data[:end].splitlines(keepends=True):
            write(line)


async def _main(listener: socket.socket, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(LineEcho, sock=listener)
    async with server:
        await asyncio.sleep(seconds)


def serve(
    listener: socket.socket, seconds: float, loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
) -> None:
    loop = loop_factory() if loop_factory else asyncio.new_event_loop()
    try:
        loop.run_until_complete(_main(listener, seconds))
    finally:
        loop.close()
