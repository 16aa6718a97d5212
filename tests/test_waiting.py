"""Waiting reads: ``receive(timeout)`` and ``expect(pattern, timeout)`` on every channel kind."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from channels import Channel, EndpointClosedException, LineChannel, PipeChannel, ProcessChannel, SocketChannel
from channels.base import Buffer
from channels.poller import Poller
from channels.testing import TestChannel
from tests.helpers import WAIT, read_to_end, turn_of


@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as exits:
        yield exits


def socket_pair(stack: contextlib.ExitStack, *, buffering: str = "bytes") -> tuple[SocketChannel, socket.socket]:
    ours, theirs = socket.socketpair()
    stack.callback(theirs.close)
    theirs.settimeout(WAIT)
    return stack.enter_context(SocketChannel(ours, buffering=buffering)), theirs


def later(delay: float, action: Callable[[], object], stack: contextlib.ExitStack) -> None:
    """Run ``action`` in a thread after ``delay`` seconds; joined at the end."""

    def run() -> None:
        time.sleep(delay)
        action()

    thread = threading.Thread(target=run)
    thread.start()
    stack.callback(thread.join, WAIT)


# -- every kind, through one factory: (channel, feed the channel's input, end it) ------


Kind = tuple[Channel, Callable[[bytes], None], Callable[[], None]]


def socket_kind(stack: contextlib.ExitStack, buffering: str) -> Kind:
    channel, peer = socket_pair(stack, buffering=buffering)
    return channel, peer.sendall, lambda: peer.shutdown(socket.SHUT_WR)


def pipe_kind(stack: contextlib.ExitStack, buffering: str) -> Kind:
    faucet, feeder = os.pipe()
    channel = stack.enter_context(PipeChannel(faucet, buffering=buffering))
    open_ends = [feeder]

    def close_what_is_open() -> None:
        for fd in open_ends:
            os.close(fd)

    stack.callback(close_what_is_open)

    def feed(data: bytes) -> None:
        os.write(feeder, data)

    def end() -> None:
        os.close(open_ends.pop())

    return channel, feed, end


def fake_peer_kind(stack: contextlib.ExitStack, buffering: str) -> Kind:
    channel = stack.enter_context(TestChannel(buffering=buffering))
    return channel, channel.put, channel.put_eof


def process_kind(stack: contextlib.ExitStack, buffering: str) -> Kind:
    channel = stack.enter_context(ProcessChannel(["cat"], buffering=buffering))
    return channel, channel.write, channel.shutdown_write


def line_channel_kind(stack: contextlib.ExitStack, buffering: str) -> Kind:
    inner, peer = socket_pair(stack)
    channel = stack.enter_context(LineChannel(inner)) if buffering == "line" else inner
    return channel, peer.sendall, lambda: peer.shutdown(socket.SHUT_WR)


KINDS = {
    "socket": socket_kind,
    "pipe": pipe_kind,
    "test": fake_peer_kind,
    "process": process_kind,
    "line-channel": line_channel_kind,
}


@pytest.fixture(params=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> Callable[[contextlib.ExitStack, str], Kind]:
    return KINDS[request.param]


def test_receive_returns_what_arrives_while_it_waits(
    kind: Callable[[contextlib.ExitStack, str], Kind], stack: contextlib.ExitStack
) -> None:
    channel, feed, _end = kind(stack, "bytes")
    later(0.05, lambda: feed(b"answer"), stack)

    assert channel.receive(WAIT) == b"answer"


def test_receive_in_line_mode_returns_the_next_line(
    kind: Callable[[contextlib.ExitStack, str], Kind], stack: contextlib.ExitStack
) -> None:
    channel, feed, _end = kind(stack, "line")
    feed(b"first\nsec")
    later(0.05, lambda: feed(b"ond\n"), stack)

    assert channel.receive(WAIT) == b"first\n"
    assert channel.receive(WAIT) == b"second\n"


def test_receive_times_out_without_consuming_a_partial_line(
    kind: Callable[[contextlib.ExitStack, str], Kind], stack: contextlib.ExitStack
) -> None:
    channel, feed, end = kind(stack, "line")
    feed(b"no newline yet")

    with pytest.raises(TimeoutError, match=r"nothing arrived within 0\.1s"):
        channel.receive(0.1)

    end()
    assert channel.receive(WAIT) == b"no newline yet"


def test_receive_at_the_end_raises_after_what_came_before(
    kind: Callable[[contextlib.ExitStack, str], Kind], stack: contextlib.ExitStack
) -> None:
    channel, feed, end = kind(stack, "bytes")
    feed(b"last words")
    end()

    assert channel.receive(WAIT) == b"last words"
    with pytest.raises(EndpointClosedException):
        channel.receive(WAIT)


def test_expect_returns_up_to_the_match_and_keeps_the_rest(
    kind: Callable[[contextlib.ExitStack, str], Kind], stack: contextlib.ExitStack
) -> None:
    channel, feed, end = kind(stack, "bytes")
    feed(b"Password: ")
    later(0.05, lambda: feed(b"ok >>> after the prompt"), stack)

    assert channel.expect(b">>> ", WAIT) == b"Password: ok >>> "
    end()
    assert b"".join(read_to_end(channel)) == b"after the prompt"


def test_receive_zero_does_not_wait(stack: contextlib.ExitStack) -> None:
    channel, _peer = socket_pair(stack)
    started = time.monotonic()

    with pytest.raises(TimeoutError):
        channel.receive(0)

    assert time.monotonic() - started < 0.05


def test_receive_sleeps_in_the_kernel_instead_of_spinning(stack: contextlib.ExitStack) -> None:
    channel, _peer = socket_pair(stack)
    cpu = time.process_time()

    with pytest.raises(TimeoutError):
        channel.receive(0.3)

    assert time.process_time() - cpu < 0.05


def test_receive_sends_pending_output_while_it_waits(stack: contextlib.ExitStack) -> None:
    channel, peer = socket_pair(stack)
    request = os.urandom(4 * 1024 * 1024)  # far more than the socket buffers hold

    def answer_once_all_arrived() -> None:
        got = 0
        while got < len(request):
            got += len(peer.recv(1 << 16))
        peer.sendall(b"got it all")

    channel.write(request)
    assert channel.pending_output > 0  # nobody reads yet: the socket is full
    later(0, answer_once_all_arrived, stack)

    assert channel.receive(WAIT) == b"got it all"
    assert channel.pending_output == 0


def test_receive_in_a_turn_sends_the_held_request_first(stack: contextlib.ExitStack) -> None:
    poller = stack.enter_context(Poller())
    channel, peer = socket_pair(stack)
    poller.register(channel)
    later(0, lambda: peer.sendall(peer.recv(100).upper()), stack)

    with turn_of(poller):
        channel.write(b"ping")
        assert channel.pending_output == 4  # held for the end of the turn
        assert channel.receive(WAIT) == b"PING"


def test_expect_a_regular_expression(stack: contextlib.ExitStack) -> None:
    channel, peer = socket_pair(stack)
    peer.sendall(b"status: 20")
    later(0.05, lambda: peer.sendall(b"0 OK\r\nbody"), stack)

    assert channel.expect(re.compile(rb"status: (\d+) (\w+)\r\n"), WAIT) == b"status: 200 OK\r\n"
    assert channel.read() == b"body"


def test_expect_finds_a_pattern_split_across_reads(stack: contextlib.ExitStack) -> None:
    channel, peer = socket_pair(stack)
    peer.sendall(b"abc--")
    later(0.05, lambda: peer.sendall(b"-->end"), stack)

    assert channel.expect(b"---->", WAIT) == b"abc---->"
    assert channel.read() == b"end"


def test_expect_that_times_out_keeps_what_arrived(stack: contextlib.ExitStack) -> None:
    channel, peer = socket_pair(stack)
    peer.sendall(b"no prompt here")

    with pytest.raises(TimeoutError, match=r"b'\$ ' did not arrive within 0.1s; the 14 bytes that did are kept"):
        channel.expect(b"$ ", 0.1)

    assert channel.read() == b"no prompt here"


def test_expect_at_the_end_raises_and_keeps_what_arrived(stack: contextlib.ExitStack) -> None:
    channel, peer = socket_pair(stack)
    peer.sendall(b"goodbye")
    peer.shutdown(socket.SHUT_WR)

    with pytest.raises(EndpointClosedException, match=r"ended before b'\$ ' arrived"):
        channel.expect(b"$ ", WAIT)

    assert channel.read() == b"goodbye"
    with pytest.raises(EndpointClosedException):
        channel.read()


def test_expect_in_line_mode_hands_the_rest_back_as_lines(stack: contextlib.ExitStack) -> None:
    channel, peer = socket_pair(stack, buffering="line")
    peer.sendall(b"banner\nlogin: alice\nmotd\npart")

    assert channel.expect(b"login: ", WAIT) == b"banner\nlogin: "
    assert channel.read() == b"alice\n"
    assert channel.read() == b"motd\n"
    assert channel.read() == b""
    peer.sendall(b"ial\n")
    assert channel.receive(WAIT) == b"partial\n"


def test_what_expect_keeps_is_reported_by_the_next_poll(stack: contextlib.ExitStack) -> None:
    poller = stack.enter_context(Poller())
    channel, peer = socket_pair(stack)
    poller.register(channel)
    peer.sendall(b"prompt> and more")

    assert channel.expect(b"> ", WAIT) == b"prompt> "

    assert poller.poll(0) == [(b"and more", channel)]


def test_expect_a_match_already_buffered_does_not_read(stack: contextlib.ExitStack) -> None:
    channel = stack.enter_context(TestChannel(buffering="line"))
    channel.put(b"one\ntwo\n")
    assert channel.read() == b"one\n"  # two is now buffered in the channel

    assert channel.expect(b"tw", 0) == b"tw"
    assert channel.read() == b"o\n"


@pytest.mark.parametrize(
    ("pattern", "error", "message"),
    [
        ("text", TypeError, "not text"),
        (re.compile("text"), TypeError, "not text"),
        (42, TypeError, "not int"),
        (b"", ValueError, "non-empty pattern"),
    ],
)
def test_expect_refuses_a_pattern_that_is_not_bytes(
    stack: contextlib.ExitStack, pattern: object, error: type[Exception], message: str
) -> None:
    channel, _peer = socket_pair(stack)

    with pytest.raises(error, match=message):
        channel.expect(pattern, 1)  # type: ignore[arg-type]


@pytest.mark.parametrize("wait", ["receive", "expect"])
def test_a_negative_timeout_is_refused(stack: contextlib.ExitStack, wait: str) -> None:
    channel, _peer = socket_pair(stack)

    with pytest.raises(ValueError, match="timeout must be a number of seconds >= 0"):
        if wait == "receive":
            channel.receive(-1)
        else:
            channel.expect(b"x", -1)


def test_receive_on_a_closed_channel_raises(stack: contextlib.ExitStack) -> None:
    channel, _peer = socket_pair(stack)
    channel.close()

    with pytest.raises(EndpointClosedException):
        channel.receive(WAIT)


def test_receive_from_an_interactive_child(stack: contextlib.ExitStack) -> None:
    child = stack.enter_context(
        ProcessChannel(
            [sys.executable, "-c", "import sys\nfor line in sys.stdin:\n    print(len(line), flush=True)"],
            buffering="line",
        )
    )

    child.write(b"four\n")

    assert child.receive(WAIT) == b"5\n"


class DuckChannel:
    """A channel of another library: read, write, close and get_fd, nothing more."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock

    def read(self) -> bytes:
        try:
            data = self.sock.recv(4096)
        except BlockingIOError:
            return b""
        if not data:
            raise EndpointClosedException("end")
        return data

    def write(self, *data: Buffer) -> None:
        for chunk in data:
            self.sock.sendall(chunk)

    def close(self) -> None:
        self.sock.close()

    def get_fd(self) -> int:
        return self.sock.fileno()


def test_a_line_channel_over_another_library_s_channel_waits_on_its_descriptor(stack: contextlib.ExitStack) -> None:
    ours, theirs = socket.socketpair()
    stack.callback(theirs.close)
    channel = stack.enter_context(LineChannel(DuckChannel(ours)))
    later(0.05, lambda: theirs.sendall(b"a line\n"), stack)

    assert channel.receive(WAIT) == b"a line\n"
    channel.write(b"x" * 10)
    with pytest.raises(TimeoutError):
        channel.expect(b"never", 0.05)
