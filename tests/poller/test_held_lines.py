"""The Poller: lines held in memory.

Everything here runs over real descriptors: TestChannel pipes, socketpairs,
TCP on 127.0.0.1 and Unix sockets under ``tmp_path``. Every wait is bounded.
"""

from __future__ import annotations

import contextlib

from channels.poller import Poller
from tests.helpers import WAIT
from tests.poller.support import (
    channel_pair,
    make_test_channel,
    timed_poll,
    wait_readable,
)


def test_lines_left_by_a_direct_read_are_reported_without_new_input(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel, peer = channel_pair(stack, buffering="line")
    poller.register(channel)
    peer.sendall(b"one\ntwo\n")
    wait_readable(channel.get_fd())

    assert channel.read() == b"one\n"
    result, elapsed = timed_poll(poller, WAIT)

    assert result == [(b"two\n", channel)]
    assert elapsed < WAIT / 2
    assert poller.poll(0.05) == []


def test_lines_left_in_a_test_channel_are_reported_without_new_input(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel = make_test_channel(stack, buffering="line")
    poller.register(channel)
    channel.put(b"one\ntwo\nthree\n")

    assert channel.read() == b"one\n"
    result, elapsed = timed_poll(poller, WAIT)

    assert result == [(b"two\n", channel), (b"three\n", channel)]
    assert elapsed < WAIT / 2


def test_lines_buffered_before_register_are_reported(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = make_test_channel(stack, buffering="line")
    channel.put(b"one\ntwo\n")
    assert channel.read() == b"one\n"

    poller.register(channel)
    result, elapsed = timed_poll(poller, WAIT)

    assert result == [(b"two\n", channel)]
    assert elapsed < WAIT / 2
