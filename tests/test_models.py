"""Model-based tests: random sequences of operations, checked against models
simple enough to be obviously right.

The outgoing buffer is driven through a ``TestChannel`` whose peer takes a
random number of bytes per write system call (``send_limit``), or stalls;
the model is a queue of bytes. The line splitter is checked against a model
that splits the whole stream on ``b'\\n'`` byte by byte.
"""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from channels import EndpointClosedException, LineSplitter, LineTooLongError, WriteBufferFullError
from channels.base import Buffer
from channels.testing import TestChannel
from tests.helpers import WAIT

MODEL_SETTINGS = settings(
    max_examples=150, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# -- the outgoing buffer ---------------------------------------------------------

chunk_kinds = st.sampled_from(["bytes", "bytearray", "memoryview"])
chunks = st.lists(st.tuples(st.binary(max_size=200), chunk_kinds), min_size=1, max_size=3)
limits = st.one_of(st.none(), st.integers(min_value=0, max_value=64))


def as_kind(data: bytes, kind: str) -> Buffer:
    if kind == "bytes":
        return data
    if kind == "bytearray":
        return bytearray(data)
    return memoryview(bytearray(data))


class OutgoingBufferMachine(RuleBasedStateMachine):
    """``TestChannel`` used on its own: every write, flush and ``get()`` makes
    one write system call (``flush`` with time to wait makes as many as it
    takes), which takes at most ``send_limit`` bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.channel = TestChannel()
        self.accepted = bytearray()  # everything write() took, in order
        self.pending = bytearray()  # the model of what waits in the channel
        self.delivered = bytearray()  # taken by the peer, not yet fetched by get()
        self.fetched = bytearray()  # returned by get()
        self.closed = False

    @initialize(max_pending=st.integers(min_value=1, max_value=600), limit=limits)
    def start(self, max_pending: int, limit: int | None) -> None:
        self.channel.abort()
        self.channel = TestChannel(max_pending=max_pending, send_limit=limit)

    def gate_open(self) -> bool:
        return not self.channel.stalled and self.channel.send_limit != 0

    def send_once(self) -> None:
        """What one write system call moves from pending to delivered."""
        if not self.pending or not self.gate_open():
            return
        limit = self.channel.send_limit
        taken = len(self.pending) if limit is None else min(limit, len(self.pending))
        self.delivered += self.pending[:taken]
        del self.pending[:taken]

    def deliver_all(self) -> None:
        self.delivered += self.pending
        self.pending.clear()

    @rule(pieces=chunks)
    def write(self, pieces: list[tuple[bytes, str]]) -> None:
        buffers = [as_kind(data, kind) for data, kind in pieces]
        size = sum(len(data) for data, _ in pieces)
        if self.closed:
            with pytest.raises(EndpointClosedException):
                self.channel.write(*buffers)
            return
        if size and len(self.pending) + size > self.channel.max_pending:
            with pytest.raises(WriteBufferFullError):
                self.channel.write(*buffers)
            return
        self.channel.write(*buffers)
        for buffer in buffers:  # the channel must have kept its own copy
            if isinstance(buffer, bytearray):
                buffer[:] = b"\xff" * len(buffer)
        joined = b"".join(data for data, _ in pieces)
        self.accepted += joined
        if joined:
            self.pending += joined
            self.send_once()

    @rule(limit=limits)
    def change_send_limit(self, limit: int | None) -> None:
        self.channel.send_limit = limit

    @rule()
    def stall(self) -> None:
        self.channel.stall()

    @rule()
    def resume(self) -> None:
        self.channel.resume()

    @precondition(lambda self: not self.closed)
    @rule()
    def flush_without_waiting(self) -> None:
        self.send_once()
        assert self.channel.flush(0) is (not self.pending)

    @precondition(lambda self: not self.closed)
    @rule()
    def flush_with_time_to_wait(self) -> None:
        if self.gate_open():
            assert self.channel.flush(WAIT) is True
            self.deliver_all()
        else:
            assert self.channel.flush(0.001) is (not self.pending)

    @rule()
    def get(self) -> None:
        if not self.closed:
            self.send_once()
        assert self.channel.get() == self.delivered
        self.fetched += self.delivered
        self.delivered.clear()

    @precondition(lambda self: not self.closed)
    @rule()
    def close(self) -> None:
        if self.gate_open():
            self.channel.close(WAIT)
            self.deliver_all()
        else:
            self.channel.close(0.001)  # the stalled peer's output is dropped
            self.pending.clear()
        self.closed = True

    @precondition(lambda self: not self.closed)
    @rule()
    def abort(self) -> None:
        self.channel.abort()
        self.pending.clear()
        self.closed = True

    @invariant()
    def pending_output_equals_the_model(self) -> None:
        assert self.channel.pending_output == len(self.pending)
        assert self.channel.pending_output <= self.channel.max_pending

    @invariant()
    def what_the_peer_took_plus_pending_is_what_was_accepted_in_order(self) -> None:
        taken = self.fetched + self.delivered
        if self.closed:
            assert self.accepted.startswith(taken)
        else:
            assert taken + self.pending == self.accepted

    def teardown(self) -> None:
        self.channel.abort()


OutgoingBufferMachine.TestCase.settings = MODEL_SETTINGS
TestOutgoingBuffer = OutgoingBufferMachine.TestCase


# -- the line splitter -----------------------------------------------------------

TOO_LONG = None

#: Streams rich in newlines and carriage returns, with the odd long run.
stream_pieces = st.lists(
    st.sampled_from([b"a", b"bc", b"\n", b"\r", b"\r\n", b"xyz\n", b"q" * 30, b"w" * 600, b"\n\n"]),
    max_size=12,
).map(b"".join)


class SplitterModel:
    """Splits byte by byte: a line ends at each ``b'\\n'``; a line longer than
    the limit (without its newline) becomes a marker as soon as it is known
    to be too long, and the rest of it up to its newline is skipped."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.events: deque[bytes | None] = deque()
        self.partial = bytearray()
        self.dropping = False

    def feed(self, data: bytes) -> None:
        for value in data:
            byte = bytes((value,))
            if self.dropping:
                self.dropping = byte != b"\n"
                continue
            self.partial += byte
            if byte == b"\n":
                self.events.append(bytes(self.partial))
                self.partial.clear()
            elif self.limit is not None and len(self.partial) > self.limit:
                self.events.append(TOO_LONG)
                self.partial.clear()
                self.dropping = True

    def finish(self) -> bytes:
        rest = bytes(self.partial)
        self.partial.clear()
        self.dropping = False
        return rest


class LineSplitterMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.splitter = LineSplitter(None)
        self.model = SplitterModel(None)

    @initialize(limit=st.sampled_from([None, 1, 3, 16, 700]))
    def start(self, limit: int | None) -> None:
        self.splitter = LineSplitter(limit)
        self.model = SplitterModel(limit)

    @rule(data=stream_pieces)
    def feed(self, data: bytes) -> None:
        self.splitter.feed(data)
        self.model.feed(data)

    @rule()
    def next_line(self) -> None:
        expected = self.model.events.popleft() if self.model.events else b""
        if expected is TOO_LONG:
            with pytest.raises(LineTooLongError):
                self.splitter.next_line()
        else:
            assert self.splitter.next_line() == (expected or None)

    @rule()
    def take_lines(self) -> None:
        events = list(self.model.events)
        self.model.events.clear()
        lines = [event for event in events if event is not None]
        assert self.splitter.take_lines() == (lines, events.count(TOO_LONG))

    @rule()
    def finish(self) -> None:
        # The stream ends: what is left after the complete lines.
        assert self.splitter.finish() == self.model.finish()

    @invariant()
    def has_line_says_whether_a_line_or_marker_waits(self) -> None:
        assert self.splitter.has_line() == bool(self.model.events)

    @invariant()
    def buffered_counts_the_queued_lines_and_the_tail(self) -> None:
        lines = sum(len(event) for event in self.model.events if event is not None)
        assert self.splitter.buffered == lines + len(self.model.partial)


LineSplitterMachine.TestCase.settings = MODEL_SETTINGS
TestLineSplitter = LineSplitterMachine.TestCase
