"""Sans-I/O splitting of a byte stream into ``b'\\n'``-terminated lines.

Operations: ``feed(data)`` appends bytes as they arrive, ``next_line()`` takes
one complete line (or ``None``), ``take_lines()`` takes all complete lines at
once, ``finish()`` takes the unterminated rest at end of stream.

Goal: worst case O(n) in the bytes fed, however the stream is chunked, and
memory bounded by ``max_line_length`` plus one chunk.

Plan: every byte is searched for ``b'\\n'`` exactly once, when its chunk is
fed. Lines wholly inside a chunk are cut out of it at once (one copy each, in
C where possible) and queued. The tail of a chunk that has no newline yet is
kept as a list of pieces, joined once when its newline arrives, so a line
spread over a thousand chunks is still copied only once more. A line that
grows past ``max_line_length`` is dropped while it arrives; a marker takes
its place in the queue so that the reader gets :class:`LineTooLongError` in
stream order, and then the next line.
"""

from __future__ import annotations

from collections import deque

from .errors import LineTooLongError

__all__ = ["DEFAULT_MAX_LINE_LENGTH", "LineSplitter"]

#: Default bound on a line's length, not counting its ``b'\n'``. Large enough
#: for any sane JSON-lines message, small enough that a peer that never sends
#: a newline cannot make a server hold more than this per connection.
DEFAULT_MAX_LINE_LENGTH = 1024 * 1024

_NL = b"\n"


class LineSplitter:
    """Splits a byte stream into lines ending in ``b'\\n'``; no I/O inside.

    ``max_line_length`` bounds a line's length without its newline; ``None``
    means no bound.
    """

    __slots__ = ("max_line_length", "_ready", "_tail", "_tail_len", "_dropping")

    def __init__(self, max_line_length: int | None = DEFAULT_MAX_LINE_LENGTH) -> None:
        if max_line_length is not None and max_line_length < 1:
            raise ValueError(f"max_line_length must be a positive int or None, not {max_line_length!r}")
        self.max_line_length = max_line_length
        # Complete lines in order; ``None`` marks where an overlong line was.
        self._ready: deque[bytes | None] = deque()
        # Pieces of the line still waiting for its newline (none contains one).
        self._tail: list[bytes] = []
        self._tail_len = 0
        # True while the rest of an overlong line is being skipped.
        self._dropping = False

    @property
    def buffered(self) -> int:
        """How many bytes are held: queued lines plus the unterminated tail."""
        return sum(len(line) for line in self._ready if line is not None) + self._tail_len

    def has_line(self) -> bool:
        """Whether ``next_line()`` would return a line (or raise) now."""
        return bool(self._ready)

    def feed(self, data: bytes) -> None:
        """Append ``data`` to the stream."""
        if not data:
            return
        # Every piece ends in b'\n' except perhaps the last.
        pieces = _split_after_newlines(data)
        first = 0
        if self._tail_len or self._dropping:
            if pieces[0][-1:] != _NL:
                self._grow_tail(data)
                return
            self._end_tail(pieces[0])
            first = 1
        if pieces[-1][-1:] != _NL and len(pieces) > first:
            tail = pieces.pop()
            self._queue(pieces, first, len(data))
            self._grow_tail(tail)
        else:
            self._queue(pieces, first, len(data))

    def next_line(self) -> bytes | None:
        """Take the next complete line, or ``None`` if there is none yet.

        Raises :class:`LineTooLongError` where an overlong line stood; the
        call after that goes on with the next line.
        """
        if not self._ready:
            return None
        line = self._ready.popleft()
        if line is None:
            raise self._too_long()
        return line

    def take_lines(self) -> tuple[list[bytes], int]:
        """Take every complete line at once.

        Returns the lines and how many overlong lines were dropped among
        them (they are skipped, not raised: the caller decides how to report
        them).
        """
        ready = self._ready
        if None not in ready:
            lines: list[bytes] = list(ready)  # type: ignore[arg-type]
            ready.clear()
            return lines, 0
        lines = [line for line in ready if line is not None]
        dropped = len(ready) - len(lines)
        ready.clear()
        return lines, dropped

    def finish(self) -> bytes:
        """Take the unterminated rest of the stream (``b''`` if there is none).

        Call at end of stream, after the complete lines are taken. A rest that
        was being dropped as overlong stays dropped.
        """
        rest = b"".join(self._tail)
        self._tail.clear()
        self._tail_len = 0
        self._dropping = False
        return rest

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
        if limit is not None and chunk_size > limit + 1 and max(map(len, lines)) > limit + 1:
            self._ready.extend(line if len(line) <= limit + 1 else None for line in lines)
        else:
            self._ready.extend(lines)

    def _grow_tail(self, piece: bytes) -> None:
        if self._dropping:
            return
        self._tail_len += len(piece)
        limit = self.max_line_length
        if limit is not None and self._tail_len > limit:
            self._drop_tail()
        else:
            self._tail.append(piece)

    def _end_tail(self, end: bytes) -> None:
        """``end`` finishes the tail's line: queue the whole line."""
        if self._dropping:
            self._dropping = False
            return
        limit = self.max_line_length
        if limit is not None and self._tail_len + len(end) - 1 > limit:
            self._drop_tail()
            self._dropping = False
            return
        self._tail.append(end)
        self._ready.append(b"".join(self._tail))
        self._tail.clear()
        self._tail_len = 0

    def _drop_tail(self) -> None:
        self._tail.clear()
        self._tail_len = 0
        self._dropping = True
        self._ready.append(None)


def _split_after_newlines(data: bytes) -> list[bytes]:
    """Split ``data`` after each ``b'\\n'``, keeping the newlines."""
    if b"\r" not in data:
        # In C, and returns ``data`` itself when it holds no newline.
        return data.splitlines(keepends=True)
    # bytes.splitlines() would also split on b'\r'; only b'\n' counts here.
    pieces = []
    find = data.find
    start = 0
    end = find(_NL) + 1
    while end:
        pieces.append(data[start:end])
        start = end
        end = find(_NL, start) + 1
    if start < len(data):
        pieces.append(data[start:])
    return pieces
