"""A proxy with backpressure: it stops reading a fast sender while the
receiver behind it is slow, so its memory stays bounded.

A client sends 8 MiB through the proxy to a slow upstream (a child process
that reads 64 KiB at a time and sleeps in between). The proxy writes what it
reads from the client to the upstream; while more than ``HIGH_WATER`` bytes
wait to be taken by the upstream it pauses reading the client
(``Poller.pause_reading``), and resumes once they have gone. The output
still goes out while reading is paused. Run: ``python examples/proxy.py``.
"""

from __future__ import annotations

import sys

from channels import Channel, ProcessChannel, connect, listen
from channels.poller import Poller

#: Pause reading the client while this much waits for the upstream.
HIGH_WATER = 256 * 1024
TOTAL = 8 * 1024 * 1024

SLOW_UPSTREAM = """
import sys, time
total = 0
while chunk := sys.stdin.buffer.read1(65536):
    total += len(chunk)
    time.sleep(0.002)
print(total, flush=True)
"""


def main() -> None:
    upstream = ProcessChannel([sys.executable, "-c", SLOW_UPSTREAM], buffering="line")
    with Poller() as poller:
        server = listen("tcp:127.0.0.1:0")
        poller.add_server(server)
        poller.register(upstream)
        sender = connect(f"tcp:127.0.0.1:{server.getsockname()[1]}", max_pending=TOTAL)
        poller.register(sender)
        sender.write(b"x" * TOTAL)  # what the kernel does not take, the poller sends later
        downstream: Channel | None = None
        paused = sender_done = sender_ended = upstream_ended = False
        most_held = 0
        received = None
        while received is None:
            # A short timeout: the backpressure is checked between polls.
            for data, source in poller.poll(timeout=0.05):
                if source is server:
                    _, downstream = data
                elif source is downstream and data:
                    upstream.write(data)
                elif source is downstream:  # the sender's end came through
                    sender_ended = True
                elif source is upstream and data:
                    received = int(data)
            most_held = max(most_held, upstream.pending_output)
            if downstream is not None and not paused and upstream.pending_output > HIGH_WATER:
                poller.pause_reading(downstream)  # its output would still be sent
                paused = True
            elif downstream is not None and paused and upstream.pending_output == 0:
                poller.resume_reading(downstream)
                paused = False
            if sender_ended and not upstream_ended and upstream.pending_output == 0:
                upstream.shutdown_write()  # all of it went: the upstream sees its end and counts
                upstream_ended = True
            if not sender_done and sender.pending_output == 0:
                sender.shutdown_write()  # all 8 MiB went: the proxy sees the end after them
                sender_done = True
    print(f"upstream received {received} bytes of {TOTAL}")
    print(f"most bytes held for the upstream at once: {most_held // 1024} KiB")
    print(f"(the high-water mark, {HIGH_WATER // 1024} KiB, plus at most what one poll reads, 64 KiB)")


if __name__ == "__main__":
    main()
