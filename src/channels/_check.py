"""The one rule for arguments, applied at every public entry point.

A wrong *type* raises ``TypeError``, a wrong *value* ``ValueError``; both
name the parameter and say what was expected, and both are raised before
anything is started, sent or changed: a refused call leaves nothing behind
(no socket, descriptor, child process or half-sent output; what a
constructor opened before it could check an option, it closes again).
Each function here checks one kind of argument and returns it in the form
the caller uses.

The rules, in one place:

- **Timeouts** are seconds: an ``int`` or a ``float`` (any real number but
  ``bool``), ``>= 0``. ``None`` means no limit where the parameter allows it,
  and so does ``float('inf')``: that is what asyncio and trio read it as
  (``trio.move_on_after(math.inf)``), and what a user who writes it means;
  the alternative, refusing it, makes a computed "no limit" a special case
  for every caller. NaN is refused (it compares false with everything, so it
  would be neither a wait nor none). A finite timeout too long for the
  kernel's clock (poll(2) counts milliseconds in a C ``int``, about 24 days)
  is waited in pieces by :mod:`channels._wait`, never ``OverflowError``.
- **Delays** of timers, and a server's deadlines for its clients (timers
  of the poller's), are seconds too, but finite: a timer is a time that
  comes, so ``float('inf')`` is refused there, where for a timeout it is no
  limit. A timer never due is one not made, or cancelled; a deadline that
  allows no limit takes ``None`` for it, and the message says so.
- **Counts and sizes** are whole numbers (``int``, or anything with
  ``__index__`` but ``bool``), at least a stated minimum: ``1.5`` bytes is a
  type error, ``-5`` a value error.
- **Flags** are ``True`` or ``False``; ``'no'`` is truthy, so a string
  accepted here would mean the opposite of what it says.
- **Descriptors** are whole numbers from 0 to the largest C ``int``
  (``fcntl`` and ``poll`` take no more); a larger one is a value error, not
  ``OverflowError``.
- **Data** is a bytes-like object; text is refused with a hint to encode it.
"""

from __future__ import annotations

import math
import numbers
import operator
import os
from typing import Any

__all__ = [
    "LONGEST_WAIT",
    "MAX_DESCRIPTOR",
    "byte_view",
    "channel_like",
    "count",
    "delay",
    "descriptor",
    "flag",
    "optional_count",
    "optional_delay",
    "poll_timeout",
    "readable_file",
    "timeout",
]

#: The largest descriptor number the OS interfaces take (a C ``int``).
MAX_DESCRIPTOR = 2**31 - 1

#: The longest one wait of epoll or poll(2) can be, in seconds: they count
#: milliseconds in a C ``int``.
LONGEST_WAIT = (2**31 - 1) // 1000

_SECONDS = "a number of seconds >= 0"


def timeout(value: object, name: str = "timeout", *, allow_none: bool = True, positive: bool = False) -> float | None:
    """Check a timeout in seconds; return it, with ``inf`` as ``None`` (no limit).

    ``allow_none=False`` refuses ``None`` (``TypeError``); ``positive=True``
    refuses ``0`` too, for a wait that cannot be done without waiting.
    """
    if type(value) is float and 0 < value < math.inf:
        return value  # the usual case, kept short: no message is built
    expected = f"{'a number of seconds > 0' if positive else _SECONDS}{' or None' if allow_none else ''}"
    if value is None:
        if allow_none:
            return None
        raise TypeError(f"{name} must be {expected}, not None")
    seconds = _real(value, name, expected)
    if math.isnan(seconds) or seconds < 0 or (positive and seconds == 0):
        raise ValueError(f"{name} must be {expected}, not {value!r}")
    return None if math.isinf(seconds) else seconds


def delay(value: object, taker: str, name: str = "seconds", *, positive: bool = False) -> float:
    """Check a timer's delay or interval: a finite number of seconds ``>= 0``
    (``> 0`` where ``positive``); return it as a ``float``. The message names
    the call (``taker``, such as ``'call_later()'``) and the parameter."""
    seconds = optional_delay(value, taker, name, positive=positive, allow_none=False)
    assert seconds is not None
    return seconds


def optional_delay(
    value: object, taker: str, name: str, *, positive: bool = False, allow_none: bool = True
) -> float | None:
    """:func:`delay`, or ``None`` (no limit) where ``allow_none``."""
    if type(value) is float and 0 < value < math.inf:
        return value  # the usual case, kept short: no message is built
    if value is None and allow_none:
        return None
    expected = f"a finite number of seconds {'above 0' if positive else '>= 0'}{' or None' if allow_none else ''}"
    seconds = _real(value, f"{taker}: {name}", expected)
    if not math.isfinite(seconds) or seconds < 0 or (positive and seconds == 0):
        hint = " (None is no limit)" if allow_none and math.isinf(seconds) else ""
        raise ValueError(f"{taker}: {name} must be {expected}, not {value!r}{hint}")
    return seconds


def poll_timeout(value: object) -> float | None:
    """Check ``Poller.poll()``'s timeout: as :func:`timeout`, except that a
    negative one means "do not wait", as ``selectors`` reads it (and as the
    poll has always done here; epoll itself would wait forever).

    A finite timeout longer than the kernel can wait at once (about 24
    days) becomes that longest wait: the poll then returns ``[]``, as it
    does after a :meth:`~channels.poller.Poller.wakeup`, and a loop polls
    again.
    """
    if value is None:
        return None
    seconds = _real(value, "timeout", f"{_SECONDS} or None")
    if math.isnan(seconds):
        raise ValueError(f"timeout must be {_SECONDS} or None, not {value!r}")
    if seconds <= 0:
        return 0
    if math.isinf(seconds):
        return None
    return min(seconds, LONGEST_WAIT)


def count(value: object, name: str, *, minimum: int = 1, maximum: int | None = None, unit: str = "") -> int:
    """Check a whole number from ``minimum`` (to ``maximum``); return it as an ``int``."""
    number = optional_count(value, name, minimum=minimum, maximum=maximum, unit=unit, allow_none=False)
    assert number is not None
    return number


def optional_count(
    value: object,
    name: str,
    *,
    minimum: int = 1,
    maximum: int | None = None,
    unit: str = "",
    allow_none: bool = True,
) -> int | None:
    """:func:`count`, or ``None`` (no bound) where ``allow_none``."""
    if type(value) is int and value >= minimum and (maximum is None or value <= maximum):
        return value  # the usual case, kept short: every accepted client's channel comes here
    if value is None and allow_none:
        return None
    expected = f"a whole number{' of ' + unit if unit else ''}"
    expected += f" >= {minimum}" if maximum is None else f" from {minimum} to {maximum}"
    if allow_none:
        expected += " or None"
    if isinstance(value, bool) or not hasattr(type(value), "__index__"):
        raise TypeError(f"{name} must be {expected}, not {_kind(value)}")
    number = operator.index(value)  # type: ignore[arg-type]
    if number < minimum or (maximum is not None and number > maximum):
        raise ValueError(f"{name} must be {expected}, not {value!r}")
    return number


def flag(value: object, name: str) -> bool:
    """Check that ``value`` is ``True`` or ``False``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, not {_kind(value)}")
    return value


def descriptor(value: object, name: str) -> int:
    """Check a descriptor number: a whole number from 0 to :data:`MAX_DESCRIPTOR`.

    Whether it is open is for the caller to ask the OS (``fcntl``).
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a descriptor number, not {_kind(value)}")
    if not 0 <= value <= MAX_DESCRIPTOR:
        raise ValueError(f"{name} {value} is not an open file descriptor (they run from 0 to {MAX_DESCRIPTOR})")
    return value


def byte_view(chunk: object, taker: str = "write()") -> memoryview:
    """A flat view of the bytes of ``chunk``, a bytes-like object other than
    ``bytes`` (which the hot paths take as it is, unchecked); ``TypeError``
    naming ``taker`` for anything else."""
    if isinstance(chunk, str):
        raise TypeError(f"{taker} takes bytes-like objects, not str: encode the text first")
    try:
        view = memoryview(chunk)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{taker} takes bytes-like objects, not {type(chunk).__name__}") from None
    if view.ndim == 1 and view.itemsize == 1 and view.c_contiguous:
        return view.cast("B") if view.format != "B" else view
    return memoryview(view.tobytes())


def channel_like(channel: object, taker: str, needs: tuple[str, ...] = ("read",)) -> None:
    """Check that ``channel`` is used as a channel is: through ``read()``,
    ``write()``, ``close()`` and ``get_fd()``.

    Only the methods in ``needs`` are required, the ones the taker cannot do
    without: a duck-typed channel of another library that is only ever read
    kept working with the original library, and must here too.
    """
    if all(callable(getattr(channel, method, None)) for method in needs):
        return
    hint = ""
    if hasattr(channel, "recv") and hasattr(channel, "fileno"):
        hint = ": wrap a connected socket in SocketChannel first (a listening one goes to Poller.add_server())"
    elif isinstance(channel, int) and not isinstance(channel, bool):
        hint = ": wrap a descriptor in PipeChannel first"
    raise TypeError(
        f"{taker} takes a channel (an object with read(), write(), close() and get_fd(), such as a "
        f"PipeChannel or a SocketChannel), not {type(channel).__name__}{hint}"
    )


def readable_file(path: Any, name: str) -> None:
    """Check that the file named by ``name`` can be opened for reading; the
    ``OSError`` (such as ``FileNotFoundError``) says which parameter and
    which file, where ``ssl`` would say neither."""
    try:
        with open(path, "rb"):
            pass
    except OSError as err:
        raise type(err)(err.errno, f"{name} cannot be read: {err.strerror}", os.fspath(path)) from None


def _real(value: object, name: str, expected: str) -> float:
    kind = type(value)
    if kind is float:  # the usual case, kept short
        return value  # type: ignore[return-value]
    if kind is not int and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise TypeError(f"{name} must be {expected}, not {_kind(value)}")
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:  # an int past float's range: as good as no limit (or below zero)
        return math.inf if value > 0 else -math.inf  # type: ignore[operator]


def _kind(value: object) -> str:
    """How an argument of the wrong type is shown: its type, and the value
    when it is short enough to help."""
    shown = repr(value)
    return f"{type(value).__name__} {shown}" if len(shown) <= 40 else type(value).__name__
