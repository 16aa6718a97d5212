"""``Poller.wakeup()``: a blocking poll returns early, woken from a thread or
a signal handler. The time bounds only catch a poll that was not woken."""

from __future__ import annotations

import gc
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

import pytest

from channels import SocketChannel
from channels.poller import Poller
from channels.testing import TestChannel
from tests.helpers import WAIT, open_fd_count

#: A woken poll returns long before this; one that was not woken waits WAIT.
WOKEN = WAIT / 2


@pytest.fixture
def poller() -> Iterator[Poller]:
    with Poller() as poller:
        yield poller


def timed_poll(poller: Poller) -> tuple[list[object], float]:
    start = time.monotonic()
    result: list[object] = list(poller.poll(WAIT))
    return result, time.monotonic() - start


def later(seconds: float, action: Callable[[], object]) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def test_wakeup_from_another_thread_ends_a_blocking_poll(poller: Poller) -> None:
    timer = later(0.05, poller.wakeup)
    try:
        result, elapsed = timed_poll(poller)
    finally:
        timer.join(WAIT)
    assert result == []
    assert elapsed < WOKEN


def test_wakeup_from_a_signal_handler_ends_a_blocking_poll(poller: Poller) -> None:
    def on_alarm(signum: int, frame: FrameType | None) -> None:
        poller.wakeup()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        result, elapsed = timed_poll(poller)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert result == []
    assert elapsed < WOKEN


def test_wakeup_before_a_poll_makes_it_return_at_once(poller: Poller) -> None:
    poller.wakeup()
    result, elapsed = timed_poll(poller)
    assert result == []
    assert elapsed < WOKEN


def test_wakeups_made_before_a_poll_count_as_one(poller: Poller) -> None:
    for _ in range(1000):
        poller.wakeup()
    assert poller.poll(WAIT) == []
    ours, theirs = socket.socketpair()
    with SocketChannel(ours) as channel, theirs:
        poller.register(channel)
        timer = later(0.05, lambda: theirs.send(b"real news"))
        try:
            assert poller.poll(WAIT) == [(b"real news", channel)]  # not woken again by the spent wake-ups
        finally:
            timer.join(WAIT)


def test_wakeup_does_not_hide_what_else_happened(poller: Poller) -> None:
    channel = TestChannel()
    poller.register(channel)
    channel.put(b"data")
    poller.wakeup()
    assert poller.poll(WAIT) == [(b"data", channel)]
    channel.close()


def test_wakeup_after_close_does_nothing() -> None:
    poller = Poller()
    poller.close()
    poller.wakeup()


def test_close_frees_the_wakeup_descriptors() -> None:
    before = open_fd_count()
    Poller().close()
    assert open_fd_count() == before


def test_a_poller_dropped_without_close_frees_its_wakeup_descriptors() -> None:
    before = open_fd_count()
    poller = Poller()
    del poller
    gc.collect()
    assert open_fd_count() == before
