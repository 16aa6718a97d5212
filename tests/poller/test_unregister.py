"""The Poller: unregister.

Everything here runs over real descriptors: TestChannel pipes, socketpairs,
TCP on 127.0.0.1 and Unix sockets under ``tmp_path``. Every wait is bounded.
"""

from __future__ import annotations

import contextlib

from channels.poller import Poller
from tests.helpers import WAIT, turn_of
from tests.poller.support import (
    channel_pair,
    connect,
    make_test_channel,
    tcp_server,
)


def test_unregister_unknown_channel_is_silent(poller: Poller, stack: contextlib.ExitStack) -> None:
    poller.unregister(make_test_channel(stack))
    unknown_server = tcp_server(stack)
    poller.unregister(unknown_server)

    assert len(poller) == 0


def test_unregistered_channel_is_not_reported(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = make_test_channel(stack)
    poller.register(channel)
    channel.put(b"ignored")

    poller.unregister(channel)

    assert poller.poll(0.1) == []
    assert len(poller) == 0
    assert channel.read() == b"ignored"


def test_unregister_twice_is_silent(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = make_test_channel(stack)
    poller.register(channel)

    poller.unregister(channel)
    poller.unregister(channel)

    assert len(poller) == 0


def test_unregister_works_on_a_closed_channel(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = make_test_channel(stack)
    poller.register(channel)
    channel.close()

    poller.unregister(channel)

    assert len(poller) == 0
    assert poller.poll(0.05) == []


def test_unregister_server_stops_accepting(poller: Poller, stack: contextlib.ExitStack) -> None:
    server = tcp_server(stack)
    poller.add_server(server)

    poller.unregister(server)
    connect(stack, server)

    assert poller.poll(0.2) == []
    assert server.fileno() >= 0, "unregister must not close the server"


def test_unregistered_channel_can_be_registered_again(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = make_test_channel(stack)
    poller.register(channel)
    poller.unregister(channel)

    poller.register(channel)
    channel.put(b"back")

    assert poller.poll(WAIT) == [(b"back", channel)]


def test_register_twice_is_harmless(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = make_test_channel(stack)
    poller.register(channel)
    poller.register(channel)
    channel.put(b"once")

    assert len(poller) == 1
    assert poller.poll(WAIT) == [(b"once", channel)]


def test_unregister_sends_output_held_for_the_end_of_the_turn(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    with turn_of(poller):
        channel.write(b"held")
        assert channel.pending_output == 4

        poller.unregister(channel)

        peer.settimeout(WAIT)
        assert peer.recv(16) == b"held"
