"""``ProcessChannel``: a child process's stdin and stdout as one channel.

The channel is a :class:`~channels.pipe.PipeChannel` over two pipes to the
child, plus the child's life: starting it, signalling it, and reaping it so
that it never lingers as a zombie.

How ``close()`` ends a child, and why. asyncio's subprocess transport kills
the child when it is closed; Twisted's ``ProcessProtocol`` closes the pipes
and leaves the ending to the caller; systemd sends SIGTERM, waits, then sends
SIGKILL. A child that talks over its stdio usually ends by itself once its
stdin reaches end of file, and killing it then would lose its last output or
the work it was finishing. So we close its pipes and wait a while, as
Twisted would, and bound the wait as systemd does: SIGTERM, a shorter wait,
then SIGKILL, which cannot be ignored.

Many children are ended together (:func:`close_processes`, and
``Poller.close_all()``): each step is taken for all of them at once, under
one deadline, so twenty children that ignore SIGTERM take one
``terminate_timeout``, not twenty. systemd stops the processes of a unit the
same way (one SIGTERM to all, one timeout, then SIGKILL to all); asyncio's
and Twisted's reactors, closing each transport in turn, wait for none.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, Any

from . import _check
from ._wait import Deadline
from .base import DEFAULT_CLOSE_TIMEOUT, DEFAULT_MAX_PENDING
from .framing import Framing
from .pipe import PipeChannel
from .splitter import DEFAULT_MAX_LINE_LENGTH

__all__ = ["DEFAULT_TERMINATE_TIMEOUT", "ProcessChannel", "close_processes"]

_LOG = logging.getLogger("channels.process")

#: Seconds ``close()`` waits after SIGTERM before it sends SIGKILL.
DEFAULT_TERMINATE_TIMEOUT = 2.0

# After SIGKILL a child is gone within milliseconds, unless it is stuck in the
# kernel (a dead NFS server); even then close() must return.
_KILL_WAIT = 5.0

# How often close() looks whether a process group has emptied: there is no
# way to wait for processes that are not our children.
_GROUP_POLL_INTERVAL = 0.01

#: What ``argv`` may hold: the arguments ``subprocess.Popen`` takes.
Argument = str | bytes | os.PathLike[str] | os.PathLike[bytes]

#: Where the child's stderr goes: ``None`` (ours), ``subprocess.DEVNULL``,
#: ``subprocess.STDOUT``, ``subprocess.PIPE``, a descriptor or a file object.
Stderr = int | IO[Any] | None

_STDERR_CHOICES = {subprocess.PIPE, subprocess.STDOUT, subprocess.DEVNULL}


class ProcessChannel(PipeChannel):
    """Starts ``argv`` as a child process: ``read()`` is its stdout,
    ``write()`` its stdin.

    ``argv`` is the program and its arguments, as a list (no shell is
    involved; see :func:`channels.connect` for ``exec:`` command lines).
    ``cwd`` and ``env`` are as for ``subprocess.Popen`` (``env`` replaces the
    whole environment). ``stderr`` says where the child's stderr goes:

    - ``None`` (default): where this process's stderr goes;
    - ``subprocess.DEVNULL``: nowhere;
    - ``subprocess.STDOUT``: into stdout, so ``read()`` returns both;
    - ``subprocess.PIPE``: to a read-only channel, :attr:`stderr`, which you
      must read (or register with a poller) lest the child block on a full
      pipe; it is closed with this channel;
    - a descriptor or a file object: there.

    ``new_process_group=True`` starts the child in a new session (``setsid``),
    which makes it the leader of its own process group, detached from the
    terminal: Ctrl-C in the terminal does not reach it, and the signals this
    channel sends go to the whole group, grandchildren included, for as long
    as the group has members: after the child has exited too. (A grandchild
    that starts a session or group of its own leaves the group, and is out
    of reach.)

    Raises ``TypeError`` or ``ValueError`` for bad arguments (an ``env``
    whose keys or values are not strings, a ``terminate_timeout`` that is
    not a number of seconds >= 0, ...), before anything is started, and
    ``OSError`` (such as ``FileNotFoundError``) naming the command if it
    cannot be started; nothing is left open then.

    Close it to end the child: see :meth:`close` and :meth:`abort`. A child
    that exits first is reaped by ``close()`` as well.
    """

    __slots__ = ("_process", "_argv", "_group", "_stderr", "terminate_timeout")

    def __init__(
        self,
        argv: Sequence[Argument],
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        stderr: Stderr = None,
        buffering: str | Framing | None = "bytes",
        new_process_group: bool = False,
        terminate_timeout: float = DEFAULT_TERMINATE_TIMEOUT,
        max_line_length: int | None = DEFAULT_MAX_LINE_LENGTH,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self._stderr: PipeChannel | None = None
        args = _check_argv(argv)
        _check_stderr(stderr)
        _check_cwd_and_env(cwd, env)
        _check.timeout(terminate_timeout, "terminate_timeout", allow_none=False)
        _check.flag(new_process_group, "new_process_group")
        #: Seconds :meth:`close` waits after SIGTERM before sending SIGKILL.
        self.terminate_timeout = terminate_timeout
        self._argv = args
        # Whether signals go to the child's group, which may still have
        # members; cleared once the group is found empty (see _signal_group).
        self._group = new_process_group
        faucet, sink, child_stdin, child_stdout = self._open_stdio()
        child_ends = {child_stdin, child_stdout}
        try:
            # The options are checked here, before anything is started.
            super().__init__(
                faucet, sink, buffering=buffering, max_line_length=max_line_length, max_pending=max_pending
            )
        except BaseException:
            self.closed = True  # nothing to release: the descriptors are closed here
            for fd in child_ends | {faucet, sink}:
                os.close(fd)
            raise
        try:
            if stderr == subprocess.PIPE:
                from_stderr, child_stderr = os.pipe()
                child_ends.add(child_stderr)
                self._stderr = PipeChannel(
                    from_stderr, buffering=buffering, max_line_length=max_line_length, max_pending=max_pending
                )
                stderr = child_stderr
            self._process = self._start_child(args, child_stdin, child_stdout, stderr=stderr, cwd=cwd, env=env)
        except BaseException:
            self.abort()
            raise
        finally:
            for fd in child_ends:
                os.close(fd)
        _LOG.debug("started %r", self)

    # -- how the child is connected and started (PtyProcessChannel's differ) --

    def _open_stdio(self) -> tuple[int, int, int, int]:
        """The descriptors between us and the child: ``(faucet, sink,
        child_stdin, child_stdout)``; the child's are closed here once it has
        started, ours belong to the channel."""
        # os.pipe() descriptors are not inherited: the child gets only the
        # ends Popen gives it, so it sees end of file when we close ours.
        child_stdin, to_child = os.pipe()
        from_child, child_stdout = os.pipe()
        return from_child, to_child, child_stdin, child_stdout

    def _start_child(
        self,
        args: list[Argument],
        stdin: int,
        stdout: int,
        *,
        stderr: Stderr,
        cwd: str | os.PathLike[str] | None,
        env: Mapping[str, str] | None,
    ) -> subprocess.Popen[bytes]:
        """Start the child on the descriptors ``_open_stdio()`` gave it."""
        return _spawn(args, stdin, stdout, stderr=stderr, cwd=cwd, env=env, new_session=self._group)

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        """The child's exit status, ``None`` while it runs.

        Negative if a signal ended it (``-signal.SIGKILL``, for instance).
        Reading it reaps a child that has exited.
        """
        return self._process.poll()

    @property
    def stderr(self) -> PipeChannel | None:
        """The channel reading the child's stderr, with ``stderr=subprocess.PIPE``."""
        return self._stderr

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait up to ``timeout`` seconds (``None``: no limit) for the child
        to exit; return its :attr:`returncode`, or ``None`` if it still runs.

        A child blocked writing output nobody reads never exits: read it, or
        close the channel, which also waits. ``TypeError`` or ``ValueError``
        for a timeout that is not a number of seconds >= 0 or ``None``
        (``float('inf')`` is no limit too).
        """
        timeout = _check.timeout(timeout)
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def send_signal(self, sig: int) -> None:
        """Send signal ``sig`` to the child.

        With ``new_process_group=True`` it goes to the child's whole group,
        as long as the group has members: grandchildren get it even after
        the child has exited. Otherwise it does nothing once the child is
        reaped: its process id may belong to another process by then.
        ``TypeError`` for a ``sig`` that is not a whole number.
        """
        sig = _check.count(sig, "sig", minimum=0)
        if self._group:
            self._signal_group(sig)
            return
        if self._process.poll() is not None:
            return
        # Not reaped yet, so the id is still ours (a zombie keeps it).
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._process.pid, sig)

    def terminate(self) -> None:
        """Ask the child to stop: SIGTERM (see :meth:`send_signal`)."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """Stop the child at once: SIGKILL (see :meth:`send_signal`)."""
        self.send_signal(signal.SIGKILL)

    def close(self, timeout: float | None = DEFAULT_CLOSE_TIMEOUT) -> None:
        """Deliver pending output, close the pipes, and reap the child.

        The child sees end of file on its stdin. Pending output and the
        child's own exit get ``timeout`` seconds in all (default
        :data:`~channels.DEFAULT_CLOSE_TIMEOUT`, 5 s; ``None`` waits as long
        as it takes). A child still running then gets SIGTERM and
        :attr:`terminate_timeout` seconds more (default 2 s), then SIGKILL.
        With ``new_process_group=True``, what the child leaves behind in its
        group once it has exited gets SIGTERM, :attr:`terminate_timeout`
        seconds to go, then SIGKILL. Idempotent; once it returns,
        :attr:`returncode` is set. ``TypeError`` or ``ValueError`` for a
        timeout that is not a number of seconds >= 0 or ``None``, before
        anything is done.
        """
        _close_together([self], _check.timeout(timeout))

    def abort(self) -> None:
        """Close the pipes at once, dropping pending output, and end the
        child with SIGKILL if it still runs (its whole group with
        ``new_process_group=True``, even once the child has exited); then
        reap it. Idempotent."""
        process = getattr(self, "_process", None)  # unset if the child could not be started
        running = process is not None and process.poll() is None
        if running or (process is not None and self._group):
            # Before the pipes close: a child that would exit on end of input
            # must not get the chance to, so that abort() always ends it alike.
            self.kill()
        if not self.closed:
            super().abort()
        if running:
            self._reap_killed()

    def _reap_killed(self) -> None:
        if self.wait(_KILL_WAIT) is None:  # pragma: no cover - stuck in the kernel
            _LOG.error("%r survived SIGKILL for %ss; it is left to be reaped later", self, _KILL_WAIT)

    def _signal_group(self, sig: int) -> bool:
        """Send ``sig`` to the child's group; ``False`` if it has no member left.

        The group's id is the child's process id, and neither is given to
        another process while a member (the child, even as an unreaped
        zombie, or a grandchild) still exists: POSIX keeps a group's id
        for its lifetime. So signalling the group is safe until it is found
        empty, and from then on never done again, as its id may be reused.
        """
        if not self._group:
            return False
        try:
            os.killpg(self._process.pid, sig)
        except ProcessLookupError:
            self._group = False
        except PermissionError:  # pragma: no cover - root may signal any process
            # Members remain, but none that we may signal (a set-uid
            # program): out of our reach for good, so let it be.
            _LOG.warning("%r: what is left of its process group may not be signalled by us", self)
            self._group = False
        return self._group

    def _group_has_members(self) -> bool:
        # Reap the members that are our own children (orphans adopted by
        # this process as init or subreaper): only after the child itself
        # was reaped, or its exit status would be taken from Popen.
        if self._group and self._process.returncode is not None:
            with contextlib.suppress(ChildProcessError):
                while os.waitpid(-self._process.pid, os.WNOHANG)[0]:
                    pass  # pragma: no cover - only a process that adopts orphans (init, a subreaper) has any
        return self._signal_group(0)

    def _release(self) -> None:
        super()._release()
        if self._stderr is not None:
            self._stderr.abort()

    def _describe(self) -> str:
        process = getattr(self, "_process", None)
        program = os.fsdecode(self._argv[0]) if getattr(self, "_argv", None) else "?"
        return f"{program!r} pid={'-' if process is None else process.pid}"


def close_processes(children: Iterable[ProcessChannel], timeout: float | None = DEFAULT_CLOSE_TIMEOUT) -> None:
    """Close many :class:`ProcessChannel` objects together, as each one's
    :meth:`~ProcessChannel.close` would, under one deadline.

    Their pipes are closed (pending output delivered within ``timeout``
    seconds, default :data:`~channels.DEFAULT_CLOSE_TIMEOUT`, ``None`` for
    no limit); the children get what is left of ``timeout`` to exit, all at
    once; those still running then get SIGTERM together and their
    :attr:`~ProcessChannel.terminate_timeout` more, and the rest SIGKILL.
    Twenty children that ignore SIGTERM take about one
    ``terminate_timeout``, not twenty. Every child is reaped. A subclass
    with a ``close()`` of its own (:class:`~channels.PtyProcessChannel`) is
    closed by it, in turn, within the same deadline. ``TypeError`` or
    ``ValueError`` for a timeout that is not a number of seconds >= 0 or
    ``None``, before anything is done.
    """
    deadline = Deadline(_check.timeout(timeout))
    together: list[ProcessChannel] = []
    for child in children:
        if type(child).close is ProcessChannel.close:
            together.append(child)
        else:
            child.close(deadline.remaining())
    _close_together(together, deadline.remaining())


def _close_together(children: list[ProcessChannel], timeout: float | None) -> None:
    """:meth:`ProcessChannel.close` of each of ``children``, every step taken
    for all of them at once."""
    deadline = Deadline(timeout)
    for child in children:
        if not child.closed:
            PipeChannel.close(child, deadline.remaining())
    running = _wait_for_exits(children, lambda _child: deadline)
    for child in running:
        _LOG.info("%r still runs %ss after closing; sending SIGTERM", child, timeout)
        child.terminate()
    terminated = {id(child): Deadline(_check.timeout(child.terminate_timeout)) for child in running}
    stubborn = _wait_for_exits(running, lambda child: terminated[id(child)])
    for child in stubborn:
        _LOG.warning("%r ignored SIGTERM for %ss; sending SIGKILL", child, child.terminate_timeout)
        child.kill()
    for child in stubborn:
        child._reap_killed()
    _end_groups(children)


def _end_groups(children: list[ProcessChannel]) -> None:
    """End what the children left running in their groups once they have
    exited, all groups together.

    systemd's way, applied to the stragglers: SIGTERM, each child's
    ``terminate_timeout``, then SIGKILL. They are not waited for before
    SIGTERM, as the children were: the close linger lets a child finish its
    input; what it left behind has no input from us to finish. A member
    that is a zombie counts until its parent (or init) reaps it; those that
    became ours (when this process is init or a subreaper) are reaped here.
    """
    left = [child for child in children if child._group_has_members()]
    for child in left:
        _LOG.info("%r: its process group outlives it; sending SIGTERM", child)
        child._signal_group(signal.SIGTERM)
    terminated = {id(child): Deadline(_check.timeout(child.terminate_timeout)) for child in left}
    while left:
        for child in [child for child in left if terminated[id(child)].expired()]:
            _LOG.warning(
                "%r: its process group ignored SIGTERM for %ss; sending SIGKILL", child, child.terminate_timeout
            )
            child._signal_group(signal.SIGKILL)
            left.remove(child)
        left = [child for child in left if child._group_has_members()]
        if left:
            time.sleep(_GROUP_POLL_INTERVAL)


def _wait_for_exits(
    children: list[ProcessChannel], deadline_of: Callable[[ProcessChannel], Deadline]
) -> list[ProcessChannel]:
    """Wait until each child has exited or its deadline has passed; return
    those still running."""
    if len(children) == 1:  # one child: the kernel's own wait, no polling
        child = children[0]
        return [] if child.wait(deadline_of(child).remaining()) is not None else [child]
    late: list[ProcessChannel] = []
    delay = 0.0005  # then doubled, up to 50 ms: Popen.wait(timeout)'s own pace
    while True:
        waiting: list[ProcessChannel] = []
        for child in children:
            if child.returncode is not None:
                continue
            (late if deadline_of(child).expired() else waiting).append(child)
        if not waiting:
            return late
        children = waiting
        left = [seconds for child in waiting if (seconds := deadline_of(child).remaining()) is not None]
        time.sleep(min([delay, *left]))
        delay = min(delay * 2, 0.05)


def _check_cwd_and_env(cwd: object, env: object) -> None:
    # Checked here: subprocess would say "expected str, bytes or os.PathLike
    # object, not int" without naming the parameter, and only once the
    # pipes are made.
    if cwd is not None and not isinstance(cwd, (str, bytes, os.PathLike)):
        raise TypeError(f"cwd must be a path (str, bytes or os.PathLike) or None, not {type(cwd).__name__}")
    if env is None:
        return
    if not isinstance(env, Mapping):
        raise TypeError(f"env must be a mapping of str to str (as os.environ is) or None, not {type(env).__name__}")
    for key, value in env.items():
        if not isinstance(key, (str, bytes)) or not isinstance(value, (str, bytes)):
            raise TypeError(
                f"env must map str to str, not {type(key).__name__} to {type(value).__name__} "
                f"({key!r}: {value!r}): convert the values with str()"
            )


def _check_argv(argv: object) -> list[Argument]:
    if isinstance(argv, (str, bytes)):
        raise TypeError(
            "argv is a list of arguments such as ['grep', '-n', 'word'], not a string: "
            "split a command line with shlex.split(), or use channels.connect('exec:...')"
        )
    if not isinstance(argv, Sequence):
        raise TypeError(f"argv must be a list of arguments, not {type(argv).__name__}")
    args = list(argv)
    if not args:
        raise ValueError("argv is empty: it needs at least the program to run")
    for arg in args:
        if not isinstance(arg, (str, bytes, os.PathLike)):
            raise TypeError(f"argv holds str, bytes or path arguments, not {type(arg).__name__}: {arg!r}")
    return args


def _check_stderr(stderr: object) -> None:
    if stderr is None or hasattr(stderr, "fileno"):
        return
    if not isinstance(stderr, int) or isinstance(stderr, bool):
        raise TypeError(
            "stderr must be None, subprocess.DEVNULL, subprocess.STDOUT, subprocess.PIPE, "
            f"a descriptor or a file object, not {type(stderr).__name__}"
        )
    if stderr < 0 and stderr not in _STDERR_CHOICES:
        raise ValueError(f"stderr {stderr} is neither a descriptor nor one of subprocess's choices")


def _spawn(
    args: list[Argument],
    stdin: int,
    stdout: int,
    *,
    stderr: Stderr,
    cwd: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None,
    new_session: bool,
) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            args, stdin=stdin, stdout=stdout, stderr=stderr, cwd=cwd, env=env, start_new_session=new_session
        )
    except OSError as err:
        where = "" if err.filename is None else f": {err.filename!r}"
        raise type(err)(err.errno, f"cannot start {args!r}: {err.strerror}{where}") from err
