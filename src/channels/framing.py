"""Framings: how a byte stream is cut into messages, chosen with ``buffering=``.

A *framing* is a reusable description of a wire format: :class:`Lines`,
:class:`Delimited` (any delimiter), :class:`LengthPrefixed` (a big-endian
unsigned length, then the payload) and :class:`Netstrings`. Give one to a
channel, a ``connect()`` or a ``Poller`` as ``buffering=``; every channel
gets a decoder of its own from :meth:`Framing.decoder`, so one instance
serves all the clients of a server. ``read()`` then returns one whole frame
per call and ``poll()`` one entry per frame, each *as it was on the wire*
(delimiter or length prefix included, so a frame is never ``b''``, which
means "nothing yet" from ``read()`` and "ended" from ``poll()``);
:meth:`Framing.decode` takes the payload out of a frame and
:meth:`Framing.encode` makes a frame of a payload.

A framing of your own subclasses :class:`Framing` and returns from
``decoder()`` an object with the sans-I/O shape of
:class:`~channels.splitter.LineSplitter`, described by :class:`FrameDecoder`:
``feed(data)`` appends bytes, ``next_frame()`` and ``take_frames()`` take
complete frames, ``has_frame()`` says whether one is ready, ``buffered``
counts what is held and ``finish()`` takes what remains at the end.

Policies, the same for every framing here:

Overlong frames
    ``max_length`` bounds a frame's payload (``None``: no bound). An overlong
    frame is discarded as it arrives, so memory stays bounded, and
    :class:`FrameTooLongError` is raised once in its place; the frame after
    it follows. Twisted closes the connection (``lineLengthExceeded``,
    ``lengthLimitExceeded``, ``NetstringParseError``) and asyncio's
    ``readuntil()`` raises ``LimitOverrunError`` leaving the data buffered
    for the caller to deal with; skipping keeps a server's other messages
    flowing and costs nothing to resynchronise, because the end of the
    overlong frame is known: the next delimiter, or exactly the announced
    length for length-prefixed frames and netstrings.
Malformed input
    A netstring whose length is not a decimal number (or has more than 20
    digits, or leading zeros) or does not end in ``b','`` cannot be
    resynchronised: where the next frame begins is unknown. The decoder
    raises :class:`FramingError` and the channel ends, with that error as the
    ``__cause__`` of its :class:`EndpointClosedException`, after the frames
    that came before it.
End of stream
    An unterminated rest is delivered as a last piece by the delimited
    framings (as line mode always did); a stream that ends inside a
    length-prefixed frame or netstring ends the channel with
    :class:`FramingError` instead: half a frame is not a frame.

Goal: worst case O(n) in the bytes fed, however the stream is chunked, and
no system call or copy of the whole buffer per frame. Plan: each decoder
looks at every byte once, when its chunk is fed. Frames wholly inside a
chunk are cut out of it (one copy each, two for a delimited frame; none for
a chunk that is exactly one frame); a frame spread over chunks is kept as a list of pieces and joined
once when complete. A delimiter split across chunks is found by searching
the last ``len(delimiter) - 1`` bytes of the frame in progress together with
the start of the next chunk, so nothing is searched twice.
"""

from __future__ import annotations

import struct
from abc import ABCMeta, abstractmethod
from typing import Protocol

from .errors import FrameTooLongError, FramingError
from .splitter import DEFAULT_MAX_LINE_LENGTH, LineSplitter, ReadyQueue

__all__ = [
    "DEFAULT_MAX_FRAME_LENGTH",
    "Delimited",
    "FrameDecoder",
    "Framing",
    "LengthPrefixed",
    "Lines",
    "Netstrings",
]

#: Default bound on a frame's payload: the same 1 MiB as a line's.
DEFAULT_MAX_FRAME_LENGTH = DEFAULT_MAX_LINE_LENGTH

Payload = bytes | bytearray | memoryview


class FrameDecoder(Protocol):
    """The state one channel reads a framing with; no I/O inside.

    :class:`~channels.splitter.LineSplitter` is the model (its
    ``next_line``, ``take_lines`` and ``has_line`` are ``next_frame``,
    ``take_frames`` and ``has_frame``). A frame is returned as it was on the
    wire and is never ``b''``.
    """

    @property
    def buffered(self) -> int:
        """How many bytes are held: complete frames and the frame in progress."""

    def feed(self, data: bytes) -> None:
        """Append ``data`` to the stream.

        Raises :class:`FramingError` if the stream cannot be cut into frames
        any more (malformed input); the frames completed before the fault
        stay ready, and the channel ends after them.
        """

    def has_frame(self) -> bool:
        """Whether ``next_frame()`` would return a frame (or raise) now."""

    def next_frame(self) -> bytes | None:
        """Take the next complete frame, or ``None`` if there is none yet.

        Raises :class:`FrameTooLongError` once where an overlong frame was
        dropped; the call after that goes on with the next frame.
        """

    def take_frames(self, limit: int | None = None) -> tuple[list[bytes], int]:
        """Take every complete frame at once, or the first ``limit`` of
        them, and how many overlong frames were dropped among them (skipped
        here, not raised). With ``limit``, fewer than ``limit`` taken
        (dropped ones counted in) means that none are left."""

    def finish(self) -> bytes:
        """At end of stream, take the rest that is not a complete frame
        (``b''`` if none) to deliver as a last piece; raise
        :class:`FramingError` (with the rest as ``partial``) if the stream may
        not end there. The decoder is empty afterwards."""


class Framing(metaclass=ABCMeta):
    """A wire format for messages: pass one as ``buffering=`` to a channel,
    ``connect()`` or ``Poller``.

    A reusable description, not a state: each channel gets its own
    :meth:`decoder`. ``max_length`` bounds a frame's payload (``None``: no
    bound); see the module docstring for what happens to a longer one.
    Subclass it for a framing of your own: implement :meth:`decoder`,
    :meth:`encode` and :meth:`decode`.
    """

    __slots__ = ("max_length",)

    def __init__(self, *, max_length: int | None = DEFAULT_MAX_FRAME_LENGTH) -> None:
        if max_length is not None and (type(max_length) is not int or max_length < 1):
            raise ValueError(f"max_length must be a positive int or None, not {max_length!r}")
        #: Bound on a frame's payload in bytes, ``None`` for none.
        self.max_length = max_length

    @abstractmethod
    def decoder(self) -> FrameDecoder:
        """A fresh decoder (see :class:`FrameDecoder`) for one channel."""

    @abstractmethod
    def encode(self, payload: Payload) -> bytes:
        """The frame that carries ``payload``; ``ValueError`` if this
        framing cannot carry it."""

    @abstractmethod
    def decode(self, frame: bytes) -> bytes:
        """The payload of ``frame``, one that ``read()`` or ``poll()``
        returned; ``ValueError`` if it is not such a frame."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_length={self.max_length!r})"


class Delimited(Framing):
    """Frames that end with ``delimiter``: ``Delimited(b'\\0')``,
    ``Delimited(b'\\r\\n')``.

    A frame includes its delimiter; the unterminated rest at the end of the
    stream is delivered as a last frame, without one. ``max_length`` bounds
    a frame without its delimiter. ``Delimited(b'\\n')`` is :class:`Lines`.
    """

    __slots__ = ("delimiter",)

    def __init__(self, delimiter: bytes, *, max_length: int | None = DEFAULT_MAX_FRAME_LENGTH) -> None:
        if not isinstance(delimiter, bytes) or not delimiter:
            raise ValueError(f"delimiter must be non-empty bytes, not {delimiter!r}")
        super().__init__(max_length=max_length)
        #: The bytes that end a frame.
        self.delimiter = delimiter

    def decoder(self) -> FrameDecoder:
        """A fresh decoder; for ``b'\\n'``, the line splitter itself."""
        if self.delimiter == b"\n":
            return LineSplitter(self.max_length)
        return _DelimitedDecoder(self.delimiter, self.max_length)

    def encode(self, payload: Payload) -> bytes:
        """``payload`` followed by the delimiter; ``ValueError`` if the
        delimiter would be found earlier (the payload contains it)."""
        frame = bytes(payload) + self.delimiter
        if frame.find(self.delimiter) != len(frame) - len(self.delimiter):
            raise ValueError(f"the payload contains the delimiter {self.delimiter!r}")
        return frame

    def decode(self, frame: bytes) -> bytes:
        """``frame`` without its delimiter (a last, unterminated frame as it is)."""
        delimiter = self.delimiter
        return frame[: -len(delimiter)] if frame.endswith(delimiter) else frame

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.delimiter!r}, max_length={self.max_length!r})"


class Lines(Delimited):
    """Lines ending in ``b'\\n'``: exactly ``buffering='line'``, as an object
    (for :meth:`~Delimited.encode`, :meth:`~Delimited.decode`, or a
    ``max_length`` of its own)."""

    __slots__ = ()

    def __init__(self, *, max_length: int | None = DEFAULT_MAX_FRAME_LENGTH) -> None:
        super().__init__(b"\n", max_length=max_length)

    def __repr__(self) -> str:
        return f"Lines(max_length={self.max_length!r})"


class LengthPrefixed(Framing):
    """Frames of a ``size``-byte big-endian unsigned length (1, 2, 4 or 8),
    then that many bytes of payload, as Twisted's ``Int8StringReceiver``,
    ``Int16StringReceiver`` and ``Int32StringReceiver`` send them.

    ``LengthPrefixed(4)`` reads ``b'\\x00\\x00\\x00\\x05hello'`` as one frame.
    A frame whose announced length exceeds ``max_length`` is skipped, exactly
    that many bytes, and raises :class:`FrameTooLongError` once.
    """

    __slots__ = ("size",)

    def __init__(self, size: int = 4, *, max_length: int | None = DEFAULT_MAX_FRAME_LENGTH) -> None:
        if size not in _LENGTH_FORMATS or isinstance(size, bool):
            raise ValueError(f"size must be 1, 2, 4 or 8 (bytes of length prefix), not {size!r}")
        super().__init__(max_length=max_length)
        #: Bytes in the length prefix.
        self.size = size

    def decoder(self) -> FrameDecoder:
        """A fresh decoder for one channel."""
        return _LengthDecoder(self.size, self.max_length)

    def encode(self, payload: Payload) -> bytes:
        """The length prefix, then ``payload``; ``ValueError`` if the payload
        is too long for the prefix."""
        data = bytes(payload)
        if len(data) >= 1 << (8 * self.size):
            raise ValueError(f"a payload of {len(data)} bytes does not fit a {self.size}-byte length prefix")
        return len(data).to_bytes(self.size, "big") + data

    def decode(self, frame: bytes) -> bytes:
        """``frame`` without its length prefix; ``ValueError`` if the prefix
        does not announce the rest of ``frame``."""
        size = self.size
        if len(frame) < size or int.from_bytes(frame[:size], "big") != len(frame) - size:
            raise ValueError(f"not a frame of {self!r}: {frame[:16]!r}...")
        return frame[size:]

    def __repr__(self) -> str:
        return f"LengthPrefixed({self.size}, max_length={self.max_length!r})"


class Netstrings(Framing):
    """Netstrings: ``b'5:hello,'``, a decimal length, a colon, the payload
    and a comma (D. J. Bernstein's format, Twisted's ``NetstringReceiver``).

    A netstring announcing more than ``max_length`` bytes is skipped, exactly
    those bytes, and raises :class:`FrameTooLongError` once. A malformed one
    (a length that is not at most 20 decimal digits without leading zeros,
    or no comma at the end) ends the channel with :class:`FramingError`.
    """

    __slots__ = ()

    def decoder(self) -> FrameDecoder:
        """A fresh decoder for one channel."""
        return _NetstringDecoder(self.max_length)

    def encode(self, payload: Payload) -> bytes:
        """``payload`` as a netstring."""
        data = bytes(payload)
        return b"%d:%s," % (len(data), data)

    def decode(self, frame: bytes) -> bytes:
        """The payload of the netstring ``frame``; ``ValueError`` if it is not one."""
        digits, colon, rest = frame.partition(b":")
        if not (colon and _valid_length(digits) and rest.endswith(b",") and int(digits) == len(rest) - 1):
            raise ValueError(f"not a netstring: {frame[:24]!r}...")
        return rest[:-1]


# -- the decoders ------------------------------------------------------------------

_LENGTH_FORMATS = {1: ">B", 2: ">H", 4: ">I", 8: ">Q"}

# A netstring's length has at most this many digits: 10**20 bytes is more
# than any stream carries, and a bound keeps a peer that sends endless digits
# from growing the buffer. More is malformed (Twisted bounds it likewise,
# by the digits of its MAX_LENGTH).
_MAX_DIGITS = 20
_COLON = 58
_COMMA = 44


def _valid_length(digits: bytes) -> bool:
    """Whether ``digits`` is a netstring length: ASCII decimal, no leading zero."""
    return digits.isdigit() and len(digits) <= _MAX_DIGITS and (digits[0] != 48 or len(digits) == 1)


def _bad_length(digits: bytes) -> str:
    return f"a netstring must begin with at most {_MAX_DIGITS} decimal digits and b':', not {digits[:24]!r}"


class _FrameQueue(ReadyQueue):
    """The complete frames of a decoder, in order, with ``None`` where an
    overlong frame was dropped: the queue :class:`LineSplitter` keeps its
    lines in (:class:`~channels.splitter.ReadyQueue`), for the decoders of
    other framings, with the error that ends a malformed stream."""

    __slots__ = ("_error", "max_length")

    def __init__(self, max_length: int | None) -> None:
        self.max_length = max_length
        self._ready = None
        self._head = 0
        self._dropped = 0  # ``None`` markers in ``_ready``
        self._error: FramingError | None = None

    @property
    def buffered(self) -> int:
        """How many bytes are held: complete frames and the frame in progress."""
        ready = self._ready or ()
        return sum(len(frame) for frame in ready[self._head :] if frame is not None) + self._partial_size()

    def has_frame(self) -> bool:
        """Whether ``next_frame()`` would return a frame (or raise) now."""
        return self._ready is not None

    def next_frame(self) -> bytes | None:
        """Take the next complete frame, or ``None``; see :class:`FrameDecoder`."""
        ready = self._ready
        if ready is None:
            return None
        head = self._head
        frame = ready[head]
        if head + 1 < len(ready):
            self._head = head + 1
        else:
            self._ready = None
            self._head = 0
        if frame is None:
            self._dropped -= 1
            raise FrameTooLongError(f"a frame longer than max_length={self.max_length} bytes was discarded")
        return frame

    def take_frames(self, limit: int | None = None) -> tuple[list[bytes], int]:
        """Take every complete frame, or the first ``limit``; see :class:`FrameDecoder`."""
        return self._take_ready(limit)

    def _partial_size(self) -> int:
        raise NotImplementedError  # pragma: no cover - every decoder defines it

    def _push(self, frames: list[bytes | None]) -> None:
        """Queue ``frames`` (markers among them already counted)."""
        if not frames:
            return
        ready = self._ready
        if ready is None:
            self._ready = frames
            return
        if self._head:
            # Let go of the frames already taken: each is moved at most once.
            del ready[: self._head]
            self._head = 0
        ready.extend(frames)

    def _malformed(self, frames: list[bytes | None], reason: str) -> FramingError:
        """Queue the frames that came before the fault, and the error for it."""
        self._push(frames)
        self._error = FramingError(f"malformed input: {reason}")
        return self._error

    def _check_open(self) -> None:
        if self._error is not None:
            raise FramingError(*self._error.args)


class _DelimitedDecoder(_FrameQueue):
    """Cuts frames at a delimiter of any length; see the module docstring."""

    __slots__ = ("_delimiter", "_dropping", "_edge", "_tail", "_tail_len")

    def __init__(self, delimiter: bytes, max_length: int | None) -> None:
        super().__init__(max_length)
        self._delimiter = delimiter
        self._tail: list[bytes] = []  # pieces of the frame in progress
        self._tail_len = 0
        self._dropping = False  # skipping the rest of an overlong frame
        # The last len(delimiter) - 1 bytes of the frame in progress: where a
        # delimiter split across chunks begins.
        self._edge = b""

    def _partial_size(self) -> int:
        return self._tail_len

    def feed(self, data: bytes) -> None:
        """Append ``data``; see :class:`FrameDecoder`."""
        delimiter = self._delimiter
        width = len(delimiter)
        limit = self.max_length
        frames: list[bytes | None] = []
        pos = 0
        if self._tail_len or self._dropping:
            end = self._end_of_frame(data)
            if end < 0:
                self._grow(data)
                return
            if self._dropping:
                self._dropping = False  # its marker was queued when it grew too long
            elif limit is not None and self._tail_len + end - width > limit:
                frames.append(None)
                self._dropped += 1
            else:
                self._tail.append(data[:end])
                frames.append(b"".join(self._tail))
            self._tail = []
            self._tail_len = 0
            self._edge = b""
            pos = end
        # The frames wholly inside the chunk: split() finds the delimiters in
        # one C loop, the same matches as a find() loop from each frame's end
        # (three to four times faster than that loop on short frames, with
        # bench/lines.py's channels_frames row); each frame then costs one
        # concatenation.
        body = data[pos:] if pos else data
        pieces = body.split(delimiter)
        rest = pieces.pop()
        if not pieces:
            pass
        elif limit is not None and len(body) - width > limit:  # a frame in it may be too long
            for piece in pieces:
                if len(piece) > limit:
                    frames.append(None)
                    self._dropped += 1
                else:
                    frames.append(piece + delimiter)
        elif len(pieces) == 1 and not rest and not pos:
            frames.append(data)  # the chunk is one frame: taken without a copy
        else:
            frames += [piece + delimiter for piece in pieces]
        self._push(frames)
        if rest:
            self._grow(rest)

    def finish(self) -> bytes:
        """The unterminated rest (``b''`` if none, or if it was overlong)."""
        rest = b"".join(self._tail)
        self._tail = []
        self._tail_len = 0
        self._dropping = False
        self._edge = b""
        return rest

    def _end_of_frame(self, data: bytes) -> int:
        """Where in ``data`` the frame in progress ends (just past its
        delimiter), or -1."""
        width = len(self._delimiter)
        edge = self._edge
        if edge:
            at = (edge + data[: width - 1]).find(self._delimiter)
            if at >= 0:  # the delimiter began in the edge: it is split
                return at + width - len(edge)
        at = data.find(self._delimiter)
        return at if at < 0 else at + width

    def _grow(self, piece: bytes) -> None:
        """``piece`` (no delimiter in it, none ending in it) continues the frame in progress."""
        keep = len(self._delimiter) - 1
        if keep:
            self._edge = piece[-keep:] if len(piece) >= keep else (self._edge + piece)[-keep:]
        if self._dropping:
            return
        self._tail_len += len(piece)
        limit = self.max_length
        # The frame's payload is at least what is held less a delimiter's
        # beginning at its end.
        if limit is not None and self._tail_len - keep > limit:
            self._tail = []
            self._tail_len = 0
            self._dropping = True
            self._dropped += 1
            self._push([None])
        else:
            self._tail.append(piece)


class _PrefixedDecoder(_FrameQueue):
    """What the length-prefixed and netstring decoders share: a frame in
    progress whose total size is known once its header is read, and the
    bytes of an overlong frame still to skip."""

    __slots__ = ("_have", "_need", "_parts", "_skip")

    def __init__(self, max_length: int | None) -> None:
        super().__init__(max_length)
        self._parts: list[bytes] | None = None  # pieces of the frame in progress, header included
        self._have = 0  # bytes in _parts
        self._need = -1  # bytes the frame still lacks; -1 while its header is incomplete
        self._skip = 0  # bytes of an overlong frame still to skip

    def _partial_size(self) -> int:
        return self._have

    def finish(self) -> bytes:
        """``b''``, or :class:`FramingError` if the stream ended inside a frame."""
        parts = self._parts
        self._parts = None
        self._have = 0
        self._need = -1
        self._skip = 0
        if parts is None or self._error is not None:
            return b""
        partial = b"".join(parts)
        error = FramingError(f"the input ended inside a frame, after {len(partial)} of its bytes")
        error.partial = partial
        raise error

    def _continue(self, data: bytes, pos: int, frames: list[bytes | None]) -> int:
        """Add what ``data`` has of the frame in progress from ``pos``;
        where the rest of ``data`` begins."""
        parts = self._parts
        assert parts is not None
        if self._need < 0:
            pos = self._continue_header(data, pos, parts, frames)
            if self._parts is None or self._need < 0:
                return pos
        take = min(self._need, len(data) - pos)
        parts.append(data if take == len(data) else data[pos : pos + take])
        self._have += take
        self._need -= take
        if not self._need:
            self._parts = None
            self._have = 0
            self._need = -1
            frame = b"".join(parts)
            self._check_end(frame, frames)
            frames.append(frame)
        return pos + take

    def _keep_partial(self, data: bytes, pos: int, end: int) -> None:
        """The frame that starts at ``pos`` ends at ``end``, past this chunk:
        keep what came of it (not copied when it is the whole chunk)."""
        self._parts = [data[pos:] if pos else data]
        self._have = len(data) - pos
        self._need = end - len(data)

    def _continue_header(self, data: bytes, pos: int, parts: list[bytes], frames: list[bytes | None]) -> int:
        raise NotImplementedError  # pragma: no cover - every decoder defines it

    def _check_end(self, frame: bytes, frames: list[bytes | None]) -> None:
        """Raise :class:`FramingError` if a complete ``frame`` ends wrongly."""

    def _skip_overlong(self, length: int, frames: list[bytes | None]) -> None:
        """An overlong frame's header was read: skip the ``length`` bytes after it."""
        frames.append(None)
        self._dropped += 1
        self._skip = length
        self._parts = None
        self._have = 0
        self._need = -1


class _LengthDecoder(_PrefixedDecoder):
    """Cuts length-prefixed frames; see :class:`LengthPrefixed`."""

    __slots__ = ("_size", "_unpack")

    def __init__(self, size: int, max_length: int | None) -> None:
        super().__init__(max_length)
        self._size = size
        self._unpack = struct.Struct(_LENGTH_FORMATS[size]).unpack_from

    def feed(self, data: bytes) -> None:
        """Append ``data``; see :class:`FrameDecoder`."""
        frames: list[bytes | None] = []
        pos = 0
        size = len(data)
        header = self._size
        limit = self.max_length
        unpack = self._unpack
        while pos < size:
            if self._skip:
                taken = min(self._skip, size - pos)
                self._skip -= taken
                pos += taken
            elif self._parts is not None:
                pos = self._continue(data, pos, frames)
            elif size - pos < header:
                self._parts = [data[pos:]]
                self._have = size - pos
                break
            else:
                (length,) = unpack(data, pos)
                end = pos + header + length
                if limit is not None and length > limit:
                    self._skip_overlong(length, frames)
                    pos += header
                elif end <= size:
                    frames.append(data if end == size and not pos else data[pos:end])
                    pos = end
                else:
                    self._keep_partial(data, pos, end)
                    break
        self._push(frames)

    def _continue_header(self, data: bytes, pos: int, parts: list[bytes], frames: list[bytes | None]) -> int:
        piece = data[pos : pos + self._size - self._have]
        parts.append(piece)
        self._have += len(piece)
        pos += len(piece)
        if self._have == self._size:
            head = b"".join(parts)
            (length,) = self._unpack(head)
            if self.max_length is not None and length > self.max_length:
                self._skip_overlong(length, frames)
            elif length:
                parts[:] = [head]
                self._need = length
            else:  # an empty payload: the header is the whole frame
                self._parts = None
                self._have = 0
                frames.append(head)
        return pos


class _NetstringDecoder(_PrefixedDecoder):
    """Cuts netstrings; see :class:`Netstrings`."""

    __slots__ = ("_comma_due",)

    def __init__(self, max_length: int | None) -> None:
        super().__init__(max_length)
        self._comma_due = False  # an overlong netstring was skipped: its comma comes next

    def feed(self, data: bytes) -> None:
        """Append ``data``; see :class:`FrameDecoder`."""
        self._check_open()
        frames: list[bytes | None] = []
        pos = 0
        size = len(data)
        limit = self.max_length
        find = data.find
        while pos < size:
            if self._skip:
                taken = min(self._skip, size - pos)
                self._skip -= taken
                pos += taken
            elif self._comma_due:
                if data[pos] != _COMMA:
                    raise self._malformed(
                        frames, f"a skipped netstring does not end in b',' but {data[pos : pos + 1]!r}"
                    )
                self._comma_due = False
                pos += 1
            elif self._parts is not None:
                pos = self._continue(data, pos, frames)
            else:
                colon = find(b":", pos, pos + _MAX_DIGITS + 1)
                if colon < 0:
                    self._start_header(data[pos:], frames)
                    break
                length = self._length(data[pos:colon], frames)
                end = colon + length + 2
                if limit is not None and length > limit:
                    self._skip_overlong(length, frames)
                    pos = colon + 1
                elif end <= size:
                    if data[end - 1] != _COMMA:
                        raise self._malformed(frames, f"a netstring of {length} bytes does not end in b','")
                    frames.append(data if end == size and not pos else data[pos:end])
                    pos = end
                else:
                    self._keep_partial(data, pos, end)
                    break
        self._push(frames)

    def _start_header(self, piece: bytes, frames: list[bytes | None]) -> None:
        """``piece`` begins a netstring's length, with no colon yet."""
        if len(piece) > _MAX_DIGITS or not _valid_length(piece):
            raise self._malformed(frames, _bad_length(piece))
        self._parts = [piece]
        self._have = len(piece)

    def _length(self, digits: bytes, frames: list[bytes | None]) -> int:
        if not _valid_length(digits):
            raise self._malformed(frames, _bad_length(digits))
        return int(digits)

    def _continue_header(self, data: bytes, pos: int, parts: list[bytes], frames: list[bytes | None]) -> int:
        room = _MAX_DIGITS + 1 - self._have
        colon = data.find(b":", pos, pos + room)
        if colon < 0:
            piece = data[pos : pos + room]
            parts.append(piece)
            self._have += len(piece)
            digits = b"".join(parts)
            if self._have > _MAX_DIGITS or not _valid_length(digits):
                raise self._malformed(frames, _bad_length(digits))
            return pos + len(piece)
        digits = b"".join(parts) + data[pos:colon]
        length = self._length(digits, frames)
        pos = colon + 1
        if self.max_length is not None and length > self.max_length:
            self._skip_overlong(length, frames)
        else:
            parts[:] = [digits + b":"]
            self._have = len(digits) + 1
            self._need = length + 1
        return pos

    def _skip_overlong(self, length: int, frames: list[bytes | None]) -> None:
        super()._skip_overlong(length, frames)
        self._comma_due = True

    def _check_end(self, frame: bytes, frames: list[bytes | None]) -> None:
        if frame[-1] != _COMMA:
            raise self._malformed(frames, f"a netstring of {len(frame)} bytes does not end in b','")

    def finish(self) -> bytes:
        """``b''``, or :class:`FramingError` if the stream ended inside a netstring."""
        self._comma_due = False
        return super().finish()
