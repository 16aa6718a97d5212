"""The Poller: a channel ending.

Everything here runs over real descriptors: TestChannel pipes, socketpairs,
TCP on 127.0.0.1 and Unix sockets under ``tmp_path``. Every wait is bounded.
"""

from __future__ import annotations

import contextlib

from channels.poller import Poller
from tests.poller.support import (
    channel_pair,
    data_of,
    ended,
    make_test_channel,
    poll_until,
)


def test_peer_closing_is_reported_once_after_the_data(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    peer.sendall(b"last words")
    peer.close()

    results = poll_until(poller, ended(channel))

    assert b"".join(data_of(results, channel)) == b"last words"
    assert data_of(results, channel)[-1] == b""
    assert data_of(results, channel).count(b"") == 1
    assert poller.poll(0.1) == []


def test_ended_channel_is_forgotten(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    other = make_test_channel(stack)
    poller.register(channel)
    poller.register(other)
    assert len(poller) == 2
    peer.close()

    poll_until(poller, ended(channel))

    assert len(poller) == 1
    assert poller.poll(0.1) == []


def test_line_channel_end_reports_lines_then_rest_then_end(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack, buffering="line")
    poller.register(channel)
    peer.sendall(b"one\ntwo\nunterminated")
    peer.close()

    results = poll_until(poller, ended(channel))

    assert data_of(results, channel) == [b"one\n", b"two\n", b"unterminated", b""]


def test_test_channel_eof_is_reported_once(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = make_test_channel(stack)
    poller.register(channel)
    channel.put(b"data")
    channel.put_eof()

    results = poll_until(poller, ended(channel))

    assert data_of(results, channel) == [b"data", b""]
    assert poller.poll(0.05) == []
