"""Sans-I/O splitting of a byte stream into ``b'\\n'``-terminated lines.

Operations: ``feed(data)`` appends bytes as they arrive, ``next_line()`` takes
one complete line (or ``None``), ``take_lines()`` takes all complete lines at
once, ``finish()`` takes the unterminated rest at end of stream.

Goal: worst case O(n) in the bytes fed, however the stream is chunked, and
memory bounded by ``max_line_length`` plus one chunk.

Plan: every byte is searched for ``b'\\n'`` when its chunk is fed, and never
again once it is in a line or in the tail. Lines wholly inside a chunk are cut
out of it at once, one copy each, by ``BytesIO.readlines()``: a C loop that
stops only at ``b'\\n'`` (memchr), two to three times faster than
``bytes.splitlines()`` (which also splits at ``b'\\r'``, so is wrong here
anyway) or a Python ``find()`` loop, for short and long lines alike (measured
with ``bench/lines.py``). A chunk that is exactly one line is queued as it
is, with no copy at all. The tail of a chunk that has no newline yet is kept
as a list of pieces, joined once when its newline arrives, so a line spread
over a thousand chunks is still copied only once more. A line that grows past
``max_line_length`` is dropped while it arrives; a marker takes its place in
the queue so that the reader gets :class:`LineTooLongError` in
stream order, and then the next line.

Memory: a line costs a bytes object of its own, about 35 bytes more than
its text, so a 64 KiB chunk of two-byte lines split at once would take
about 1.5 MiB (and a server reading 200 such chunks in one poll, 300 MiB).
So a chunk larger than ``_CUT_WHOLE`` is cut into at most ``_SPLIT_BATCH``
lines when it is fed; the rest of it stays as it came, one shared bytes
object, and is cut a batch at a time as lines are taken.
``take_lines(limit)`` takes a bounded number.

It is also the decoder of the line framing (``buffering='line'``,
:class:`~channels.framing.Lines`): ``next_frame``, ``take_frames``,
``has_frame`` and ``max_length`` are other names of ``next_line``,
``take_lines``, ``has_line`` and ``max_line_length``, for the
:class:`~channels.framing.FrameDecoder` protocol. Aliases, not wrappers: a
line channel calls the same functions as before, at the same cost.
"""

from __future__ import annotations

from io import BytesIO
from itertools import islice

from . import _check
from .errors import LineTooLongError

__all__ = ["DEFAULT_MAX_LINE_LENGTH", "LineSplitter"]

#: Default bound on a line's length, not counting its ``b'\n'``. Large enough
#: for any sane JSON-lines message, small enough that a peer that never sends
#: a newline cannot make a server hold more than this per connection.
DEFAULT_MAX_LINE_LENGTH = 1024 * 1024

_NL = b"\n"

# The most lines a chunk is cut into at once; the rest of it waits, uncut,
# until they are taken. As many as a poll takes from a channel
# (channels._seam.ENTRIES_PER_POLL).
_SPLIT_BATCH = 256

# Chunks up to this size are cut whole at once, by readlines(), the fastest
# way (cutting in batches costs 10-40% more on small chunks, measured):
# they hold at most this many lines, 160 KiB of line objects at worst.
_CUT_WHOLE = 4096


class ReadyQueue:
    """The complete lines or frames a decoder has cut, in order, with
    ``None`` where an overlong one was dropped: what :class:`LineSplitter`
    and the decoders of :mod:`channels.framing` hand out, taken all at once
    or a bounded number at a time. ``_ready`` is ``None`` when empty,
    ``_head`` the index of the next one, ``_dropped`` the markers in it."""

    __slots__ = ("_dropped", "_head", "_ready")

    _ready: list[bytes | None] | None
    _head: int
    _dropped: int

    def _take_ready(self, limit: int | None) -> tuple[list[bytes], int]:
        """Take what is ready, or the first ``limit`` of it, and how many
        dropped ones were among them (skipped, not raised)."""
        ready = self._ready
        if ready is None:
            return [], 0
        head = self._head
        if limit is not None and len(ready) - head > limit:
            taken = ready[head : head + limit]
            self._head = head + limit
            if not self._dropped:
                return taken, 0  # type: ignore[return-value]
            dropped = taken.count(None)
            self._dropped -= dropped
            return [item for item in taken if item is not None], dropped
        if head:
            del ready[:head]
        self._ready = None
        self._head = 0
        dropped = self._dropped
        if dropped:
            self._dropped = 0
            return [item for item in ready if item is not None], dropped
        return ready, 0  # type: ignore[return-value]


class LineSplitter(ReadyQueue):
    """Splits a byte stream into lines ending in ``b'\\n'``; no I/O inside.

    ``max_line_length`` bounds a line's length without its newline: a whole
    number of bytes >= 1, or ``None`` for no bound (``TypeError`` or
    ``ValueError`` otherwise).
    """

    __slots__ = ("_dropping", "_tail", "_tail_len", "_uncut", "max_line_length")

    def __init__(self, max_line_length: int | None = DEFAULT_MAX_LINE_LENGTH) -> None:
        if type(max_line_length) is not int or max_line_length < 1:  # the usual case, kept short
            max_line_length = _check.optional_count(max_line_length, "max_line_length", unit="bytes")
        self.max_line_length = max_line_length
        # Complete lines in order, from ``_head`` on; ``None`` marks where an
        # overlong line was. Lists are made only when needed: an idle line
        # channel should cost little.
        self._ready: list[bytes | None] | None = None
        self._head = 0
        # Pieces of the line still waiting for its newline (none contains one).
        self._tail: list[bytes] | None = None
        self._tail_len = 0
        # True while the rest of an overlong line is being skipped.
        self._dropping = False
        # How many ``None`` markers ``_ready`` holds.
        self._dropped = 0
        # The rest of a chunk with more lines than were cut at once: the
        # chunk read from where its next line starts, and the offset just
        # past its last ``b'\n'`` (what follows is in ``_tail`` already).
        # Set only while at least one whole line is left in it.
        self._uncut: tuple[BytesIO, int, int] | None = None

    @property
    def buffered(self) -> int:
        """How many bytes are held: queued lines plus the unterminated tail."""
        ready = self._ready or ()
        uncut = 0 if self._uncut is None else self._uncut[1] - self._uncut[0].tell()
        return sum(len(line) for line in ready[self._head :] if line is not None) + uncut + self._tail_len

    def has_line(self) -> bool:
        """Whether ``next_line()`` would return a line (or raise) now."""
        return self._ready is not None or self._uncut is not None

    def feed(self, data: bytes) -> None:
        """Append ``data`` (``bytes``) to the stream; ``TypeError`` for text
        (encode it first) and other types."""
        if self._uncut is not None:
            self._cut(None)  # what came before is cut first, to keep the order
        try:
            first_end = data.find(_NL) + 1
        except (AttributeError, TypeError):
            # Checked only when it fails, so that the bytes every read
            # feeds pay nothing for it.
            raise TypeError(
                f"LineSplitter.feed() takes bytes, not {type(data).__name__}"
                + (": encode the text first" if isinstance(data, str) else "")
            ) from None
        if not first_end:  # also b'': nothing to split, and no copy made
            if data:
                self._grow_tail(data)
            return
        # Every piece ends in b'\n' except perhaps the last. A chunk that is
        # one line (a request, a reply) is taken whole, without a copy.
        if first_end == len(data):
            pieces = [data]
        elif len(data) <= _CUT_WHOLE:
            pieces = BytesIO(data).readlines()
        else:
            pieces = self._cut_first(data)
        first = 0
        if self._tail_len or self._dropping:
            if self._dropping:
                self._dropping = False  # the overlong line ends here
                first = 1
            else:
                pieces[0] = self._end_tail(pieces[0])  # type: ignore[assignment]
        tail = pieces.pop() if data[-1] != 10 and len(pieces) > first else None
        limit = self.max_line_length
        if first == 0 and self._ready is None and (limit is None or len(data) <= limit + 1):
            if pieces:
                self._ready = pieces  # type: ignore[assignment]
        else:
            self._queue(pieces, first, len(data))
        if tail is not None:
            self._grow_tail(tail)

    def next_line(self) -> bytes | None:
        """Take the next complete line, or ``None`` if there is none yet.

        Raises :class:`LineTooLongError` where an overlong line stood; the
        call after that goes on with the next line.
        """
        ready = self._ready
        if ready is None:
            if self._uncut is None:
                return None
            self._cut(_SPLIT_BATCH)
            ready = self._ready
            assert ready is not None
        head = self._head
        line = ready[head]
        if head + 1 < len(ready):
            self._head = head + 1
        else:
            self._ready = None
            self._head = 0
        if line is None:
            self._dropped -= 1
            raise self._too_long()
        return line

    def take_lines(self, limit: int | None = None) -> tuple[list[bytes], int]:
        """Take every complete line at once, or the first ``limit`` of them.

        Returns the lines and how many overlong lines were dropped among
        them (they are skipped, not raised: the caller decides how to report
        them). With ``limit``, fewer than ``limit`` taken (markers of
        dropped lines counted in) means that none are left.
        """
        if self._uncut is not None:
            ready = self._ready
            waiting = 0 if ready is None else len(ready) - self._head
            if limit is None or waiting < limit:
                self._cut(None if limit is None else limit - waiting)
        return self._take_ready(limit)

    def _cut_first(self, data: bytes) -> list[bytes]:
        """The first batch of lines of ``data`` (a chunk with a ``b'\n'`` not
        at its end), keeping the rest of it uncut if there is more."""
        source = BytesIO(data)  # shares ``data``: no copy
        pieces = list(islice(source, _SPLIT_BATCH))
        position = source.tell()
        if position < len(data):
            end = data.rfind(_NL) + 1
            if position < end:
                self._uncut = (source, end, len(data))
            if end < len(data):
                pieces.append(data[end:])  # the unterminated rest, kept as the tail
        return pieces

    def _cut(self, count: int | None) -> None:
        """Cut ``count`` more lines (``None``: all) of the uncut rest into ``_ready``."""
        assert self._uncut is not None
        source, end, size = self._uncut
        lines = source.readlines() if count is None else list(islice(source, count))
        position = source.tell()
        if position >= end:
            self._uncut = None
            if position > end:
                lines.pop()  # the unterminated rest, already the tail
        limit = self.max_line_length
        if limit is not None and size > limit + 1:
            kept: list[bytes | None] = [line if len(line) <= limit + 1 else None for line in lines]
            self._dropped += kept.count(None)
            self._append(kept)
        else:
            self._append(lines)  # type: ignore[arg-type]

    def finish(self) -> bytes:
        """Take the unterminated rest of the stream (``b''`` if there is none).

        Call at end of stream, after the complete lines are taken. A rest that
        was being dropped as overlong stays dropped.
        """
        rest = b"".join(self._tail) if self._tail else b""
        self._tail = None
        self._tail_len = 0
        self._dropping = False
        return rest

    # The FrameDecoder protocol (channels.framing), by the same functions.
    next_frame = next_line
    take_frames = take_lines
    has_frame = has_line

    @property
    def max_length(self) -> int | None:
        """``max_line_length``, by the name every framing uses."""
        return self.max_line_length

    def _too_long(self) -> LineTooLongError:
        return LineTooLongError(f"a line longer than max_line_length={self.max_line_length} bytes was discarded")

    def _queue(self, lines: list[bytes], first: int, chunk_size: int) -> None:
        """Queue ``lines[first:]``, complete lines cut from a chunk of ``chunk_size`` bytes."""
        if first >= len(lines):
            return
        if first:
            del lines[:first]
        limit = self.max_line_length
        # A chunk no longer than a line may be cannot hold an overlong line.
        if limit is not None and chunk_size > limit + 1:
            # ``lines[0]`` may already be a marker, counted when it was made.
            kept: list[bytes | None] = [line if line is None or len(line) <= limit + 1 else None for line in lines]
            self._dropped += kept.count(None) - lines.count(None)  # type: ignore[arg-type]
            self._append(kept)
        else:
            self._append(lines)  # type: ignore[arg-type]

    def _append(self, lines: list[bytes | None]) -> None:
        ready = self._ready
        if ready is None:
            self._ready = lines  # ours now: the caller made it for us
            return
        if self._head:
            # Let go of the lines already taken, so that a reader that lags
            # behind the feed holds only what it has not read: each line is
            # moved at most once, so this stays linear.
            del ready[: self._head]
            self._head = 0
        ready.extend(lines)

    def _grow_tail(self, piece: bytes) -> None:
        if self._dropping:
            return
        self._tail_len += len(piece)
        limit = self.max_line_length
        if limit is not None and self._tail_len > limit:
            self._drop_tail()
        elif self._tail is None:
            self._tail = [piece]
        else:
            self._tail.append(piece)

    def _end_tail(self, end: bytes) -> bytes | None:
        """``end`` finishes the tail's line: the whole line, or ``None`` (a
        marker, counted) if it is too long."""
        limit = self.max_line_length
        tail = self._tail
        self._tail = None
        if limit is not None and self._tail_len + len(end) - 1 > limit:
            self._tail_len = 0
            self._dropped += 1
            return None
        self._tail_len = 0
        assert tail is not None
        tail.append(end)
        return b"".join(tail)

    def _drop_tail(self) -> None:
        self._tail = None
        self._tail_len = 0
        self._dropping = True
        self._dropped += 1
        self._append([None])
