"""A line echo server on every core: N worker processes, one Poller each.

    python examples/workers.py [ADDRESS] [--workers N]

A Python process polls on one core; to serve from several, run several
processes. ``ADDRESS`` (default ``tcp:127.0.0.1:8000``) says how they share
the connections:

- ``tcp:HOST:PORT``: each worker listens on the port with a socket of its
  own, made with ``reuse_port=True``, and the kernel spreads the connections
  among them (port ``0`` works: the first listener picks the port, the
  others join it);
- ``fd:N``, ``systemd`` or ``systemd:NAME``: one inherited listening socket,
  which all workers accept from.

The parent starts the workers (default: one per CPU), prints
``listening on ADDRESS with N workers`` once every one of them serves, tells
systemd the service is ready (``channels.systemd.notify``; nothing happens
outside systemd), and waits. On SIGTERM or SIGINT it passes SIGTERM to the
workers; each stops accepting, closes its clients (what they were sent is
still delivered) and exits; the parent exits 0 once all have exited 0. A
worker that dies on its own stops the others, and the parent exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import socket
import sys
import time
import traceback
from collections.abc import Sequence

from channels import Poller, listen, systemd

#: The signals that stop the server.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def serve(listener: socket.socket, ready: int) -> int:
    """One worker: echo every line of every client until SIGTERM or SIGINT.

    Writes a byte to ``ready`` once it accepts clients. Returns the exit code.
    """
    stopping = False
    with Poller(buffering="line") as poller:
        # What the poller puts back once it stops watching (as it closes its
        # clients, below): a second signal then is ignored, not fatal.
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        stop = poller.watch_signals(*STOP_SIGNALS)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked by the parent until now
        poller.add_server(listener)
        os.write(ready, b".")
        os.close(ready)
        while not stopping:
            for data, source in poller.poll():
                if source is stop:
                    stopping = True  # (signum, stop): after this poll's other entries
                elif isinstance(data, tuple):
                    continue  # a new client, already registered
                elif data:
                    source.write(data)
                else:
                    source.close()
    # Leaving the with block closed the listener and every client.
    return 0


def supervise(
    listener: socket.socket,
    workers: int,
    *,
    join: str | None = None,
    stop_signals: Sequence[int] = STOP_SIGNALS,
    announce: str | None = None,
) -> int:
    """Serve ``listener`` from ``workers`` processes until one of ``stop_signals``.

    With ``join`` (a ``tcp:HOST:PORT`` address of ``listener``'s port, which
    was made with ``reuse_port=True``), the first worker serves ``listener``
    and each other one a listener of its own on ``join``; without it, they all
    share ``listener``. Prints ``announce`` once all serve. Returns the exit
    code.
    """
    ready_read, ready_write = os.pipe()
    # Blocked until each process has its own handlers: a signal that comes
    # before waits instead of killing a worker half made.
    signal.pthread_sigmask(signal.SIG_BLOCK, (*STOP_SIGNALS, *stop_signals))
    live: set[int] = set()
    sys.stdout.flush()  # or each worker would print what is buffered again
    for number in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(ready_read)
            code = 1
            try:
                if join is not None and number > 0:
                    listener.close()  # the first worker's: this one makes its own
                    listener = listen(join, reuse_port=True)
                code = serve(listener, ready_write)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                os._exit(code)
        live.add(pid)
    os.close(ready_write)
    listener.close()  # the workers have it

    stopping = False
    failed = False

    def stop_workers(signum: int = signal.SIGTERM, frame: object = None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(live):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    for signum in stop_signals:
        signal.signal(signum, stop_workers)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, (*STOP_SIGNALS, *stop_signals))

    if _count_ready(ready_read, workers, timeout=30.0) == workers:
        if announce is not None:
            print(announce, flush=True)
        systemd.notify("READY=1")
    else:
        failed = True
        stop_workers()
    os.close(ready_read)

    while live:
        pid, status = os.wait()  # a stop signal's handler runs, then the wait goes on
        live.discard(pid)
        if os.waitstatus_to_exitcode(status) != 0 or not stopping:
            failed = True  # a worker died on its own: stop them all
            if not stopping:
                systemd.notify("STOPPING=1")
            stop_workers()
    return 1 if failed else 0


def _count_ready(ready: int, workers: int, timeout: float) -> int:
    """Read the workers' ready bytes: all of them, or fewer if a worker died
    or ``timeout`` seconds passed."""
    count = 0
    deadline = time.monotonic() + timeout
    while count < workers:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([ready], [], [], left)[0]:
            break
        data = os.read(ready, workers)
        if not data:  # every worker has closed its end: some died before serving
            break
        count += len(data)
    return count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("address", nargs="?", default="tcp:127.0.0.1:8000")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be 1 or more")
    if args.address.lower().startswith("tcp:"):
        listener = listen(args.address, reuse_port=True)
        host, port = listener.getsockname()[:2]
        host = f"[{host}]" if ":" in host else host
        join: str | None = f"tcp:{host}:{port}"
        where = join
    else:
        listener = listen(args.address)
        join = None
        where = f"{args.address} ({listener.getsockname()})"
    return supervise(listener, args.workers, join=join, announce=f"listening on {where} with {args.workers} workers")


if __name__ == "__main__":
    sys.exit(main())
