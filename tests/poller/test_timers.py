"""The Poller: timers as entries (``call_later``, ``call_every``, ``Timer``).

Most run on a :class:`~channels.testing.FakeClock`, which moves only when
told, so that nothing sleeps; a few run on the real clock, with short
timers and bounded waits, to show that a poll wakes for a timer.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest

from channels.poller import Poller
from channels.testing import FakeClock
from channels.timers import Timer
from tests.helpers import WAIT
from tests.poller.support import channel_pair, timed_poll


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(100.0)


@pytest.fixture
def fake_poller(clock: FakeClock) -> Iterator[Poller]:
    with Poller(clock=clock) as poller:
        yield poller


def test_a_timer_is_reported_with_the_time_it_was_due_at(fake_poller: Poller, clock: FakeClock) -> None:
    timer = fake_poller.call_later(5)

    clock.advance(7)

    assert fake_poller.poll(0) == [(105.0, timer)]


def test_a_timer_not_yet_due_is_not_reported(fake_poller: Poller, clock: FakeClock) -> None:
    fake_poller.call_later(5)

    clock.advance(4.999)

    assert fake_poller.poll(0) == []


def test_a_one_shot_timer_is_reported_once(fake_poller: Poller, clock: FakeClock) -> None:
    timer = fake_poller.call_later(1)
    clock.advance(1)
    assert fake_poller.poll(0) == [(101.0, timer)]

    clock.advance(10)

    assert fake_poller.poll(0) == []
    assert not timer.active
    assert timer.due is None


def test_due_timers_are_reported_in_the_order_they_were_due(fake_poller: Poller, clock: FakeClock) -> None:
    late = fake_poller.call_later(3)
    early = fake_poller.call_later(1)
    middle = fake_poller.call_later(2)

    clock.advance(3)

    assert fake_poller.poll(0) == [(101.0, early), (102.0, middle), (103.0, late)]


def test_timers_due_at_the_same_time_come_in_the_order_they_were_made(fake_poller: Poller, clock: FakeClock) -> None:
    timers = [fake_poller.call_later(1) for _ in range(5)]

    clock.advance(1)

    assert [timer for _, timer in fake_poller.poll(0)] == timers


def test_a_timer_comes_in_the_same_list_as_channel_data(
    fake_poller: Poller, clock: FakeClock, stack: contextlib.ExitStack
) -> None:
    channel, peer = channel_pair(stack)
    fake_poller.register(channel)
    timer = fake_poller.call_later(1)
    peer.sendall(b"data")
    clock.advance(1)

    deadline = time.monotonic() + WAIT
    result = fake_poller.poll(WAIT)
    while (b"data", channel) not in result and time.monotonic() < deadline:
        result += fake_poller.poll(0.1)

    assert (b"data", channel) in result
    assert (101.0, timer) in result


def test_a_cancelled_timer_is_not_reported(fake_poller: Poller, clock: FakeClock) -> None:
    timer = fake_poller.call_later(1)

    timer.cancel()
    clock.advance(2)

    assert fake_poller.poll(0) == []
    assert not timer.active


def test_cancel_twice_is_harmless(fake_poller: Poller, clock: FakeClock) -> None:
    timer = fake_poller.call_later(1)
    timer.cancel()
    timer.cancel()
    clock.advance(2)
    assert fake_poller.poll(0) == []


def test_reset_pushes_a_timer_back_by_its_delay(fake_poller: Poller, clock: FakeClock) -> None:
    timer = fake_poller.call_later(10)
    clock.advance(8)

    timer.reset()

    clock.advance(9)  # 117: past the first time, short of the new one
    assert fake_poller.poll(0) == []
    clock.advance(1)
    assert fake_poller.poll(0) == [(118.0, timer)]


def test_reset_with_seconds_makes_it_due_that_far_from_now(fake_poller: Poller, clock: FakeClock) -> None:
    timer = fake_poller.call_later(10)

    timer.reset(2)

    assert timer.due == 102.0
    clock.advance(2)
    assert fake_poller.poll(0) == [(102.0, timer)]


def test_reset_brings_a_timer_forward_too(fake_poller: Poller, clock: FakeClock) -> None:
    timer = fake_poller.call_later(10)
    timer.reset(30)

    timer.reset(1)

    clock.advance(1)
    assert fake_poller.poll(0) == [(101.0, timer)]
    clock.advance(100)
    assert fake_poller.poll(0) == []


def test_reset_arms_a_cancelled_or_reported_timer_again(fake_poller: Poller, clock: FakeClock) -> None:
    timer = fake_poller.call_later(1)
    timer.cancel()
    timer.reset()
    clock.advance(1)
    assert fake_poller.poll(0) == [(101.0, timer)]

    timer.reset()

    clock.advance(1)
    assert fake_poller.poll(0) == [(102.0, timer)]


def test_a_periodic_timer_is_reported_every_interval(fake_poller: Poller, clock: FakeClock) -> None:
    timer = fake_poller.call_every(2)

    dues = []
    for _ in range(3):
        clock.advance(2)
        dues += [due for due, _ in fake_poller.poll(0)]

    assert dues == [102.0, 104.0, 106.0]
    assert timer.active
    assert timer.interval == 2.0


def test_a_periodic_timer_that_fell_behind_fires_once_then_keeps_its_schedule(
    fake_poller: Poller, clock: FakeClock
) -> None:
    timer = fake_poller.call_every(1)

    clock.advance(10.5)  # ten times missed

    assert fake_poller.poll(0) == [(101.0, timer)]
    assert timer.due == 111.0
    assert fake_poller.poll(0) == []


def test_a_cancelled_periodic_timer_stops(fake_poller: Poller, clock: FakeClock) -> None:
    timer = fake_poller.call_every(1)
    clock.advance(1)
    assert len(fake_poller.poll(0)) == 1

    timer.cancel()

    clock.advance(5)
    assert fake_poller.poll(0) == []


def test_call_later_zero_is_due_at_the_next_poll(fake_poller: Poller) -> None:
    timer = fake_poller.call_later(0)

    assert fake_poller.poll(0) == [(100.0, timer)]


def test_a_poll_on_a_fake_clock_does_not_wait_for_a_timer_not_due(fake_poller: Poller) -> None:
    fake_poller.call_later(1000)

    result, elapsed = timed_poll(fake_poller, 0.05)

    assert result == []
    assert 0.04 < elapsed < WAIT


def test_a_poll_with_a_due_timer_does_not_wait(fake_poller: Poller, clock: FakeClock) -> None:
    timer = fake_poller.call_later(1)
    clock.advance(1)

    result, elapsed = timed_poll(fake_poller, WAIT)

    assert result == [(101.0, timer)]
    assert elapsed < WAIT / 2


def test_a_poll_wakes_for_a_timer_before_its_timeout(poller: Poller) -> None:
    timer = poller.call_later(0.05)
    start = time.monotonic()

    result, elapsed = timed_poll(poller, WAIT)

    assert result == [(pytest.approx(start + 0.05, abs=0.01), timer)]
    assert 0.04 < elapsed < WAIT / 2


def test_a_poll_without_timeout_wakes_for_a_timer(poller: Poller) -> None:
    timer = poller.call_later(0.02)

    result, elapsed = timed_poll(poller, None)

    assert [entry[1] for entry in result] == [timer]
    assert elapsed < WAIT


def test_a_timer_due_value_is_the_monotonic_time_it_was_due_at(poller: Poller) -> None:
    before = time.monotonic()
    timer = poller.call_later(0.01)
    after = time.monotonic()

    result, _ = timed_poll(poller, WAIT)

    [(due, reported)] = result
    assert reported is timer
    assert before + 0.01 <= due <= after + 0.01
    assert due <= time.monotonic()


def test_a_poll_shorter_than_the_earliest_timer_returns_empty(poller: Poller) -> None:
    poller.call_later(WAIT)

    result, elapsed = timed_poll(poller, 0.02)

    assert result == []
    assert elapsed < WAIT / 2


def test_a_periodic_timer_on_the_real_clock_fires_repeatedly(poller: Poller) -> None:
    timer = poller.call_every(0.01)
    entries: list[tuple[float, object]] = []
    deadline = time.monotonic() + WAIT
    while len(entries) < 3 and time.monotonic() < deadline:
        entries += poller.poll(WAIT)

    assert [reported for _, reported in entries] == [timer] * len(entries)
    dues = [due for due, _ in entries]
    assert len(dues) >= 3
    assert dues == sorted(dues)
    assert len(set(dues)) == len(dues)


def test_timers_are_kept_by_close_all_and_go_on(fake_poller: Poller, clock: FakeClock) -> None:
    timer = fake_poller.call_later(1)

    fake_poller.close_all()

    clock.advance(1)
    assert fake_poller.poll(0) == [(101.0, timer)]


@pytest.mark.parametrize("seconds", [-1, float("nan"), float("inf")])
def test_call_later_refuses_a_bad_delay(poller: Poller, seconds: float) -> None:
    with pytest.raises(ValueError, match="call_later"):
        poller.call_later(seconds)


@pytest.mark.parametrize("seconds", ["1", None, True])
def test_call_later_refuses_what_is_not_a_number(poller: Poller, seconds: object) -> None:
    with pytest.raises(TypeError, match=r"call_later.*number"):
        poller.call_later(seconds)  # type: ignore[arg-type]


@pytest.mark.parametrize("seconds", [0, -1, float("inf")])
def test_call_every_refuses_an_interval_that_is_not_above_zero(poller: Poller, seconds: float) -> None:
    with pytest.raises(ValueError, match=r"call_every.*above 0"):
        poller.call_every(seconds)


def test_reset_refuses_a_bad_delay(poller: Poller) -> None:
    timer = poller.call_later(1)
    with pytest.raises(ValueError, match="reset"):
        timer.reset(-1)


def test_a_timer_says_what_it_is(fake_poller: Poller) -> None:
    one_shot = fake_poller.call_later(1)
    periodic = fake_poller.call_every(2)

    assert repr(one_shot) == "<Timer one-shot due at 101.000>"
    assert repr(periodic) == "<Timer every 2.0s due at 102.000>"
    one_shot.cancel()
    assert repr(one_shot) == "<Timer one-shot not armed>"
    assert isinstance(one_shot, Timer)
