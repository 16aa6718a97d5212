"""The same channels, awaited from asyncio: a child process and a socket.

``channels.aio`` waits on a channel through the running loop
(``loop.add_reader()`` / ``add_writer()``), so one program can use channels
from coroutines next to other asyncio code. Here a coroutine feeds lines to
``sort`` and reads its answer, and another serves one end of a socket pair
while the other end talks to it. Run: ``python examples/asyncio_echo.py``.
"""

from __future__ import annotations

import asyncio
import socket

from channels import Channel, ProcessChannel, SocketChannel
from channels.aio import aclose, alines, aread, awrite


async def sort_lines(lines: list[bytes]) -> list[bytes]:
    """Give ``lines`` to ``sort`` and return its answer."""
    child = ProcessChannel(["sort"], buffering="line")
    await awrite(child, *lines)  # waits until the child's pipe took them
    child.shutdown_write()  # nothing is pending: this does not wait
    answer = [line async for line in alines(child)]
    await aclose(child)
    return answer


async def echo(channel: Channel) -> None:
    """Answer every line with the same line, until the peer ends."""
    async for line in alines(channel):
        await awrite(channel, b"echo: " + line)
    await aclose(channel)


async def main() -> None:
    print(await sort_lines([b"pear\n", b"apple\n", b"fig\n"]))
    left, right = socket.socketpair()
    server = asyncio.create_task(echo(SocketChannel(left, buffering="line")))
    client = SocketChannel(right, buffering="line")
    await awrite(client, b"one\n", b"two\n")
    print(await aread(client), await aread(client))
    client.shutdown_write()  # the echo coroutine's alines() ends
    await server
    await aclose(client)


if __name__ == "__main__":
    asyncio.run(main())
