"""The base channel's input framing: lines, or a framing of :mod:`channels.framing`.

A part of :class:`~channels.base.Channel` (see ``channels._parts``), not a
user of it: :class:`FramedInput` reads and writes the base's ``_ch_*``
state. It turns what ``_read()`` returns into frames for ``read()`` and for
the poller (``_poll_read``, ``_poll_ended``, at most
:data:`~channels._seam.ENTRIES_PER_POLL` entries a poll), feeds the
channel's decoder, and ends the channel when its input cannot be framed.
Also here: the ``buffering`` keyword's rule (:func:`check_buffering`) and
the empty splitter idle line channels share.
"""

from __future__ import annotations

from itertools import repeat
from typing import Literal

from ._parts import LOG, Part, again
from ._seam import ENTRIES_PER_POLL, PolledChannel
from .errors import EndpointClosedException, FramingError
from .framing import FrameDecoder, Framing
from .splitter import DEFAULT_MAX_LINE_LENGTH, LineSplitter

__all__ = ["Buffering", "FramedInput", "check_buffering", "decoder_for"]

Buffering = Literal["line", "bytes"]


class _SharedEmptySplitter(LineSplitter):
    """The empty splitter idle line channels share until their first bytes
    arrive: one of their own costs about 100 bytes, a third of an idle
    channel. Never fed (``FramedInput._feed_frames`` swaps it for a real one first)."""

    __slots__ = ()

    def feed(self, data: bytes) -> None:
        raise AssertionError("a shared empty splitter is never fed")  # pragma: no cover - a bug if reached


_EMPTY_SPLITTERS: dict[int | None, _SharedEmptySplitter] = {}


def _empty_splitter(max_line_length: int | None) -> LineSplitter:
    splitter = _EMPTY_SPLITTERS.get(max_line_length)
    if splitter is None:
        splitter = _EMPTY_SPLITTERS[max_line_length] = _SharedEmptySplitter(max_line_length)
    return splitter


def check_buffering(buffering: str | Framing | None) -> Buffering | Framing:
    """Normalise the ``buffering`` keyword: ``None`` means ``'bytes'``; a
    :class:`~channels.framing.Framing` is taken as it is."""
    if isinstance(buffering, Framing):
        return buffering
    if buffering is None or buffering == "bytes":
        return "bytes"
    if buffering == "line":
        return "line"
    raise ValueError(f"buffering must be 'line', 'bytes' or None, or a framing of channels.framing, not {buffering!r}")


def decoder_for(mode: Literal["line"] | Framing, max_line_length: int | None) -> FrameDecoder:
    """A channel's decoder for ``mode``. Lines, however asked for, start
    with the shared empty splitter, as an idle line channel always did."""
    if mode == "line":
        return _empty_splitter(max_line_length)
    assert isinstance(mode, Framing)
    decoder = mode.decoder()
    if type(decoder) is LineSplitter:
        return _empty_splitter(decoder.max_line_length)
    return decoder


class FramedInput(Part):
    """The base channel's input framing (a part of :class:`~channels.base.Channel`)."""

    __slots__ = ()

    @property
    def buffering(self) -> Buffering | Framing:
        """What ``read()`` returns: ``'line'`` for whole lines, ``'bytes'``
        for what arrived, or the framing it was given, for whole frames.

        Settable, for subclasses that choose their mode themselves: the
        change applies to the next ``read()``. ``ValueError`` when switching
        while part of a line or frame is buffered (it would be lost).
        """
        framing = self._ch_framing
        if framing is not None:
            return framing
        return "bytes" if self._ch_splitter is None else "line"

    @buffering.setter
    def buffering(self, mode: str | Framing | None) -> None:
        new = check_buffering(mode)
        if new == self.buffering:  # the same word, or the same framing object
            return
        splitter = self._ch_splitter
        if splitter is not None and splitter.buffered:
            what = "lines" if self._ch_framing is None else "frames"
            raise ValueError(f"{self!r} holds {splitter.buffered} bytes of {what} not read yet: read them first")
        self._ch_splitter = None if new == "bytes" else decoder_for(new, DEFAULT_MAX_LINE_LENGTH)
        self._ch_framing = new if isinstance(new, Framing) else None
        if self._ch_splitter is not None and self._ch_unread:
            # What expect() read past its match, in bytes mode, is framed now.
            unread, self._ch_unread = self._ch_unread, b""
            self._feed_frames(self._ch_splitter, unread)

    def _read_frame(self, splitter: FrameDecoder) -> bytes:
        try:
            return self._next_frame(splitter)
        finally:
            # self._ch_splitter, not splitter: the first bytes replace a shared one.
            poller = self._ch_poller
            # Frames are left in memory, where poll() cannot see them (a
            # channel that has ended keeps its poller, but is not read by it).
            if poller is not None and self._ch_poll_fd >= 0 and self._ch_splitter.has_frame():  # type: ignore[union-attr]
                poller._hold_input(self)

    def _next_frame(self, splitter: FrameDecoder) -> bytes:
        line = splitter.next_frame()
        # A read that brings bytes but no whole line reads once more, so that
        # an end already there is seen in this call, as the original library
        # did: a child that printed b"test" and exited gives b"test" now, not
        # b"" first (and a caller that stops at b"" loses nothing). Only
        # read() does this; a poll reads once per channel.
        reads_left = 2
        while line is None and self._ch_eof is None and reads_left:
            reads_left -= 1
            try:
                data = self._read()
            except EndpointClosedException as end:
                self._ch_eof = end
                break
            if not data:
                return b""
            splitter = self._feed_frames(splitter, data)
            line = splitter.next_frame()
        if line is not None:
            return line
        if self._ch_eof is None:
            return b""
        rest = self._finish_frames(splitter)
        if rest:
            return rest
        raise again(self._ch_eof)

    def _poll_read(self, out: list[tuple[bytes, PolledChannel]]) -> bool:
        """Read once for the poller, appending ``(data, self)`` entries.

        Returns whether the channel has ended (its ``(b'', self)`` appended).
        """
        if self._ch_unread:  # what expect() read past its match comes first
            out.append((self._ch_unread, self))
            self._ch_unread = b""
            return False
        if self._ch_eof is None:
            splitter = self._ch_splitter
            if splitter is not None and splitter.has_frame():
                # Lines left over by the last poll's bound come first, and
                # nothing more is read until they are taken: what waits in
                # memory stays one read's worth (see ENTRIES_PER_POLL).
                self._take_frames(splitter, out)
                return False
            try:
                data = self._read()
            except EndpointClosedException as end:
                self._ch_eof = end
            else:
                # The live channel, the case that runs for every read: kept
                # short, _feed_frames() inlined.
                if splitter is None:
                    if data:
                        out.append((data, self))
                    return False
                if data:
                    if type(splitter) is _SharedEmptySplitter:
                        splitter = self._ch_splitter = LineSplitter(splitter.max_line_length)
                    try:
                        splitter.feed(data)
                    except FramingError as err:
                        self._ch_eof = self._framing_failed(err)
                        return self._poll_ended(out)
                self._take_frames(splitter, out)
                return False
        return self._poll_ended(out)

    def _poll_ended(self, out: list[tuple[bytes, PolledChannel]]) -> bool:
        """The input has ended: append what is left of it, then ``(b'', self)``."""
        splitter = self._ch_splitter
        if splitter is not None:
            self._take_frames(splitter, out)
            if splitter.has_frame():
                return False  # the end comes after the rest, by the next polls
            rest = self._finish_frames(splitter)
            if rest:
                out.append((rest, self))
        out.append((b"", self))
        return True

    def _take_frames(self, splitter: FrameDecoder, out: list[tuple[bytes, PolledChannel]]) -> None:
        """Append at most ENTRIES_PER_POLL of the frames ready; if more are,
        have the poller come back for them without waiting."""
        lines, dropped = splitter.take_frames(ENTRIES_PER_POLL)
        if dropped:
            what = "line(s)" if self._ch_framing is None else "frame(s)"
            limit = getattr(splitter, "max_length", None)
            LOG.warning("%r: dropped %d %s longer than %s bytes", self, dropped, what, limit)
        if len(lines) == 1 and not dropped:  # one line a read is the latency case: no zip object
            out.append((lines[0], self))
            return  # fewer than the bound: none left
        if lines:
            out.extend(zip(lines, repeat(self)))
        if splitter.has_frame():
            self._queue_read()

    def _feed_frames(self, splitter: FrameDecoder, data: bytes) -> FrameDecoder:
        """Feed ``data`` to the decoder, which is this channel's own from the
        first bytes on. Input that cannot be framed ends the channel."""
        if type(splitter) is _SharedEmptySplitter:
            splitter = self._ch_splitter = LineSplitter(splitter.max_line_length)
        try:
            splitter.feed(data)
        except FramingError as err:
            self._ch_eof = self._framing_failed(err)
        return splitter

    def _finish_frames(self, splitter: FrameDecoder) -> bytes:
        """At the end of input, the unterminated rest to deliver last."""
        try:
            return splitter.finish()
        except FramingError as err:
            # The input ended inside a frame. A clean end turns into this
            # error; an end caused by an error (a reset) already says why.
            if self._ch_eof is None or self._ch_eof.__cause__ is None:
                self._ch_eof = self._framing_failed(err)
            return b""

    def _framing_failed(self, err: FramingError) -> EndpointClosedException:
        """The end of a channel whose input cannot be framed: no frame can be
        found after the fault, so the stream cannot go on (see
        :mod:`channels.framing`)."""
        LOG.warning("%r: %s", self, err)
        end = EndpointClosedException(f"{self!r}: {err}")
        end.__cause__ = err
        return end

    def _poll_has_input(self) -> bool:
        """Whether input waits in memory; see ``channels._seam``."""
        if self._ch_splitter is None:
            return bool(self._ch_unread)
        return self._ch_splitter.has_frame() or bool(self._ch_unread)

    def _queue_read(self) -> None:
        """Input waits in memory, where ``poll()`` cannot see it: have the
        poller read the channel at its next poll, without waiting."""
        if self._ch_poller is not None:
            self._ch_poller._hold_input(self)
