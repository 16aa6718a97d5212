"""The Poller: pausing reading.

Everything here runs over real descriptors: TestChannel pipes, socketpairs,
TCP on 127.0.0.1 and Unix sockets under ``tmp_path``. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import random

import pytest

from channels.poller import Poller
from tests.poller.support import (
    channel_pair,
    poll_until,
    receive_while_polling,
)


def test_a_paused_channel_is_not_read_until_resumed(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)

    poller.pause_reading(channel)
    peer.sendall(b"later")
    assert poller.poll(0.05) == []

    poller.resume_reading(channel)
    assert poll_until(poller, bool) == [(b"later", channel)]


def test_a_paused_channels_output_is_still_sent(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    poller.pause_reading(channel)
    data = random.Random(9).randbytes(8 * 1024 * 1024)

    channel.write(data)

    assert receive_while_polling(poller, peer, len(data)) == data


def test_a_paused_channel_counts_as_registered(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, _peer = channel_pair(stack)
    poller.register(channel)

    poller.pause_reading(channel)
    poller.pause_reading(channel)  # twice is harmless

    assert len(poller) == 1
    poller.register(channel)  # registering again resumes it
    poller.resume_reading(channel)  # not paused: nothing to do
    assert len(poller) == 1


def test_a_paused_channel_closed_by_its_owner_is_reported_once(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, _peer = channel_pair(stack)
    poller.register(channel)
    poller.pause_reading(channel)

    channel.close()

    assert poller.poll(0) == [(b"", channel)]
    assert poller.poll(0.05) == []
    assert len(poller) == 0


def test_close_all_closes_paused_channels(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    poller.pause_reading(channel)
    channel.write(b"last\n")

    poller.close_all()

    assert channel.closed
    assert peer.recv(100) == b"last\n"


def test_unregister_ends_a_pause(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    poller.pause_reading(channel)

    poller.unregister(channel)
    poller.resume_reading(channel)  # no longer paused: nothing happens
    peer.sendall(b"unseen")

    assert poller.poll(0.05) == []
    assert len(poller) == 0


def test_a_paused_channel_half_closed_is_read_again_when_resumed(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    poller.pause_reading(channel)
    channel.write(b"request\n")

    channel.shutdown_write()
    peer.sendall(b"answer\n")
    poller.resume_reading(channel)

    assert poll_until(poller, bool) == [(b"answer\n", channel)]
    assert peer.recv(100) == b"request\n"


def test_pause_reading_refuses_a_foreign_channel(poller: Poller) -> None:
    class Foreign:
        def get_fd(self) -> int:
            return 0

    with pytest.raises(ValueError, match="cannot be paused"):
        poller.pause_reading(Foreign())  # type: ignore[arg-type]
