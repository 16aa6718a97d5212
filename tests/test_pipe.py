"""``PipeChannel`` specifics: one-way channels, descriptor ownership, bad descriptors.

The contract every channel shares is in ``test_channel.py``.
"""

from __future__ import annotations

import errno
import gc
import os
import socket
from collections.abc import Callable, Iterator

import pytest

from channels import EndpointClosedException, PipeChannel
from tests.helpers import open_fd_count, read_exactly, read_to_end

Pipe = tuple[int, int]


@pytest.fixture
def fds() -> Iterator[Callable[[int], int]]:
    """Closes the descriptors a test hands it, unless a channel already did."""
    owned: list[int] = []

    def own(fd: int) -> int:
        owned.append(fd)
        return fd

    yield own
    for fd in owned:
        try:
            os.close(fd)
        except OSError as err:
            assert err.errno == errno.EBADF


@pytest.fixture
def pipe(fds: Callable[[int], int]) -> Pipe:
    """A fresh pipe, ``(read end, write end)``, closed after the test."""
    read_end, write_end = os.pipe()
    return fds(read_end), fds(write_end)


@pytest.fixture
def channels() -> Iterator[Callable[[PipeChannel], PipeChannel]]:
    """Aborts the channels a test hands it."""
    opened: list[PipeChannel] = []

    def track(channel: PipeChannel) -> PipeChannel:
        opened.append(channel)
        return channel

    yield track
    for channel in opened:
        channel.abort()


def _is_closed(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError as err:
        assert err.errno == errno.EBADF
        return True
    return False


# -- one-way channels --------------------------------------------------------


def test_a_faucet_only_channel_reads(pipe: Pipe) -> None:
    read_end, write_end = pipe
    with PipeChannel(faucet=read_end) as channel:
        os.write(write_end, b"hello")
        assert read_exactly(channel, 5) == b"hello"


def test_a_faucet_only_channel_polls_its_faucet(pipe: Pipe) -> None:
    read_end, _ = pipe
    with PipeChannel(faucet=read_end) as channel:
        assert channel.get_fd() == read_end


def test_write_on_a_faucet_only_channel_raises_not_implemented_and_queues_nothing(pipe: Pipe) -> None:
    read_end, _ = pipe
    with PipeChannel(faucet=read_end) as channel:
        with pytest.raises(NotImplementedError):
            channel.write(b"nowhere")
        assert channel.pending_output == 0


def test_flush_on_a_faucet_only_channel_raises_not_implemented(pipe: Pipe) -> None:
    read_end, _ = pipe
    with PipeChannel(faucet=read_end) as channel, pytest.raises(NotImplementedError):
        channel.flush()


def test_a_sink_only_channel_writes(pipe: Pipe) -> None:
    read_end, write_end = pipe
    with PipeChannel(sink=write_end) as channel:
        channel.write(b"hello")
        assert os.read(read_end, 5) == b"hello"


def test_get_fd_on_a_sink_only_channel_raises_not_implemented(pipe: Pipe) -> None:
    _, write_end = pipe
    with PipeChannel(sink=write_end) as channel, pytest.raises(NotImplementedError):
        channel.get_fd()


def test_read_on_a_sink_only_channel_raises_not_implemented(pipe: Pipe) -> None:
    _, write_end = pipe
    with PipeChannel(sink=write_end) as channel:
        with pytest.raises(NotImplementedError):
            channel.read()
        assert channel.pending_output == 0


def test_a_faucet_only_and_a_sink_only_channel_talk_over_one_pipe(pipe: Pipe) -> None:
    read_end, write_end = pipe
    with PipeChannel(sink=write_end) as writer, PipeChannel(faucet=read_end) as reader:
        writer.write(b"over ", b"the pipe")
        writer.close()
        assert b"".join(read_to_end(reader)) == b"over the pipe"


# -- construction ------------------------------------------------------------


def test_neither_faucet_nor_sink_raises_value_error() -> None:
    with pytest.raises(ValueError, match="faucet"):
        PipeChannel()


def test_a_closed_descriptor_raises_value_error_at_construction() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.close(write_end)
    with pytest.raises(ValueError, match="not an open file descriptor"):
        PipeChannel(faucet=read_end)


def test_a_negative_descriptor_raises_value_error_at_construction() -> None:
    with pytest.raises(ValueError):
        PipeChannel(sink=-1)


def test_a_closed_file_object_raises_value_error_at_construction(fds: Callable[[int], int]) -> None:
    read_end, write_end = os.pipe()
    fds(write_end)
    reader = os.fdopen(read_end, "rb", buffering=0)
    reader.close()
    with pytest.raises(ValueError):
        PipeChannel(faucet=reader)


def test_something_without_a_descriptor_raises_type_error() -> None:
    with pytest.raises(TypeError):
        PipeChannel(faucet="3")  # type: ignore[arg-type]


def test_the_write_end_as_faucet_raises_value_error(pipe: Pipe) -> None:
    _, write_end = pipe
    with pytest.raises(ValueError, match="reading"):
        PipeChannel(faucet=write_end)


def test_the_read_end_as_sink_raises_value_error(pipe: Pipe) -> None:
    read_end, _ = pipe
    with pytest.raises(ValueError, match="writing"):
        PipeChannel(sink=read_end)


def test_a_refused_sink_leaves_the_faucet_open_and_blocking(pipe: Pipe) -> None:
    read_end, _ = pipe
    with pytest.raises(ValueError):
        PipeChannel(faucet=read_end, sink=read_end)
    assert not _is_closed(read_end)
    assert os.get_blocking(read_end)


def test_a_bad_keyword_leaves_the_descriptors_blocking(pipe: Pipe) -> None:
    read_end, write_end = pipe
    with pytest.raises(ValueError):
        PipeChannel(read_end, write_end, buffering="lines")
    assert os.get_blocking(read_end)
    assert os.get_blocking(write_end)


def test_a_refused_construction_leaves_no_unclosed_channel_behind(pipe: Pipe) -> None:
    read_end, _ = pipe
    with pytest.raises(ValueError):
        PipeChannel(faucet=read_end, sink=read_end)
    gc.collect()  # a half-built channel would warn here that it was left unclosed
    assert not _is_closed(read_end)


def test_file_objects_with_fileno_are_accepted(fds: Callable[[int], int]) -> None:
    read_end, write_end = os.pipe()
    with (
        os.fdopen(read_end, "rb", buffering=0) as reader,
        os.fdopen(write_end, "wb", buffering=0) as writer,
        PipeChannel(reader, writer) as channel,
    ):
        channel.write(b"round trip")
        assert read_exactly(channel, 10) == b"round trip"


def test_file_objects_are_closed_through_their_close(fds: Callable[[int], int]) -> None:
    read_end, write_end = os.pipe()
    reader = os.fdopen(read_end, "rb", buffering=0)
    writer = os.fdopen(write_end, "wb", buffering=0)
    channel = PipeChannel(reader, writer)
    channel.close()
    assert reader.closed
    assert writer.closed
    assert _is_closed(read_end)
    assert _is_closed(write_end)


# -- descriptor modes and ownership -------------------------------------------


def test_descriptors_are_switched_to_non_blocking(pipe: Pipe) -> None:
    read_end, write_end = pipe
    with PipeChannel(read_end, write_end):
        assert not os.get_blocking(read_end)
        assert not os.get_blocking(write_end)


def test_close_restores_blocking_mode_of_the_shared_open_file(pipe: Pipe, fds: Callable[[int], int]) -> None:
    read_end, write_end = pipe
    read_dup = fds(os.dup(read_end))  # shares the open file description, and its flags
    write_dup = fds(os.dup(write_end))
    channel = PipeChannel(read_end, write_end)
    assert not os.get_blocking(read_dup)
    channel.close()
    assert os.get_blocking(read_dup)
    assert os.get_blocking(write_dup)


def test_abort_restores_blocking_mode_too(pipe: Pipe, fds: Callable[[int], int]) -> None:
    read_end, _ = pipe
    read_dup = fds(os.dup(read_end))
    PipeChannel(faucet=read_end).abort()
    assert os.get_blocking(read_dup)


def test_close_leaves_an_already_non_blocking_descriptor_non_blocking(pipe: Pipe, fds: Callable[[int], int]) -> None:
    read_end, _ = pipe
    os.set_blocking(read_end, False)
    read_dup = fds(os.dup(read_end))
    PipeChannel(faucet=read_end).close()
    assert not os.get_blocking(read_dup)


def test_close_closes_both_descriptors(pipe: Pipe) -> None:
    read_end, write_end = pipe
    PipeChannel(read_end, write_end).close()
    with pytest.raises(OSError) as raised:
        os.read(read_end, 1)
    assert raised.value.errno == errno.EBADF
    assert _is_closed(write_end)


def test_one_descriptor_as_faucet_and_sink_works_both_ways(fds: Callable[[int], int]) -> None:
    ours, theirs = socket.socketpair()  # a socket descriptor is open for reading and writing
    with theirs:
        fd = fds(ours.detach())
        with PipeChannel(fd, fd) as channel:
            channel.write(b"ping")
            assert theirs.recv(4) == b"ping"
            theirs.sendall(b"pong")
            assert read_exactly(channel, 4) == b"pong"


def test_one_descriptor_as_faucet_and_sink_is_closed_once(fds: Callable[[int], int]) -> None:
    ours, theirs = socket.socketpair()
    with theirs:
        fd = fds(ours.detach())
        before = open_fd_count()
        PipeChannel(fd, fd).close()
        assert open_fd_count() == before - 1
        assert _is_closed(fd)


# -- the original library's pipe tests ------------------------------------------


def test_read_returns_empty_bytes_repeatedly_while_the_pipe_is_empty(pipe: Pipe) -> None:
    read_end, _ = pipe
    with PipeChannel(faucet=read_end) as channel:
        for _ in range(10):
            assert channel.read() == b""


def test_read_from_a_faucet_closed_behind_the_channels_back_raises_endpoint_closed(
    fds: Callable[[int], int], channels: Callable[[PipeChannel], PipeChannel]
) -> None:
    read_end, write_end = os.pipe()
    fds(write_end)
    channel = channels(PipeChannel(faucet=read_end))
    os.close(read_end)
    with pytest.raises(EndpointClosedException) as raised:
        channel.read()
    assert isinstance(raised.value.__cause__, OSError)
    assert raised.value.__cause__.errno == errno.EBADF


def test_write_to_a_sink_closed_behind_the_channels_back_raises_endpoint_closed(
    fds: Callable[[int], int], channels: Callable[[PipeChannel], PipeChannel]
) -> None:
    read_end, write_end = os.pipe()
    fds(read_end)
    channel = channels(PipeChannel(sink=write_end))
    os.close(write_end)
    with pytest.raises(EndpointClosedException) as raised:
        channel.write(b"lost")
    assert isinstance(raised.value.__cause__, OSError)
    assert raised.value.__cause__.errno == errno.EBADF


def test_close_after_a_descriptor_was_closed_behind_the_channels_back_does_not_raise(
    fds: Callable[[int], int],
) -> None:
    read_end, write_end = os.pipe()
    fds(write_end)
    channel = PipeChannel(faucet=read_end)
    os.close(read_end)
    channel.close()
    assert channel.closed
