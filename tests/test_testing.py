"""``channels.testing.TestChannel``: the channel whose peer is the test.

The contract every channel shares is in ``test_channel.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from channels import EndpointClosedException
from channels.poller import Poller
from channels.testing import TestChannel
from tests.helpers import WAIT, open_fd_count, read_exactly, read_to_end, turn_of

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
    with turn_of(poller):
        channel.write(b"held ")
        channel.write(b"for the next poll")
        assert channel.pending_output > 0
        assert channel.get() == b"held for the next poll"
        assert channel.pending_output == 0


# -- fault injection ---------------------------------------------------------------


def test_a_send_limit_makes_writes_partial_and_keeps_the_rest_pending_in_order() -> None:
    with TestChannel(send_limit=3) as channel:
        channel.write(b"abcdefgh")
        assert channel.pending_output == 5
        channel.write(b"XY")  # queued behind, and one more send of three
        assert channel.pending_output == 4
        assert channel.flush(WAIT)
        assert channel.get() == b"abcdefghXY"


def test_get_sends_once_more_under_the_send_limit() -> None:
    with TestChannel(send_limit=2) as channel:
        channel.write(b"abcdef")
        assert channel.get() == b"abcd"
        assert channel.pending_output == 2


def test_a_send_limit_spans_the_chunks_of_one_write() -> None:
    with TestChannel(send_limit=4) as channel:
        channel.write(b"ab", bytearray(b"cd"), memoryview(b"ef"))
        assert channel.pending_output == 2
        assert channel.flush(WAIT)
        assert channel.get() == b"abcdef"


def test_a_send_limit_of_zero_takes_nothing_until_lifted() -> None:
    with TestChannel(send_limit=0) as channel:
        channel.write(b"waiting")
        assert channel.pending_output == 7
        assert channel.flush(0.05) is False
        assert channel.get() == b""
        channel.send_limit = None
        assert channel.flush(WAIT) is True
        assert channel.get() == b"waiting"


@pytest.mark.parametrize("limit", [-1, -100])
def test_a_negative_send_limit_raises_value_error(limit: object) -> None:
    with pytest.raises(ValueError, match="send_limit"):
        TestChannel(send_limit=limit)  # type: ignore[arg-type]
    with TestChannel() as channel, pytest.raises(ValueError, match="send_limit"):
        channel.send_limit = limit  # type: ignore[assignment]


@pytest.mark.parametrize("limit", [True, 1.5, "3"])
def test_a_send_limit_that_is_not_a_whole_number_raises_type_error(limit: object) -> None:
    with pytest.raises(TypeError, match="send_limit"):
        TestChannel(send_limit=limit)  # type: ignore[arg-type]
    with TestChannel() as channel, pytest.raises(TypeError, match="send_limit"):
        channel.send_limit = limit  # type: ignore[assignment]


def test_a_stalled_peer_keeps_output_pending_until_resumed(channel: TestChannel) -> None:
    channel.stall()
    assert channel.stalled
    channel.write(b"one ", b"two")
    assert channel.pending_output == 7
    assert channel.flush(0.05) is False
    assert channel.get() == b""
    channel.resume()
    assert not channel.stalled
    assert channel.flush(WAIT) is True
    assert channel.get() == b"one two"


def test_close_to_a_stalled_peer_drops_the_rest_after_its_timeout(
    channel: TestChannel, caplog: pytest.LogCaptureFixture
) -> None:
    channel.stall()
    channel.write(b"never taken")
    channel.close(timeout=0.05)
    assert channel.closed
    assert channel.pending_output == 0
    assert "dropped 11 bytes" in caplog.text


def test_a_registered_channel_s_output_waits_in_the_poller_while_the_peer_is_stalled(
    channel: TestChannel, poller: Poller
) -> None:
    poller.register(channel)
    channel.stall()
    channel.write(b"held")
    assert poller.poll(0) == []
    assert channel.pending_output == 4
    channel.resume()
    deadline = time.monotonic() + WAIT
    while channel.pending_output and time.monotonic() < deadline:
        poller.poll(0.01)
    assert channel.get() == b"held"


def test_a_poller_blocks_instead_of_spinning_on_a_stalled_peer(channel: TestChannel, poller: Poller) -> None:
    poller.register(channel)
    channel.stall()
    channel.write(b"held")
    poller.poll(0)  # sends what it can (nothing) and watches write readiness
    started = time.monotonic()
    assert poller.poll(0.1) == []
    assert time.monotonic() - started >= 0.09  # it waited: the channel is not writable
    channel.abort()


def test_a_poller_delivers_partial_sends_a_few_bytes_a_turn(channel: TestChannel, poller: Poller) -> None:
    data = bytes(range(100))
    poller.register(channel)
    channel.send_limit = 7
    channel.write(data)
    deadline = time.monotonic() + WAIT
    while channel.pending_output and time.monotonic() < deadline:
        assert poller.poll(WAIT) == []
    assert channel.get() == data


def test_a_peer_reset_makes_read_raise_with_connection_reset_as_cause(channel: TestChannel) -> None:
    channel.put(b"lost in the reset")
    channel.put_reset()
    for _ in range(2):
        with pytest.raises(EndpointClosedException) as end:
            channel.read()
        assert isinstance(end.value.__cause__, ConnectionResetError)


def test_a_peer_reset_makes_write_raise_with_connection_reset_as_cause(channel: TestChannel) -> None:
    channel.put_reset()
    for _ in range(2):
        with pytest.raises(EndpointClosedException) as end:
            channel.write(b"too late")
        assert isinstance(end.value.__cause__, ConnectionResetError)


def test_a_peer_reset_drops_pending_output_and_keeps_what_was_taken(channel: TestChannel) -> None:
    channel.send_limit = 2
    channel.write(b"abcdef")
    channel.put_reset()
    assert channel.pending_output == 0
    assert channel.get() == b"ab"
    with pytest.raises(EndpointClosedException):
        channel.flush()


def test_a_peer_reset_fails_a_write_held_for_the_poller(channel: TestChannel, poller: Poller) -> None:
    poller.register(channel)
    with turn_of(poller):
        channel.write(b"held")
        assert channel.pending_output == 4
        channel.put_reset()
    with pytest.raises(EndpointClosedException) as end:
        channel.write(b"next")
    assert isinstance(end.value.__cause__, ConnectionResetError)


def test_a_registered_channel_s_reset_is_reported_once_by_poll(channel: TestChannel, poller: Poller) -> None:
    poller.register(channel)
    channel.stall()
    channel.write(b"pending")
    poller.poll(0)
    channel.put_reset()
    assert poller.poll(WAIT) == [(b"", channel)]
    assert poller.poll(0) == []


def test_a_reset_after_the_end_of_input_and_a_second_reset_are_harmless(channel: TestChannel) -> None:
    channel.put_eof()
    channel.put_reset()
    channel.put_reset()
    with pytest.raises(EndpointClosedException):
        channel.read()


def test_faults_leave_no_descriptor_open_after_close() -> None:
    before = open_fd_count()
    for _ in range(20):
        with TestChannel() as channel:
            channel.stall()
            channel.resume()
            channel.send_limit = 1
            channel.write(b"xy")
    assert open_fd_count() == before


def test_stalling_a_closed_channel_does_nothing(channel: TestChannel) -> None:
    channel.close()
    channel.stall()
    channel.resume()
    channel.put_reset()
    assert channel.get() == b""


def test_line_mode_reads_lines_while_writes_are_faulty() -> None:
    with TestChannel(buffering="line", send_limit=1) as channel:
        channel.put(b"one\ntwo\n")
        channel.write(b"reply\n")
        assert read_exactly(channel, 4) == b"one\n"
        assert channel.read() == b"two\n"
        assert channel.flush(WAIT)
        assert channel.get() == b"reply\n"
