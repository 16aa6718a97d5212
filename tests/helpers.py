"""Small utilities shared by the tests. Every loop here is bounded in time."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator

from channels import Channel, EndpointClosedException
from channels.poller import Poller
from channels.testing import TestChannel

#: Seconds any single wait in a test may take before it fails.
WAIT = 10.0


def open_fd_count() -> int:
    """How many descriptors this process has open now."""
    return len(os.listdir("/proc/self/fd"))


def wait_until(predicate: Callable[[], object], timeout: float = WAIT, interval: float = 0.001) -> None:
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def read_exactly(channel: Channel, size: int, timeout: float = WAIT) -> bytes:
    """Read from a bytes-mode channel until ``size`` bytes have arrived."""
    chunks: list[bytes] = []
    got = 0
    deadline = time.monotonic() + timeout
    while got < size:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {got} of {size} bytes arrived within {timeout}s")
        data = channel.read()
        if not data:
            time.sleep(0.001)
            continue
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


def read_lines(channel: Channel, count: int, timeout: float = WAIT) -> list[bytes]:
    """Read ``count`` lines from a line-mode channel."""
    lines: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(lines) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(lines)} of {count} lines arrived within {timeout}s")
        line = channel.read()
        if line:
            lines.append(line)
        else:
            time.sleep(0.001)
    return lines


def read_to_end(channel: Channel, timeout: float = WAIT) -> list[bytes]:
    """Read everything until the channel raises EndpointClosedException."""
    pieces: list[bytes] = []
    deadline = time.monotonic() + timeout
    while True:
        if time.monotonic() > deadline:
            raise AssertionError(f"no end of stream within {timeout}s")
        try:
            data = channel.read()
        except EndpointClosedException:
            return pieces
        if data:
            pieces.append(data)
        else:
            time.sleep(0.001)


@contextlib.contextmanager
def turn_of(poller: Poller) -> Iterator[None]:
    """Run the body inside a turn of ``poller``, as the body of a program's
    ``for data, channel in poller.poll(): ...`` loop runs: writes to the
    poller's channels are held until the block ends (as by ``break``)."""
    ticker = TestChannel()
    try:
        poller.register(ticker)
        ticker.put(b"tick")
        turn = iter(poller.poll(WAIT))
        assert next(turn, None) is not None, "the ticker was not reported"
        try:
            yield
        finally:
            close = getattr(turn, "close", None)
            if close is not None:
                close()
    finally:
        poller.unregister(ticker)
        ticker.close()
