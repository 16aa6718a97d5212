"""The sans-I/O ``OutputBuffer``, tested with plain byte strings: no descriptor."""

from __future__ import annotations

import array

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.outbuffer import IOV_MAX, JOIN_LIMIT, OutputBuffer, as_chunk


def send_once(out: OutputBuffer, take: int) -> bytes:
    """One send to a descriptor that takes at most ``take`` bytes (0: refused)."""
    offered = b"".join(out.chunks_to_send())
    sent = min(take, len(offered))
    if not sent:
        out.refuse()
        return b""
    out.consume(sent)
    return offered[:sent]


def send_all(out: OutputBuffer, takes: list[int]) -> bytes:
    """Sends that take at most ``takes[i]`` bytes each, then sends that take
    everything until nothing is left."""
    wire = bytearray()
    for take in takes:
        if out.size:
            wire += send_once(out, take)
    while out.size:
        wire += send_once(out, out.size)
    return bytes(wire)


# -- order and count ----------------------------------------------------------


@given(
    chunks=st.lists(st.binary(min_size=1, max_size=300), max_size=40),
    takes=st.lists(st.integers(min_value=0, max_value=2000), max_size=30),
)
def test_every_byte_leaves_once_in_order_however_little_each_send_takes(chunks: list[bytes], takes: list[int]) -> None:
    out = OutputBuffer()
    for chunk in chunks:
        out.append(chunk)
    assert out.size == len(out) == sum(map(len, chunks))
    assert send_all(out, takes) == b"".join(chunks)
    assert out.size == 0


@given(
    writes=st.lists(st.lists(st.binary(min_size=1, max_size=100), max_size=5), max_size=20),
    takes=st.lists(st.integers(min_value=0, max_value=500), max_size=20),
)
def test_sends_between_writes_keep_the_order(writes: list[list[bytes]], takes: list[int]) -> None:
    out = OutputBuffer()
    wire = bytearray()
    for index, chunks in enumerate(writes):
        out.extend(chunks)
        if index < len(takes) and out.size:
            wire += send_once(out, takes[index])
    wire += send_all(out, [])
    assert bytes(wire) == b"".join(b"".join(chunks) for chunks in writes)


def test_the_byte_count_follows_appends_and_sends() -> None:
    out = OutputBuffer()
    out.append(b"abc")
    out.extend([b"de", memoryview(b"fgh")])
    assert out.size == 8
    out.chunks_to_send()
    out.consume(4)
    assert out.size == 4
    assert b"".join(out.chunks_to_send()) == b"efgh"


# -- what a send is offered ----------------------------------------------------


def test_small_output_in_several_chunks_is_offered_as_one() -> None:
    out = OutputBuffer()
    for _ in range(16):
        out.append(b"x" * 64)
    assert out.chunks_to_send() == [b"x" * 1024]


def test_output_past_the_join_limit_is_offered_as_written() -> None:
    out = OutputBuffer()
    big = b"y" * JOIN_LIMIT
    out.append(b"x")
    out.append(big)
    offered = out.chunks_to_send()
    assert len(offered) == 2
    assert offered[1] is big  # not copied


def test_a_send_is_offered_at_most_iov_max_buffers() -> None:
    out = OutputBuffer()
    chunk = b"z" * JOIN_LIMIT
    for _ in range(IOV_MAX + 5):
        out.append(chunk)
    assert len(out.chunks_to_send()) == IOV_MAX
    out.consume(IOV_MAX * JOIN_LIMIT)
    assert not out.refused  # all it was offered was taken
    assert len(out.chunks_to_send()) == 5


def test_a_chunk_taken_in_part_leaves_a_view_of_its_tail_not_a_copy() -> None:
    out = OutputBuffer()
    big = b"a" * 10_000
    out.append(big)
    out.chunks_to_send()
    out.consume(3)
    [tail] = out.chunks_to_send()
    assert isinstance(tail, memoryview)
    assert tail.obj is big
    assert bytes(tail) == big[3:]


# -- refused sends --------------------------------------------------------------


def test_a_send_that_takes_less_than_offered_marks_the_buffer_refused() -> None:
    out = OutputBuffer()
    out.append(b"x" * 100)
    out.chunks_to_send()
    out.consume(40)
    assert out.refused


def test_a_send_that_takes_nothing_marks_the_buffer_refused() -> None:
    out = OutputBuffer()
    out.append(b"x")
    out.chunks_to_send()
    out.refuse()
    assert out.refused


def test_a_send_that_takes_all_it_was_offered_clears_the_mark() -> None:
    out = OutputBuffer()
    out.append(b"x" * 100)
    out.chunks_to_send()
    out.consume(40)
    out.chunks_to_send()
    out.consume(60)
    assert not out.refused
    assert out.size == 0


# -- ownership ---------------------------------------------------------------------


def test_bytes_are_kept_as_they_are() -> None:
    out = OutputBuffer()
    data = b"q" * 5000
    out.extend([data])
    out.own()
    assert out.chunks_to_send()[0] is data


def test_own_copies_a_view_of_a_mutable_buffer_still_held() -> None:
    out = OutputBuffer()
    mutable = bytearray(b"before")
    out.extend([as_chunk(mutable)])
    out.own()
    mutable[:] = b"AFTER!"
    assert b"".join(out.chunks_to_send()) == b"before"


def test_own_copies_the_tail_of_a_mutable_buffer_taken_in_part() -> None:
    out = OutputBuffer()
    mutable = bytearray(b"x" * JOIN_LIMIT * 2)
    out.extend([as_chunk(mutable)])
    out.chunks_to_send()
    out.consume(JOIN_LIMIT)
    out.own()
    mutable[:] = b"y" * len(mutable)
    assert b"".join(out.chunks_to_send()) == b"x" * JOIN_LIMIT


def test_a_read_only_view_of_a_mutable_buffer_is_copied_too() -> None:
    out = OutputBuffer()
    mutable = bytearray(b"seen")
    out.extend([as_chunk(memoryview(mutable).toreadonly())])
    out.own()
    mutable[:] = b"gone"
    assert b"".join(out.chunks_to_send()) == b"seen"


def test_own_looks_only_at_what_was_added_since_the_last_call() -> None:
    out = OutputBuffer()
    early = bytearray(b"early")
    out.extend([as_chunk(early)])
    out.own()
    [kept] = out.chunks_to_send()
    out.extend([b"later"])
    out.own()
    assert out._chunks[0] is kept  # not looked at (and copied) again


# -- as_chunk ------------------------------------------------------------------------


def test_as_chunk_keeps_bytes_and_views_other_buffers_as_bytes() -> None:
    data = b"abc"
    assert as_chunk(data) is data
    numbers = array.array("H", [1, 2])
    view = as_chunk(numbers)
    assert isinstance(view, memoryview)
    assert view.format == "B"
    assert view.nbytes == 4


def test_as_chunk_copies_a_buffer_that_is_not_contiguous() -> None:
    strided = memoryview(b"abcdef")[::2]
    assert bytes(as_chunk(strided)) == b"ace"


@pytest.mark.parametrize(("value", "message"), [("text", "encode"), (42, "int")])
def test_as_chunk_refuses_what_is_not_bytes_like(value: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        as_chunk(value)


def test_clear_drops_everything() -> None:
    out = OutputBuffer()
    out.append(b"x")
    out.refuse()
    out.clear()
    assert (out.size, out.refused, out.chunks_to_send()) == (0, False, [])
