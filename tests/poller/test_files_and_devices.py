"""The Poller: descriptors epoll cannot watch: regular files and devices.

Everything here runs over real descriptors: TestChannel pipes, socketpairs,
TCP on 127.0.0.1 and Unix sockets under ``tmp_path``. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
from pathlib import Path

import pytest

from channels import (
    EndpointClosedException,
    PipeChannel,
)
from channels.poller import Poller
from channels.testing import TestChannel
from tests.helpers import WAIT, turn_of
from tests.poller.support import (
    MiB,
    channel_pair,
    data_of,
    ended,
    poll_until,
    timed_poll,
)


def file_channel(stack: contextlib.ExitStack, tmp_path: Path, content: bytes, **options: str) -> PipeChannel:
    """A channel reading a regular file, as ``program < file`` gives stdin."""
    path = tmp_path / "input"
    path.write_bytes(content)
    return stack.enter_context(PipeChannel(os.open(path, os.O_RDONLY), **options))  # type: ignore[arg-type]


def test_a_regular_file_is_read_to_its_end_then_reported_once_and_forgotten(
    poller: Poller, stack: contextlib.ExitStack, tmp_path: Path
) -> None:
    content = random.Random(3).randbytes(300_000)
    channel = file_channel(stack, tmp_path, content)

    poller.register(channel)
    results = poll_until(poller, ended(channel))

    pieces = data_of(results, channel)
    assert b"".join(pieces) == content
    assert pieces.count(b"") == 1
    assert len(poller) == 0


def test_a_file_read_to_its_end_leaves_no_busy_loop(
    poller: Poller, stack: contextlib.ExitStack, tmp_path: Path
) -> None:
    channel = file_channel(stack, tmp_path, b"one line\n")
    idle, _peer = channel_pair(stack)
    poller.register(idle)
    poller.register(channel)
    poll_until(poller, ended(channel))

    result, waited = timed_poll(poller, 0.2)

    assert result == []
    assert waited >= 0.15


def test_a_regular_file_in_line_mode_gives_its_lines_then_the_last_piece(
    poller: Poller, stack: contextlib.ExitStack, tmp_path: Path
) -> None:
    channel = file_channel(stack, tmp_path, b"pear\napple\nfig", buffering="line")

    poller.register(channel)

    assert data_of(poll_until(poller, ended(channel)), channel) == [b"pear\n", b"apple\n", b"fig", b""]


def test_a_file_does_not_hold_up_the_other_channels(
    poller: Poller, stack: contextlib.ExitStack, tmp_path: Path
) -> None:
    channel = file_channel(stack, tmp_path, b"x" * (4 * MiB))
    other, peer = channel_pair(stack)
    poller.register(channel)
    poller.register(other)
    peer.sendall(b"hello")

    result = poll_until(poller, lambda results: bool(data_of(results, other)))

    assert data_of(result, other) == [b"hello"]
    assert sum(map(len, data_of(result, channel))) < 4 * MiB  # one read a poll: the file is not done yet


def test_dev_null_as_input_ends_at_once(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel = stack.enter_context(PipeChannel(os.open(os.devnull, os.O_RDONLY)))

    poller.register(channel)

    assert poller.poll(WAIT) == [(b"", channel)]
    assert len(poller) == 0


def test_a_paused_file_is_not_read_and_the_poll_waits(
    poller: Poller, stack: contextlib.ExitStack, tmp_path: Path
) -> None:
    channel = file_channel(stack, tmp_path, b"later\n")
    poller.register(channel)
    poller.pause_reading(channel)

    result, waited = timed_poll(poller, 0.2)
    assert result == []
    assert waited >= 0.15

    poller.resume_reading(channel)
    assert data_of(poll_until(poller, ended(channel)), channel) == [b"later\n", b""]


class ShortWritePipeChannel(PipeChannel):
    """Hands the OS three bytes a call, as a disk that is nearly full does."""

    __slots__ = ()

    def _send(self, buffers: list[bytes | memoryview]) -> int:
        return super()._send([memoryview(buffers[0])[:3]])


def test_a_file_as_sink_is_written_in_full_even_a_few_bytes_a_call(
    poller: Poller, stack: contextlib.ExitStack, tmp_path: Path
) -> None:
    path = tmp_path / "output"
    faucet, feeder = os.pipe()
    stack.callback(os.close, feeder)
    channel = stack.enter_context(ShortWritePipeChannel(faucet, os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)))
    poller.register(channel)

    with turn_of(poller):
        channel.write(b"0123456789" * 10)
    poll_until(poller, lambda _results: channel.pending_output == 0)

    assert path.read_bytes() == b"0123456789" * 10


def test_a_device_read_and_written_on_one_descriptor_is_served_both_ways(
    poller: Poller, stack: contextlib.ExitStack
) -> None:
    fd = os.open("/dev/zero", os.O_RDWR)
    channel = stack.enter_context(ShortWritePipeChannel(fd, fd))
    poller.register(channel)

    with turn_of(poller):
        channel.write(b"x" * 10)
    results = poll_until(poller, lambda _results: channel.pending_output == 0)

    assert set(b"".join(data_of(results, channel))) == {0}  # read all along
    assert data_of(poller.poll(0), channel)  # and still read once the output is out


def test_a_full_disk_is_an_endpoint_closed_error_caused_by_the_os_error(stack: contextlib.ExitStack) -> None:
    channel = stack.enter_context(PipeChannel(sink=os.open("/dev/full", os.O_WRONLY)))

    with pytest.raises(EndpointClosedException) as end:
        channel.write(b"no room for this")

    assert isinstance(end.value.__cause__, OSError)
    assert end.value.__cause__.errno == errno.ENOSPC


def test_register_of_a_closed_descriptor_says_it_is_not_open(poller: Poller) -> None:
    class Stale(TestChannel):
        __slots__ = ()

        def get_fd(self) -> int:
            return 987

    with Stale() as channel, pytest.raises(ValueError, match="descriptor 987 is not open"):
        poller.register(channel)
