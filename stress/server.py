"""A line-echo server on loopback for the stress runs, in a process of its own.

It prints its port on its first line, then echoes every line a client sends.
Its stdin and stdout are a control channel: ``stats`` answers with the CPU
seconds it has used, its resident memory in KiB, its client count and its
open descriptors; end of input stops it. ``--nofile N`` lowers its
descriptor limit once it is listening.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import socket
import sys
import time

from channels import Channel, connect
from channels.poller import Poller


def resident_kib() -> int:
    """The process's resident memory now, from /proc (peak where it is absent)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def open_fds() -> int:
    """Open descriptors, or -1 when none is free to look with."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


def stats(clients: int) -> bytes:
    return f"{time.process_time():.6f} {resident_kib()} {clients} {open_fds()}\n".encode()


def serve(nofile: int | None) -> None:
    listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
    sys.stdout.write(f"{listener.getsockname()[1]}\n")
    sys.stdout.flush()
    if nofile is not None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    control = connect("stdio", buffering="line")
    clients: set[Channel] = set()
    with Poller(buffering="line") as poller:
        poller.add_server(listener)
        poller.register(control)
        while True:
            for data, source in poller.poll():
                if not isinstance(source, Channel):  # the listener: a new client
                    assert isinstance(data, tuple)
                    clients.add(data[1])
                elif source is control:
                    if not data:
                        return
                    control.write(stats(len(clients)))
                    control.flush(5.0)
                elif data:
                    assert isinstance(data, bytes)
                    source.write(data)
                else:
                    clients.discard(source)
                    source.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nofile", type=int, default=None)
    # The accept back-off logs a warning each pause; the figures tell the story.
    logging.getLogger("channels").setLevel(logging.ERROR)
    serve(parser.parse_args().nofile)


if __name__ == "__main__":
    main()
