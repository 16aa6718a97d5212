"""Framings (``channels.framing``): the decoders with plain byte strings and
hypothesis, then ``buffering=<framing>`` over real pipes, sockets and processes."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels import (
    EndpointClosedException,
    LineSplitter,
    LineTooLongError,
    PipeChannel,
    Poller,
    ProcessChannel,
    SocketChannel,
    connect,
)
from channels.aio import aframes
from channels.errors import ChannelError, FrameTooLongError, FramingError
from channels.framing import (
    DEFAULT_MAX_FRAME_LENGTH,
    Delimited,
    FrameDecoder,
    Framing,
    LengthPrefixed,
    Lines,
    Netstrings,
)
from channels.testing import TestChannel
from tests.helpers import WAIT

#: Stands where the model expects a ``FrameTooLongError``.
TOO_LONG = "too long"

FRAMINGS: list[Framing] = [
    Lines(),
    Delimited(b"\0"),
    Delimited(b"\r\n"),
    Delimited(b"aba"),  # overlaps itself: b'ababa' holds it twice
    LengthPrefixed(1),
    LengthPrefixed(2),
    LengthPrefixed(4),
    LengthPrefixed(8),
    Netstrings(),
]

framings = st.sampled_from(FRAMINGS)
# Payloads rich in delimiter bytes, digits, colons and commas.
payload_bytes = st.one_of(
    st.lists(st.sampled_from([b"a", b"b", b"\r", b"\n", b"\0", b"\r\n", b"5:", b",", b"ab"]), max_size=12).map(
        b"".join
    ),
    st.binary(max_size=40),
)
cut_points = st.lists(st.integers(min_value=0, max_value=10_000), max_size=12)


def with_max(framing: Framing, max_length: int | None) -> Framing:
    """A framing like ``framing`` with another ``max_length``."""
    if isinstance(framing, Lines):
        return Lines(max_length=max_length)
    if isinstance(framing, Delimited):
        return Delimited(framing.delimiter, max_length=max_length)
    if isinstance(framing, LengthPrefixed):
        return LengthPrefixed(framing.size, max_length=max_length)
    return Netstrings(max_length=max_length)


def encodable(framing: Framing, payloads: list[bytes]) -> list[bytes]:
    """The payloads ``framing`` can carry (a delimited one cannot carry its delimiter)."""
    kept = []
    for payload in payloads:
        try:
            framing.encode(payload)
        except ValueError:
            continue
        kept.append(payload)
    return kept


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given offsets (duplicates give empty chunks)."""
    bounds = [0, *sorted(cut % (len(data) + 1) for cut in cuts), len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


def drain(decoder: FrameDecoder) -> list[bytes | str]:
    """Every ready frame by ``next_frame()``, ``TOO_LONG`` where one raised."""
    tokens: list[bytes | str] = []
    while True:
        try:
            frame = decoder.next_frame()
        except FrameTooLongError:
            tokens.append(TOO_LONG)
            continue
        if frame is None:
            return tokens
        tokens.append(frame)


def decode_all(framing: Framing, chunks: list[bytes]) -> list[bytes | str]:
    decoder = framing.decoder()
    tokens: list[bytes | str] = []
    for chunk in chunks:
        decoder.feed(chunk)
        tokens += drain(decoder)
    return tokens


# -- the decoders, sans I/O ----------------------------------------------------------


@settings(max_examples=300)
@given(framing=framings, payloads=st.lists(payload_bytes, max_size=20), cuts=cut_points)
def test_any_chunking_of_encoded_frames_decodes_back(framing: Framing, payloads: list[bytes], cuts: list[int]) -> None:
    payloads = encodable(framing, payloads)
    frames = [framing.encode(payload) for payload in payloads]

    tokens = decode_all(framing, chunked(b"".join(frames), cuts))

    assert tokens == frames
    assert [framing.decode(frame) for frame in frames] == payloads


@settings(max_examples=300)
@given(framing=framings, payloads=st.lists(payload_bytes, max_size=20), cuts=cut_points)
def test_take_frames_gives_the_same_frames_as_next_frame(
    framing: Framing, payloads: list[bytes], cuts: list[int]
) -> None:
    frames = [framing.encode(payload) for payload in encodable(framing, payloads)]
    decoder = framing.decoder()
    taken: list[bytes] = []
    for chunk in chunked(b"".join(frames), cuts):
        decoder.feed(chunk)
        assert not decoder.has_frame() or decoder.buffered  # a ready frame is held
        got, dropped = decoder.take_frames()
        assert dropped == 0
        taken += got

    assert taken == frames
    assert not decoder.has_frame() and decoder.buffered == 0
    assert decoder.finish() == b""


@settings(max_examples=300)
@given(
    framing=framings,
    payloads=st.lists(payload_bytes, max_size=20),
    cuts=cut_points,
    max_length=st.integers(min_value=1, max_value=12),
)
def test_overlong_frames_are_skipped_one_error_each_and_the_next_follows(
    framing: Framing, payloads: list[bytes], cuts: list[int], max_length: int
) -> None:
    bounded = with_max(framing, max_length)
    payloads = encodable(framing, payloads)
    frames = [framing.encode(payload) for payload in payloads]
    expected = [
        TOO_LONG if len(payload) > max_length else frame for payload, frame in zip(payloads, frames, strict=True)
    ]

    assert decode_all(bounded, chunked(b"".join(frames), cuts)) == expected


@settings(max_examples=200)
@given(
    framing=framings,
    payloads=st.lists(payload_bytes, max_size=20),
    cuts=cut_points,
    max_length=st.integers(min_value=1, max_value=12),
)
def test_take_frames_skips_overlong_frames_and_counts_them(
    framing: Framing, payloads: list[bytes], cuts: list[int], max_length: int
) -> None:
    payloads = encodable(framing, payloads)
    decoder = with_max(framing, max_length).decoder()
    taken: list[bytes] = []
    dropped = 0
    for chunk in chunked(b"".join(framing.encode(payload) for payload in payloads), cuts):
        decoder.feed(chunk)
        got, skipped = decoder.take_frames()
        taken += got
        dropped += skipped

    assert taken == [framing.encode(payload) for payload in payloads if len(payload) <= max_length]
    assert dropped == sum(len(payload) > max_length for payload in payloads)


@pytest.mark.parametrize("framing", FRAMINGS, ids=repr)
def test_memory_stays_bounded_while_an_overlong_frame_streams_in(framing: Framing) -> None:
    small = isinstance(framing, LengthPrefixed) and framing.size == 1  # 255 bytes at most
    bound, chunk = (100, 16) if small else (1000, 4096)
    largest = (1 << (8 * framing.size)) - 1 if isinstance(framing, LengthPrefixed) else 1024 * 1024
    frame = framing.encode(b"z" * min(largest, 1024 * 1024))
    decoder = with_max(framing, bound).decoder()
    for start in range(0, len(frame), chunk):
        decoder.feed(frame[start : start + chunk])
        assert decoder.buffered <= bound + chunk
    decoder.feed(framing.encode(b"next"))

    assert drain(decoder) == [TOO_LONG, framing.encode(b"next")]


@pytest.mark.parametrize("framing", FRAMINGS, ids=repr)
def test_a_frame_of_exactly_max_length_passes(framing: Framing) -> None:
    frame = framing.encode(b"q" * 100)
    assert decode_all(with_max(framing, 100), [frame]) == [frame]
    assert decode_all(with_max(framing, 99), [frame]) == [TOO_LONG]


@pytest.mark.parametrize("framing", FRAMINGS, ids=repr)
def test_a_chunk_that_is_one_frame_is_taken_without_a_copy(framing: Framing) -> None:
    frame = framing.encode(b"one request")
    decoder = framing.decoder()

    decoder.feed(frame)

    assert decoder.next_frame() is frame


@pytest.mark.parametrize("framing", FRAMINGS, ids=repr)
def test_an_empty_payload_is_a_frame_that_is_not_empty(framing: Framing) -> None:
    frame = framing.encode(b"")

    assert frame
    assert decode_all(framing, [frame]) == [frame]
    assert framing.decode(frame) == b""


def test_a_length_prefixed_frame_announcing_too_much_is_skipped_by_exactly_its_length() -> None:
    framing = LengthPrefixed(2, max_length=3)
    stream = framing.encode(b"abcdef") + framing.encode(b"ok")

    assert decode_all(framing, [stream]) == [TOO_LONG, b"\x00\x02ok"]
    assert decode_all(framing, [bytes([byte]) for byte in stream]) == [TOO_LONG, b"\x00\x02ok"]


def test_a_netstring_announcing_too_much_is_skipped_with_its_comma() -> None:
    framing = Netstrings(max_length=3)

    assert decode_all(framing, [b"6:abcdef,2:ok,"]) == [TOO_LONG, b"2:ok,"]


def test_a_delimiter_split_across_chunks_is_found() -> None:
    framing = Delimited(b"\r\n")

    assert decode_all(framing, [b"one\r", b"\ntwo", b"\r", b"\n"]) == [b"one\r\n", b"two\r\n"]


def test_a_long_delimiter_split_over_three_chunks_is_found() -> None:
    framing = Delimited(b"<END>")

    assert decode_all(framing, [b"body<E", b"N", b"D>next<END>"]) == [b"body<END>", b"next<END>"]


@pytest.mark.parametrize(
    "stream",
    [
        b"x:abc,",
        b"5:hello!",
        b"01:a,",
        b":a,",
        b"-1:a,",
        b"123456789012345678901:",
        b"1" * 30,
        b"3:abc",  # then a byte that is not a comma, fed below
    ],
)
def test_a_malformed_netstring_raises_framing_error_after_the_frames_before_it(stream: bytes) -> None:
    decoder = Netstrings().decoder()
    bad = stream + (b"X" if stream == b"3:abc" else b"")

    with pytest.raises(FramingError, match="malformed"):
        decoder.feed(b"2:ok," + bad)

    assert drain(decoder) == [b"2:ok,"]
    assert decoder.finish() == b""


@given(cuts=cut_points)
def test_a_malformed_netstring_is_found_however_the_stream_is_cut(cuts: list[int]) -> None:
    decoder = Netstrings().decoder()
    frames: list[bytes | str] = []
    with pytest.raises(FramingError):
        for chunk in chunked(b"2:ok,3:abcX1:z,", cuts):
            decoder.feed(chunk)
            frames += drain(decoder)
    frames += drain(decoder)

    assert frames == [b"2:ok,"]


def test_a_netstring_length_fed_a_digit_at_a_time_is_read() -> None:
    frame = b"12:hello world!,"

    assert decode_all(Netstrings(), [bytes([byte]) for byte in frame]) == [frame]


@pytest.mark.parametrize("pieces", [[b"1", b"x"], [b"1", b"2" * 25], [b"0", b"1:"]])
def test_a_malformed_netstring_length_split_across_chunks_is_found(pieces: list[bytes]) -> None:
    decoder = Netstrings().decoder()
    decoder.feed(pieces[0])

    with pytest.raises(FramingError, match="decimal digits"):
        decoder.feed(pieces[1])


def test_a_skipped_netstring_without_its_comma_is_malformed() -> None:
    decoder = Netstrings(max_length=1).decoder()

    with pytest.raises(FramingError, match="b','"):
        decoder.feed(b"3:abc;")


def test_a_decoder_that_failed_refuses_more_input() -> None:
    decoder = Netstrings().decoder()
    with pytest.raises(FramingError):
        decoder.feed(b"x:")

    with pytest.raises(FramingError):
        decoder.feed(b"1:a,")


@pytest.mark.parametrize("framing", [LengthPrefixed(4), Netstrings()], ids=repr)
def test_a_stream_that_ends_inside_a_frame_raises_framing_error_with_the_partial_frame(framing: Framing) -> None:
    frame = framing.encode(b"hello")
    decoder = framing.decoder()
    decoder.feed(frame[:-2])

    with pytest.raises(FramingError, match="ended inside a frame") as raised:
        decoder.finish()

    assert raised.value.partial == frame[:-2]
    assert decoder.finish() == b""  # empty afterwards


@pytest.mark.parametrize("framing", [LengthPrefixed(4), Netstrings()], ids=repr)
def test_a_stream_that_ends_inside_a_length_field_raises_framing_error(framing: Framing) -> None:
    decoder = framing.decoder()
    decoder.feed(framing.encode(b"abcdefghijklm")[:2])

    with pytest.raises(FramingError):
        decoder.finish()


@pytest.mark.parametrize("framing", [LengthPrefixed(4), Netstrings()], ids=repr)
def test_a_stream_that_ends_inside_a_skipped_frame_just_ends(framing: Framing) -> None:
    decoder = with_max(framing, 2).decoder()
    decoder.feed(framing.encode(b"abcdef")[:-1])

    assert drain(decoder) == [TOO_LONG]
    assert decoder.finish() == b""


def test_a_delimited_stream_gives_its_unterminated_rest_at_the_end() -> None:
    decoder = Delimited(b"\r\n").decoder()
    decoder.feed(b"one\r\ntwo\r")

    assert drain(decoder) == [b"one\r\n"]
    assert decoder.buffered == 4
    assert decoder.finish() == b"two\r"
    assert Delimited(b"\r\n").decode(b"two\r") == b"two\r"


def test_an_overlong_unterminated_rest_is_not_given_at_the_end() -> None:
    decoder = Delimited(b"\0", max_length=3).decoder()
    decoder.feed(b"abcdefgh")

    assert drain(decoder) == [TOO_LONG]
    assert decoder.finish() == b""


def test_buffered_counts_ready_frames_and_the_frame_in_progress() -> None:
    decoder = LengthPrefixed(1).decoder()
    decoder.feed(b"\x02ab\x03a")

    assert decoder.buffered == 5
    assert decoder.has_frame()
    assert decoder.next_frame() == b"\x02ab"
    assert not decoder.has_frame()
    assert decoder.buffered == 2


def test_frames_already_taken_are_let_go_when_more_arrive() -> None:
    decoder = Netstrings().decoder()
    for _ in range(1000):
        decoder.feed(b"1:a,1:a,")  # two frames in, one out: a reader falling behind
        assert decoder.next_frame() == b"1:a,"

    assert decoder.buffered == 4000
    assert len(decoder.take_frames()[0]) == 1000


# -- the framing objects ----------------------------------------------------------------


def test_lines_is_a_newline_delimited_framing_read_by_the_line_splitter() -> None:
    assert isinstance(Lines(), Delimited)
    assert Lines().delimiter == b"\n"
    assert type(Lines().decoder()) is LineSplitter
    assert type(Delimited(b"\n").decoder()) is LineSplitter
    assert Lines(max_length=7).decoder().max_length == 7  # type: ignore[attr-defined]


def test_the_line_splitter_raises_line_too_long_which_is_a_frame_too_long_error() -> None:
    assert issubclass(LineTooLongError, FrameTooLongError)
    assert issubclass(FrameTooLongError, ChannelError)
    assert issubclass(FramingError, ChannelError)
    decoder = Lines(max_length=2).decoder()
    decoder.feed(b"long\n")
    with pytest.raises(LineTooLongError):
        decoder.next_frame()


def test_each_decoder_is_a_state_of_its_own() -> None:
    framing = Netstrings()
    first, second = framing.decoder(), framing.decoder()
    first.feed(b"3:ab")
    second.feed(b"1:x,")

    assert first is not second
    assert not first.has_frame()
    assert second.next_frame() == b"1:x,"


def test_default_max_length_is_a_mebibyte() -> None:
    assert DEFAULT_MAX_FRAME_LENGTH == 1024 * 1024
    for framing in FRAMINGS:
        assert framing.max_length == DEFAULT_MAX_FRAME_LENGTH


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Delimited(b""), "delimiter"),
        (lambda: Delimited("\n"), "delimiter"),  # type: ignore[arg-type]
        (lambda: LengthPrefixed(3), "1, 2, 4 or 8"),
        (lambda: LengthPrefixed(True), "1, 2, 4 or 8"),
        (lambda: Netstrings(max_length=0), "max_length"),
        (lambda: Lines(max_length=1.5), "max_length"),  # type: ignore[arg-type]
    ],
)
def test_bad_framing_arguments_raise_value_error(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


def test_encode_refuses_a_payload_the_framing_cannot_carry() -> None:
    with pytest.raises(ValueError, match="delimiter"):
        Delimited(b"\0").encode(b"a\0b")
    with pytest.raises(ValueError, match="delimiter"):
        Delimited(b"aa").encode(b"xa")  # b'xaaa' would end after b'xaa'
    with pytest.raises(ValueError, match="does not fit"):
        LengthPrefixed(1).encode(b"x" * 256)


def test_encode_takes_any_bytes_like_payload() -> None:
    assert Netstrings().encode(bytearray(b"hi")) == b"2:hi,"
    assert LengthPrefixed(2).encode(memoryview(b"hi")) == b"\x00\x02hi"
    assert Delimited(b"\r\n").encode(b"hi") == b"hi\r\n"


@pytest.mark.parametrize(
    ("framing", "frame"),
    [
        (LengthPrefixed(2), b"\x00\x05abc"),
        (LengthPrefixed(4), b"\x00"),
        (Netstrings(), b"3:ab,"),
        (Netstrings(), b"2:ab;"),
        (Netstrings(), b"ab"),
        (Netstrings(), b"02:ab,"),
    ],
)
def test_decode_refuses_what_is_not_a_frame(framing: Framing, frame: bytes) -> None:
    with pytest.raises(ValueError, match="not a"):
        framing.decode(frame)


def test_a_framing_says_what_it_is() -> None:
    assert repr(Delimited(b"\0", max_length=5)) == "Delimited(b'\\x00', max_length=5)"
    assert repr(LengthPrefixed(2)) == "LengthPrefixed(2, max_length=1048576)"
    assert repr(Netstrings(max_length=None)) == "Netstrings(max_length=None)"
    assert repr(Lines(max_length=3)) == "Lines(max_length=3)"


# -- linear time -------------------------------------------------------------------------


def frame_pieces(framing: Framing, size: int, chunk_size: int = 4096) -> list[bytes]:
    """One frame of ``size`` bytes of payload, cut in ``chunk_size`` pieces;
    the pieces of payload alone are one object, so that the input stays in
    the CPU's caches and only the decoder's own work grows with ``size``."""
    frame = framing.encode(b"z" * size)
    shared = b"z" * chunk_size
    pieces = [frame[start : start + chunk_size] for start in range(0, len(frame), chunk_size)]
    return [shared if piece == shared else piece for piece in pieces]


def feed_all_but_the_end(framing: Framing, pieces: list[bytes]) -> FrameDecoder:
    """A decoder fed every piece of a frame but the last (no frame yet)."""
    decoder = framing.decoder()
    for piece in itertools.islice(pieces, len(pieces) - 1):
        decoder.feed(piece)
    assert not decoder.has_frame()
    return decoder


def feed_small_frames(framing: Framing, count: int, chunk_size: int = 4096) -> int:
    data = framing.encode(b"0123456789abcdef") * count
    decoder = framing.decoder()
    taken = 0
    for start in range(0, len(data), chunk_size):
        decoder.feed(data[start : start + chunk_size])
        taken += len(decoder.take_frames()[0])
    assert taken == count
    return taken


def best_time(run: Callable[[], object], repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def growth(small: Callable[[], object], large: Callable[[], object]) -> float:
    """How many times longer ``large()`` takes than ``small()``: the best of
    five runs each, measured again up to twice while it looks worse than
    linear (another process may have taken the CPU meanwhile; a real
    quadratic cost stays)."""
    ratio = float("inf")
    for _attempt in range(3):
        ratio = min(ratio, best_time(large, repeats=5) / best_time(small, repeats=5))
        if ratio < 6:
            break
    return ratio


LARGE_FRAMINGS = [Delimited(b"\r\n", max_length=None), LengthPrefixed(4, max_length=None), Netstrings(max_length=None)]


@pytest.mark.parametrize("framing", LARGE_FRAMINGS, ids=repr)
def test_a_large_frame_in_4k_pieces_costs_linear_time(framing: Framing) -> None:
    # Timed up to the piece that completes the frame: the one join of the
    # whole frame that completing it costs is a single copy, whose page
    # faults grow faster than its size on a loaded machine; what a decoder
    # could get wrong (copying or searching what it holds again for every
    # piece) is all in the pieces before.
    size = 4 * 1024 * 1024
    small, large = frame_pieces(framing, size), frame_pieces(framing, 4 * size)
    ratio = growth(lambda: feed_all_but_the_end(framing, small), lambda: feed_all_but_the_end(framing, large))
    # Linear growth gives a ratio near 4, quadratic near 16.
    assert ratio < 10, f"4x the bytes took {ratio:.1f}x the time"


@pytest.mark.parametrize("framing", LARGE_FRAMINGS, ids=repr)
def test_a_large_frame_in_4k_pieces_arrives_whole(framing: Framing) -> None:
    pieces = frame_pieces(framing, 16 * 1024 * 1024)
    decoder = feed_all_but_the_end(framing, pieces)
    decoder.feed(pieces[-1])

    frame = decoder.next_frame()
    assert frame is not None and framing.decode(frame) == b"z" * (16 * 1024 * 1024)


@pytest.mark.parametrize("framing", [Delimited(b"\r\n"), LengthPrefixed(4), Netstrings()], ids=repr)
def test_many_small_frames_cost_linear_time_in_their_number(framing: Framing) -> None:
    ratio = growth(lambda: feed_small_frames(framing, 20_000), lambda: feed_small_frames(framing, 80_000))
    assert ratio < 10, f"4x the frames took {ratio:.1f}x the time"


# -- over real descriptors -------------------------------------------------------------


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    left, right = socket.socketpair()
    with left, right:
        yield left, right


def read_frames(channel: SocketChannel | PipeChannel | TestChannel, count: int) -> list[bytes]:
    """``count`` reads that return something, waiting at most WAIT in all."""
    frames: list[bytes] = []
    deadline = time.monotonic() + WAIT
    while len(frames) < count:
        assert time.monotonic() < deadline, f"only {frames!r} within {WAIT}s"
        frame = channel.read()
        if frame:
            frames.append(frame)
        else:
            time.sleep(0.001)
    return frames


@pytest.mark.parametrize("framing", FRAMINGS, ids=repr)
def test_read_returns_one_whole_frame_per_call_over_a_socketpair(
    framing: Framing, pair: tuple[socket.socket, socket.socket]
) -> None:
    payloads = [b"hello", b"", b"x" * 200, b"last"]
    frames = [framing.encode(payload) for payload in payloads]
    channel = SocketChannel(pair[1].dup(), buffering=framing)
    with channel:
        pair[0].sendall(b"".join(frames))

        assert read_frames(channel, len(frames)) == frames
        assert channel.read() == b""


@pytest.mark.parametrize("framing", FRAMINGS, ids=repr)
def test_frames_written_a_byte_at_a_time_into_a_pipe_arrive_whole(framing: Framing) -> None:
    frames = [framing.encode(b"xy"), framing.encode(b"cde")]
    faucet, sink = os.pipe()
    with PipeChannel(faucet, buffering=framing) as reader, PipeChannel(sink=sink) as writer:
        got: list[bytes] = []
        for byte in b"".join(frames):
            writer.write(bytes([byte]))
            frame = reader.read()
            if frame:
                got.append(frame)

        assert got == frames


@pytest.mark.parametrize("framing", FRAMINGS, ids=repr)
def test_poll_reports_one_entry_per_frame(framing: Framing, pair: tuple[socket.socket, socket.socket]) -> None:
    frames = [framing.encode(b"%d" % number) for number in range(50)]
    with Poller() as poller, SocketChannel(pair[1].dup(), buffering=framing) as channel:
        poller.register(channel)
        pair[0].sendall(b"".join(frames))
        got: list[bytes] = []
        deadline = time.monotonic() + WAIT
        while len(got) < len(frames) and time.monotonic() < deadline:
            got += [data for data, source in poller.poll(0.01) if source is channel and isinstance(data, bytes)]

        assert got == frames


def test_the_buffering_property_returns_the_framing_given(pair: tuple[socket.socket, socket.socket]) -> None:
    framing = LengthPrefixed(2)
    with SocketChannel(pair[0].dup(), buffering=framing) as framed, SocketChannel(pair[1].dup()) as plain:
        assert framed.buffering is framing
        assert plain.buffering == "bytes"
        assert "LengthPrefixed(2" in repr(framed)


def test_buffering_lines_given_as_an_object_reads_lines(pair: tuple[socket.socket, socket.socket]) -> None:
    lines = Lines(max_length=4)
    with SocketChannel(pair[1].dup(), buffering=lines) as channel:
        pair[0].sendall(b"ok\ntoo long\nnext\n")

        assert channel.buffering is lines
        assert read_frames(channel, 1) == [b"ok\n"]
        with pytest.raises(LineTooLongError):
            channel.read()
        assert channel.read() == b"next\n"


def test_a_poller_gives_each_accepted_client_a_decoder_of_its_own() -> None:
    framing = Netstrings()
    with socket.create_server(("127.0.0.1", 0)) as server, Poller(buffering=framing) as poller:
        poller.add_server(server)
        first = socket.create_connection(server.getsockname())
        second = socket.create_connection(server.getsockname())
        with first, second:
            first.sendall(b"5:hel")
            second.sendall(b"3:ab")
            got: dict[object, list[bytes]] = {}
            clients: list[object] = []
            deadline = time.monotonic() + WAIT
            while sum(map(len, got.values())) < 2 and time.monotonic() < deadline:
                for data, source in poller.poll(0.01):
                    if isinstance(data, tuple):
                        clients.append(data[1])
                        assert data[1].buffering is framing
                        if len(clients) == 2:
                            first.sendall(b"lo,")
                            second.sendall(b"c,")
                    else:
                        got.setdefault(source, []).append(data)

            assert sorted(frame for frames in got.values() for frame in frames) == [b"3:abc,", b"5:hello,"]
            assert all(len(frames) == 1 for frames in got.values())
            for client in clients:
                client.close()  # type: ignore[attr-defined]


def test_connect_takes_a_framing() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        host, port = server.getsockname()
        with connect(f"tcp:{host}:{port}", buffering=LengthPrefixed(1)) as channel:
            accepted, _ = server.accept()
            with accepted:
                accepted.sendall(b"\x02hi\x00")

                assert isinstance(channel.buffering, LengthPrefixed)
                assert read_frames(channel, 2) == [b"\x02hi", b"\x00"]  # type: ignore[arg-type]


def test_a_child_process_is_read_frame_by_frame() -> None:
    code = "import sys; sys.stdout.buffer.write(b'5:hello,2:ok,'); sys.stdout.flush()"
    with ProcessChannel([sys.executable, "-c", code], buffering=Netstrings()) as child:
        assert child.receive(WAIT) == b"5:hello,"
        assert child.receive(WAIT) == b"2:ok,"
        with pytest.raises(EndpointClosedException):
            child.receive(WAIT)


def test_an_overlong_frame_raises_once_on_read_and_the_next_frame_follows() -> None:
    with TestChannel(buffering=LengthPrefixed(2, max_length=3)) as channel:
        channel.put(b"\x00\x05abcde\x00\x02ok")

        with pytest.raises(FrameTooLongError):
            channel.read()
        assert channel.read() == b"\x00\x02ok"
        assert channel.read() == b""


def test_the_poller_drops_an_overlong_frame_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with Poller() as poller, TestChannel(buffering=Netstrings(max_length=3)) as channel:
        poller.register(channel)
        channel.put(b"5:hello,2:ok,")
        with caplog.at_level(logging.WARNING, logger="channels.channel"):
            entries = [data for data, _ in poller.poll(WAIT) if isinstance(data, bytes)]

        assert entries == [b"2:ok,"]
        assert "dropped 1 frame(s) longer than 3 bytes" in caplog.text


def test_malformed_input_ends_the_channel_after_the_frames_before_it() -> None:
    with TestChannel(buffering=Netstrings()) as channel:
        channel.put(b"2:ok,x:bad,")

        assert channel.read() == b"2:ok,"
        for _ in range(2):  # and on every later call
            with pytest.raises(EndpointClosedException, match="malformed") as ended:
                channel.read()
            assert isinstance(ended.value.__cause__, FramingError)


def test_the_poller_reports_the_end_of_a_channel_whose_input_is_malformed() -> None:
    with Poller() as poller, TestChannel(buffering=Netstrings()) as channel:
        poller.register(channel)
        channel.put(b"2:ok,x:bad,")
        entries: list[bytes] = []
        deadline = time.monotonic() + WAIT
        while b"" not in entries and time.monotonic() < deadline:
            entries += [data for data, _ in poller.poll(0.01) if isinstance(data, bytes)]

        assert entries == [b"2:ok,", b""]
        with pytest.raises(EndpointClosedException) as ended:
            channel.read()
        assert isinstance(ended.value.__cause__, FramingError)


def test_input_that_ends_inside_a_frame_ends_the_channel_with_framing_error() -> None:
    with TestChannel(buffering=LengthPrefixed(4)) as channel:
        channel.put(b"\x00\x00\x00\x01a\x00\x00\x00\x09abc")
        channel.put_eof()

        assert channel.read() == b"\x00\x00\x00\x01a"
        with pytest.raises(EndpointClosedException, match="ended inside a frame") as ended:
            channel.read()
        assert isinstance(ended.value.__cause__, FramingError)


def test_the_poller_ends_a_channel_whose_input_ends_inside_a_frame() -> None:
    with Poller() as poller, TestChannel(buffering=Netstrings()) as channel:
        poller.register(channel)
        channel.put(b"5:hel")
        channel.put_eof()
        entries: list[bytes] = []
        deadline = time.monotonic() + WAIT
        while b"" not in entries and time.monotonic() < deadline:
            entries += [data for data, _ in poller.poll(0.01) if isinstance(data, bytes)]

        assert entries == [b""]
        with pytest.raises(EndpointClosedException) as ended:
            channel.read()
        assert isinstance(ended.value.__cause__, FramingError)


def test_a_delimited_channel_gives_its_unterminated_rest_before_the_end() -> None:
    with TestChannel(buffering=Delimited(b"\0")) as channel:
        channel.put(b"one\0two")
        channel.put_eof()

        assert channel.read() == b"one\0"
        assert channel.read() == b"two"
        with pytest.raises(EndpointClosedException):
            channel.read()


def test_setting_buffering_to_a_framing_frames_the_next_read() -> None:
    with TestChannel() as channel:
        channel.buffering = Delimited(b";")
        channel.put(b"a;b;")

        assert read_frames(channel, 2) == [b"a;", b"b;"]
        channel.buffering = Netstrings()  # nothing buffered: allowed
        channel.put(b"1:c,")

        assert read_frames(channel, 1) == [b"1:c,"]


def test_switching_framing_with_part_of_a_frame_buffered_is_refused() -> None:
    with TestChannel(buffering=Netstrings()) as channel:
        channel.put(b"5:hel")
        assert channel.read() == b""

        with pytest.raises(ValueError, match="5 bytes of frames not read yet"):
            channel.buffering = "bytes"
        assert isinstance(channel.buffering, Netstrings)


def test_setting_the_same_framing_again_keeps_what_is_buffered() -> None:
    framing = Netstrings()
    with TestChannel(buffering=framing) as channel:
        channel.put(b"5:hel")
        assert channel.read() == b""
        channel.buffering = framing
        channel.put(b"lo,")

        assert read_frames(channel, 1) == [b"5:hello,"]


def test_bytes_read_past_a_match_are_framed_once_a_framing_is_set() -> None:
    with TestChannel() as channel:
        channel.put(b"login: 2:ok,")
        assert channel.expect(b"login: ", WAIT) == b"login: "
        channel.buffering = Netstrings()

        assert channel.read() == b"2:ok,"


def test_expect_on_a_framed_channel_keeps_what_follows_the_match_framed() -> None:
    with TestChannel(buffering=Netstrings()) as channel:
        channel.put(b"3:abc,5:hel")
        assert channel.expect(b"abc,", WAIT) == b"3:abc,"
        channel.put(b"lo,")

        assert read_frames(channel, 1) == [b"5:hello,"]


def test_aframes_yields_a_framed_channels_frames_until_the_end() -> None:
    async def collect() -> list[bytes]:
        with TestChannel(buffering=LengthPrefixed(1)) as channel:
            channel.put(b"\x01a\x02bc")
            channel.put_eof()
            return [frame async for frame in aframes(channel)]

    assert asyncio.run(collect()) == [b"\x01a", b"\x02bc"]


def test_aframes_cuts_a_bytes_channel_with_the_framing_given() -> None:
    async def collect() -> list[bytes]:
        with TestChannel() as channel:
            channel.put(b"1:a,0:,tail")
            channel.put_eof()
            return [frame async for frame in aframes(channel, Delimited(b","))]

    assert asyncio.run(collect()) == [b"1:a,", b"0:,", b"tail"]


def test_aframes_on_a_bytes_channel_needs_a_framing() -> None:
    async def start() -> None:
        with TestChannel() as channel:
            await anext(aframes(channel))

    with pytest.raises(ValueError, match="give aframes"):
        asyncio.run(start())


@pytest.mark.parametrize("framed_channel", [True, False])
def test_aframes_raises_when_the_input_cannot_be_framed(framed_channel: bool) -> None:
    framing = Netstrings()

    async def collect(got: list[bytes]) -> None:
        with TestChannel(buffering=framing if framed_channel else "bytes") as channel:
            channel.put(b"2:ok,x:")
            channel.put_eof()
            async for frame in aframes(channel, framing):
                got.append(frame)

    got: list[bytes] = []
    with pytest.raises(EndpointClosedException) as ended:
        asyncio.run(collect(got))
    assert got == [b"2:ok,"]
    assert isinstance(ended.value.__cause__, FramingError)


def test_aframes_raises_when_the_input_ends_inside_a_frame() -> None:
    async def collect() -> list[bytes]:
        with TestChannel() as channel:
            channel.put(b"\x05ab")
            channel.put_eof()
            return [frame async for frame in aframes(channel, LengthPrefixed(1))]

    with pytest.raises(EndpointClosedException) as ended:
        asyncio.run(collect())
    assert isinstance(ended.value.__cause__, FramingError)


def test_aframes_raises_the_reset_that_ended_a_bytes_channel() -> None:
    async def collect() -> list[bytes]:
        with TestChannel() as channel:
            channel.put_reset()
            return [frame async for frame in aframes(channel, Netstrings())]

    with pytest.raises(EndpointClosedException) as ended:
        asyncio.run(collect())
    assert isinstance(ended.value.__cause__, ConnectionResetError)


def test_expect_sees_the_bytes_of_a_frame_still_in_progress() -> None:
    with TestChannel(buffering=LengthPrefixed(2)) as channel:
        channel.put(b"\x00\x05ab")
        assert channel.read() == b""

        assert channel.expect(b"ab", WAIT) == b"\x00\x05ab"
