"""``connect()`` and ``listen()``: channels and servers named by address strings.

An address is a kind, a colon, and what that kind needs, in the manner of
socat: ``tcp:example.org:80``, ``unix:/run/app.sock``, ``exec:grep -n x``.
Parsing is strict: a malformed address raises ``ValueError`` naming the forms
accepted, before anything is opened.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import importlib
import ipaddress
import math
import os
import re
import shlex
import socket
import stat
from collections.abc import Iterable
from typing import Any

from . import _check
from .base import Channel
from .pipe import PipeChannel
from .process import ProcessChannel
from .sockets import SocketChannel
from .terminal import PtyProcessChannel

__all__ = ["connect", "listen"]

_CONNECT_FORMS = (
    "tcp:HOST:PORT, tcp:[IPV6]:PORT, unix:PATH, exec:COMMAND LINE, stdio, fd:N, fd:IN,OUT, tls:HOST:PORT, "
    "pty:COMMAND LINE"
)
_LISTEN_FORMS = "tcp:HOST:PORT, tcp:[IPV6]:PORT, unix:PATH, tls:HOST:PORT, fd:N, systemd, systemd:NAME"

# Options every channel constructor takes.
_CHANNEL_OPTIONS = ("buffering", "max_line_length", "max_pending")
_PROCESS_OPTIONS = (*_CHANNEL_OPTIONS, "cwd", "env", "stderr", "new_process_group", "terminate_timeout")
_TERMINAL_OPTIONS = (*_CHANNEL_OPTIONS, "cwd", "env", "size", "echo", "raw", "terminate_timeout")

#: Backlog of the listening sockets ``listen()`` makes, unless told otherwise.
DEFAULT_BACKLOG = 128

_PORT = re.compile(r"[0-9]{1,5}")
_FD = re.compile(r"[0-9]+")


def connect(address: str, **options: Any) -> Channel:
    """Open a channel to ``address``.

    ``tcp:HOST:PORT`` (a name, an IPv4 address, or an IPv6 address in
    brackets: ``tcp:[::1]:8000``) and ``unix:PATH`` connect a
    :class:`SocketChannel`; the call blocks until the connection is made, at
    most ``timeout`` seconds (an option, a number > 0: a connection cannot be
    made without waiting; default ``None``, the OS's own limit). A TCP
    channel has ``TCP_NODELAY`` set unless ``nodelay=False`` (see
    :class:`SocketChannel`). ``exec:COMMAND LINE`` starts a
    :class:`ProcessChannel`: the command line is split as a POSIX shell
    would (``shlex.split``), but no
    shell runs it; ``cwd``, ``env``, ``stderr``, ``new_process_group`` and
    ``terminate_timeout`` go to the constructor. ``pty:COMMAND LINE``, split
    alike, starts a :class:`PtyProcessChannel`: the program runs on a new
    pseudo-terminal, with ``cwd``, ``env``, ``size``, ``echo``, ``raw`` and
    ``terminate_timeout`` as options. ``stdio`` is a
    :class:`PipeChannel` over this process's stdin and stdout, and
    ``fd:N`` / ``fd:IN,OUT`` one over descriptors you have (see the README
    for who owns what). ``tls:HOST:PORT`` goes to
    ``channels.tls.connect_tls(host, port, **options)`` (options such as
    ``cafile`` and ``server_hostname``).

    Every kind takes ``buffering``, ``max_line_length`` and ``max_pending``.
    Raises ``ValueError`` for a malformed address (a descriptor number out of
    range among them), ``TypeError`` for an option the kind does not take,
    ``TypeError`` or ``ValueError`` for an option's type or value (a
    ``timeout`` before any socket exists; nothing is left open either way),
    and ``OSError`` naming the address if it cannot be reached.
    """
    kind, rest = _split(address, "connect", _CONNECT_FORMS)
    if kind in ("tcp", "tls"):
        host, port = _host_port(address, rest, "connect", _CONNECT_FORMS)
        if port == 0:
            raise _malformed(address, "port 0 is not one to connect to", "connect", _CONNECT_FORMS)
        if kind == "tls":
            tls = importlib.import_module(".tls", __package__)
            channel: Channel = tls.connect_tls(host, port, **options)
            return channel
        return _connect_tcp(address, host, port, options)
    if kind == "unix":
        return _connect_unix(address, _path(address, rest, "connect", _CONNECT_FORMS), options)
    if kind in ("exec", "pty"):
        return _start(address, kind, rest, options)
    if kind == "stdio":
        return _stdio(address, options)
    return _fds(address, rest, options)


def listen(address: str, **options: Any) -> socket.socket:
    """Open a listening socket on ``address``, for ``Poller.add_server()``.

    ``tcp:HOST:PORT`` (port 0 picks a free one; read it with
    ``getsockname()``), ``unix:PATH``, or ``tls:HOST:PORT``, which goes to
    ``channels.tls.listen_tls(host, port, **options)`` (options such as
    ``certfile`` and ``keyfile``). ``backlog`` (default
    :data:`DEFAULT_BACKLOG`) bounds the connections waiting to be accepted.

    ``tcp:`` also takes ``reuse_port=True`` (``SO_REUSEPORT``: several
    sockets, in one process or several, listen on the same port and the
    kernel spreads the connections among them) and ``keepalive=``: ``True``
    probes idle connections after the system's idle time (two hours on
    Linux), a number of seconds probes after that many idle seconds and
    again every that many, so that a peer that vanished is noticed (its
    channel ends) rather than held forever. Clients accepted from the
    socket inherit the setting.

    ``fd:N`` adopts an inherited listening socket on descriptor ``N``;
    ``systemd`` adopts the one listening socket systemd passed to this
    service, and ``systemd:NAME`` the one named ``NAME``
    (``FileDescriptorName=``; see :mod:`channels.systemd`). The socket
    returned owns the descriptor and makes it non-inheritable; ``ValueError``
    if the descriptor is not open or not a listening stream socket, or if
    systemd passed no such socket.

    A Unix socket file is created with mode 0600 (only this user may
    connect) and never exists with a wider one. A socket file left by a
    server that is gone is replaced; one where a server still answers is
    not (``OSError`` with ``EADDRINUSE``), nor is a file that is not a
    socket (``FileExistsError``). Closing the socket leaves the file behind;
    the next ``listen()`` on it replaces it.

    Raises ``ValueError`` for a malformed address or one that cannot be
    listened on (``exec:``, ``pty:``, ``stdio``, ``fd:IN,OUT``), ``TypeError`` for an option
    the kind does not take, ``TypeError`` or ``ValueError`` for a ``backlog``
    that is not a whole number >= 0 (before anything is opened), and
    ``OSError`` naming the address if it cannot be listened on.
    """
    if _is_systemd(address):
        return _listen_systemd(address, options)
    kind, rest = _split(address, "listen", _LISTEN_FORMS)
    if kind in ("tcp", "tls"):
        host, port = _host_port(address, rest, "listen", _LISTEN_FORMS)
        if kind == "tls":
            tls = importlib.import_module(".tls", __package__)
            server: socket.socket = tls.listen_tls(host, port, **options)
            return server
        return _listen_tcp_with(address, host, port, options)
    if kind == "unix":
        _only(address, options, ("backlog",))
        path = _path(address, rest, "listen", _LISTEN_FORMS)
        return _listen_unix(address, path, _backlog(options))
    if kind == "fd":
        return _listen_fd(address, rest, options)
    raise _malformed(address, f"{kind} addresses cannot be listened on", "listen", _LISTEN_FORMS)


# -- parsing -------------------------------------------------------------------


def _split(address: object, verb: str, forms: str) -> tuple[str, str]:
    """``'tcp:host:80'`` -> ``('tcp', 'host:80')``; the kind in lower case."""
    if not isinstance(address, str):
        raise TypeError(f"{verb}() takes an address string such as 'tcp:localhost:8000', not {type(address).__name__}")
    kind, colon, rest = address.partition(":")
    kind = kind.lower()
    if kind == "stdio" and not colon:
        return kind, ""
    if not colon or kind not in ("tcp", "unix", "exec", "fd", "tls", "pty"):
        raise _malformed(address, "unknown kind of address", verb, forms)
    return kind, rest


def _host_port(address: str, rest: str, verb: str, forms: str) -> tuple[str, int]:
    if rest.startswith("["):
        host, bracket, tail = rest[1:].partition("]")
        if not bracket or not tail.startswith(":"):
            raise _malformed(address, "an IPv6 address is written [ADDRESS]:PORT", verb, forms)
        try:
            ipaddress.IPv6Address(host.partition("%")[0])
        except ValueError:
            raise _malformed(address, f"{host!r} in brackets is not an IPv6 address", verb, forms) from None
        port_text = tail[1:]
    else:
        host, colon, port_text = rest.rpartition(":")
        if not colon or not host:
            raise _malformed(address, "it needs a host and a port", verb, forms)
        if ":" in host:
            raise _malformed(address, "put an IPv6 address in brackets, as in tcp:[::1]:8000", verb, forms)
    if not _PORT.fullmatch(port_text) or int(port_text) > 65535:
        raise _malformed(address, f"the port {port_text!r} is not a number from 0 to 65535", verb, forms)
    return host, int(port_text)


def _path(address: str, rest: str, verb: str, forms: str) -> str:
    if not rest:
        raise _malformed(address, "the socket path is empty", verb, forms)
    return rest


def _command(address: str, rest: str) -> list[str]:
    try:
        argv = shlex.split(rest)
    except ValueError as err:
        raise _malformed(address, f"the command line does not split: {err}", "connect", _CONNECT_FORMS) from None
    if not argv:
        raise _malformed(address, "the command line is empty", "connect", _CONNECT_FORMS)
    return argv


def _malformed(address: str, reason: str, verb: str, forms: str) -> ValueError:
    return ValueError(f"malformed address {address!r}: {reason}; {verb}() accepts {forms}")


def _only(address: str, options: dict[str, Any], allowed: Iterable[str]) -> None:
    """Refuse options that the kind of ``address`` does not take."""
    allowed = tuple(allowed)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(f"{address!r} takes the options {', '.join(allowed)}; not {', '.join(unknown)}")


def _backlog(options: dict[str, Any]) -> int:
    return _check.count(options.get("backlog", DEFAULT_BACKLOG), "backlog", minimum=0)


def _connect_timeout(options: dict[str, Any]) -> float | None:
    """The ``timeout`` option of a connection, checked before a socket exists."""
    return _check.timeout(options.pop("timeout", None), positive=True)


def _unreachable(address: str, err: OSError) -> OSError:
    """``err`` again, saying which address it is about."""
    if err.errno is None:
        return type(err)(f"{address!r}: {err}")
    return type(err)(err.errno, f"{address!r}: {err.strerror}")


# -- connecting ----------------------------------------------------------------


def _connect_tcp(address: str, host: str, port: int, options: dict[str, Any]) -> Channel:
    _only(address, options, ("timeout", "nodelay", *_CHANNEL_OPTIONS))
    timeout = _connect_timeout(options)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as err:
        raise _unreachable(address, err) from err
    return _socket_channel(sock, options)


def _connect_unix(address: str, path: str, options: dict[str, Any]) -> Channel:
    _only(address, options, ("timeout", *_CHANNEL_OPTIONS))
    timeout = _connect_timeout(options)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
    except OSError as err:
        sock.close()
        raise _unreachable(address, err) from err
    return _socket_channel(sock, options)


def _socket_channel(sock: socket.socket, options: dict[str, Any]) -> Channel:
    try:
        return SocketChannel(sock, **options)
    except BaseException:
        sock.close()
        raise


def _start(address: str, kind: str, rest: str, options: dict[str, Any]) -> Channel:
    if kind == "pty":
        _only(address, options, _TERMINAL_OPTIONS)
        return PtyProcessChannel(_command(address, rest), **options)
    _only(address, options, _PROCESS_OPTIONS)
    return ProcessChannel(_command(address, rest), **options)


def _stdio(address: str, options: dict[str, Any]) -> Channel:
    # Duplicates, so that closing the channel never frees the numbers 0 and
    # 1: the next open() would take them, and a stray print() would write
    # into that file or socket. sys.stdin and sys.stdout stay usable after.
    _only(address, options, _CHANNEL_OPTIONS)
    try:
        faucet = os.dup(0)
    except OSError as err:
        raise _unreachable(address, err) from err
    try:
        sink = os.dup(1)
    except OSError as err:
        os.close(faucet)
        raise _unreachable(address, err) from err
    return _pipe_channel(faucet, sink, options, owned=(faucet, sink))


def _fds(address: str, rest: str, options: dict[str, Any]) -> Channel:
    _only(address, options, _CHANNEL_OPTIONS)
    numbers = rest.split(",")
    if len(numbers) > 2 or not all(_FD.fullmatch(number) for number in numbers):
        raise _malformed(address, "descriptors are written N or IN,OUT", "connect", _CONNECT_FORMS)
    fds = [int(number) for number in numbers]
    for fd in fds:
        if fd > _check.MAX_DESCRIPTOR:
            raise ValueError(f"{address!r}: descriptor {fd} is not open (they run from 0 to {_check.MAX_DESCRIPTOR})")
    if len(fds) == 2:
        return _pipe_channel(fds[0], fds[1], options, address=address)
    fd = fds[0]
    try:
        access = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
    except OSError:
        raise ValueError(f"{address!r}: descriptor {fd} is not open") from None
    # One descriptor goes the way it was opened.
    faucet = None if access == os.O_WRONLY else fd
    sink = None if access == os.O_RDONLY else fd
    return _pipe_channel(faucet, sink, options, address=address)


def _pipe_channel(
    faucet: int | None, sink: int | None, options: dict[str, Any], owned: tuple[int, ...] = (), address: str = ""
) -> Channel:
    try:
        return PipeChannel(faucet, sink, **options)
    except BaseException as err:
        for fd in owned:
            os.close(fd)
        if address and isinstance(err, ValueError):  # the descriptor is not open, or already a channel's
            raise ValueError(f"{address!r}: {err}") from err
        raise


# -- listening -----------------------------------------------------------------


def _listen_tcp(address: str, host: str, port: int, backlog: int, *, reuse_port: bool = False) -> socket.socket:
    try:
        # A name may stand for IPv6 or IPv4 addresses; listen on the first.
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        return socket.create_server((host, port), family=family, backlog=backlog, reuse_port=reuse_port)
    except OSError as err:
        raise _unreachable(address, err) from err


def _listen_tcp_with(address: str, host: str, port: int, options: dict[str, Any]) -> socket.socket:
    """``listen('tcp:...')`` with its options: ``backlog``, ``reuse_port``, ``keepalive``."""
    _only(address, options, ("backlog", "reuse_port", "keepalive"))
    reuse_port = options.get("reuse_port", False)
    if not isinstance(reuse_port, bool):
        raise TypeError(f"{address!r}: reuse_port is True or False, not {reuse_port!r}")
    keepalive = options.get("keepalive", False)
    if not isinstance(keepalive, (bool, int, float)):
        raise TypeError(f"{address!r}: keepalive is True, False or a number of seconds, not {keepalive!r}")
    if not isinstance(keepalive, bool) and not 1 <= keepalive <= _MAX_KEEPALIVE:  # NaN fails too
        raise ValueError(f"{address!r}: keepalive takes seconds from 1 to {_MAX_KEEPALIVE}, not {keepalive!r}")
    # SO_REUSEPORT must be set before bind(): create_server() does it, and
    # raises ValueError where the platform has no such option.
    sock = _listen_tcp(address, host, port, _backlog(options), reuse_port=reuse_port)
    if keepalive is not False:
        try:
            _set_keepalive(sock, keepalive)
        except BaseException:  # pragma: no cover - Linux takes every value let through
            sock.close()
            raise
    return sock


# TCP_KEEPIDLE's largest value on Linux.
_MAX_KEEPALIVE = 32767


def _set_keepalive(sock: socket.socket, keepalive: float) -> None:
    """Keep-alive probes on the clients of the listening socket ``sock``.

    Set on the listener, the options are copied to every socket it accepts
    (Linux and the BSDs copy socket and TCP options at accept), so no
    accepted client costs a system call more. asyncio does the same
    (``create_server(keep_alive=True)``, Python 3.13); Go sets them on each
    accepted connection instead, and Twisted and Tornado leave them to the
    program. A number of seconds is both the idle time before the first
    probe and the time between probes, as Go's ``KeepAlive`` is; the count
    of unanswered probes after which the connection is dropped stays the
    system's (9 on Linux).
    """
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    if keepalive is True:
        return
    seconds = max(1, math.ceil(keepalive))
    # macOS calls the idle time TCP_KEEPALIVE.
    idle = getattr(socket, "TCP_KEEPIDLE", None) or getattr(socket, "TCP_KEEPALIVE", None)
    if idle is None:  # pragma: no cover - not Linux
        raise NotImplementedError("keepalive=SECONDS needs TCP_KEEPIDLE, which this platform does not have")
    sock.setsockopt(socket.IPPROTO_TCP, idle, seconds)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, seconds)


# -- inherited listening sockets -----------------------------------------------


def _listen_fd(address: str, rest: str, options: dict[str, Any]) -> socket.socket:
    """``listen('fd:N')``: the listening socket this process inherited as ``N``.

    Adopted, not duplicated (as ``connect('fd:N')`` owns its descriptors):
    closing the socket closes ``N``, so the server really stops listening.
    Twisted's ``adoptStreamPort``, Go's ``net.FileListener`` and
    ``socket.fromfd()`` duplicate instead and leave the original open, a
    second descriptor the program then has to close to stop listening.
    """
    _only(address, options, ())
    if not _FD.fullmatch(rest) or int(rest) > _check.MAX_DESCRIPTOR:
        raise _malformed(address, "a listening descriptor is written fd:N", "listen", _LISTEN_FORMS)
    fd = int(rest)
    problem = _not_a_listener(fd)
    if problem is not None:
        raise ValueError(
            f"{address!r} cannot be listened on: descriptor {fd} {problem}; listen() accepts {_LISTEN_FORMS}"
        )
    return _adopt_listener(fd)


def _is_systemd(address: object) -> bool:
    return isinstance(address, str) and (address.lower() == "systemd" or address[:8].lower() == "systemd:")


def _listen_systemd(address: str, options: dict[str, Any]) -> socket.socket:
    """``listen('systemd')``, ``listen('systemd:NAME')``: a socket systemd passed."""
    _only(address, options, ())
    systemd = importlib.import_module(".systemd", __package__)
    _, colon, name = address.partition(":")
    if colon and not name:
        raise _malformed(address, "the socket's name is empty", "listen", _LISTEN_FORMS)
    fd: int = systemd._take_one(address, name if colon else None)
    problem = _not_a_listener(fd)
    if problem is not None:
        raise ValueError(f"{address!r}: descriptor {fd}, passed by systemd, {problem}")
    return _adopt_listener(fd)


def _is_listener(fd: int) -> bool:
    """Whether ``fd`` is an open, listening stream socket."""
    return _not_a_listener(fd) is None


def _not_a_listener(fd: int) -> str | None:
    """Why ``fd`` is not a listening stream socket, for an error message;
    ``None`` if it is one."""
    try:
        # A socket object over the descriptor only to ask; detached at once,
        # so that it never closes a descriptor we have not adopted.
        probe = socket.socket(fileno=fd)
    except OSError as err:
        if err.errno == errno.ENOTSOCK:
            return "is not a socket"
        return f"is not open ({err.strerror})"
    try:
        if probe.type != socket.SOCK_STREAM:
            return "is not a stream socket"
        if not probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            return "is a stream socket that is not listening (call listen() on it first)"
        return None
    finally:
        probe.detach()


def _adopt_listener(fd: int) -> socket.socket:
    """A ``socket.socket`` owning the listening descriptor ``fd``."""
    sock = socket.socket(fileno=fd)  # family, type and protocol asked of the kernel
    sock.set_inheritable(False)  # for this process only, as the sockets it makes itself
    return sock


def _listen_unix(address: str, path: str, backlog: int) -> socket.socket:
    _remove_stale_socket(address, path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        _bind_private(sock, path)
    except OSError as err:
        sock.close()
        raise _unreachable(address, err) from err
    try:
        sock.listen(backlog)
    except BaseException:
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return sock


def _bind_private(sock: socket.socket, path: str) -> None:
    """Bind ``sock`` to ``path``, creating the file with mode 0600.

    Linux gives the file the mode of the socket itself, so setting that
    before ``bind()`` means the file never exists with a wider one. Other
    systems refuse ``fchmod()`` on a socket; there the file is created under
    a restrictive umask. The umask is the whole process's, so a file another
    thread creates in that instant would be 0600 too: a safe failure.
    """
    try:
        os.fchmod(sock.fileno(), 0o600)
    except OSError:  # pragma: no cover - not Linux
        previous = os.umask(0o177)
        try:
            sock.bind(path)
        finally:
            os.umask(previous)
    else:
        sock.bind(path)


def _remove_stale_socket(address: str, path: str) -> None:
    """Remove the socket file at ``path`` if no server listens on it any more.

    The only sure test is to connect: a live server answers (and sees a
    connection that closes at once), a file left by a server that is gone
    refuses. Anything else is left alone with an error.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as err:  # such as NotADirectoryError, for 'unix:FILE/'
        raise _unreachable(address, err) from err
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(errno.EEXIST, f"{address!r}: the path exists and is not a socket; it was left alone")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    except FileNotFoundError:  # pragma: no cover - a race
        return  # removed meanwhile
    except BlockingIOError:
        pass  # a server with a full backlog: alive
    except OSError as err:  # pragma: no cover - such as EACCES, which root never sees
        raise type(err)(
            err.errno, f"{address!r}: cannot tell whether a server listens there ({err.strerror}); it was left alone"
        ) from err
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, f"{address!r}: a server is listening there already")
