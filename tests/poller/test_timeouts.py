"""The Poller: timeouts.

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
    channel_pair,
    make_test_channel,
    timed_poll,
)


def test_poll_with_nothing_ready_returns_empty_after_the_timeout(poller: Poller, stack: contextlib.ExitStack) -> None:
    poller.register(make_test_channel(stack))

    result, elapsed = timed_poll(poller, 0.2)

    assert result == []
    assert 0.15 <= elapsed < 0.2 + 2.0


def test_poll_zero_does_not_wait(poller: Poller, stack: contextlib.ExitStack) -> None:
    poller.register(make_test_channel(stack))

    result, elapsed = timed_poll(poller, 0)

    assert result == []
    assert elapsed < 0.1


def test_poll_with_a_negative_timeout_does_not_wait(poller: Poller, stack: contextlib.ExitStack) -> None:
    poller.register(make_test_channel(stack))

    result, elapsed = timed_poll(poller, -1.0)  # epoll would read -1 as "forever"

    assert result == []
    assert elapsed < 0.1


def test_poll_with_a_sub_millisecond_timeout_waits_rather_than_spins(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    poller.register(make_test_channel(stack))
    start = time.process_time()

    for _ in range(20):
        assert poller.poll(0.0001) == []

    # Each poll sleeps about a millisecond: 20 of them cannot use 20 ms of CPU
    # unless they spin.
    assert time.process_time() - start < 0.02 * 20


def test_poll_without_timeout_waits_until_data_arrives(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    sender = threading.Timer(0.1, peer.sendall, [b"late"])
    sender.start()
    try:
        result, elapsed = timed_poll(poller, None)
    finally:
        sender.join(WAIT)

    assert result == [(b"late", channel)]
    assert elapsed >= 0.05
