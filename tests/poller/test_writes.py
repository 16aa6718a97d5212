"""The Poller: writes.

Everything here runs over real descriptors: TestChannel pipes, socketpairs,
TCP on 127.0.0.1 and Unix sockets under ``tmp_path``. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import time

from channels.poller import Poller
from tests.helpers import WAIT
from tests.poller.support import (
    MiB,
    channel_pair,
    drain,
    timed_poll,
    wait_readable,
)


def test_writes_between_polls_are_delivered_after_the_next_poll(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)

    for i in range(100):
        channel.write(b"%03d," % i)
    poller.poll(0)

    expected = b"".join(b"%03d," % i for i in range(100))
    peer.setblocking(False)
    wait_readable(peer.fileno())
    assert drain(peer) == expected
    assert channel.pending_output == 0


def test_large_write_is_completed_by_polls_without_flush(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    payload = random.randbytes(8 * MiB)
    peer.setblocking(False)

    channel.write(payload)
    assert channel.pending_output > 0, "the peer cannot take 8 MiB at once"
    received = bytearray()
    polls = 0
    deadline = time.monotonic() + WAIT
    while len(received) < len(payload):
        assert time.monotonic() < deadline, f"{len(received)} of {len(payload)} bytes after {polls} polls"
        assert poller.poll(0.5) == []
        polls += 1
        received += drain(peer, piece=16384)  # a slow reader: small pieces, between polls

    assert received == payload
    assert channel.pending_output == 0
    assert polls > 1


def test_poller_stops_watching_write_readiness_once_output_is_sent(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = channel_pair(stack)
    poller.register(channel)
    peer.setblocking(False)
    channel.write(random.randbytes(4 * MiB))
    deadline = time.monotonic() + WAIT
    got = 0
    while got < 4 * MiB:
        assert time.monotonic() < deadline
        poller.poll(0.5)
        got += len(drain(peer))
    assert channel.pending_output == 0

    # Idle now: a poll sleeps its whole timeout instead of returning at once
    # for a writable socket with nothing to write.
    result, elapsed = timed_poll(poller, 0.2)
    assert result == []
    assert elapsed >= 0.15
    fast = 0
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        result, elapsed = timed_poll(poller, 0.05)
        assert result == []
        fast += elapsed < 0.001
    assert fast <= 2


def test_64_mib_write_arrives_intact_while_another_channel_is_served(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    bulk, bulk_peer = channel_pair(stack)
    chat, chat_peer = channel_pair(stack, buffering="line")
    poller.register(bulk)
    poller.register(chat)
    bulk_peer.setblocking(False)
    chat_peer.setblocking(False)
    size = 64 * MiB
    payload = random.randbytes(size)
    expected = hashlib.sha256(payload).hexdigest()

    bulk.write(payload)
    del payload
    digest = hashlib.sha256()
    received = 0
    answers = 0
    asked = False
    chat_buffer = b""
    deadline = time.monotonic() + 30
    while received < size:
        assert time.monotonic() < deadline, f"{received} of {size} bytes, {answers} answers"
        for data, channel in poller.poll(1.0):
            assert channel is chat, "only the chat channel has input"
            assert isinstance(data, bytes)
            chat.write(b"re: " + data)
        for _ in range(64):  # the bulk peer reads in small pieces
            try:
                piece = bulk_peer.recv(16384)
            except BlockingIOError:
                break
            digest.update(piece)
            received += len(piece)
        chat_buffer += drain(chat_peer)
        while b"\n" in chat_buffer:
            line, chat_buffer = chat_buffer.split(b"\n", 1)
            assert line == b"re: question %d" % answers
            answers += 1
            asked = False
        if not asked:
            chat_peer.sendall(b"question %d\n" % answers)
            asked = True

    assert digest.hexdigest() == expected
    assert bulk.pending_output == 0
    assert answers >= 5, "the other channel was starved during the transfer"
