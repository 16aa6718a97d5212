"""The Poller: a channel closed by its owner.

Everything here runs over real descriptors: TestChannel pipes, socketpairs,
TCP on 127.0.0.1 and Unix sockets under ``tmp_path``. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable

import pytest

from channels import (
    Channel,
    PipeChannel,
)
from channels.poller import Poller
from tests.helpers import WAIT
from tests.poller.support import (
    channel_pair,
    data_of,
    poll_until,
    timed_poll,
)


def test_channel_closed_by_owner_is_reported_once_and_forgotten(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, _peer = channel_pair(stack)
    poller.register(channel)

    channel.close()

    result, elapsed = timed_poll(poller, WAIT)
    assert result == [(b"", channel)]
    assert elapsed < WAIT / 2
    assert len(poller) == 0
    assert poller.poll(0.05) == []


def _pipe_channel(stack: contextlib.ExitStack) -> tuple[Channel, Callable[[bytes], None]]:
    faucet, feed = os.pipe()
    channel = PipeChannel(faucet)
    stack.callback(channel.close)
    stack.callback(os.close, feed)

    def send(data: bytes) -> None:
        assert os.write(feed, data) == len(data)

    return channel, send


def _socket_channel(stack: contextlib.ExitStack) -> tuple[Channel, Callable[[bytes], None]]:
    channel, peer = channel_pair(stack)
    return channel, peer.sendall


@pytest.mark.parametrize("make", [_pipe_channel, _socket_channel], ids=["pipe", "socket"])
def test_new_channel_reusing_a_closed_channels_descriptor_registers_and_works(
    poller: Poller,
    stack: contextlib.ExitStack,
    make: Callable[[contextlib.ExitStack], tuple[Channel, Callable[[bytes], None]]],
) -> None:
    gc.collect()  # no stray descriptor is freed behind our back below
    old, _ = make(stack)
    poller.register(old)
    old_fd = old.get_fd()

    old.close()
    new, send = make(stack)
    assert new.get_fd() == old_fd, "the new descriptor should take the freed number"
    poller.register(new)
    send(b"fresh")

    results = poll_until(poller, lambda r: (b"fresh", new) in r)
    assert data_of(results, old) == [b""]
    assert len(poller) == 1
    assert poller.poll(0.05) == []
