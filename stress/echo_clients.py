"""Many echo clients in one process, on raw non-blocking sockets and one
selector: each sends its numbered lines and checks they all come back, once
each and in order. Prints ``lost duplicated reordered seconds`` on one line."""

from __future__ import annotations

import selectors
import socket
import sys
import time
from collections import Counter

CHUNK = 64 * 1024


class Client:
    def __init__(self, sock: socket.socket, number: int, lines: int) -> None:
        self.sock = sock
        self.expected = b"".join(b"%d %d\n" % (number, k) for k in range(lines))
        self.out = memoryview(self.expected)
        self.received = bytearray()

    def verdict(self) -> tuple[int, int, int]:
        """(lost, duplicated, reordered) lines."""
        if self.received == self.expected:
            return 0, 0, 0
        sent = self.expected.splitlines()
        got = bytes(self.received).splitlines()
        counts = Counter(got)
        lost = sum(1 for line in sent if line not in counts)
        duplicated = sum(count - 1 for count in counts.values() if count > 1)
        kept = [line for line in got if line in set(sent)]
        reordered = sum(1 for a, b in zip(kept, sorted(kept, key=sent.index), strict=False) if a != b)
        return lost, duplicated, reordered


def run(port: int, clients: int, lines: int, timeout: float) -> tuple[int, int, int, float]:
    selector = selectors.DefaultSelector()
    started = time.monotonic()
    pending: dict[int, Client] = {}
    for number in range(clients):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        client = Client(sock, number, lines)
        pending[sock.fileno()] = client
        selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)
    done: list[Client] = []
    deadline = started + timeout
    while pending and time.monotonic() < deadline:
        for key, events in selector.select(1.0):
            client = key.data
            if events & selectors.EVENT_WRITE and client.out:
                with_room = client.sock.send(client.out[:CHUNK])
                client.out = client.out[with_room:]
                if not client.out:
                    selector.modify(client.sock, selectors.EVENT_READ, client)
            if events & selectors.EVENT_READ:
                data = client.sock.recv(CHUNK)
                client.received += data
                if not data or len(client.received) >= len(client.expected):
                    selector.unregister(client.sock)
                    del pending[client.sock.fileno()]
                    client.sock.close()
                    done.append(client)
    elapsed = time.monotonic() - started
    lost = duplicated = reordered = 0
    for client in done:
        verdict = client.verdict()
        lost, duplicated, reordered = lost + verdict[0], duplicated + verdict[1], reordered + verdict[2]
    lost += lines * len(pending)  # clients that never finished
    for client in pending.values():
        client.sock.close()
    return lost, duplicated, reordered, elapsed


def main() -> None:
    port, clients, lines, timeout = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    lost, duplicated, reordered, elapsed = run(port, clients, lines, timeout)
    print(f"{lost} {duplicated} {reordered} {elapsed:.3f}")


if __name__ == "__main__":
    main()
