"""The Poller: register errors.

Everything here runs over real descriptors: TestChannel pipes, socketpairs,
TCP on 127.0.0.1 and Unix sockets under ``tmp_path``. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os

import pytest

from channels import (
    EndpointClosedException,
    LineChannel,
    PipeChannel,
)
from channels.poller import Poller
from tests.poller.support import (
    channel_pair,
    make_test_channel,
    tcp_server,
)


def test_register_write_only_channel_says_it_cannot_be_read(poller: Poller, stack: contextlib.ExitStack) -> None:
    faucet, feed = os.pipe()
    stack.callback(os.close, faucet)
    sink_only = PipeChannel(sink=feed)
    stack.callback(sink_only.close)

    with pytest.raises(ValueError, match="cannot be read"):
        poller.register(sink_only)
    assert len(poller) == 0


def test_register_second_channel_on_same_descriptor_raises(poller: Poller, stack: contextlib.ExitStack) -> None:
    inner, _peer = channel_pair(stack)
    poller.register(inner)
    wrapper = LineChannel(inner)
    stack.callback(wrapper.close)

    with pytest.raises(ValueError, match=f"descriptor {inner.get_fd()}"):
        poller.register(wrapper)
    assert len(poller) == 1


def test_register_closed_channel_raises_endpoint_closed(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = make_test_channel(stack)
    channel.close()

    with pytest.raises(EndpointClosedException):
        poller.register(channel)
    assert len(poller) == 0


def test_register_with_a_second_poller_raises(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = make_test_channel(stack)
    poller.register(channel)
    with Poller() as other, pytest.raises(ValueError, match="another Poller"):
        other.register(channel)


def test_register_on_a_servers_descriptor_says_so(poller: Poller, stack: contextlib.ExitStack) -> None:
    server = tcp_server(stack)
    poller.add_server(server)

    class OnTheServersDescriptor:
        """A channel of another package, as far as the poller can tell."""

        def get_fd(self) -> int:
            return server.fileno()

        def read(self) -> bytes:
            return b""

    with pytest.raises(ValueError, match="already registered for server"):
        poller.register(OnTheServersDescriptor())  # type: ignore[arg-type]
