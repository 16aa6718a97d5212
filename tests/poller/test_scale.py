"""The Poller: scale.

Everything here runs over real descriptors: TestChannel pipes, socketpairs,
TCP on 127.0.0.1 and Unix sockets under ``tmp_path``. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import time

import pytest

from channels import (
    SocketChannel,
)
from channels.poller import Poller
from tests.helpers import WAIT, open_fd_count
from tests.poller.support import (
    channel_pair,
)


def _best_poll_time(poller: Poller, runs: int = 200) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        result = poller.poll(0)
        best = min(best, time.perf_counter() - start)
        assert result == []
    return best


def test_poll_cost_does_not_grow_with_idle_channels(poller: Poller, stack: contextlib.ExitStack) -> None:
    idle_pairs = 5000  # both ends of each socketpair are idle channels: 10,000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = open_fd_count() + 2 * idle_pairs + 100
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"needs {needed} descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
        stack.callback(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))

    def idle_channels(pairs: int) -> list[SocketChannel]:
        made: list[SocketChannel] = []
        for _ in range(pairs):
            for sock in socket.socketpair():
                stack.callback(sock.close)
                made.append(SocketChannel(sock))
                stack.callback(made[-1].close)
        return made

    active, active_peer = channel_pair(stack)
    poller.register(active)
    for channel in idle_channels(5):
        poller.register(channel)
    assert len(poller) == 11
    few = _best_poll_time(poller)

    for channel in idle_channels(idle_pairs - 5):
        poller.register(channel)
    assert len(poller) == 2 * idle_pairs + 1
    many = _best_poll_time(poller)

    active_peer.sendall(b"ping")
    assert poller.poll(WAIT) == [(b"ping", active)]
    assert many <= 20 * max(few, 1e-6), f"poll(0): {many * 1e6:.0f}us with 10,000 idle vs {few * 1e6:.0f}us with 10"
