"""The Poller: writing to a channel whose input ended.

Everything here runs over real descriptors: TestChannel pipes, socketpairs,
TCP on 127.0.0.1 and Unix sockets under ``tmp_path``. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import gc
import random
import socket
import weakref

import pytest

from channels import (
    SocketChannel,
)
from channels.poller import Poller
from tests.helpers import WAIT, turn_of
from tests.poller.support import (
    channel_pair,
    drain,
    ended,
    poll_until,
    receive_while_polling,
)


def _half_closed(poller: Poller, stack: contextlib.ExitStack) -> tuple[SocketChannel, socket.socket]:
    """A registered channel whose peer has ended its output (and still reads),
    with the end already reported."""
    channel, peer = channel_pair(stack)
    poller.register(channel)
    peer.shutdown(socket.SHUT_WR)
    poll_until(poller, ended(channel))
    return channel, peer


def test_output_written_after_the_end_is_sent_by_later_polls(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = _half_closed(poller, stack)
    data = random.Random(7).randbytes(8 * 1024 * 1024)  # far more than the socket buffers hold

    channel.write(data)
    assert channel.pending_output > 0

    assert receive_while_polling(poller, peer, len(data)) == data
    assert channel.pending_output == 0


def test_small_replies_after_the_end_leave_at_the_next_poll(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = _half_closed(poller, stack)

    channel.write(b"last ")
    channel.write(b"words\n")

    assert receive_while_polling(poller, peer, 11) == b"last words\n"


def test_an_ended_channel_is_not_counted_nor_reported_again(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, _peer = _half_closed(poller, stack)

    assert len(poller) == 0
    channel.write(b"bye\n")
    assert poller.poll(0.05) == []
    channel.close()
    assert poller.poll(0.05) == []  # closing it does not report its end a second time


def test_unregister_stops_sending_for_an_ended_channel(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = _half_closed(poller, stack)
    channel.write(b"x" * (8 * 1024 * 1024))
    poller.poll(0)  # sends what fits, then watches for room
    poller.unregister(channel)
    stuck = channel.pending_output
    assert stuck > 0

    peer.setblocking(False)
    drain(peer)  # room again
    assert poller.poll(0.05) == []

    assert channel.pending_output == stuck  # the poller no longer sends it


def test_an_ended_channel_its_owner_drops_is_let_go(poller: Poller) -> None:
    mine, peer = socket.socketpair()
    with peer:
        channel = SocketChannel(mine)
        poller.register(channel)
        peer.shutdown(socket.SHUT_WR)
        poll_until(poller, ended(channel))
        gone = weakref.ref(channel)

        with pytest.warns(ResourceWarning, match="unclosed"):
            del channel
            gc.collect()

        assert gone() is None  # the poller does not keep it alive


def test_an_ended_channel_can_be_registered_again(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, _peer = _half_closed(poller, stack)

    poller.register(channel)

    assert poll_until(poller, ended(channel)) == [(b"", channel)]


def test_close_all_lets_go_of_ended_channels_without_closing_them(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = _half_closed(poller, stack)
    with turn_of(poller):
        channel.write(b"held ")  # held for the end of the turn
        assert channel.pending_output == 5

        poller.close_all()
        channel.write(b"after\n")  # sent at once: no poller holds it any more

    assert not channel.closed
    assert peer.recv(100) == b"held after\n"


def test_output_pending_when_the_end_arrives_is_still_delivered(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    data = random.Random(8).randbytes(8 * 1024 * 1024)
    channel.write(data)
    peer.shutdown(socket.SHUT_WR)

    poll_until(poller, ended(channel))  # the peer is not reading yet: output waits
    assert channel.pending_output > 0

    assert receive_while_polling(poller, peer, len(data)) == data


def test_shutdown_write_on_an_ended_channel_delivers_then_ends_its_output(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel, peer = _half_closed(poller, stack)
    channel.write(b"the answer\n")

    channel.shutdown_write()

    assert poller.poll(0.05) == []
    peer.settimeout(WAIT)
    assert peer.recv(100) == b"the answer\n"
    assert peer.recv(100) == b""  # both directions have ended


def test_unregister_sends_what_an_ended_channel_held_for_the_next_poll(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel, peer = _half_closed(poller, stack)
    with turn_of(poller):
        channel.write(b"bye\n")  # held for the end of the turn
        assert channel.pending_output == 4

        poller.unregister(channel)

        assert peer.recv(100) == b"bye\n"
