"""One ``poll()`` returns a bounded number of entries per channel, fairly
(SPEC §2 Poller, §3.5): the rest comes with the next poll, without waiting
for new input, and nothing more is read from that peer until it has."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pytest

from channels import SocketChannel
from channels._seam import ENTRIES_PER_POLL
from channels.poller import Poller, PollResult
from channels.testing import TestChannel
from tests.helpers import WAIT


class CountingReads(SocketChannel):
    """Counts the read system calls the channel makes."""

    __slots__ = ("reads",)

    def __init__(self, sock: socket.socket, **options: object) -> None:
        super().__init__(sock, **options)  # type: ignore[arg-type]
        self.reads = 0

    def _read(self) -> bytes:
        self.reads += 1
        return super()._read()


@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as exits:
        yield exits


@pytest.fixture
def poller() -> Iterator[Poller]:
    with Poller() as poller:
        yield poller


def lines_channel(stack: contextlib.ExitStack, poller: Poller, count: int) -> TestChannel:
    channel = stack.enter_context(TestChannel(buffering="line"))
    poller.register(channel)
    channel.put(b"".join(b"%d\n" % number for number in range(count)))
    return channel


def entries_for(result: list[PollResult], channel: object) -> list[bytes]:
    return [data for data, source in result if source is channel and isinstance(data, bytes)]


def test_one_poll_returns_at_most_the_bound_of_lines_for_one_channel(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    channel = lines_channel(stack, poller, 3 * ENTRIES_PER_POLL)

    assert len(entries_for(poller.poll(WAIT), channel)) == ENTRIES_PER_POLL


def test_the_lines_left_come_with_the_next_polls_in_order_without_new_input(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    count = 3 * ENTRIES_PER_POLL + 7
    channel = lines_channel(stack, poller, count)
    lines: list[bytes] = []

    for _ in range(4):
        # A poll that waited for new input would return nothing: none comes.
        lines += entries_for(poller.poll(WAIT), channel)

    assert lines == [b"%d\n" % number for number in range(count)]


def test_the_end_comes_after_all_the_lines_held_back(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = lines_channel(stack, poller, 2 * ENTRIES_PER_POLL)
    channel.put(b"last piece")
    channel.put_eof()
    entries: list[bytes] = []

    for _ in range(10):
        entries += entries_for(poller.poll(WAIT), channel)
        if entries[-1:] == [b""]:
            break

    assert len(entries) == 2 * ENTRIES_PER_POLL + 2
    assert entries[-2:] == [b"last piece", b""]


def test_a_channel_with_many_lines_does_not_keep_another_waiting(poller: Poller, stack: contextlib.ExitStack) -> None:
    busy = lines_channel(stack, poller, 10 * ENTRIES_PER_POLL)
    quiet = lines_channel(stack, poller, 1)

    result = poller.poll(WAIT)

    assert entries_for(result, quiet) == [b"0\n"]
    assert len(entries_for(result, busy)) == ENTRIES_PER_POLL


def test_nothing_more_is_read_from_a_peer_until_its_lines_are_taken(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    ours, theirs = socket.socketpair()
    stack.callback(theirs.close)
    channel = stack.enter_context(CountingReads(ours, buffering="line"))
    poller.register(channel)
    theirs.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        theirs.send(b"q\n" * (1024 * 1024))  # more than one read takes
    lines_per_read = channel.read_size // 2

    polls = 0
    taken = 0
    while taken < lines_per_read:
        taken += len(entries_for(poller.poll(WAIT), channel))
        polls += 1

    assert polls >= lines_per_read // ENTRIES_PER_POLL
    assert channel.reads == 1
