"""The base channel's output side: sending, flushing, and a peer that is gone.

A part of :class:`~channels.base.Channel` (see ``channels._parts``), not a
user of it: :class:`Sending` reads and writes the base's ``_ch_*`` state.
``write()`` itself, and the turn's short path in it, stays in
``channels.base``; here is its general case (``_write_chunks``), what
``flush()`` and ``close()`` send with, the poller's side of sending
(``_poll_flush``, ``_poll_linger``, ``_poll_release``), and what a send
that fails does. The bytes themselves wait in an
:class:`~channels.outbuffer.OutputBuffer`.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from . import _check
from ._parts import DEFAULT_CLOSE_TIMEOUT, LOG, Part, again
from ._seam import ChannelPoller
from ._wait import Deadline, wait_for
from .errors import EndpointClosedException, WriteBufferFullError
from .outbuffer import OutputBuffer, as_chunk

if TYPE_CHECKING:
    from .base import Buffer

__all__ = ["BATCH_LIMIT", "Sending"]

# Held writes beyond this go out at once instead of waiting for the next poll:
# batching pays for small writes, and large ones should not pile up memory.
BATCH_LIMIT = 64 * 1024


class Sending(Part):
    """The base channel's output side (a part of :class:`~channels.base.Channel`)."""

    __slots__ = ()

    def flush(self, timeout: float | None = None) -> bool:
        """Send pending output, waiting up to ``timeout`` seconds for the peer.

        ``None`` (or ``float('inf')``) waits as long as it takes, ``0`` does
        not wait. Returns ``True`` if nothing is pending any more, ``False``
        if the time ran out. Raises :class:`EndpointClosedException` if the
        peer is gone or the channel is closed, ``TypeError`` or
        ``ValueError`` for a timeout that is not a number of seconds >= 0.
        """
        deadline = Deadline(_check.timeout(timeout))
        self._check_writable()
        while not self._flush_pending():
            if deadline.expired():
                return False
            wait_for(*self._output_wait(), deadline.remaining())
        return True

    def shutdown_write(self, timeout: float | None = DEFAULT_CLOSE_TIMEOUT) -> None:
        """End the write direction only: the peer sees end of file, and this
        side goes on reading what the peer still sends.

        Pending output is delivered first, waiting at most ``timeout`` seconds
        as :meth:`close` does; what the peer has not taken by then is dropped
        and a warning is logged. Afterwards ``write()`` and ``flush()`` raise
        :class:`EndpointClosedException`; ``read()`` is unaffected. Doing it
        again does nothing. Raises ``NotImplementedError`` if the channel
        cannot end its write side alone (nothing is dropped then), and
        :class:`EndpointClosedException` if it is closed or if the peer is
        gone (an earlier send failed, so output was not delivered; the error
        is the ``__cause__``). ``TypeError`` or ``ValueError`` for a bad
        timeout, before anything is done.
        """
        timeout = _check.timeout(timeout)
        if self._ch_closed:
            raise EndpointClosedException(f"{self!r} is closed")
        if isinstance(self._ch_write_error, EndpointClosedException):
            return  # already shut down
        if self._ch_write_error is not None:
            # A send failed where nobody saw it (a poll's flush): say it here,
            # or the end would pass for a clean one.
            raise EndpointClosedException(
                f"{self!r}: the peer is gone ({self._ch_write_error})"
            ) from self._ch_write_error
        if not self._writable():
            raise NotImplementedError(f"{type(self).__name__} cannot be written: it has no write side to shut down")
        delivered = True
        if self.pending_output and self._ch_write_error is None:
            with contextlib.suppress(EndpointClosedException):  # the peer is gone: nothing more to deliver
                delivered = self.flush(timeout)
        self._output_ending()  # before the hook may free the write descriptor
        self._shutdown_write()
        if not delivered:
            LOG.warning(
                "%r: shutting down dropped %d bytes the peer did not take within %ss",
                self,
                self.pending_output,
                timeout,
            )
        self._ch_out = None
        self._ch_write_error = EndpointClosedException(f"{self!r} was shut down for writing")

    def _write_chunks(self, data: tuple[Buffer, ...]) -> None:
        """:meth:`write`'s general case: any chunks, at any time."""
        if len(data) == 1 and type(data[0]) is bytes:  # one bytes chunk: nothing to check or own
            chunks: list[bytes | memoryview] = [data[0]] if data[0] else []
            borrowed = False
        else:
            chunks = [chunk for chunk in map(as_chunk, data) if chunk]  # all checked before any is kept
            borrowed = any(type(chunk) is not bytes for chunk in chunks)
        if self._ch_closed or self._ch_write_error is not None or not self._writable():
            if self._dropped_in_turn():
                return
            self._check_writable()
        if not chunks:
            return
        out = self._ch_out
        pending = 0 if out is None else out.size
        size = sum(map(len, chunks))
        if pending + size > self.max_pending and self._refused_whole(pending, size):
            return
        poller = self._ch_poller
        if not pending and len(chunks) == 1 and (poller is None or not poller._turn_depth):
            # Nothing pending, one chunk, to send now: offered as it is. A
            # buffer is made only for what the descriptor does not take.
            sent = self._offer(chunks)
            if sent == size:
                return
            if out is None:
                out = self._ch_out = OutputBuffer()
            out.extend(chunks)
            out.consume(sent)
            out.refuse()  # the descriptor took less than it was offered: it is full
            if borrowed:
                out.own()
            self._queue_flush()
            return
        if out is None:
            out = self._ch_out = OutputBuffer()
        out.extend(chunks)
        if poller is None or not poller._turn_depth or pending + size >= BATCH_LIMIT:
            # Outside a turn (or too much for one): sent now, unless the
            # descriptor is known to be full (see _send_if_writable).
            self._send_now(out, watched=poller is not None, borrowed=borrowed)
            if not self.pending_output:
                return
        elif borrowed:
            out.own()
        if poller is not None and not self._ch_flush_queued:
            self._ch_flush_queued = True
            poller._hold_output(self)

    def _refused_whole(self, pending: int, size: int) -> bool:
        """A write of ``size`` bytes would take the output past
        ``max_pending``: :class:`WriteBufferFullError`, or, in a turn, the
        channel ends with it as the cause (``True``)."""
        full = WriteBufferFullError(
            f"write of {size} bytes refused: {pending} bytes are already "
            f"pending and max_pending is {self.max_pending}; the peer is not reading"
        )
        if not self._in_turn():
            raise full
        self._end_by_failure(full)  # the client that does not read is the one that loses
        return True

    def _send_now(self, out: OutputBuffer, *, watched: bool, borrowed: bool) -> None:
        """Send what ``out`` holds, as far as the descriptor takes it; a peer
        gone raises, or, in a turn, ends the channel."""
        try:
            self._send_if_writable(out, watched=watched)
        except EndpointClosedException as gone:
            if not self._in_turn():
                raise
            self._end_by_failure(gone.__cause__ or gone)
        finally:
            if borrowed:
                out.own()  # what is still held must not change with the caller's buffers

    def _flush_pending(self) -> bool:
        """Send what the descriptor takes now, without waiting; ``True`` if
        nothing is left. :class:`EndpointClosedException` if the peer is gone
        (its error is kept: later writes raise it too)."""
        out = self._ch_out
        while out is not None and out.size:
            try:
                sent = self._send(out.chunks_to_send())
            except (BlockingIOError, InterruptedError):
                out.refuse()
                return False
            except OSError as err:
                raise self._write_failed(err) from err
            if sent == out.size:  # all of it: the usual case, kept short
                out.clear()
                return True
            out.consume(sent)
            if out.refused:
                return False
        return True

    def _offer(self, buffers: list[bytes | memoryview]) -> int:
        """One send of ``buffers``: how many bytes the descriptor took, ``0``
        if none; :class:`EndpointClosedException` if the peer is gone."""
        try:
            return self._send(buffers)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as err:
            raise self._write_failed(err) from err

    def _send_if_writable(self, out: OutputBuffer, *, watched: bool) -> bool:
        """:meth:`_flush_pending`, unless the last send was refused and the
        descriptor is not known to be writable again; ``True`` if nothing is
        left. ``watched``: a poller watches write readiness for this channel
        and sends when it comes.

        A peer that stopped reading must not make every write cost a send
        that can only fail (``EAGAIN`` from a ``sendmsg()`` of up to
        ``IOV_MAX`` chunks, many times a write's own cost: ``write_pending``
        against ``write_idle`` in bench/micro.py). asyncio's
        ``_SelectorSocketTransport.write()`` sends only when its buffer was
        empty, and otherwise appends and leaves the sending to the loop's
        writable callback; Tornado's ``IOStream.write()`` likewise calls
        ``_handle_write()`` only when it is not already waiting for write
        readiness. A registered channel does the same: its poller watches
        write readiness and sends then. A channel on its own has no loop to
        wait for it, yet promises that pending output leaves on its next
        ``write()`` (SPEC 3.1): it asks the kernel instead, with a
        zero-timeout ``poll()`` on one descriptor, which costs about one
        short write, and sends only when the descriptor is writable. (Only a
        refused send sets the mark: the first write to a full descriptor
        still tries, and learns it.)
        """
        if out.refused and (watched or not wait_for(*self._output_wait(), 0)):
            return False
        return self._flush_pending()

    def _write_failed(self, err: BaseException) -> EndpointClosedException:
        """Record that the peer is gone: pending output is dropped, and every
        later write raises :class:`EndpointClosedException` with the first
        such error as its cause. Returns the exception to raise now."""
        if self._ch_write_error is None:
            self._ch_write_error = err
        self._ch_out = None
        return EndpointClosedException(f"{self!r}: the peer is gone ({err})")

    def _check_writable(self) -> None:
        if not self._writable():
            raise NotImplementedError(f"{type(self).__name__} cannot be written: it has no descriptor to write to")
        if self._ch_closed:
            cause = self._ch_end_cause
            if cause is not None:
                raise EndpointClosedException(f"{self!r} was ended by its peer's failure ({cause})") from cause
            raise EndpointClosedException(f"{self!r} is closed")
        if isinstance(self._ch_write_error, EndpointClosedException):
            raise again(self._ch_write_error)  # shut down by shutdown_write()
        if self._ch_write_error is not None:
            raise EndpointClosedException(
                f"{self!r}: the peer is gone ({self._ch_write_error})"
            ) from self._ch_write_error

    def _queue_flush(self) -> None:
        """Have the poller send pending output at its next turn's end or
        poll, and watch write readiness for what is left; nothing when the
        channel is not registered."""
        if self._ch_poller is not None and not self._ch_flush_queued:
            self._ch_flush_queued = True
            self._ch_poller._hold_output(self)

    def _resume_output(self) -> None:
        """Output that waited for something other than write readiness (a
        TLS handshake) may move now: send it, or have the poller send it."""
        if not self.pending_output:
            return
        if self._ch_poller is None:
            with contextlib.suppress(EndpointClosedException):  # the next write() reports it
                self._flush_pending()
        else:
            self._queue_flush()

    def _output_ending(self) -> None:
        """The write side is about to end: the poller stops watching write
        readiness (before the write descriptor may be freed)."""
        if self._ch_poller is not None:
            self._ch_poller._output_ended(self)

    def _poll_flush(self) -> bool:
        """Send held output without waiting; ``True`` if nothing is left
        (then the poller stops watching write readiness; see
        :meth:`_poll_flushed`).

        A peer that is gone is not an error here. For a channel its poller
        drives it ends the channel (see :meth:`_end_by_failure`), which the
        poller reports; for one on its own, the next ``write()`` says so.
        """
        self._ch_flush_queued = False
        if self._ch_closed:
            return True
        done = True
        if self._ch_write_error is None:
            out = self._ch_out
            # Asked by the poller at a turn's end or on write readiness: a
            # full descriptor is checked, not sent to (see _send_if_writable).
            if out is None or not out.refused or wait_for(*self._output_wait(), 0):
                try:
                    done = self._flush_pending()
                except EndpointClosedException as gone:
                    if self._ch_poller is not None:
                        self._end_by_failure(gone.__cause__ or gone)
                        return True
            else:
                done = False
        return self._poll_flushed(done)

    def _poll_linger(self) -> bool:
        """Send what a channel closed in a turn still holds, without
        waiting; ``True`` once nothing is left (a peer that is gone counts
        as nothing left)."""
        try:
            return self._flush_pending()
        except EndpointClosedException:
            return True

    def _poll_release(self) -> None:
        """Release the descriptors of a channel closed in a turn: once all
        was delivered, after its protocol's clean end (:meth:`_end_cleanly`);
        else dropping what its peer did not take in time."""
        if self.pending_output:
            LOG.warning("%r: closing dropped %d bytes the peer did not take in time", self, self.pending_output)
        elif self._ch_write_error is None:
            self._end_cleanly()
        self._ch_out = None
        self._release()

    def _close_later(self, poller: ChannelPoller, timeout: float | None) -> bool:
        """:meth:`close` in a turn: send what the peer takes now, and hand
        the rest to ``poller``; ``False`` if nothing is left to hand over."""
        try:
            if self._flush_pending():
                return False
        except EndpointClosedException:
            return False  # the peer is gone: nothing can be delivered
        poller._close_later(self, timeout)  # first: it asks for the write descriptor
        self._ch_closed = True
        if self._ch_eof is None:
            self._ch_eof = EndpointClosedException(f"{self!r} is closed")
        return True

    def _poll_can_write(self) -> bool:
        """Whether the write side is still there; see ``channels._seam``."""
        return self._writable() and not isinstance(self._ch_write_error, EndpointClosedException)
