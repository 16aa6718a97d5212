"""The poller's turn, and what it holds: output for the turn's end, input for the next poll.

Iterating over the list ``poll()`` returns is the poller's *turn*
(:class:`Turn`). While it lasts, a channel written holds its output and
hands itself to its poller (``_hold_output``); when the iteration ends, the
poller sends what every channel holds, so that what one turn writes to a
channel leaves in one system call (the seam's side of this is in
:mod:`channels._seam`). Output the peer does not take then waits for write
readiness (:mod:`channels._writing`).

A channel that holds complete entries in memory, where the OS cannot see
them (over its per-poll bound, or read ahead by a foreign channel's line
cap), hands itself over too (``_hold_input``): the next poll reads it
without waiting.

:class:`HeldForTheTurn` is the poller's part of this, a base class of
:class:`~channels.poller.Poller`: a channel calls these methods on every
first write of a turn, so they are the poller's own methods, not calls
passed on to another object.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeGuard

from ._foreign import PollRead
from ._registry import Registered
from ._seam import PolledChannel
from ._writing import WriteWatch

__all__ = ["HeldForTheTurn", "Turn"]


class HeldForTheTurn:
    """What a poller holds over a turn: the channels with output to send
    when it ends, and those with input to read by the next poll."""

    #: Iterations over poll() results under way (see :class:`Turn`).
    _turn_depth: int
    _held_output: list[PolledChannel]
    _held_input: list[Any]
    _write_watch: WriteWatch
    _channels: dict[int, Any]
    _readers: dict[int, PollRead]

    if TYPE_CHECKING:  # the poller's registry

        def _is_registered(self, channel: object) -> TypeGuard[Registered]: ...

        def _fd_of(self, channel: Any) -> int: ...

        def _input_ended(self, channel: Any) -> None: ...

    def _hold_output(self, channel: PolledChannel) -> None:
        self._held_output.append(channel)

    def _hold_input(self, channel: PolledChannel) -> None:
        self._held_input.append(channel)

    def _send_held_output(self) -> None:
        """Send what the channels hold; watch write readiness for what is left."""
        if not self._held_output:
            return
        held, self._held_output = self._held_output, []
        poller: object = self
        for channel in held:
            if not channel._poll_flush() and channel._ch_poller is poller:
                self._write_watch.add(channel)

    def _read_held_input(self, held: list[Any], result: list[Any]) -> None:
        """Read the channels of ``held`` that this poll has not read yet."""
        done = {id(entry[1]) for entry in result}
        for channel in held:
            if self._is_registered(channel) and id(channel) not in done:
                done.add(id(channel))
                fd = self._fd_of(channel)
                if self._readers[fd](result):
                    self._input_ended(self._channels[fd])


class Turn(list[Any]):
    """The list ``poll()`` returns: iterating over it is the poller's turn.

    Writes made meanwhile are held by their channels (see ``channels._seam``)
    and sent here, when the iteration ends: run to the end, or the iterator
    closed by ``break``, ``return`` or an exception.
    """

    __slots__ = ("_poller",)

    _poller: HeldForTheTurn

    def __iter__(self) -> Iterator[Any]:
        poller = self._poller
        poller._turn_depth += 1
        try:
            yield from list.__iter__(self)
        finally:
            poller._turn_depth -= 1
            if poller._held_output:
                poller._send_held_output()
