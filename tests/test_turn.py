"""The turn (SPEC §3.1): writes made while a ``poll()`` result is iterated
leave when that iteration ends; every other write leaves at once."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
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


# -- a peer's failure in a turn ------------------------------------------------------------


def gone_pair(stack: contextlib.ExitStack, poller: Poller) -> CountingSocketChannel:
    """A registered channel whose peer has closed: sending to it fails."""
    channel, peer = pair(stack, poller)
    peer.close()
    return channel


def test_a_failed_send_in_a_turn_does_not_raise_and_ends_the_channel(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel = gone_pair(stack, poller)
    ticker(stack, poller)

    for _entry in poller.poll(WAIT):
        channel.write(b"x" * 100_000)  # large: sent at once, and fails

    assert channel.closed
    assert isinstance(channel.end_cause, BrokenPipeError)


def test_a_failure_met_by_held_output_at_the_end_of_the_turn_ends_the_channel(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel = gone_pair(stack, poller)
    ticker(stack, poller)

    for _entry in poller.poll(WAIT):
        channel.write(b"reply\n")  # held: fails when the turn ends
        assert not channel.closed

    assert channel.closed
    assert isinstance(channel.end_cause, BrokenPipeError)


def test_a_channel_ended_by_its_peer_in_a_turn_is_reported_once(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = stack.enter_context(TestChannel())
    poller.register(channel)
    ticker(stack, poller)
    for _entry in poller.poll(WAIT):
        channel.put_reset()  # the peer goes while the turn runs
        channel.write(b"reply\n")

    ends = [source for data, source in poller.poll(WAIT) if source is channel and data == b""]
    assert ends == [channel]
    assert all(source is not channel for _data, source in poller.poll(0))


def test_writes_in_later_turns_to_a_channel_its_peer_ended_are_dropped(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel = gone_pair(stack, poller)
    ticker(stack, poller, count=2)
    for _entry in poller.poll(WAIT):
        channel.write(b"reply\n")
    ticker(stack, poller)

    for _entry in poller.poll(WAIT):
        channel.write(b"another reply\n")  # no exception, in this turn or the next
        channel.write(b"and", b" more")


def test_a_write_outside_a_turn_to_a_channel_its_peer_ended_raises_with_the_cause(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel = gone_pair(stack, poller)
    ticker(stack, poller)
    for _entry in poller.poll(WAIT):
        channel.write(b"reply\n")

    with pytest.raises(EndpointClosedException) as raised:
        channel.write(b"late")
    assert isinstance(raised.value.__cause__, BrokenPipeError)


def test_a_failed_send_outside_a_turn_raises_as_before(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = gone_pair(stack, poller)

    with pytest.raises(EndpointClosedException) as raised:
        channel.write(b"reply\n")

    assert isinstance(raised.value.__cause__, BrokenPipeError)
    assert not channel.closed  # its owner decides


def test_a_send_that_failed_outside_a_turn_ends_the_channel_at_the_next_write_in_a_turn(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel = gone_pair(stack, poller)
    with pytest.raises(EndpointClosedException):
        channel.write(b"reply\n")
    ticker(stack, poller)

    for _entry in poller.poll(WAIT):
        channel.write(b"again\n")

    assert channel.closed
    assert isinstance(channel.end_cause, BrokenPipeError)


def test_a_write_in_a_turn_after_its_owner_shut_the_write_side_raises(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel, _peer = pair(stack, poller)
    channel.shutdown_write()
    ticker(stack, poller)

    for _entry in poller.poll(WAIT):
        with pytest.raises(EndpointClosedException, match="shut down"):
            channel.write(b"late")


def test_end_cause_is_none_while_open_and_after_a_clean_end(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = pair(stack, poller)
    assert channel.end_cause is None
    peer.shutdown(socket.SHUT_WR)

    assert (b"", channel) in poller.poll(WAIT)
    assert channel.end_cause is None
    channel.close()
    assert channel.end_cause is None


def test_end_cause_is_the_error_a_read_met(stack: contextlib.ExitStack) -> None:
    channel = stack.enter_context(TestChannel())
    channel.put_reset()

    with pytest.raises(EndpointClosedException):
        channel.read()

    assert isinstance(channel.end_cause, ConnectionResetError)


# -- close() in a turn ---------------------------------------------------------------------


def test_close_in_a_turn_with_output_the_peer_does_not_take_returns_at_once(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel, peer = pair(stack, poller)
    ticker(stack, poller)
    payload = b"r" * (4 * 1024 * 1024)  # more than the kernel's buffers hold

    for _entry in poller.poll(WAIT):
        channel.write(payload)
        started = time.monotonic()
        channel.close()  # the default linger is 5 s
        assert time.monotonic() - started < 2.5
        assert channel.closed

    received = receive_while_polling(poller, peer)
    assert received == payload


def test_a_channel_closed_in_a_turn_is_reported_once_and_its_writes_raise(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel, _peer = pair(stack, poller)
    ticker(stack, poller)
    for _entry in poller.poll(WAIT):
        channel.write(b"r" * (4 * 1024 * 1024))
        channel.close()
        with pytest.raises(EndpointClosedException, match="closed"):
            channel.write(b"late")

    assert [source for data, source in poller.poll(WAIT) if source is channel] == [channel]


def test_output_of_a_channel_closed_in_a_turn_is_dropped_once_its_linger_has_passed(
    poller: Poller, stack: contextlib.ExitStack, caplog: pytest.LogCaptureFixture
) -> None:
    channel, peer = pair(stack, poller)
    ticker(stack, poller)
    for _entry in poller.poll(WAIT):
        channel.write(b"r" * (4 * 1024 * 1024))
        channel.close(timeout=0.2)
    deadline = time.monotonic() + WAIT

    while channel.pending_output:  # the peer never reads
        assert time.monotonic() < deadline
        poller.poll(1.0)  # wakes up when the linger ends, without any event

    assert "closing dropped" in caplog.text
    assert read_until_end(peer) < 4 * 1024 * 1024


def test_close_all_delivers_what_channels_closed_in_a_turn_still_hold(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel, peer = pair(stack, poller)
    ticker(stack, poller)
    payload = b"r" * (4 * 1024 * 1024)
    for _entry in poller.poll(WAIT):
        channel.write(payload)
        channel.close()
    reader = Reader(peer)

    poller.close_all()

    assert reader.result(WAIT) == payload


CLOSE_IN_A_TURN_THEN_EXIT = """
import socket, sys
from channels import SocketChannel
from channels.poller import Poller
from channels.testing import TestChannel

poller = Poller()
channel = SocketChannel(socket.create_connection(("127.0.0.1", int(sys.argv[1]))))
poller.register(channel)
ticker = TestChannel()
poller.register(ticker)
ticker.put(b"tick")
for _entry in poller.poll(10):
    channel.write(b"r" * (4 * 1024 * 1024))
    channel.close()
print("closed", flush=True)
"""


def test_output_of_a_channel_closed_in_a_turn_is_delivered_at_exit(stack: contextlib.ExitStack) -> None:
    listener = stack.enter_context(socket.create_server(("127.0.0.1", 0)))
    program = stack.enter_context(
        subprocess.Popen(
            [sys.executable, "-c", CLOSE_IN_A_TURN_THEN_EXIT, str(listener.getsockname()[1])], stdout=subprocess.PIPE
        )
    )
    stack.callback(program.kill)
    listener.settimeout(WAIT)
    peer, _ = listener.accept()
    stack.callback(peer.close)
    peer.settimeout(WAIT)
    assert program.stdout is not None
    assert program.stdout.readline() == b"closed\n"  # the program is exiting, nothing read yet

    assert read_until_end(peer) == 4 * 1024 * 1024
    assert program.wait(WAIT) == 0


class Reader(threading.Thread):
    """Reads a socket to its end in a thread."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(daemon=True)
        self._sock = sock
        self._chunks: list[bytes] = []
        self.start()

    def run(self) -> None:
        while data := self._sock.recv(1024 * 1024):
            self._chunks.append(data)

    def result(self, timeout: float) -> bytes:
        self.join(timeout)
        assert not self.is_alive(), "no end of stream"
        return b"".join(self._chunks)


def receive_while_polling(poller: Poller, peer: socket.socket) -> bytes:
    """Read ``peer`` to its end while the poller runs, as a server's loop would."""
    peer.setblocking(False)
    chunks: list[bytes] = []
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        poller.poll(0.01)
        try:
            data = peer.recv(1024 * 1024)
        except BlockingIOError:
            continue
        if not data:
            return b"".join(chunks)
        chunks.append(data)
    raise AssertionError("no end of stream")


def read_until_end(peer: socket.socket) -> int:
    """How many bytes ``peer`` reads until its end (or a reset)."""
    received = 0
    with contextlib.suppress(ConnectionResetError):
        while data := peer.recv(1024 * 1024):
            received += len(data)
    return received


def test_close_in_a_turn_of_a_channel_whose_peer_is_gone_closes_at_once(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel, peer = pair(stack, poller)
    ticker(stack, poller)
    for _entry in poller.poll(WAIT):
        channel.write(b"reply\n")  # held
        peer.close()
        channel.close()

    assert channel.closed
    assert channel.pending_output == 0


def test_close_in_a_turn_without_a_time_limit_delivers_whenever_the_peer_reads(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel, peer = pair(stack, poller)
    ticker(stack, poller)
    payload = b"r" * (4 * 1024 * 1024)
    for _entry in poller.poll(WAIT):
        channel.write(payload)
        channel.close(timeout=None)

    assert receive_while_polling(poller, peer) == payload
