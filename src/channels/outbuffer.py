"""Sans-I/O keeping of output a descriptor has not taken yet.

Operations: ``append(chunk)`` and ``extend(chunks)`` add output at the end,
``own()`` makes the buffer independent of the writer's mutable buffers,
``chunks_to_send()`` gives what to offer the next send system call,
``consume(sent)`` drops what that call took, ``refuse()`` records that it
took nothing, ``size`` is the byte count. No I/O inside: the channel moves
the bytes, this class only decides which bytes and keeps them in order.

Goal: no byte copied twice, O(1) per chunk added and per chunk sent, however
the output is written and however little each send takes; a writer's bytes
objects are kept as they are, never copied.

Plan: chunks are kept in a list, as written. A send is offered the list
itself (no copy of it) when it holds at most ``IOV_MAX`` chunks, else its
first ``IOV_MAX``; small output in several chunks is first joined into one,
which costs less than the iovec the kernel builds of them. What a send takes
is dropped from the front; a chunk taken in part is replaced by a
``memoryview`` of its tail, which copies nothing. A view of a buffer the
writer may still change (a ``bytearray``, an ``array``) is borrowed while the
writer's call runs, and copied by ``own()`` only if it is still held then:
output that leaves at once, the usual case, is never copied at all.

Ownership, the rule a channel's ``write()`` keeps with it: bytes objects are
immutable and kept as they are; any other buffer is copied before
``write()`` returns (see :meth:`OutputBuffer.own`), so that a caller may
reuse its ``bytearray`` at once. A read-only view is not enough for this:
``memoryview(bytearray).toreadonly()`` still shows the owner's later changes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ._check import byte_view

__all__ = ["IOV_MAX", "JOIN_LIMIT", "OutputBuffer", "as_chunk"]

#: Pending output up to this size, in several chunks, is joined into one
#: before it is sent: copying that little costs less than the iovec that
#: ``sendmsg()`` and ``writev()`` build of the chunks (measured: four 64-byte
#: lines 2.35 against 2.71 µs, sixteen 3.0 against 4.2 µs). Larger output
#: goes as it is, never copied.
JOIN_LIMIT = 4096

try:
    #: The most buffers one send is offered: the kernel refuses more in one
    #: ``writev()``/``sendmsg()`` (``EMSGSIZE``), and 1,024 on Linux.
    IOV_MAX = min(os.sysconf("SC_IOV_MAX"), 1024)
except (AttributeError, ValueError, OSError):  # pragma: no cover - not Linux
    IOV_MAX = 16

Chunk = bytes | memoryview


class OutputBuffer:
    """Output in order, waiting for a descriptor to take it; no I/O inside.

    ``size`` is the number of bytes held. ``refused`` says that the last
    send took less than it was offered: the descriptor is full, and a new
    send can only fail until it is writable again (the channel uses this to
    skip system calls that cannot succeed).
    """

    __slots__ = ("_borrowed", "_chunks", "_offered", "refused", "size")

    def __init__(self) -> None:
        self._chunks: list[Chunk] = []
        #: Bytes held.
        self.size = 0
        #: Whether the last send took less than it was offered.
        self.refused = False
        # How many chunks at the end may be views of the writer's mutable
        # buffers, not copied yet (see own()).
        self._borrowed = 0
        # Bytes offered by the last chunks_to_send().
        self._offered = 0

    def __len__(self) -> int:
        """The number of bytes held."""
        return self.size

    def append(self, chunk: bytes) -> None:
        """Add ``chunk``, a non-empty bytes object, at the end (not copied)."""
        self._chunks.append(chunk)
        self.size += len(chunk)

    def extend(self, chunks: Sequence[Chunk]) -> None:
        """Add ``chunks`` (non-empty bytes or flat byte views, as
        :func:`as_chunk` makes them) at the end.

        Views of mutable buffers are borrowed, not copied: call :meth:`own`
        before the writer may change them again.
        """
        self._chunks.extend(chunks)
        self.size += sum(map(len, chunks))
        self._borrowed += len(chunks)

    def own(self) -> None:
        """Copy the borrowed views of mutable buffers that are still held.

        Only the chunks added by :meth:`extend` since the last call are
        looked at, so a call costs what those chunks cost, not what is held.
        """
        borrowed, self._borrowed = self._borrowed, 0
        chunks = self._chunks
        for index in range(max(0, len(chunks) - borrowed), len(chunks)):
            chunk = chunks[index]
            if _may_change(chunk):
                chunks[index] = bytes(chunk)

    def chunks_to_send(self) -> list[Chunk]:
        """What to offer the next send: all that is held, as few buffers as
        the rules allow (small output joined into one, at most
        :data:`IOV_MAX` buffers). The list is the buffer's own while at most
        ``IOV_MAX`` chunks are held: read it, do not keep or change it. Then
        call :meth:`consume` or :meth:`refuse`."""
        chunks = self._chunks
        if len(chunks) > 1 and self.size <= JOIN_LIMIT:
            chunks = self._chunks = [b"".join(chunks)]
        if len(chunks) <= IOV_MAX:
            self._offered = self.size
            return chunks
        head = chunks[:IOV_MAX]
        self._offered = sum(map(len, head))
        return head

    def consume(self, sent: int) -> None:
        """Drop the first ``sent`` bytes, which a send took; ``refused``
        becomes whether it took less than :meth:`chunks_to_send` offered."""
        if sent >= self.size:  # all of it: the usual case, kept short
            self.clear()
            return
        self.refused = sent < self._offered
        self.size -= sent
        chunks = self._chunks
        done = 0
        for chunk in chunks:
            length = len(chunk)
            if sent < length:
                break
            sent -= length
            done += 1
        del chunks[:done]
        if sent:
            chunks[0] = memoryview(chunks[0])[sent:]  # the tail, not a copy
        self._borrowed = min(self._borrowed, len(chunks))

    def refuse(self) -> None:
        """Record that a send took nothing (``EAGAIN``): ``refused`` is set."""
        self.refused = True

    def clear(self) -> None:
        """Drop everything held."""
        self._chunks.clear()
        self.size = 0
        self.refused = False
        self._borrowed = 0


def as_chunk(data: object) -> Chunk:
    """``data`` as something :class:`OutputBuffer` keeps: bytes as they are,
    any other bytes-like object as a flat byte view of it (a copy only for a
    buffer that is not contiguous). ``TypeError`` for anything else,
    ``str`` included."""
    if type(data) is bytes:
        return data
    return byte_view(data, "write()")  # the package's one rule for data


def _may_change(chunk: Chunk) -> bool:
    """Whether ``chunk`` is a view of a buffer its owner can still change.

    A read-only view is not enough: ``memoryview(bytearray).toreadonly()``
    still shows the owner's later changes. Only bytes are immutable.
    """
    return type(chunk) is memoryview and type(chunk.obj) is not bytes
