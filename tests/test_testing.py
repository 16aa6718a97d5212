"""``channels.testing.TestChannel``: the channel whose peer is the test.

The contract every channel shares is in ``test_channel.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from channels import EndpointClosedException
from channels.poller import Poller
from channels.testing import TestChannel
from tests.helpers import WAIT, read_exactly, read_to_end

MIB = 1024 * 1024


@pytest.fixture
def channel() -> Iterator[TestChannel]:
    with TestChannel() as test_channel:
        yield test_channel


@pytest.fixture
def poller() -> Iterator[Poller]:
    with Poller() as the_poller:
        yield the_poller


def test_put_data_is_read(channel: TestChannel) -> None:
    channel.put(b"hello")
    assert read_exactly(channel, 5) == b"hello"


def test_put_data_is_read_in_order(channel: TestChannel) -> None:
    channel.put(b"one ")
    channel.put(b"two ")
    channel.put(b"three")
    assert read_exactly(channel, 13) == b"one two three"


def test_read_returns_empty_bytes_when_nothing_was_put(channel: TestChannel) -> None:
    assert channel.read() == b""


def test_get_returns_what_was_written(channel: TestChannel) -> None:
    channel.write(b"reply", b" here")
    assert channel.get() == b"reply here"


def test_get_returns_only_what_was_written_since_the_last_get(channel: TestChannel) -> None:
    channel.write(b"first")
    assert channel.get() == b"first"
    channel.write(b"second")
    assert channel.get() == b"second"
    assert channel.get() == b""


def test_get_returns_empty_bytes_when_nothing_was_written(channel: TestChannel) -> None:
    assert channel.get() == b""


def test_put_more_than_a_pipe_buffer_reads_back_in_order(channel: TestChannel) -> None:
    data = bytes(range(256)) * (4 * MIB // 256)
    channel.put(data[: MIB // 2])
    channel.put(data[MIB // 2 :])  # far more than the pipe under it holds
    assert read_exactly(channel, len(data)) == data


def test_put_accepts_bytearray_and_copies_it(channel: TestChannel) -> None:
    buffer = bytearray(b"original")
    channel.put(buffer)
    buffer[:] = b"CHANGED!"
    assert read_exactly(channel, 8) == b"original"


def test_put_eof_ends_the_input_after_the_remaining_data(channel: TestChannel) -> None:
    channel.put(b"last words")
    channel.put_eof()
    assert b"".join(read_to_end(channel)) == b"last words"
    with pytest.raises(EndpointClosedException):
        channel.read()


def test_put_eof_after_more_than_a_pipe_buffer_delivers_everything_first(channel: TestChannel) -> None:
    data = bytes(range(256)) * (2 * MIB // 256)
    channel.put(data)
    channel.put_eof()
    assert b"".join(read_to_end(channel)) == data


def test_put_eof_twice_is_harmless(channel: TestChannel) -> None:
    channel.put_eof()
    channel.put_eof()
    assert read_to_end(channel) == []


def test_put_after_put_eof_raises_value_error(channel: TestChannel) -> None:
    channel.put_eof()
    with pytest.raises(ValueError, match="put_eof"):
        channel.put(b"too late")


def test_put_after_close_raises_endpoint_closed(channel: TestChannel) -> None:
    channel.close()
    with pytest.raises(EndpointClosedException):
        channel.put(b"too late")


def test_write_still_works_after_put_eof(channel: TestChannel) -> None:
    channel.put_eof()
    read_to_end(channel)
    channel.write(b"reply")
    assert channel.get() == b"reply"


def test_get_fd_is_a_real_descriptor_that_becomes_readable(channel: TestChannel) -> None:
    import select  # noqa: PLC0415

    poller = select.poll()
    poller.register(channel.get_fd(), select.POLLIN)
    assert poller.poll(0) == []
    channel.put(b"x")
    assert poller.poll(int(WAIT * 1000))


def test_a_registered_channel_s_put_data_is_returned_by_poll(channel: TestChannel, poller: Poller) -> None:
    poller.register(channel)
    channel.put(b"hello")
    assert poller.poll(WAIT) == [(b"hello", channel)]


def test_a_registered_channel_s_end_is_reported_by_poll(channel: TestChannel, poller: Poller) -> None:
    poller.register(channel)
    channel.put_eof()
    assert poller.poll(WAIT) == [(b"", channel)]


def test_written_data_held_for_the_poller_is_visible_to_get_without_polling(
    channel: TestChannel, poller: Poller
) -> None:
    poller.register(channel)
    channel.write(b"held ")
    channel.write(b"for the next poll")
    assert channel.get() == b"held for the next poll"
    assert channel.pending_output == 0
