"""The timer queue under the Poller (``channels.timers``), without I/O.

Driven by a :class:`~channels.testing.FakeClock`: checked against a plain
model under random operations, and for what its plan promises (a reset
that pushes a timer back costs no heap entry; dead entries do not pile up).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.testing import FakeClock
from channels.timers import Timer, TimerQueue


def fire(queue: TimerQueue) -> list[tuple[float, Timer]]:
    result: list[Any] = []
    queue.fire(result)
    return result


class Model:
    """What the queue must do, the slow and obvious way."""

    def __init__(self) -> None:
        self.when: dict[int, float | None] = {}
        self.delay: dict[int, float] = {}
        self.interval: dict[int, float | None] = {}

    def due(self, now: float) -> list[tuple[float, int]]:
        fired = sorted((when, key) for key, when in self.when.items() if when is not None and when <= now)
        for when, key in fired:
            interval = self.interval[key]
            if interval is None:
                self.when[key] = None
            else:
                self.when[key] = when + (math.floor((now - when) / interval) + 1) * interval
        return fired


operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 5), st.sampled_from([None, 1, 2, 3])),
        st.tuples(st.just("cancel"), st.integers(0, 30)),
        st.tuples(st.just("reset"), st.integers(0, 30), st.sampled_from([None, 0, 1, 4, 9])),
        st.tuples(st.just("advance"), st.sampled_from([0, 0.5, 1, 2, 7])),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_the_queue_reports_what_the_model_says_is_due(ops: list[tuple[Any, ...]]) -> None:
    clock = FakeClock()
    queue = TimerQueue(clock)
    model = Model()
    timers: list[Timer] = []
    for op in ops:
        if op[0] == "add":
            _, delay, interval = op
            timer = queue.add(delay, interval)
            key = len(timers)
            timers.append(timer)
            model.when[key] = clock() + delay
            model.delay[key] = interval if interval is not None else delay
            model.interval[key] = interval
        elif op[0] == "cancel" and op[1] < len(timers):
            timers[op[1]].cancel()
            model.when[op[1]] = None
        elif op[0] == "reset" and op[1] < len(timers):
            _, key, seconds = op
            timers[key].reset(seconds)
            model.when[key] = clock() + (model.delay[key] if seconds is None else seconds)
        elif op[0] == "advance":
            clock.advance(op[1])
        got = sorted((due, timers.index(timer)) for due, timer in fire(queue))
        assert got == model.due(clock())
        assert [timer.due for timer in timers] == [model.when[key] for key in range(len(timers))]
        next_due = queue.next_due()
        armed = [when for when in model.when.values() if when is not None]
        assert next_due == (min(armed) if armed else None)


def test_pushing_a_timer_back_adds_no_heap_entry() -> None:
    clock = FakeClock()
    queue = TimerQueue(clock)
    timer = queue.add(30)

    for _ in range(100_000):
        clock.advance(0.001)
        timer.reset()

    assert len(queue.heap) == 1
    assert queue.next_due() == timer.due == clock() + 30


def test_cancelled_timers_do_not_pile_up_in_the_heap() -> None:
    queue = TimerQueue(FakeClock())
    live = queue.add(1000)

    for _ in range(100_000):
        queue.add(10).cancel()

    assert len(queue.heap) < 1000
    assert queue.next_due() == live.due


def test_timers_brought_forward_again_and_again_do_not_pile_up() -> None:
    clock = FakeClock()
    queue = TimerQueue(clock)
    timer = queue.add(1_000_000)

    for step in range(100_000):
        timer.reset(1_000_000 - step)

    assert len(queue.heap) < 1000
    assert fire(queue) == []
    clock.advance(900_001)
    assert fire(queue) == [(900_001.0, timer)]


def test_an_internal_timer_runs_its_action_instead_of_being_reported() -> None:
    clock = FakeClock()
    queue = TimerQueue(clock)
    ran: list[list[Any]] = []
    queue.add(1, action=ran.append)

    clock.advance(1)
    result = fire(queue)

    assert result == []
    assert ran == [result]


def test_a_real_clock_shortens_the_wait_to_the_earliest_timer() -> None:
    queue = TimerQueue()
    queue.add(100)
    queue.add(50)

    wait = queue.wait_time(None)

    assert wait is not None
    assert 49 < wait <= 50
    assert queue.wait_time(1) == 1


def test_a_fake_clock_does_not_shorten_the_wait() -> None:
    clock = FakeClock()
    queue = TimerQueue(clock)
    queue.add(50)

    assert queue.wait_time(None) is None
    assert queue.wait_time(3) == 3
    clock.advance(50)
    assert queue.wait_time(None) == 0


def test_an_empty_queue_leaves_the_wait_alone() -> None:
    assert TimerQueue().wait_time(None) is None
    assert TimerQueue().wait_time(2.5) == 2.5


def test_the_fake_clock_moves_only_forward_and_when_told() -> None:
    clock = FakeClock(5)
    assert clock() == clock.now == 5.0
    clock.advance(2.5)
    assert clock() == 7.5
    assert repr(clock) == "<FakeClock at 7.5>"
    for bad in (-1, float("nan"), "1", True):
        with pytest.raises(ValueError, match="advance"):
            clock.advance(bad)  # type: ignore[arg-type]
    assert clock() == 7.5
