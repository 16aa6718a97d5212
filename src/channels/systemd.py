"""Running as a systemd service: the sockets it passes, and telling it we are ready.

``listen('systemd')`` and ``listen('systemd:NAME')`` (see
:func:`channels.listen`) take the listening sockets systemd opened for the
service (socket activation); :func:`listeners` takes several at once. The
protocol is systemd's ``sd_listen_fds(3)``: descriptors from 3 on, counted
by ``LISTEN_FDS``, named by ``LISTEN_FDNAMES``, meant for the process whose
id is ``LISTEN_PID``. :func:`notify` is ``sd_notify(3)``: a datagram to the
socket named by ``NOTIFY_SOCKET``, such as ``READY=1`` once the service
serves (for ``Type=notify`` units).

Only the standard library is used; outside systemd, :func:`notify` does
nothing and there are no sockets to take.
"""

from __future__ import annotations

import functools
import os
import socket

from .address import _adopt_listener, _is_listener

__all__ = ["SD_LISTEN_FDS_START", "listeners", "notify"]

#: The first descriptor systemd passes; the others follow it.
SD_LISTEN_FDS_START = 3

_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


def notify(state: str = "READY=1") -> bool:
    """Tell systemd about the service: ``READY=1`` once it serves.

    ``state`` is one or more ``NAME=VALUE`` lines as ``sd_notify(3)``
    defines them: ``READY=1``, ``RELOADING=1``, ``STOPPING=1``,
    ``STATUS=free text``, ``WATCHDOG=1``... They are sent as one datagram to
    the Unix socket named by ``NOTIFY_SOCKET``: a path, or a name in the
    abstract namespace written with a leading ``@``. Returns ``False`` when
    ``NOTIFY_SOCKET`` is not set (the program does not run under systemd, or
    the unit does not ask to be told), ``True`` once sent. Raises
    ``ValueError`` for an address that is neither, and ``OSError`` naming
    the address if the datagram cannot be sent.

    ``NOTIFY_SOCKET`` is left set, unlike the variables of the sockets:
    a service tells systemd more than once (``STOPPING=1`` later), and
    systemd accepts messages from the main process only unless the unit
    says ``NotifyAccess=all``.
    """
    if not isinstance(state, str) or not state:
        raise TypeError(f"notify() takes a non-empty str such as 'READY=1', not {state!r}")
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        target = "\0" + address[1:]  # the abstract namespace: Linux only
    elif address.startswith("/"):
        target = address
    else:
        # systemd 254 and later may also name an AF_VSOCK address (vsock:...),
        # for virtual machines; those are not supported here.
        raise ValueError(f"NOTIFY_SOCKET={address!r} is not a Unix socket path or @name; cannot notify systemd")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(state.encode(), target)
        except OSError as err:
            raise type(err)(err.errno, f"notifying systemd at {address!r}: {err.strerror}") from err
    return True


def listeners(name: str | None = None) -> list[socket.socket]:
    """Take every listening stream socket systemd passed (those named
    ``name``, if given) that no ``listen()`` has taken yet, in order.

    For a unit that passes several sockets under one name (a ``.socket``
    unit with two ``ListenStream=`` lines names both after itself), where
    ``listen('systemd:NAME')`` would refuse to choose. Descriptors that are
    not listening stream sockets (datagram sockets, FIFOs) are left alone.
    Returns an empty list when systemd passed none. Each socket is owned by
    the caller, as :func:`channels.listen`'s are.
    """
    taken = []
    for fd, its_name in list(_received().items()):
        if (name is None or its_name == name) and _is_listener(fd):
            del _received()[fd]
            taken.append(_adopt_listener(fd))
    return taken


def _take_one(address: str, name: str | None) -> int:
    """The one descriptor ``listen(address)`` asks for, now taken."""
    passed = _received()
    chosen = [fd for fd, its_name in passed.items() if name is None or its_name == name]
    if len(chosen) == 1:
        del passed[chosen[0]]
        return chosen[0]
    if not passed:
        reason = "systemd passed no sockets to this process (or they were all taken already)"
    elif not chosen:
        reason = f"systemd passed no socket named {name!r}; it passed {_names(passed)}"
    else:
        which = "" if name is None else f"named {name!r} "
        reason = (
            f"systemd passed {len(chosen)} sockets {which}({_names(passed)}); name one with systemd:NAME "
            f"or take them all with channels.systemd.listeners({'' if name is None else repr(name)})"
        )
    raise ValueError(f"{address!r}: {reason}")


def _names(passed: dict[int, str]) -> str:
    return ", ".join(f"{its_name!r} (descriptor {fd})" for fd, its_name in passed.items())


@functools.cache  # one dict for the process, from which taken descriptors are deleted
def _received() -> dict[int, str]:
    """The descriptors systemd passed and no one has taken yet.

    The environment is read once, at the first use, and its three variables
    are then removed, as ``sd_listen_fds(unset_environment=1)`` does: the
    child processes this program starts must not take the sockets for
    theirs. For the same reason the descriptors are made non-inheritable
    (systemd passes them inheritable, as it must). Raises ``ValueError`` if
    the variables are malformed (once: they are gone after).
    """
    values = [os.environ.pop(variable, None) for variable in _VARIABLES]
    return _parse(*values)


def _parse(pid_text: str | None, count_text: str | None, names_text: str | None) -> dict[int, str]:
    if pid_text is None or count_text is None:
        return {}
    if not pid_text.isdigit():
        raise ValueError(f"LISTEN_PID={pid_text!r} is not a process id")
    if int(pid_text) != os.getpid():
        # Set for another process: the one that started this program kept
        # them in its environment. Not ours to take.
        return {}
    if not count_text.isdigit():
        raise ValueError(f"LISTEN_FDS={count_text!r} is not a count of descriptors")
    count = int(count_text)
    names = ["unknown"] * count if names_text is None else names_text.split(":")  # systemd's own default name
    if len(names) != count:
        raise ValueError(f"LISTEN_FDNAMES={names_text!r} names {len(names)} descriptors, but LISTEN_FDS={count}")
    passed = {}
    for fd, name in enumerate(names, SD_LISTEN_FDS_START):
        try:
            os.set_inheritable(fd, False)
        except OSError as err:
            raise ValueError(f"LISTEN_FDS={count}, but descriptor {fd} is not open ({err.strerror})") from None
        passed[fd] = name
    return passed
