"""The Poller: data.

Everything here runs over real descriptors: TestChannel pipes, socketpairs,
TCP on 127.0.0.1 and Unix sockets under ``tmp_path``. Every wait is bounded.
"""

from __future__ import annotations

import contextlib

from channels.poller import Poller, PollResult
from tests.helpers import WAIT
from tests.poller.support import (
    channel_pair,
    make_test_channel,
)


def test_poll_returns_data_with_its_channel(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    peer.sendall(b"hello")

    assert poller.poll(WAIT) == [(b"hello", channel)]


def test_poll_reports_each_ready_channel(poller: Poller, stack: contextlib.ExitStack) -> None:
    first = make_test_channel(stack)
    second = make_test_channel(stack)
    poller.register(first)
    poller.register(second)
    first.put(b"one")
    second.put(b"two")

    assert sorted(poller.poll(WAIT), key=lambda entry: entry[0]) == [(b"one", first), (b"two", second)]


def test_line_buffered_channel_gives_one_entry_per_line(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = make_test_channel(stack, buffering="line")
    poller.register(channel)
    channel.put(b"one\ntwo\nthree\n")

    assert poller.poll(WAIT) == [(b"one\n", channel), (b"two\n", channel), (b"three\n", channel)]


def test_partial_line_is_reported_only_when_completed(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack, buffering="line")
    poller.register(channel)
    peer.sendall(b"par")

    assert poller.poll(0.2) == []

    peer.sendall(b"tial\nnext")
    assert poller.poll(WAIT) == [(b"partial\n", channel)]


def test_live_line_channel_never_gets_an_empty_entry(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = make_test_channel(stack, buffering="line")
    poller.register(channel)
    results: list[PollResult] = []
    for piece in (b"a", b"b", b"c\nd", b"\n", b"e", b"f", b"\n\n"):
        channel.put(piece)
        results.extend(poller.poll(0.05))

    assert results == [(b"abc\n", channel), (b"d\n", channel), (b"ef\n", channel), (b"\n", channel)]
