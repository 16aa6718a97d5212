"""io-channels in bytes mode: echo each chunk as it comes (no line framing)."""

from __future__ import annotations

import socket
import time

from channels import Poller


def serve(listener: socket.socket, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    with Poller() as poller:
        poller.add_server(listener)
        while time.monotonic() < deadline:
            for data, ch in poller.poll(1.0):
                if isinstance(data, tuple):
                    continue
                if data:
                    ch.write(data)
                else:
                    ch.close()
