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

Code that waits on a channel for its owner (``channels.aio``, a
``LineChannel`` over another channel) uses what :class:`WaitedChannel` lists,
and nothing else of it.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["ChannelPoller", "ForeignChannel", "PolledChannel", "WaitedChannel"]


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
        """``channel`` is being closed by its owner: forget it, and report
        ``(b'', channel)`` once if its end was not reported yet."""


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
        peer that is gone counts as nothing left: the next ``write()`` says so)."""

    def _poll_has_input(self) -> bool:
        """Whether complete lines wait in memory (read them without waiting)."""

    def _poll_can_write(self) -> bool:
        """Whether output can still be sent (no write side shut down or failed):
        after its input ends, such a channel is kept for its output."""


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
