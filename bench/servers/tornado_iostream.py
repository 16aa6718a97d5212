"""Tornado's TCPServer, as in its documentation: read_until, write."""

from __future__ import annotations

import asyncio
import socket

from tornado.iostream import IOStream, StreamClosedError
from tornado.tcpserver import TCPServer


class EchoServer(TCPServer):
    async def handle_stream(self, stream: IOStream, address: tuple[str, int]) -> None:
        try:
            while True:
                line = await stream.read_until(b"\n")
                await stream.write(line)
        except StreamClosedError:
            pass


async def _main(listener: socket.socket, seconds: float) -> None:
    server = EchoServer()
    server.add_socket(listener)
    try:
        await asyncio.sleep(seconds)
    finally:
        server.stop()


def serve(listener: socket.socket, seconds: float) -> None:
    asyncio.run(_main(listener, seconds))
