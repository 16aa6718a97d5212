"""The lines workload: split a byte stream into lines, in memory.

    python bench/lines.py CASE [--rounds R] [--data-mib N] [--slow-rounds S]

Cases: 16 B and 1 KiB lines in 4 KiB and 64 KiB chunks (``--data-mib`` of
data, 32 by default), and single lines of 2 MiB and 8 MiB in 4 KiB chunks
(for the growth exponent). Splitters, each handed the same chunks:

``channels_take``    ``LineSplitter.feed`` + ``take_lines`` (what ``Poller.poll`` uses)
``channels_next``    ``LineSplitter.feed`` + ``next_line`` (what ``Channel.read`` uses)
``channels_frames``  the decoder of ``Delimited`` for any other delimiter (``b'\\0'``,
                     ``b'\\r\\n'``) + ``take_frames``, made to cut at ``b'\\n'`` here
``raw_find``         a hand-written ``bytearray`` + ``find`` loop that never rescans
``asyncio_readline`` ``asyncio.StreamReader.feed_data`` + ``readline``

and, when a baseline is measured too (see ``baseline.py``), the baseline's
``channels_take@before`` and ``channels_next@before``.

One process per case; inside it the splitters take turns, one value each per
round in an order that rotates every round, so that a disturbance of the
machine hits all of them alike and per-round ratios stay meaningful. (pyperf
runs one benchmark after another, each in its own processes, which makes
such pairing impossible; it is used for the micro-benchmarks instead.) One
value is the time to split all the data once. asyncio, ten times slower on
short lines, takes part in only ``--slow-rounds`` rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time
from collections.abc import Callable

from baseline import ENV, SUFFIX, load_package
from common import FOREIGN_LIMIT, busy_cpu_seconds, cpu_seconds, emit, pin, rotated

from channels import LineSplitter
from channels.framing import _DelimitedDecoder

KIB = 1024
MIB = 1024 * KIB
#: Large enough for the 8 MiB line in every splitter.
LIMIT = 16 * MIB

#: name -> (line length including b'\n', chunk size, total bytes (None: --data-mib), splits per value)
CASES: dict[str, tuple[int, int, int | None, int]] = {
    "16B/4KiB": (16, 4 * KIB, None, 1),
    "16B/64KiB": (16, 64 * KIB, None, 1),
    "1KiB/4KiB": (KIB, 4 * KIB, None, 1),
    "1KiB/64KiB": (KIB, 64 * KIB, None, 1),
    "line2MiB/4KiB": (2 * MIB, 4 * KIB, 2 * MIB, 64),
    "line8MiB/4KiB": (8 * MIB, 4 * KIB, 8 * MIB, 16),
}


def make_chunks(line_len: int, chunk: int, total: int) -> list[bytes]:
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789"
    line = (alphabet * (line_len // len(alphabet) + 1))[: line_len - 1] + b"\n"
    data = line * (total // line_len)
    return [data[i : i + chunk] for i in range(0, len(data), chunk)]


def take_with(splitter_class: type[LineSplitter]) -> Callable[[list[bytes]], int]:
    """The ``poll()`` path of ``splitter_class``: feed, then take all lines."""

    def channels_take(chunks: list[bytes]) -> int:
        splitter = splitter_class(LIMIT)
        count = 0
        for chunk in chunks:
            splitter.feed(chunk)
            if splitter.has_line():
                lines, _dropped = splitter.take_lines()
                count += len(lines)
        return count

    return channels_take


def next_with(splitter_class: type[LineSplitter]) -> Callable[[list[bytes]], int]:
    """The ``read()`` path of ``splitter_class``: feed, then one line at a time."""

    def channels_next(chunks: list[bytes]) -> int:
        splitter = splitter_class(LIMIT)
        count = 0
        for chunk in chunks:
            splitter.feed(chunk)
            while splitter.next_line() is not None:
                count += 1
        return count

    return channels_next


def channels_frames(chunks: list[bytes]) -> int:
    # Delimited(b"\n") itself is read by the LineSplitter: the generic decoder
    # is built directly, to measure what any other delimiter costs.
    decoder = _DelimitedDecoder(b"\n", LIMIT)
    count = 0
    for chunk in chunks:
        decoder.feed(chunk)
        if decoder.has_frame():
            frames, _dropped = decoder.take_frames()
            count += len(frames)
    return count


def raw_find(chunks: list[bytes]) -> int:
    buf = bytearray()
    searched = 0  # bytes of buf known to hold no newline
    count = 0
    for chunk in chunks:
        buf += chunk
        find = buf.find
        start = 0
        end = find(b"\n", searched)
        while end >= 0:
            end += 1
            _line = buf[start:end]
            count += 1
            start = end
            end = find(b"\n", start)
        if start:
            del buf[:start]
        searched = len(buf)
    return count


def asyncio_readline(chunks: list[bytes]) -> int:
    # The reader is driven by hand rather than by a running loop, so that only
    # feed_data() and readline() are timed, not task switching.
    loop = asyncio.new_event_loop()
    try:
        reader = asyncio.StreamReader(limit=LIMIT, loop=loop)

        async def consume() -> int:
            count = 0
            while await reader.readline():
                count += 1
            return count

        coro = consume()
        waiter = coro.send(None)  # runs until readline() waits for data
        for chunk in chunks:
            reader.feed_data(chunk)
            if waiter.done():
                waiter = coro.send(None)
        reader.feed_eof()
        try:
            while True:
                coro.send(None)
        except StopIteration as stop:
            return int(stop.value)
    finally:
        loop.close()


SPLITTERS: dict[str, Callable[[list[bytes]], int]] = {
    "channels_take": take_with(LineSplitter),
    "channels_next": next_with(LineSplitter),
    "channels_frames": channels_frames,
    "raw_find": raw_find,
    "asyncio_readline": asyncio_readline,
}


def add_baseline(src: str) -> None:
    """Add the baseline's splitters (see baseline.py), to interleave with ours."""
    before = load_package(src).LineSplitter
    SPLITTERS["channels_take" + SUFFIX] = take_with(before)
    SPLITTERS["channels_next" + SUFFIX] = next_with(before)


#: Splitters that take part in only ``--slow-rounds`` rounds.
SLOW = ("asyncio_readline",)


def case_bytes(case: str, data_mib: int) -> int:
    total = CASES[case][2]
    return total or data_mib * MIB


def time_split(split: Callable[[list[bytes]], int], chunks: list[bytes], repeat: int, expected: int) -> float:
    """Seconds for one split (the mean of ``repeat``), checking the line count.

    Measured again once if other processes kept more than a quarter of a CPU
    busy meanwhile (the machine may be shared); the less disturbed value wins.
    """
    best: tuple[float, float] | None = None
    for _attempt in range(2):
        gc.collect()
        busy0, own0 = busy_cpu_seconds(), cpu_seconds()
        t0 = time.perf_counter()
        for _ in range(repeat):
            count = split(chunks)
            if count != expected:
                raise AssertionError(f"{split.__qualname__} found {count} lines, expected {expected}")
        elapsed = time.perf_counter() - t0
        if elapsed < 0.2:  # too short for CPU times counted in clock ticks
            return elapsed / repeat
        foreign = (busy_cpu_seconds() - busy0 - (cpu_seconds() - own0)) / elapsed
        if best is None or foreign < best[1]:
            best = (elapsed / repeat, foreign)
        if best[1] <= FOREIGN_LIMIT:
            break
    assert best is not None
    return best[0]


def run_case(case: str, rounds: int, slow_rounds: int, data_mib: int) -> dict[str, list[float]]:
    line_len, chunk, _total, repeat = CASES[case]
    size = case_bytes(case, data_mib)
    chunks = make_chunks(line_len, chunk, size)
    expected = size // line_len
    values: dict[str, list[float]] = {name: [] for name in SPLITTERS}
    for turn in range(rounds):
        for name in rotated(list(SPLITTERS), turn):
            if name in SLOW and turn >= slow_rounds:
                continue
            values[name].append(time_split(SPLITTERS[name], chunks, repeat, expected))
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case", choices=list(CASES))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--slow-rounds", type=int, default=2)
    parser.add_argument("--data-mib", type=int, default=32)
    parser.add_argument("--cpu", type=int, default=None)
    args = parser.parse_args()
    pin(args.cpu)
    if os.environ.get(ENV):
        add_baseline(os.environ[ENV])
    values = run_case(args.case, args.rounds, args.slow_rounds, args.data_mib)
    emit({"case": args.case, "bytes": case_bytes(args.case, args.data_mib), "values": values})


if __name__ == "__main__":
    main()
