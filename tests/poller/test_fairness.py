"""The Poller: fairness.

Everything here runs over real descriptors: TestChannel pipes, socketpairs,
TCP on 127.0.0.1 and Unix sockets under ``tmp_path``. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import threading
import time

from channels.poller import Poller
from tests.helpers import WAIT
from tests.poller.support import (
    MiB,
    channel_pair,
    data_of,
    make_test_channel,
    wait_readable,
)


def test_busy_channel_does_not_starve_a_quiet_one(poller: Poller, stack: contextlib.ExitStack) -> None:
    busy, busy_peer = channel_pair(stack)
    quiet, quiet_peer = channel_pair(stack, buffering="line")
    poller.register(busy)
    poller.register(quiet)
    stop = threading.Event()
    give_up = time.monotonic() + WAIT  # a starving poller still gets control back

    def flood() -> None:
        """Keep the busy channel's socket buffer full, all the time."""
        busy_peer.settimeout(0.05)
        chunk = b"x" * 65536
        while not stop.is_set() and time.monotonic() < give_up:
            try:
                busy_peer.send(chunk)
            except TimeoutError:
                continue
            except OSError:
                return

    flooder = threading.Thread(target=flood)
    flooder.start()
    stack.callback(flooder.join, WAIT)
    stack.callback(stop.set)
    wait_readable(busy.get_fd())
    quiet_peer.sendall(b"hello\n")
    wait_readable(quiet.get_fd())

    reported_at = None
    for turn in range(10):
        results = poller.poll(WAIT)
        assert data_of(results, busy), "the busy channel has data on every turn"
        if (b"hello\n", quiet) in results:
            reported_at = turn
            break

    assert reported_at is not None and reported_at <= 1, f"quiet line reported at turn {reported_at}"


def test_quiet_line_is_reported_before_a_busy_backlog_is_drained(poller: Poller, stack: contextlib.ExitStack) -> None:
    # A TestChannel refills its pipe on every read: this peer always has more.
    busy = make_test_channel(stack)
    backlog = 16 * MiB
    busy.put(b"x" * backlog)
    quiet, quiet_peer = channel_pair(stack, buffering="line")
    poller.register(busy)
    poller.register(quiet)
    quiet_peer.sendall(b"hello\n")
    wait_readable(quiet.get_fd())

    consumed = 0
    reported_at = None
    for turn in range(10):
        results = poller.poll(WAIT)
        consumed += sum(map(len, data_of(results, busy)))
        if (b"hello\n", quiet) in results:
            reported_at = turn
            break

    assert reported_at is not None and reported_at <= 1, f"quiet line reported at turn {reported_at}"
    assert consumed < backlog // 2, f"the busy channel's {consumed} bytes were all read before the quiet line"
