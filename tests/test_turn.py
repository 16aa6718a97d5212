"""The turn (SPEC §3.1): writes made while a ``poll()`` result is iterated
leave when that iteration ends; every other write leaves at once."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pytest

from channels import EndpointClosedException, SocketChannel, WriteBufferFullError
from channels.poller import Poller
from channels.testing import TestChannel
from tests.helpers import WAIT


class CountingSocketChannel(SocketChannel):
    """Counts the write system calls the channel makes."""

    __slots__ = ("sends",)

    def __init__(self, sock: socket.socket, **options: object) -> None:
        super().__init__(sock, **options)  # type: ignore[arg-type]
        self.sends = 0

    def _send(self, buffers: list[bytes | memoryview]) -> int:
        self.sends += 1
        return super()._send(buffers)


@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as exits:
        yield exits


@pytest.fixture
def poller() -> Iterator[Poller]:
    with Poller() as poller:
        yield poller


def pair(
    stack: contextlib.ExitStack, poller: Poller, *, buffering: str = "bytes"
) -> tuple[CountingSocketChannel, socket.socket]:
    """A registered channel and its peer, a blocking socket with a timeout."""
    ours, theirs = socket.socketpair()
    channel = stack.enter_context(CountingSocketChannel(ours, buffering=buffering))
    stack.callback(theirs.close)
    theirs.settimeout(WAIT)
    poller.register(channel)
    return channel, theirs


def ticker(stack: contextlib.ExitStack, poller: Poller, count: int = 1) -> TestChannel:
    """A registered channel with ``count`` lines ready, so that polls have entries."""
    channel = stack.enter_context(TestChannel(buffering="line"))
    poller.register(channel)
    channel.put(b"tick\n" * count)
    return channel


def nothing_arrives(peer: socket.socket) -> bool:
    peer.setblocking(False)
    try:
        return not peer.recv(100)
    except BlockingIOError:
        return True
    finally:
        peer.settimeout(WAIT)


# -- inside and outside a turn ------------------------------------------------------


def test_a_write_in_the_loop_body_waits_for_the_end_of_the_iteration(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel, peer = pair(stack, poller)
    ticker(stack, poller)

    for _data, _source in poller.poll(WAIT):
        channel.write(b"reply\n")
        assert channel.pending_output == 6
        assert nothing_arrives(peer)

    assert channel.pending_output == 0
    assert peer.recv(100) == b"reply\n"


def test_what_one_turn_writes_to_a_channel_leaves_in_one_system_call(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel, peer = pair(stack, poller)
    ticker(stack, poller, count=3)

    for line, _source in poller.poll(WAIT):
        assert isinstance(line, bytes)
        channel.write(line)

    assert channel.sends == 1
    assert peer.recv(100) == b"tick\n" * 3


def test_a_write_outside_any_turn_leaves_at_once(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = pair(stack, poller)

    channel.write(b"login: ")

    assert channel.pending_output == 0
    assert peer.recv(100) == b"login: "


def test_a_write_after_the_loop_leaves_at_once(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = pair(stack, poller)
    ticker(stack, poller)
    replies = [data.upper() for data, _source in poller.poll(WAIT) if isinstance(data, bytes)]

    channel.write(*replies)

    assert peer.recv(100) == b"TICK\n"


def test_a_result_only_indexed_is_no_turn(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = pair(stack, poller)
    ticker(stack, poller)
    result = poller.poll(WAIT)

    data, _source = result[0]
    assert isinstance(data, bytes)
    channel.write(data)

    assert peer.recv(100) == b"tick\n"


def test_writes_to_a_channel_of_another_poller_leave_at_once(poller: Poller, stack: contextlib.ExitStack) -> None:
    other = stack.enter_context(Poller())
    channel, peer = pair(stack, other)
    ticker(stack, poller)

    for _entry in poller.poll(WAIT):
        channel.write(b"now")
        assert peer.recv(100) == b"now"


def test_batch_writes_off_sends_turn_writes_at_once(stack: contextlib.ExitStack) -> None:
    poller = stack.enter_context(Poller(batch_writes=False))
    channel, peer = pair(stack, poller)
    ticker(stack, poller)

    result = poller.poll(WAIT)
    for _entry in result:
        channel.write(b"now")
        assert peer.recv(100) == b"now"
    assert type(result) is list


def test_a_large_write_in_a_turn_leaves_at_once(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, _peer = pair(stack, poller)
    ticker(stack, poller)

    for _entry in poller.poll(WAIT):
        channel.write(b"x" * (64 * 1024))
        assert channel.sends == 1  # not held: batching pays for small writes only


def test_every_kind_of_write_in_a_turn_leaves_in_order_in_one_system_call(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel, peer = pair(stack, poller)
    ticker(stack, poller)
    scratch = bytearray(b"c")

    for _entry in poller.poll(WAIT):
        channel.write(b"a")
        channel.write()  # nothing: neither sent nor an error
        channel.write(b"b", memoryview(b"-"))
        channel.write(scratch)
        scratch[0] = ord("X")  # what was written is kept, not the buffer
        channel.write(b"d", b"e")

    assert channel.sends == 1
    assert peer.recv(100) == b"ab-cde"


def test_a_write_in_a_turn_beyond_max_pending_ends_the_channel_with_the_error_as_cause(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel, peer = pair(stack, poller)
    channel.max_pending = 10
    ticker(stack, poller)

    for _entry in poller.poll(WAIT):
        channel.write(b"12345678")
        channel.write(b"abc")  # no exception: the client that does not read loses, not the loop

    assert channel.closed
    assert isinstance(channel.end_cause, WriteBufferFullError)
    assert "max_pending is 10" in str(channel.end_cause)
    assert peer.recv(100) == b""  # nothing of what it held: it was dropped with the channel
    assert (b"", channel) in poller.poll(WAIT)


def test_a_write_in_a_turn_to_a_closed_channel_raises(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, _peer = pair(stack, poller)
    ticker(stack, poller)

    for _entry in poller.poll(WAIT):
        channel.close()
        with pytest.raises(EndpointClosedException, match="closed"):
            channel.write(b"late")


# -- how a turn ends ----------------------------------------------------------------------


def test_break_ends_the_turn(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = pair(stack, poller)
    ticker(stack, poller, count=2)

    for _entry in poller.poll(WAIT):
        channel.write(b"first only")
        break

    assert peer.recv(100) == b"first only"


def test_return_ends_the_turn(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = pair(stack, poller)
    ticker(stack, poller, count=2)

    def work() -> int:
        for count, _entry in enumerate(poller.poll(WAIT), 1):
            channel.write(b"answered")
            return count
        return 0

    assert work() == 1
    assert peer.recv(100) == b"answered"


def test_an_exception_ends_the_turn(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = pair(stack, poller)
    ticker(stack, poller)

    with pytest.raises(RuntimeError, match="handler failed"):
        for _entry in poller.poll(WAIT):
            channel.write(b"written before the failure")
            raise RuntimeError("handler failed")

    assert peer.recv(100) == b"written before the failure"


def test_an_abandoned_iteration_is_sent_by_the_next_poll(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = pair(stack, poller)
    ticker(stack, poller, count=2)
    iterator = iter(poller.poll(WAIT))
    next(iterator)
    channel.write(b"held")
    assert nothing_arrives(peer)

    poller.poll(0)  # the iteration is still open, but a poll sends what is held

    assert peer.recv(100) == b"held"
    del iterator


def test_an_abandoned_iteration_is_sent_when_it_is_dropped(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = pair(stack, poller)
    ticker(stack, poller, count=2)
    iterator = iter(poller.poll(WAIT))
    next(iterator)
    channel.write(b"held")

    del iterator

    assert peer.recv(100) == b"held"


def test_a_result_iterated_twice_is_two_turns(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = pair(stack, poller)
    ticker(stack, poller)
    result = poller.poll(WAIT)

    for data, _source in result:
        assert isinstance(data, bytes)
        channel.write(b"1:" + data)
    assert peer.recv(100) == b"1:tick\n"
    for data, _source in result:
        assert isinstance(data, bytes)
        channel.write(b"2:" + data)
        assert nothing_arrives(peer)
    assert peer.recv(100) == b"2:tick\n"


def test_a_nested_poll_sends_what_the_outer_turn_held_and_its_own_at_its_end(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel, peer = pair(stack, poller)
    source = ticker(stack, poller)

    for _entry in poller.poll(WAIT):
        channel.write(b"outer ")
        source.put(b"again\n")
        inner = poller.poll(WAIT)  # a poll sends what is held first
        assert peer.recv(100) == b"outer "
        for _inner_entry in inner:
            channel.write(b"inner ")
            assert nothing_arrives(peer)
        assert peer.recv(100) == b"inner "  # the inner iteration's end sent it
        channel.write(b"outer again")  # still in the outer turn: held
        assert nothing_arrives(peer)

    assert peer.recv(100) == b"outer again"


def test_a_channel_written_by_two_nested_turns_keeps_the_order(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = pair(stack, poller)
    source = ticker(stack, poller)
    outer = poller.poll(WAIT)
    source.put(b"again\n")
    inner = poller.poll(WAIT)

    for _entry in outer:
        channel.write(b"a")
        for _inner_entry in inner:
            channel.write(b"b")
        channel.write(b"c")

    assert peer.recv(100) == b"abc"


# -- the list it still is -------------------------------------------------------------------


def test_the_result_is_a_list_in_every_other_way(poller: Poller, stack: contextlib.ExitStack) -> None:
    source = ticker(stack, poller, count=2)

    result = poller.poll(WAIT)

    assert isinstance(result, list)
    assert len(result) == 2
    assert result[0] == (b"tick\n", source)
    assert result == [(b"tick\n", source), (b"tick\n", source)]
    assert result
    assert result[-1] == (b"tick\n", source)
    assert not poller.poll(0)
    assert poller.poll(0) == []


# -- what else sends held output ------------------------------------------------------------


def test_a_channel_closed_in_the_turn_delivers_what_it_held(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = pair(stack, poller)
    ticker(stack, poller)

    for _entry in poller.poll(WAIT):
        channel.write(b"error: bad request\n")
        channel.close()

    assert peer.recv(100) == b"error: bad request\n"
    assert peer.recv(100) == b""


def test_flush_in_a_turn_sends_at_once(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = pair(stack, poller)
    ticker(stack, poller)

    for _entry in poller.poll(WAIT):
        channel.write(b"now")
        assert channel.flush(0)
        assert peer.recv(100) == b"now"


def test_held_output_of_a_line_channel_leaves_at_the_end_of_the_turn(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel, peer = pair(stack, poller, buffering="line")
    peer.sendall(b"ping\n")

    for line, source in poller.poll(WAIT):
        assert source is channel
        assert isinstance(line, bytes)
        channel.write(line.replace(b"ping", b"pong"))

    assert peer.recv(100) == b"pong\n"
