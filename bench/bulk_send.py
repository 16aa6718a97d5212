"""Send SIZE bytes as fast as blocking calls go, then end the stream.

    python bench/bulk_send.py (--port P | --fd N) --size BYTES [--cpu C]

To 127.0.0.1:P over TCP, or into the pipe write end N.
"""

from __future__ import annotations

import argparse
import os
import socket
import time

from common import pin

CHUNK = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--port", type=int)
    target.add_argument("--fd", type=int)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--cpu", type=int, default=None)
    args = parser.parse_args()
    pin(args.cpu)
    block = memoryview(bytes(range(256)) * (CHUNK // 256))
    left = args.size
    if args.port is not None:
        sock = socket.create_connection(("127.0.0.1", args.port), timeout=60)
        with sock:
            while left > 0:
                piece = block[: min(CHUNK, left)]
                sock.sendall(piece)
                left -= len(piece)
            sock.shutdown(socket.SHUT_WR)
            # Wait for the receiver to close, so that no byte is lost in flight.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and sock.recv(1):
                pass
        return
    fd = args.fd
    os.set_blocking(fd, True)
    try:
        while left > 0:
            piece = block[: min(CHUNK, left)]
            while piece:
                piece = piece[os.write(fd, piece) :]
            left -= min(CHUNK, left)
    finally:
        os.close(fd)


if __name__ == "__main__":
    main()
