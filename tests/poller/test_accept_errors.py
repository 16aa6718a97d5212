"""The Poller: accept errors.

Everything here runs over real descriptors: TestChannel pipes, socketpairs,
TCP on 127.0.0.1 and Unix sockets under ``tmp_path``. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import resource
import socket
import struct
import time
from collections.abc import Iterator

import pytest

from channels.poller import Poller, PollResult
from tests.poller.support import (
    accepted,
    connect,
    data_of,
    poll_until,
    tcp_server,
    timed_poll,
)


@contextlib.contextmanager
def descriptor_limit(limit: int) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def lowest_free_descriptor() -> int:
    probe = os.open(os.devnull, os.O_RDONLY)
    os.close(probe)
    return probe


def poll_while_exhausted(poller: Poller, seconds: float = 1.0) -> tuple[int, int]:
    """Poll for ``seconds`` while no descriptor is free: (polls, polls that returned at once)."""
    with pytest.raises(OSError) as exhausted:
        os.close(os.open(os.devnull, os.O_RDONLY))
    assert exhausted.value.errno == errno.EMFILE
    polls = 0
    fast = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        result, elapsed = timed_poll(poller, 0.05)
        assert result == [], "no client can be accepted without descriptors"
        polls += 1
        fast += elapsed < 0.001
    return polls, fast


def accepted_again(poller: Poller, stack: contextlib.ExitStack, server: socket.socket) -> None:
    """A new client is accepted and served once descriptors are available."""
    latecomer = connect(stack, server)
    latecomer.sendall(b"hi")

    def latecomer_served(results: list[PollResult]) -> bool:
        return any(
            client.socket.getpeername() == latecomer.getsockname() and (b"hi", client) in results
            for client in accepted(results)
        )

    poll_until(poller, latecomer_served)  # the back-off pause passes within WAIT


def test_accept_out_of_descriptors_neither_raises_nor_spins(poller: Poller, stack: contextlib.ExitStack) -> None:
    server = tcp_server(stack)
    poller.add_server(server)
    waiting = [connect(stack, server) for _ in range(60)]
    gc.collect()

    with descriptor_limit(lowest_free_descriptor()):
        polls, fast = poll_while_exhausted(poller)

    assert fast <= 20, f"{fast} of {polls} polls returned at once: poll() spins on EMFILE"
    # The reserve descriptor let the poller refuse the first client cleanly.
    assert waiting[0].recv(16) == b""
    accepted_again(poller, stack, server)


def test_accept_out_of_descriptors_without_a_spare_backs_off(poller: Poller, stack: contextlib.ExitStack) -> None:
    server = tcp_server(stack)
    waiting = connect(stack, server)
    gc.collect()

    with descriptor_limit(lowest_free_descriptor()):
        poller.add_server(server)  # no spare descriptor can be opened now
        polls, fast = poll_while_exhausted(poller)

    assert fast <= 20, f"{fast} of {polls} polls returned at once: poll() spins on EMFILE"
    waiting.sendall(b"still waiting")
    clients = accepted(poll_until(poller, lambda r: bool(accepted(r))))
    assert [client.socket.getpeername() for client in clients] == [waiting.getsockname()]
    accepted_again(poller, stack, server)


def test_client_reset_before_accept_does_not_break_poll(line_poller: Poller, stack: contextlib.ExitStack) -> None:
    server = tcp_server(stack)
    line_poller.add_server(server)
    quitter = connect(stack, server)
    quitter.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    quitter.close()  # RST while the connection waits in the backlog
    good = connect(stack, server)
    good.sendall(b"still here\n")

    def good_served(results: list[PollResult]) -> bool:
        return any(data_of(results, client) == [b"still here\n"] for client in accepted(results))

    results = poll_until(line_poller, good_served)
    for client in accepted(results):  # the reset one may have ended and been forgotten
        client.close()
