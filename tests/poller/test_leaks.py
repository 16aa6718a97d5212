"""The Poller: descriptor leaks.

Everything here runs over real descriptors: TestChannel pipes, socketpairs,
TCP on 127.0.0.1 and Unix sockets under ``tmp_path``. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import gc
import socket
import time

from channels import (
    Channel,
    SocketChannel,
)
from channels.poller import Poller
from tests.helpers import WAIT, open_fd_count
from tests.poller.support import (
    tcp_server,
)


def test_connect_exchange_close_cycles_leak_no_descriptors(line_poller: Poller, stack: contextlib.ExitStack) -> None:
    server = tcp_server(stack, backlog=128)
    line_poller.add_server(server)
    address = server.getsockname()
    line_poller.poll(0)
    gc.collect()
    start = open_fd_count()

    for _ in range(2000):
        # The client lives in the same loop, so every step wakes the poll.
        client = SocketChannel(socket.create_connection(address, timeout=WAIT), buffering="line")
        stack.callback(client.close)
        line_poller.register(client)
        client.write(b"ping\n")
        served: list[Channel] = []
        replies: list[bytes] = []
        deadline = time.monotonic() + WAIT
        while not (served and replies and replies[-1] == b""):
            assert time.monotonic() < deadline, f"cycle stalled: replies={replies} served={served}"
            for data, channel in line_poller.poll(1.0):
                if isinstance(channel, socket.socket):
                    continue
                if channel is client:
                    assert isinstance(data, bytes)
                    replies.append(data)
                    if data:
                        client.close()  # reported (b'', client) on the next poll
                elif data:
                    channel.write(b"pong\n")
                else:
                    channel.close()
                    served.append(channel)
        assert replies == [b"pong\n", b""]
        assert len(served) == 1

    assert len(line_poller) == 0
    gc.collect()
    assert open_fd_count() == start
