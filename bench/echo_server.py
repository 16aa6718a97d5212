"""Run one line-echo server on an inherited listening socket.

    python bench/echo_server.py IMPL --fd N [--cpu C] [--seconds S] [--profile FILE]

``IMPL`` names a module of ``bench/servers``. The server stops by itself
after ``--seconds``, or at SIGTERM. ``--profile`` runs it under cProfile and
writes the stats to FILE when it stops (for finding where the time goes).
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import signal
import socket
import sys
from types import FrameType

from common import pin, raise_nofile

IMPLS = (
    "channels_line",
    "channels_bytes",
    "raw_epoll",
    "asyncio_streams",
    "asyncio_protocol",
    "uvloop_streams",
    "uvloop_protocol",
    "tornado_iostream",
    "twisted_linereceiver",
    "channels_workers_1",
    "channels_workers_2",
)

#: Servers of several processes: ``examples/workers.py`` with that many
#: workers. Their listener is made with SO_REUSEPORT so that every worker can
#: have one of its own on the port, and they are not pinned to one CPU.
WORKERS = {"channels_workers_1": 1, "channels_workers_2": 2}


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("impl", choices=IMPLS)
    parser.add_argument("--fd", type=int, required=True, help="inherited listening socket")
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=900.0)
    parser.add_argument("--profile", default=None)
    args = parser.parse_args()
    pin(args.cpu)
    raise_nofile()
    listener = socket.socket(fileno=args.fd)
    listener.setblocking(False)  # as every framework's own bind helper leaves it
    if args.impl in WORKERS:
        module = importlib.import_module("servers.channels_workers")
        module.serve(listener, args.seconds, WORKERS[args.impl])
        return
    module = importlib.import_module(f"servers.{args.impl}")
    if args.impl != "twisted_linereceiver":  # the reactor handles SIGTERM itself
        signal.signal(signal.SIGTERM, _stop)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    if args.profile is None:
        module.serve(listener, args.seconds)
        return
    profiler = cProfile.Profile()
    try:
        profiler.runcall(module.serve, listener, args.seconds)
    finally:
        profiler.dump_stats(args.profile)


if __name__ == "__main__":
    main()
