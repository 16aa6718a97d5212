"""The channels a poller reads, by descriptor: adding, finding and forgetting them.

A registered channel is one of this package's, driven through the seam
(:mod:`channels._seam`; it keeps its poller and its descriptor in
``_ch_poller`` and ``_ch_poll_fd``), or any other object with ``read()``
and ``get_fd()`` (:mod:`channels._foreign`), kept here by ``id()``. Each
gets the one callable that reads it for a poll when it is registered, so
that dispatch sees one kind and asks nothing per poll.

:class:`Registry` is the poller's part of this, a base class of
:class:`~channels.poller.Poller`: dispatch reads its maps directly, and the
seam's and the accepting code's questions (``_is_registered``,
``_forget``) are the poller's own methods.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, TypeGuard

from ._foreign import PollRead, is_native, poll_reader, still_on
from ._seam import ForeignChannel, PolledChannel
from ._writing import watch_or_refuse

if TYPE_CHECKING:
    from ._accept import Acceptor, ClientDeadlines
    from ._watch import Watcher
    from ._writing import WriteWatch

__all__ = ["Registered", "Registry"]

#: A registered channel: one of this package's, driven through the seam, or
#: any other object with read() and get_fd() (see channels._seam).
Registered = PolledChannel | ForeignChannel


class Registry:
    """The registered channels of a poller, by read descriptor."""

    # The poller's, used here.
    _watch: Watcher
    _write_watch: WriteWatch
    _acceptor: Acceptor
    _deadlines: ClientDeadlines
    _ended: list[Registered]
    _held_input: list[Any]

    if TYPE_CHECKING:

        def _hold_input(self, channel: PolledChannel) -> None: ...

    def __init__(self) -> None:
        self._channels: dict[int, Registered] = {}  # read descriptor -> channel
        # read descriptor -> what reads its channel for a poll: the channel's
        # _poll_read, or the adapter of a channel in another style (see
        # channels._foreign), made once here so that dispatch sees one kind.
        self._readers: dict[int, PollRead] = {}
        # id(channel) -> read descriptor, for foreign channels only: this
        # package's own channels keep theirs in ``_poll_fd``.
        self._foreign: dict[int, int] = {}

    def _add(self, channel: Any) -> None:
        """Register ``channel``, which is not registered (see ``Poller.register()``)."""
        try:
            fd = channel.get_fd()
        except NotImplementedError as err:
            raise ValueError(f"{channel!r} cannot be registered: it cannot be read") from err
        self._claim(fd, channel)
        native = is_native(channel)
        if native and channel._ch_poller is not None:
            raise ValueError(f"{channel!r} is already registered with another Poller")
        watch_or_refuse(self._watch, fd, self._watch.READ, channel)
        self._channels[fd] = channel
        read = poll_reader(channel, self._hold_input)
        if not native:
            self._foreign[id(channel)] = fd
            self._readers[fd] = read
        else:
            channel._ch_poller = self
            channel._ch_poll_fd = fd
            self._readers[fd] = self._deadlines.reader(channel, read) if self._deadlines.idle else read
            if channel.pending_output:
                self._write_watch.add(channel)
            if channel._poll_has_input():
                self._held_input.append(channel)

    def _claim(self, fd: int, owner: object) -> None:
        """Check that nothing else is registered on ``fd``."""
        self._acceptor.claim(fd)
        current = self._channels.get(fd)
        if current is None:
            return
        if not still_on(current, fd):
            # Closed without telling us (a channel that closes in its own
            # way, as the original library's subclasses do); its number is reused.
            self._forget(current)
            self._ended.append(current)
            return
        raise ValueError(f"descriptor {fd} is already registered for {current!r}")

    def _is_registered(self, channel: object) -> TypeGuard[Registered]:
        if is_native(channel):
            return channel._ch_poller is self and channel._ch_poll_fd >= 0  # type: ignore[comparison-overlap]
        return id(channel) in self._foreign

    def _fd_of(self, channel: Registered) -> int:
        """The descriptor a registered channel is read by."""
        fd: int = channel._ch_poll_fd if is_native(channel) else self._foreign[id(channel)]
        return fd

    def _input_ended(self, channel: Registered) -> None:
        """``channel`` has ended (its ``(b'', channel)`` is in this poll's
        result): stop reading it, but go on sending what is written to it."""
        self._forget(channel)
        if is_native(channel) and channel._poll_can_write():
            self._write_watch.keep(channel, self)

    def _forget(self, channel: Registered) -> None:
        fd = channel._ch_poll_fd if is_native(channel) else self._foreign.pop(id(channel))
        del self._channels[fd]
        del self._readers[fd]
        if self._deadlines.idle and is_native(channel):
            self._deadlines.not_read(channel)
        self._write_watch.remove_all_of(channel)
        with contextlib.suppress(KeyError, ValueError):
            self._watch.unregister(fd)
        if is_native(channel):
            channel._ch_poller = None
            channel._ch_poll_fd = -1
