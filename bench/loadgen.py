"""Echo load generator: many connections, a fixed number of lines in flight each.

    python bench/loadgen.py --port P --conns C --depth D [--warmup W] [--duration T]
                            [--server-pid PID] [--cpu N]

A raw epoll client in one process. Each connection keeps ``depth`` 64-byte
lines in flight: each time an echoed line completes, it sends the next one.
Every echoed byte is compared with what was sent on that connection (each
line carries its connection number and a sequence number), so a lost,
duplicated, reordered or cross-connection line fails the run.

After ``warmup`` seconds it counts completed lines for ``duration`` seconds,
reading the server's CPU time from /proc at both ends of that window, and
reports lines/s, the server's CPU microseconds per line and its own CPU use.
"""

from __future__ import annotations

import argparse
import select
import socket
import sys
import time

from common import busy_cpu_seconds, cpu_seconds, emit, pin, raise_nofile

LINE = 64
#: Distinct lines per connection before the sequence wraps.
CYCLE = 256
_BLOCK = LINE * CYCLE


def line_block(conn: int) -> bytes:
    """Two copies of connection ``conn``'s ``CYCLE`` lines, so any window is one slice."""
    lines = []
    for seq in range(CYCLE):
        head = b"c%06d s%03d " % (conn, seq)
        lines.append(head + b"x" * (LINE - 1 - len(head)) + b"\n")
    block = b"".join(lines)
    assert len(block) == _BLOCK
    return block + block


def connect_all(port: int, conns: int, deadline: float) -> list[socket.socket]:
    socks = []
    for _ in range(conns):
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=max(0.1, deadline - time.monotonic()))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        socks.append(sock)
    return socks


class Mismatch(Exception):
    pass


def run(
    port: int, *, conns: int, depth: int, warmup: float, duration: float, server_pid: int | None
) -> dict[str, object]:
    socks = connect_all(port, conns, time.monotonic() + 30)
    blocks = [line_block(i) for i in range(conns)]
    received = [0] * conns  # bytes echoed so far
    sent = [0] * conns  # bytes handed to the kernel so far
    unsent: dict[int, bytes] = {}  # output the kernel did not take yet
    index = {sock.fileno(): i for i, sock in enumerate(socks)}
    ep = select.epoll()
    for sock in socks:
        ep.register(sock.fileno(), select.EPOLLIN)
    for i, sock in enumerate(socks):
        sent[i] = depth * LINE
        _send(sock, i, blocks[i][: depth * LINE], unsent, ep)

    lines = 0
    start = time.perf_counter()
    measure_at = start + warmup
    stop_at = measure_at + duration
    measuring = False
    base_lines = 0
    base_cpu = base_server = base_busy = t0 = 0.0
    poll = ep.poll
    now = last_event = start
    handling = 0.0  # seconds spent handling events while measuring
    while now < stop_at:
        # Busy-poll: this process has a CPU of its own, and a sleeping client
        # would add its wake-up latency to every round trip.
        events = poll(0)
        now = time.perf_counter()
        if not measuring and now >= measure_at:
            measuring = True
            base_lines, t0 = lines, now
            base_cpu = cpu_seconds()
            base_server = cpu_seconds(server_pid) if server_pid else 0.0
            base_busy = busy_cpu_seconds()
        if not events:
            if now - last_event > 5:
                raise TimeoutError("the server stopped answering")
            continue
        last_event = now
        for fd, mask in events:
            i = index[fd]
            sock = socks[i]
            if mask & select.EPOLLOUT:
                _resend(sock, i, unsent, ep)
            if not mask & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                continue
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            if not data:
                raise ConnectionError(f"connection {i}: the server closed it")
            got = received[i]
            offset = got % _BLOCK
            size = len(data)
            if blocks[i][offset : offset + size] != data or got + size > sent[i]:
                raise Mismatch(f"connection {i}: echoed bytes {got}..{got + size} differ from what was sent")
            done = (got + size) // LINE - got // LINE
            received[i] = got + size
            if done:
                lines += done
                offset = sent[i] % _BLOCK
                sent[i] += done * LINE
                _send(sock, i, blocks[i][offset : offset + done * LINE], unsent, ep)
        if measuring:
            handling += time.perf_counter() - now
    elapsed = now - t0
    counted = lines - base_lines
    if not counted:
        raise TimeoutError("no line came back while measuring")
    client_cpu = cpu_seconds() - base_cpu
    server_cpu = (cpu_seconds(server_pid) - base_server) if server_pid else None
    busy = busy_cpu_seconds() - base_busy
    # CPUs kept busy by anything but this client and the server under test.
    foreign = (busy - client_cpu - (server_cpu or 0.0)) / elapsed if elapsed > 0 else None
    for sock in socks:
        sock.close()
    ep.close()
    return {
        "lines": counted,
        "seconds": elapsed,
        "lines_per_s": counted / elapsed if elapsed > 0 else 0.0,
        "server_cpu_us_per_line": (server_cpu * 1e6 / counted) if server_cpu is not None and counted else None,
        "server_cpu_share": (server_cpu / elapsed) if server_cpu is not None and elapsed > 0 else None,
        "client_cpu_share": client_cpu / elapsed if elapsed > 0 else None,
        # Share of the time the client was handling events rather than
        # polling an idle server: near 1 means the client is the bottleneck.
        "client_busy_share": handling / elapsed if elapsed > 0 else None,
        "foreign_cpus": foreign,
        "verified_bytes": sum(received),
    }


def _send(sock: socket.socket, i: int, data: bytes, unsent: dict[int, bytes], ep: select.epoll) -> None:
    """Send ``data`` on connection ``i``; what the kernel refuses waits for EPOLLOUT."""
    if i in unsent:  # keep order behind what is already waiting
        unsent[i] += data
        return
    try:
        taken = sock.send(data)
    except BlockingIOError:
        taken = 0
    if taken < len(data):
        unsent[i] = data[taken:]
        ep.modify(sock.fileno(), select.EPOLLIN | select.EPOLLOUT)


def _resend(sock: socket.socket, i: int, unsent: dict[int, bytes], ep: select.epoll) -> None:
    data = unsent.pop(i)
    try:
        taken = sock.send(data)
    except BlockingIOError:
        taken = 0
    if taken < len(data):
        unsent[i] = data[taken:]
    else:
        ep.modify(sock.fileno(), select.EPOLLIN)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--conns", type=int, required=True)
    parser.add_argument("--depth", type=int, required=True)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--server-pid", type=int, default=None)
    parser.add_argument("--cpu", type=int, default=None)
    args = parser.parse_args()
    pinned = pin(args.cpu)
    raise_nofile()
    try:
        result = run(
            args.port,
            conns=args.conns,
            depth=args.depth,
            warmup=args.warmup,
            duration=args.duration,
            server_pid=args.server_pid,
        )
    except (Mismatch, ConnectionError, TimeoutError, OSError) as err:
        emit({"error": f"{type(err).__name__}: {err}"})
        sys.exit(1)
    result["client_pinned"] = pinned
    emit(result)


if __name__ == "__main__":
    main()
