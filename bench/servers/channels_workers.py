"""io-channels on every core: ``examples/workers.py``, N worker processes.

Each worker is a line poller like ``channels_line``'s, with a listener of its
own on the port (``reuse_port``); the first serves the inherited listener.
Not pinned to one CPU, unlike the other servers: using both is the point.
"""

from __future__ import annotations

import os
import signal
import socket
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "examples"))

import workers  # noqa: E402 - the example, found on the path just set


def serve(listener: socket.socket, seconds: float, count: int) -> None:
    host, port = listener.getsockname()[:2]
    signal.alarm(max(1, int(seconds)))  # the time limit: SIGALRM stops the workers like SIGTERM
    code = workers.supervise(
        listener,
        count,
        join=f"tcp:{host}:{port}",
        stop_signals=(*workers.STOP_SIGNALS, signal.SIGALRM),
        announce="ready",  # what bench/echo.py waits for, once every worker serves
    )
    raise SystemExit(code)
