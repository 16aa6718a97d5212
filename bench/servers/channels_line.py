"""io-channels, written the way a user would: a line poller, one write per line."""

from __future__ import annotations

import socket
import time

from channels import Poller


def serve(listener: socket.socket, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    with Poller(buffering="line") as poller:
        poller.add_server(listener)
        while time.monotonic() < deadline:
            for line, ch in poller.poll(1.0):
                if isinstance(line, tuple):
                    continue  # a new client, already registered
                if line:
                    ch.write(line)
                else:
                    ch.close()  # the client is gone; the poller has forgotten it
