"""The sans-I/O ``LineSplitter``, tested with plain byte strings (SPEC §2, §3.4)."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels import DEFAULT_MAX_LINE_LENGTH, LineSplitter, LineTooLongError
from channels import splitter as splitter_module

ROOT = Path(__file__).resolve().parent.parent

#: Stands where the model expects a ``LineTooLongError``.
TOO_LONG = "too long"

Token = bytes | str

# Bytes that other line splitters treat as line ends; only b'\n' may end a line here.
_PIECES = [b"a", b"bc", b"\n", b"\r", b"\r\n", b"\n\n", b"\x0b", b"\x0c", b"\x1c", b"\x85", b"\x00"]

streams = st.one_of(
    st.lists(st.sampled_from(_PIECES), max_size=60).map(b"".join),
    st.binary(max_size=200),
)


# -- the model ----------------------------------------------------------------


def split_on_newline(data: bytes) -> list[bytes]:
    """``data`` cut after each b'\\n' only, the unterminated rest last (if any)."""
    pieces = [piece + b"\n" for piece in data.split(b"\n")]
    pieces[-1] = pieces[-1][:-1]
    return [piece for piece in pieces if piece]


def expected_tokens(data: bytes, max_line_length: int) -> list[Token]:
    """The model's lines, each overlong line (terminated or not) replaced by one error."""
    tokens: list[Token] = []
    for piece in split_on_newline(data):
        content = len(piece) - 1 if piece.endswith(b"\n") else len(piece)
        tokens.append(TOO_LONG if content > max_line_length else piece)
    return tokens


# -- driving the splitter -----------------------------------------------------


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given offsets (duplicates give empty chunks)."""
    bounds = [0, *sorted(cut % (len(data) + 1) for cut in cuts), len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


def drain_next_line(splitter: LineSplitter) -> list[Token]:
    """Call ``next_line()`` until it returns ``None``, noting each error in place."""
    tokens: list[Token] = []
    for _ in range(100_000):
        try:
            line = splitter.next_line()
        except LineTooLongError:
            tokens.append(TOO_LONG)
            continue
        if line is None:
            return tokens
        tokens.append(line)
    raise AssertionError("next_line() never returned None")


def split_with_next_line(chunks: list[bytes], max_line_length: int | None = None) -> list[Token]:
    splitter = LineSplitter(max_line_length)
    tokens: list[Token] = []
    for chunk in chunks:
        splitter.feed(chunk)
        tokens += drain_next_line(splitter)
    rest = splitter.finish()
    if rest:
        tokens.append(rest)
    return tokens


def split_with_take_lines(chunks: list[bytes], max_line_length: int | None = None) -> tuple[list[bytes], int]:
    splitter = LineSplitter(max_line_length)
    lines: list[bytes] = []
    dropped = 0
    for chunk in chunks:
        splitter.feed(chunk)
        taken, skipped = splitter.take_lines()
        lines += taken
        dropped += skipped
    rest = splitter.finish()
    if rest:
        lines.append(rest)
    return lines, dropped


def pieces_of(data: bytes, size: int) -> Iterator[bytes]:
    return (data[start : start + size] for start in range(0, len(data), size))


# -- any stream, any chunking -------------------------------------------------


@settings(max_examples=300)
@given(data=streams, cuts=st.lists(st.integers(min_value=0), max_size=20))
def test_next_line_splits_any_chunking_after_each_newline_only(data: bytes, cuts: list[int]) -> None:
    tokens = split_with_next_line(chunked(data, cuts))
    assert tokens == split_on_newline(data)
    assert b"".join(line for line in tokens if isinstance(line, bytes)) == data


@settings(max_examples=300)
@given(data=streams, cuts=st.lists(st.integers(min_value=0), max_size=20))
def test_take_lines_splits_any_chunking_after_each_newline_only(data: bytes, cuts: list[int]) -> None:
    lines, dropped = split_with_take_lines(chunked(data, cuts))
    assert lines == split_on_newline(data)
    assert dropped == 0
    assert b"".join(lines) == data


@settings(max_examples=300)
@given(
    data=streams,
    cuts=st.lists(st.integers(min_value=0), max_size=20),
    max_line_length=st.integers(min_value=1, max_value=6),
)
def test_overlong_lines_become_one_error_each_in_stream_order(
    data: bytes, cuts: list[int], max_line_length: int
) -> None:
    assert split_with_next_line(chunked(data, cuts), max_line_length) == expected_tokens(data, max_line_length)


@settings(max_examples=300)
@given(
    data=streams,
    cuts=st.lists(st.integers(min_value=0), max_size=20),
    max_line_length=st.integers(min_value=1, max_value=6),
)
def test_take_lines_skips_overlong_lines_and_counts_them(data: bytes, cuts: list[int], max_line_length: int) -> None:
    expected = expected_tokens(data, max_line_length)
    lines, dropped = split_with_take_lines(chunked(data, cuts), max_line_length)
    assert lines == [token for token in expected if isinstance(token, bytes)]
    assert dropped == expected.count(TOO_LONG)


def test_carriage_returns_do_not_end_lines() -> None:
    splitter = LineSplitter()
    splitter.feed(b"a\rb\r\nc\r")
    assert splitter.take_lines() == ([b"a\rb\r\n"], 0)
    assert splitter.finish() == b"c\r"


def test_empty_lines_are_returned_as_bare_newlines() -> None:
    splitter = LineSplitter()
    splitter.feed(b"\n\nx\n\n")
    assert drain_next_line(splitter) == [b"\n", b"\n", b"x\n", b"\n"]


def test_line_split_across_chunks_is_returned_once_complete() -> None:
    splitter = LineSplitter()
    splitter.feed(b"hel")
    assert splitter.next_line() is None
    splitter.feed(b"lo")
    assert splitter.next_line() is None
    splitter.feed(b"\nwor")
    assert splitter.next_line() == b"hello\n"
    assert splitter.next_line() is None
    assert splitter.finish() == b"wor"


def test_feeding_empty_bytes_changes_nothing() -> None:
    splitter = LineSplitter()
    splitter.feed(b"")
    assert not splitter.has_line()
    assert splitter.buffered == 0
    assert splitter.finish() == b""


# -- has_line, buffered, finish ----------------------------------------------


def test_has_line_is_true_only_while_a_complete_line_waits() -> None:
    splitter = LineSplitter()
    assert not splitter.has_line()
    splitter.feed(b"partial")
    assert not splitter.has_line()
    splitter.feed(b"\nnext")
    assert splitter.has_line()
    assert splitter.next_line() == b"partial\n"
    assert not splitter.has_line()


def test_has_line_is_true_while_an_overlong_line_error_waits() -> None:
    splitter = LineSplitter(max_line_length=2)
    splitter.feed(b"abc")
    assert splitter.has_line()
    with pytest.raises(LineTooLongError):
        splitter.next_line()
    assert not splitter.has_line()


def test_buffered_counts_queued_lines_and_unterminated_tail() -> None:
    splitter = LineSplitter()
    splitter.feed(b"ab\ncd\nef")
    assert splitter.buffered == 8
    assert splitter.next_line() == b"ab\n"
    assert splitter.buffered == 5
    splitter.take_lines()
    assert splitter.buffered == 2
    splitter.finish()
    assert splitter.buffered == 0


def test_finish_returns_empty_bytes_when_stream_ends_with_newline() -> None:
    splitter = LineSplitter()
    splitter.feed(b"done\n")
    assert splitter.finish() == b""
    assert splitter.next_line() == b"done\n"


def test_finish_clears_the_tail_so_a_second_finish_returns_nothing() -> None:
    splitter = LineSplitter()
    splitter.feed(b"rest")
    assert splitter.finish() == b"rest"
    assert splitter.buffered == 0
    assert splitter.finish() == b""


def test_finish_resets_dropping_so_new_input_starts_a_fresh_line() -> None:
    splitter = LineSplitter(max_line_length=3)
    splitter.feed(b"overlong")
    assert splitter.finish() == b""
    with pytest.raises(LineTooLongError):
        splitter.next_line()
    splitter.feed(b"ok\n")
    assert splitter.next_line() == b"ok\n"


def test_take_lines_with_nothing_ready_returns_empty() -> None:
    splitter = LineSplitter()
    splitter.feed(b"no newline")
    assert splitter.take_lines() == ([], 0)


# -- max_line_length ------------------------------------------------------------


def test_default_max_line_length_is_one_mebibyte() -> None:
    assert DEFAULT_MAX_LINE_LENGTH == 1024 * 1024
    assert LineSplitter().max_line_length == DEFAULT_MAX_LINE_LENGTH


@pytest.mark.parametrize("max_line_length", [0, -1])
def test_max_line_length_below_one_raises_value_error(max_line_length: int) -> None:
    with pytest.raises(ValueError, match="max_line_length"):
        LineSplitter(max_line_length)


@pytest.mark.parametrize("chunk_size", [1, 3, 1000])
def test_line_of_exactly_max_line_length_passes(chunk_size: int) -> None:
    line = b"x" * 10 + b"\n"
    assert split_with_next_line(list(pieces_of(line, chunk_size)), max_line_length=10) == [line]


def test_unterminated_rest_of_exactly_max_line_length_is_returned_by_finish() -> None:
    splitter = LineSplitter(max_line_length=4)
    splitter.feed(b"abcd")
    assert splitter.next_line() is None
    assert splitter.finish() == b"abcd"


def test_overlong_line_in_one_chunk_raises_once_then_next_line_follows() -> None:
    splitter = LineSplitter(max_line_length=10)
    splitter.feed(b"before\n" + b"x" * 11 + b"\nafter\n")
    assert splitter.next_line() == b"before\n"
    with pytest.raises(LineTooLongError, match="max_line_length=10"):
        splitter.next_line()
    assert splitter.next_line() == b"after\n"
    assert splitter.next_line() is None


@pytest.mark.parametrize("chunk_size", [1, 2, 5])
def test_overlong_line_in_small_chunks_raises_once_then_next_line_follows(chunk_size: int) -> None:
    stream = b"before\n" + b"x" * 11 + b"\nafter\n"
    tokens = split_with_next_line(list(pieces_of(stream, chunk_size)), max_line_length=10)
    assert tokens == [b"before\n", TOO_LONG, b"after\n"]


def test_overlong_line_whose_newline_arrives_last_raises_once() -> None:
    splitter = LineSplitter(max_line_length=5)
    splitter.feed(b"abcde")
    assert splitter.next_line() is None
    splitter.feed(b"f\nnext\n")
    with pytest.raises(LineTooLongError):
        splitter.next_line()
    assert splitter.next_line() == b"next\n"


def test_lines_before_an_overlong_line_come_first() -> None:
    splitter = LineSplitter(max_line_length=3)
    splitter.feed(b"a\nb\n")
    splitter.feed(b"toolong")
    splitter.feed(b"\nc\n")
    assert drain_next_line(splitter) == [b"a\n", b"b\n", TOO_LONG, b"c\n"]


def test_overlong_line_raises_a_fresh_error_each_time() -> None:
    splitter = LineSplitter(max_line_length=1)
    splitter.feed(b"aa\nbb\n")
    with pytest.raises(LineTooLongError) as first:
        splitter.next_line()
    with pytest.raises(LineTooLongError) as second:
        splitter.next_line()
    assert first.value is not second.value
    assert splitter.next_line() is None


def test_take_lines_reports_how_many_lines_were_dropped() -> None:
    splitter = LineSplitter(max_line_length=3)
    splitter.feed(b"ok\n" + b"long1\n" + b"ok2\n" + b"long2\n" + b"end\n")
    assert splitter.take_lines() == ([b"ok\n", b"ok2\n", b"end\n"], 2)
    assert splitter.take_lines() == ([], 0)


def test_overlong_unterminated_rest_is_not_returned_by_finish() -> None:
    splitter = LineSplitter(max_line_length=4)
    splitter.feed(b"line\nabc")
    splitter.feed(b"de")
    assert splitter.next_line() == b"line\n"
    with pytest.raises(LineTooLongError):
        splitter.next_line()
    assert splitter.finish() == b""


def test_memory_stays_bounded_while_an_overlong_line_streams_in() -> None:
    limit = 64 * 1024
    chunk = b"x" * 4096
    splitter = LineSplitter(max_line_length=limit)
    most = 0
    for _ in range(1024):  # 4 MiB, 64 times the limit
        splitter.feed(chunk)
        most = max(most, splitter.buffered)
    assert most <= limit + len(chunk)
    splitter.feed(b"\nnext\n")
    assert drain_next_line(splitter) == [TOO_LONG, b"next\n"]
    assert splitter.buffered == 0


def test_max_line_length_none_means_unbounded() -> None:
    splitter = LineSplitter(max_line_length=None)
    line = b"y" * (3 * DEFAULT_MAX_LINE_LENGTH) + b"\n"
    for piece in pieces_of(line, 64 * 1024):
        splitter.feed(piece)
    assert splitter.next_line() == line


# -- linear time --------------------------------------------------------------


def best_time(run: Callable[[], object], repeats: int = 3) -> float:
    """The shortest of ``repeats`` timings of ``run()``, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def feed_single_line(size: int, chunk_size: int = 4096) -> bytes:
    """Feed one ``size``-byte line in ``chunk_size`` pieces; return it."""
    chunk = b"z" * chunk_size
    splitter = LineSplitter(max_line_length=None)
    for _ in range(size // chunk_size):
        splitter.feed(chunk)
        assert splitter.next_line() is None
    splitter.feed(b"\n")
    line = splitter.next_line()
    assert line is not None
    return line


def feed_tiny_lines(size: int, chunk_size: int = 4096) -> int:
    """Feed ``size`` bytes of 16-byte lines (plus newline) in chunks; count the lines."""
    line = b"0123456789abcdef\n"
    data = line * (size // len(line))
    splitter = LineSplitter()
    count = 0
    for start in range(0, len(data), chunk_size):
        splitter.feed(data[start : start + chunk_size])
        while splitter.next_line() is not None:
            count += 1
    assert count == size // len(line)
    return count


def test_hundred_megabyte_line_in_4k_pieces_completes() -> None:
    size = 100 * 1024 * 1024
    line = feed_single_line(size)
    assert len(line) == size + 1
    assert line.endswith(b"z\n")


def test_single_line_cost_grows_linearly_with_its_length() -> None:
    # Both sizes are past the allocator's mmap threshold, so that each fresh
    # buffer costs the same per byte (smaller lines may reuse warm heap memory).
    # Measured in a fresh interpreter: in this process, after the rest of the
    # suite, the same measurement gave 14.7x where it gives 3.8x alone.
    script = (
        "from tests.test_splitter import best_time, feed_single_line\n"
        "size = 32 * 1024 * 1024\n"
        "small = best_time(lambda: feed_single_line(size))\n"
        "large = best_time(lambda: feed_single_line(4 * size))\n"
        "print(large / small)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True, cwd=ROOT
    )
    ratio = float(done.stdout)
    # Linear growth gives a ratio near 4, quadratic near 16.
    assert ratio < 10, f"4x the bytes took {ratio:.1f}x the time"


def test_many_tiny_lines_cost_grows_linearly_with_their_number() -> None:
    size = 1024 * 1024
    small = best_time(lambda: feed_tiny_lines(size))
    large = best_time(lambda: feed_tiny_lines(4 * size))
    assert large / small < 10, f"4x the lines took {large / small:.1f}x the time"


def test_a_chunk_that_is_one_line_is_taken_without_a_copy() -> None:
    splitter = LineSplitter()
    chunk = b"a request of one line\n"

    splitter.feed(chunk)

    assert splitter.next_line() is chunk


def test_lines_already_taken_are_let_go_when_more_arrive() -> None:
    splitter = LineSplitter()
    for number in range(1000):
        splitter.feed(b"a\nb\n")  # two lines in, one out: a reader falling behind
        assert splitter.next_line() is not None
        assert splitter.buffered == 2 * (number + 1)

    # Only the 1,000 lines not yet read are held, not the 1,000 already taken.
    assert len(splitter._ready or ()) - splitter._head == 1000
    assert len(splitter._ready or ()) <= 1002


# -- a bounded number of lines at a time ------------------------------------------


@settings(max_examples=300)
@given(
    data=streams,
    cuts=st.lists(st.integers(min_value=0), max_size=8),
    max_line_length=st.one_of(st.none(), st.integers(min_value=1, max_value=6)),
    batch=st.integers(min_value=1, max_value=4),
    limits=st.lists(st.one_of(st.none(), st.integers(min_value=1, max_value=5)), min_size=1, max_size=8),
)
def test_lines_taken_a_bounded_number_at_a_time_are_all_the_lines_in_order(
    data: bytes,
    cuts: list[int],
    max_line_length: int | None,
    batch: int,
    limits: list[int | None],
) -> None:
    # A small batch, so that short streams are cut a few lines at a time too.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(splitter_module, "_SPLIT_BATCH", batch)
        patch.setattr(splitter_module, "_CUT_WHOLE", batch)
        tokens = take_in_bounded_batches(chunked(data, cuts), max_line_length, limits)

    expected = split_on_newline(data) if max_line_length is None else expected_tokens(data, max_line_length)
    # take_lines() counts dropped lines rather than placing them: compare the lines, then the count.
    assert [token for token in tokens if token != TOO_LONG] == [token for token in expected if token != TOO_LONG]
    assert tokens.count(TOO_LONG) == expected.count(TOO_LONG)  # type: ignore[arg-type]


def take_in_bounded_batches(chunks: list[bytes], max_line_length: int | None, limits: list[int | None]) -> list[Token]:
    """Feed each chunk, then take ``limits[i]`` lines (``None``: one line
    by ``next_line()``); then everything left."""
    splitter = LineSplitter(max_line_length)
    tokens: list[Token] = []
    for index, chunk in enumerate(chunks):
        splitter.feed(chunk)
        limit = limits[index % len(limits)]
        if limit is None:
            try:
                line = splitter.next_line()
            except LineTooLongError:
                tokens.append(TOO_LONG)
                continue
            if line is not None:
                tokens.append(line)
            continue
        lines, dropped = splitter.take_lines(limit)
        assert len(lines) + dropped <= limit
        tokens += lines + [TOO_LONG] * dropped
    tokens += drain_next_line(splitter)
    rest = splitter.finish()
    if rest:
        tokens.append(rest)
    return tokens


def test_take_lines_with_a_limit_takes_that_many_and_leaves_the_rest() -> None:
    splitter = LineSplitter()
    splitter.feed(b"1\n2\n3\n4\n5\n")

    assert splitter.take_lines(2) == ([b"1\n", b"2\n"], 0)
    assert splitter.has_line()
    assert splitter.take_lines(2) == ([b"3\n", b"4\n"], 0)
    assert splitter.take_lines(2) == ([b"5\n"], 0)
    assert not splitter.has_line()


def test_a_chunk_of_many_lines_is_cut_only_a_batch_at_a_time() -> None:
    splitter = LineSplitter()
    chunk = b"q\n" * 32768  # 64 KiB of two-byte lines

    splitter.feed(chunk)

    # The first batch is cut; the rest waits as it came, not as 32,000 objects.
    assert len(splitter._ready or ()) == splitter_module._SPLIT_BATCH
    assert splitter.buffered == len(chunk)
    lines, _ = splitter.take_lines(1000)
    assert lines == [b"q\n"] * 1000
    assert splitter.buffered == len(chunk) - 2000


def test_the_unterminated_end_of_a_chunk_cut_in_batches_joins_the_next_chunk() -> None:
    splitter = LineSplitter()
    splitter.feed(b"a\n" * 1000 + b"par")

    splitter.feed(b"tial\nnext\n")

    lines, _ = splitter.take_lines()
    assert lines == [b"a\n"] * 1000 + [b"partial\n", b"next\n"]
    assert splitter.finish() == b""


def test_an_overlong_line_in_a_chunk_cut_in_batches_is_dropped_and_counted() -> None:
    splitter = LineSplitter(max_line_length=10)
    splitter.feed(b"ok\n" * 500 + b"x" * 50 + b"\n" + b"end\n")

    lines, dropped = splitter.take_lines()

    assert lines == [b"ok\n"] * 500 + [b"end\n"]
    assert dropped == 1


def test_take_lines_with_a_limit_counts_the_overlong_lines_it_passes() -> None:
    splitter = LineSplitter(max_line_length=3)
    splitter.feed(b"a\n" + b"x" * 10 + b"\n" + b"b\nc\n")

    assert splitter.take_lines(2) == ([b"a\n"], 1)
    assert splitter.take_lines(2) == ([b"b\n", b"c\n"], 0)
