"""The seam between a channel and the :class:`~channels.poller.Poller` that drives it.

This is the whole conversation between the two, in one place: a poller uses
nothing of a channel but what :class:`PolledChannel` lists, and a channel
asks nothing of its poller but what :class:`ChannelPoller` lists. Both are
typed against these protocols, so the type checker holds each side to them.
:class:`~channels.base.Channel` implements the channel side once for every
channel kind; a new kind implements the hooks that ``channels.base`` lists
(``_read``, ``_send``, ``_release``, ``get_fd``, ...) and touches none of
this.

Every :class:`~channels.base.Channel` has the seam's state, even a
subclass that never calls ``Channel.__init__`` (the base sets it up in
``__new__``). What a user's subclass overrides in the original library's
styles is used through its public methods: a ``read()`` of its own is
called by the poller instead of ``_poll_read``; a ``write()`` of its own
holds nothing, so the turn does not apply to it; and a ``close()`` of its
own tells the poller nothing, so the poller notices the close when the
descriptor number is registered again (or the subclass sets ``closed``).

The turn. While the program iterates over the list a ``poll()`` returned,
the poller's :attr:`ChannelPoller._turn_depth` is above zero, and a channel
written then holds the output (:meth:`ChannelPoller._hold_output`) instead of
sending it; the poller sends what all channels hold when that iteration
ends, so that what one turn writes to a channel leaves in one system call.
Outside a turn a channel sends at once.

Failures in a turn. A peer's failure that a write made in a turn meets (a
reset, a broken pipe, output past ``max_pending``), and one that the
poller's own sending of held output meets, never raises: the channel ends
itself, keeping the cause (``Channel.end_cause``), and tells the poller
through :meth:`ChannelPoller._channel_closed`, which reports
``(b'', channel)`` once. Such a channel keeps ``_ch_poller`` (with
``_ch_poll_fd`` at ``-1``), so that the writes of later turns are dropped
too.

Closing in a turn. ``close()`` made in a turn never waits for the peer:
what the peer does not take at once, the channel hands to the poller
(:meth:`ChannelPoller._close_later`), which sends it as the peer takes it
(:meth:`PolledChannel._poll_linger`) and then, or once the linger has
passed, releases the descriptors (:meth:`PolledChannel._poll_release`).

How much one poll takes. ``_poll_read`` appends at most
:data:`ENTRIES_PER_POLL` entries; a channel with more lines waiting calls
:meth:`ChannelPoller._hold_input`, so the next poll comes back for them
without waiting, and reads nothing new from it until they are taken.

Code that waits on a channel for its owner (``channels.aio``, a
``LineChannel`` over another channel) uses what :class:`WaitedChannel` lists,
and nothing else of it.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["ENTRIES_PER_POLL", "ChannelPoller", "ForeignChannel", "PolledChannel", "WaitedChannel"]

#: The most entries one ``poll()`` returns for one channel (lines, for a line
#: channel; a bytes channel gives one entry, of at most ``read_size`` bytes).
#: A poll result is a list the program holds at once: 200 clients sending
#: 64 KiB of two-byte lines each made one poll 6.5 million entries (770 MiB)
#: before there was a bound. The callback loops keep no such list: Twisted's
#: LineReceiver calls ``lineReceived`` for every line of one read (64 KiB)
#: before it reads again, and asyncio's and Tornado's stream readers hand out
#: one line per call from a buffer bounded in bytes (64 KiB and 100 MiB).
#: Ours is their shape in a flat list: each ready channel gets its turn in
#: every poll, up to this many entries, so one busy peer cannot starve the
#: others; what is left comes by the next poll, which does not wait, before
#: anything more is read from that peer (the kernel's buffers then push back).
#: 256 keeps such a flood of 200 clients near 30 MiB, and costs a line-heavy
#: bulk transfer one extra poll (a few microseconds) per 256 lines.
ENTRIES_PER_POLL = 256


class ChannelPoller(Protocol):
    """What a channel may ask of the poller it is registered with."""

    #: How many iterations over this poller's ``poll()`` results are under
    #: way; above zero, writes are held for the end of the turn.
    _turn_depth: int

    def _hold_output(self, channel: PolledChannel) -> None:
        """``channel`` holds output: send it at the end of the turn (or the
        next ``poll()``), then watch write readiness for what is left."""

    def _hold_input(self, channel: PolledChannel) -> None:
        """``channel`` holds complete lines in memory, where the OS cannot
        see them: read it on the next ``poll()`` without waiting."""

    def _output_ended(self, channel: PolledChannel) -> None:
        """``channel`` is shutting its write side down: stop watching it for
        write readiness (before its write descriptor is freed)."""

    def _channel_closed(self, channel: PolledChannel) -> None:
        """``channel`` is being closed by its owner (or ended by its peer's
        failure): forget it, and report ``(b'', channel)`` once if its end
        was not reported yet."""

    def _close_later(self, channel: PolledChannel, timeout: float | None) -> None:
        """``channel`` is being closed in a turn with output its peer has
        not taken: forget it and report its end as :meth:`_channel_closed`
        does, then send that output in the background (by later polls, or at
        exit) for at most ``timeout`` seconds (``None``: no limit), and
        release the descriptors with :meth:`PolledChannel._poll_release`.
        Called before the channel counts as closed, so that its write
        descriptor can still be asked for."""


class ForeignChannel(Protocol):
    """What a poller uses of a registered object that is not a channel of
    this package, or of a channel that overrides ``read()`` (the original
    library's 0.1.1 contract): it is read through ``read()`` alone."""

    def read(self) -> bytes:
        """The bytes available now, ``b''`` if none (one line in line mode);
        raises ``EndpointClosedException`` at the end."""

    def get_fd(self) -> int:
        """The descriptor to watch for reading."""

    def close(self) -> None:
        """Close it (by ``Poller.close_all()``)."""


class PolledChannel(Protocol):
    """What a poller may use of a channel it drives."""

    #: The poller that reads the channel, sends its held output, or both;
    #: ``None`` while it is on its own. Set by the poller only.
    _ch_poller: ChannelPoller | None
    #: The descriptor the poller reads it by; ``-1`` while it is not read
    #: (paused, ended, or not registered). Set by the poller only.
    _ch_poll_fd: int

    @property
    def pending_output(self) -> int:
        """Bytes written but not yet taken by the operating system."""

    def read(self) -> bytes:
        """What the channel's owner reads; the poller calls it only when a
        subclass overrides it (see :class:`ForeignChannel`)."""

    def get_fd(self) -> int:
        """The descriptor to watch for reading."""

    def close(self, timeout: float | None = ...) -> None:
        """Deliver pending output (waiting at most ``timeout``), then close."""

    def abort(self) -> None:
        """Close at once, dropping pending output."""

    def _write_fd(self) -> int:
        """The descriptor to watch for write readiness while output is pending."""

    def _poll_read(self, out: list[Any]) -> bool:
        """Read once, appending ``(data, channel)`` entries to ``out`` (one
        per line in line mode, ``(b'', channel)`` at the end); return whether
        the channel's input has ended."""

    def _poll_flush(self) -> bool:
        """Send held output without waiting; ``True`` if nothing is left (a
        peer that is gone counts as nothing left: the channel ends itself,
        see "Failures in a turn" above)."""

    def _poll_linger(self) -> bool:
        """Send what a channel closed in a turn still holds, without
        waiting; ``True`` once nothing is left (sent, or the peer is gone)."""

    def _poll_release(self) -> None:
        """Release the descriptors of a channel closed in a turn, dropping
        (with a warning) what its peer did not take in time."""

    def _end_by_failure(self, cause: BaseException) -> None:
        """End the channel for ``cause`` (a peer's failure, a missed
        deadline): drop its output, keep ``cause`` as its ``end_cause``,
        release its descriptors. Its end is reported by whoever calls this."""

    def _poll_has_input(self) -> bool:
        """Whether complete lines wait in memory (read them without waiting)."""

    def _poll_can_write(self) -> bool:
        """Whether the channel has a write side its owner has not shut down:
        after its input ends, such a channel is kept, so that its output is
        sent (or, if its peer is gone, so that writes made in turns are
        dropped rather than raised)."""


class WaitedChannel(Protocol):
    """What code waiting on a channel for its owner may use of it: what to
    wait for, and sending what is pending (``channels.aio``, and a
    ``LineChannel`` over another channel of this package)."""

    def _flush_pending(self) -> bool:
        """Send what the descriptor takes now, without waiting; ``True`` if
        nothing is left. Raises ``EndpointClosedException`` if the peer is gone."""

    def _write_fd(self) -> int:
        """The descriptor to watch for write readiness while output is pending."""

    def _input_wait(self) -> tuple[int, int]:
        """What a read waits for: a descriptor and ``select.POLLIN`` (or
        ``POLLOUT``, for a TLS read that must write first)."""

    def _output_wait(self) -> tuple[int, int]:
        """What pending output waits for: a descriptor and ``select.POLLOUT``
        (or ``POLLIN``, for a TLS write that waits for the peer's reply)."""
