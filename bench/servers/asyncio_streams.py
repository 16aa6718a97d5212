"""asyncio streams, as in the asyncio documentation: readline, write, drain."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def _main(listener: socket.socket, seconds: float) -> None:
    server = await asyncio.start_server(_handle, sock=listener)
    async with server:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.serve_forever(), seconds)


def serve(
    listener: socket.socket, seconds: float, loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
) -> None:
    loop = loop_factory() if loop_factory else asyncio.new_event_loop()
    try:
        loop.run_until_complete(_main(listener, seconds))
    finally:
        loop.close()
