"""The Poller: signals as entries (``watch_signals``).

Real signals, sent to this process with ``os.kill``; every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

import pytest

from channels.poller import Poller
from channels.signals import SignalSource
from tests.helpers import WAIT
from tests.poller.support import timed_poll


@pytest.fixture(autouse=True)
def handlers_put_back() -> Iterator[None]:
    """Whatever a test does, this process's handlers end as they began."""
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP)}
    yield
    for signum, handler in before.items():
        signal.signal(signum, handler)


def kill_later(signum: int, delay: float = 0.05) -> threading.Thread:
    """Send ``signum`` to this process ``delay`` seconds from now."""

    def send() -> None:
        time.sleep(delay)
        os.kill(os.getpid(), signum)

    sender = threading.Thread(target=send)
    sender.start()
    return sender


def test_a_signal_wakes_a_waiting_poll_and_is_reported(poller: Poller) -> None:
    source = poller.watch_signals(signal.SIGUSR1)
    sender = kill_later(signal.SIGUSR1)

    result, elapsed = timed_poll(poller, WAIT)
    sender.join(WAIT)

    assert result == [(signal.SIGUSR1, source)]
    assert elapsed < WAIT / 2


def test_the_signal_number_is_a_signals_member(poller: Poller) -> None:
    poller.watch_signals(signal.SIGUSR1)
    os.kill(os.getpid(), signal.SIGUSR1)

    [(signum, _)] = poller.poll(WAIT)

    assert signum is signal.SIGUSR1


def test_a_signal_delivered_between_polls_is_reported_by_the_next_one(poller: Poller) -> None:
    source = poller.watch_signals(signal.SIGUSR1)

    os.kill(os.getpid(), signal.SIGUSR1)
    result, elapsed = timed_poll(poller, WAIT)

    assert result == [(signal.SIGUSR1, source)]
    assert elapsed < WAIT / 2
    assert poller.poll(0) == []


def test_a_signal_delivered_twice_before_a_poll_is_reported_once(poller: Poller) -> None:
    source = poller.watch_signals(signal.SIGUSR1)

    os.kill(os.getpid(), signal.SIGUSR1)
    os.kill(os.getpid(), signal.SIGUSR1)

    assert poller.poll(WAIT) == [(signal.SIGUSR1, source)]
    assert poller.poll(0) == []


def test_each_watched_signal_is_reported(poller: Poller) -> None:
    source = poller.watch_signals(signal.SIGUSR1, signal.SIGHUP)

    os.kill(os.getpid(), signal.SIGHUP)
    os.kill(os.getpid(), signal.SIGUSR1)

    assert sorted(poller.poll(WAIT)) == [(signal.SIGHUP, source), (signal.SIGUSR1, source)]
    assert source.signals == {signal.SIGUSR1, signal.SIGHUP}


def test_two_sources_report_their_own_signals(poller: Poller) -> None:
    first = poller.watch_signals(signal.SIGUSR1)
    second = poller.watch_signals(signal.SIGUSR2)

    os.kill(os.getpid(), signal.SIGUSR2)

    assert poller.poll(WAIT) == [(signal.SIGUSR2, second)]
    first.close()
    os.kill(os.getpid(), signal.SIGUSR2)
    assert poller.poll(WAIT) == [(signal.SIGUSR2, second)]


def test_a_signal_not_watched_is_not_reported(poller: Poller) -> None:
    seen: list[int] = []
    signal.signal(signal.SIGUSR2, lambda signum, frame: seen.append(signum))
    poller.watch_signals(signal.SIGUSR1)

    os.kill(os.getpid(), signal.SIGUSR2)

    assert poller.poll(0.05) == []
    assert seen == [signal.SIGUSR2]


def test_close_puts_back_the_handler_that_was_there(poller: Poller) -> None:
    seen: list[int] = []

    def previous(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)

    signal.signal(signal.SIGUSR1, previous)
    source = poller.watch_signals(signal.SIGUSR1)
    assert signal.getsignal(signal.SIGUSR1) is not previous

    source.close()

    assert source.closed
    assert signal.getsignal(signal.SIGUSR1) is previous
    os.kill(os.getpid(), signal.SIGUSR1)
    assert poller.poll(0.05) == []
    assert seen == [signal.SIGUSR1]


def test_close_puts_back_the_wakeup_descriptor_that_was_there(poller: Poller) -> None:
    reader, writer = os.pipe()
    os.set_blocking(writer, False)
    try:
        previous = signal.set_wakeup_fd(writer)
        try:
            source = poller.watch_signals(signal.SIGUSR1)
            source.close()
            assert signal.set_wakeup_fd(writer) == writer
        finally:
            signal.set_wakeup_fd(previous)
    finally:
        os.close(reader)
        os.close(writer)


def test_close_twice_is_harmless(poller: Poller) -> None:
    source = poller.watch_signals(signal.SIGUSR1)
    source.close()
    source.close()
    assert source.closed


def test_a_source_is_a_context_manager(poller: Poller) -> None:
    default = signal.getsignal(signal.SIGUSR1)
    with poller.watch_signals(signal.SIGUSR1) as source:
        assert isinstance(source, SignalSource)
        assert not source.closed
    assert source.closed
    assert signal.getsignal(signal.SIGUSR1) == default


def test_close_all_closes_the_signal_sources(poller: Poller) -> None:
    default = signal.getsignal(signal.SIGUSR1)
    source = poller.watch_signals(signal.SIGUSR1)

    poller.close_all()

    assert source.closed
    assert signal.getsignal(signal.SIGUSR1) == default


def test_a_signal_can_be_watched_again_after_close(poller: Poller) -> None:
    poller.watch_signals(signal.SIGUSR1).close()
    source = poller.watch_signals(signal.SIGUSR1)

    os.kill(os.getpid(), signal.SIGUSR1)

    assert poller.poll(WAIT) == [(signal.SIGUSR1, source)]


def test_watching_a_signal_watched_already_says_so(poller: Poller) -> None:
    poller.watch_signals(signal.SIGUSR1)
    with pytest.raises(ValueError, match="SIGUSR1 is watched already"):
        poller.watch_signals(signal.SIGUSR2, signal.SIGUSR1)
    assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL  # nothing half-done


def test_a_second_poller_cannot_watch_signals_while_the_first_does(poller: Poller) -> None:
    poller.watch_signals(signal.SIGUSR1)
    with Poller() as other, pytest.raises(ValueError, match="another Poller watches signals"):
        other.watch_signals(signal.SIGUSR2)


def test_watch_signals_outside_the_main_thread_says_it_needs_the_main_thread(poller: Poller) -> None:
    errors: list[BaseException] = []

    def watch() -> None:
        try:
            poller.watch_signals(signal.SIGUSR1)
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=watch)
    thread.start()
    thread.join(WAIT)

    assert len(errors) == 1
    assert isinstance(errors[0], ValueError)
    assert "main thread" in str(errors[0])
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_close_outside_the_main_thread_says_it_needs_the_main_thread(poller: Poller) -> None:
    source = poller.watch_signals(signal.SIGUSR1)
    errors: list[BaseException] = []

    def close() -> None:
        try:
            source.close()
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=close)
    thread.start()
    thread.join(WAIT)

    assert [type(err) for err in errors] == [ValueError]
    assert not source.closed


def test_a_poll_in_another_thread_is_woken_by_a_signal(poller: Poller) -> None:
    source = poller.watch_signals(signal.SIGUSR1)
    results: list[object] = []
    polling = threading.Thread(target=lambda: results.extend(poller.poll(WAIT)))
    polling.start()
    time.sleep(0.05)

    os.kill(os.getpid(), signal.SIGUSR1)
    polling.join(WAIT)

    assert results == [(signal.SIGUSR1, source)]


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGSTOP])
def test_a_signal_that_cannot_be_caught_is_refused(poller: Poller, signum: int) -> None:
    with pytest.raises(ValueError, match="cannot be caught"):
        poller.watch_signals(signum)
    # Nothing is left watched: the same poller watches another signal.
    poller.watch_signals(signal.SIGUSR1).close()


def test_watch_signals_refuses_what_is_not_a_signal(poller: Poller) -> None:
    with pytest.raises(ValueError, match="at least one signal"):
        poller.watch_signals()
    with pytest.raises(ValueError, match="not a signal number"):
        poller.watch_signals(10_000)
    with pytest.raises(TypeError, match="signal numbers"):
        poller.watch_signals("SIGTERM")  # type: ignore[arg-type]


def test_a_source_says_what_it_watches(poller: Poller) -> None:
    source = poller.watch_signals(signal.SIGUSR1, signal.SIGHUP)
    assert repr(source) == "<SignalSource SIGHUP, SIGUSR1>"
    source.close()
    assert repr(source) == "<SignalSource SIGHUP, SIGUSR1 closed>"


def test_wakeup_still_returns_nothing_while_signals_are_watched(poller: Poller) -> None:
    poller.watch_signals(signal.SIGUSR1)
    poller.wakeup()

    result, elapsed = timed_poll(poller, WAIT)

    assert result == []
    assert elapsed < WAIT / 2
