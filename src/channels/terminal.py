"""``PtyProcessChannel``: a child process on a pseudo-terminal, as one channel.

Many programs behave differently when their output is not a terminal: C
stdio and Python block-buffer it, so a line protocol stalls until 4 KiB pile
up; shells, REPLs and ``passwd`` do not prompt, or refuse to run. A
pseudo-terminal (pty) is the usual cure: the child's stdin, stdout and stderr
are the terminal's *slave* side, its controlling terminal, in a session of its
own, and this channel reads and writes the *master* side.

What comes through is what a terminal shows, not what a pipe carries. By
default the terminal is *cooked*, as a terminal emulator's is: the line
discipline turns each ``\\n`` the child writes into ``\\r\\n``, gives the child
input a line at a time (at most 4095 bytes of an unfinished line; more is
cut), and acts on control characters in what is written (``^C`` interrupts
the child, ``^D`` at the start of a line ends its input, ``^S`` stops its
output, ``^U`` erases the line). ``raw=True`` turns all of that off: bytes go
both ways exactly as written, which is what a program needs to carry data,
but then there is no end of input (see :meth:`PtyProcessChannel.shutdown_write`).

How the end of the child reads. Once every process holding the slave side
has closed it (the child has exited, normally), Linux reports ``EIO`` on the
master, after everything the child wrote has been read; the BSDs report end
of file. Both are the channel's clean end: :class:`EndpointClosedException`
with no cause, as for a pipe whose writer closed it.

How ``close()`` ends a child, and why. Closing the master hangs the terminal
up: the kernel sends SIGHUP to the child's session, and throws away the input
the child has not read yet. So a cooked channel first sends the end of input,
as a user leaving a terminal presses Ctrl-D, and waits for the child to exit
(reading and dropping what it still writes, so that it cannot block on a full
terminal) before hanging up; a raw one, which has no end of input, hangs up
as soon as pending output is handed to the terminal. Then, as for
:class:`~channels.process.ProcessChannel`: SIGTERM, SIGKILL, and the child is
reaped.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import logging
import os
import select
import struct
import subprocess
import sys
from collections.abc import Mapping, Sequence

from . import _check
from ._wait import Deadline, wait_for
from .base import DEFAULT_CLOSE_TIMEOUT, DEFAULT_MAX_PENDING
from .errors import EndpointClosedException
from .framing import Framing
from .process import DEFAULT_TERMINATE_TIMEOUT, Argument, ProcessChannel, Stderr, _check_argv
from .splitter import DEFAULT_MAX_LINE_LENGTH

try:
    import termios
except ImportError:  # pragma: no cover - a platform without terminals (Windows)
    _HAVE_PTY = False
else:
    _HAVE_PTY = hasattr(os, "openpty") and hasattr(termios, "TIOCSCTTY")

__all__ = ["DEFAULT_TERMINAL_SIZE", "PtyProcessChannel"]

_LOG = logging.getLogger("channels.terminal")

#: The terminal size a child starts with unless told otherwise: ``(rows,
#: cols)``, the classic 24 by 80 that pexpect and most emulators start with.
DEFAULT_TERMINAL_SIZE = (24, 80)

# struct winsize holds unsigned shorts.
_MAX_DIMENSION = 0xFFFF
_WINSIZE = struct.Struct("HHHH")

# While close() waits for a child to exit, it looks again this often even when
# the terminal is quiet: a grandchild may hold the terminal open, and then the
# child's exit does not wake the wait.
_EXIT_CHECK_INTERVAL = 0.1


class PtyProcessChannel(ProcessChannel):
    """Starts ``argv`` as a child process on a new pseudo-terminal:
    ``read()`` is what it writes to the terminal, ``write()`` what it reads.

    The child's stdin, stdout and stderr are the terminal, which is its
    controlling terminal (``/dev/tty`` opens it, ``os.isatty()`` is true), in
    a session of its own: it leads its own process group, and the signals this
    channel sends go to that whole group. ``argv``, ``cwd``, ``env`` and
    ``terminate_timeout`` are as for :class:`~channels.process.ProcessChannel`.

    ``size`` is the terminal's size at the start, ``(rows, cols)``;
    :meth:`resize` changes it. ``echo=True`` makes the terminal echo what is
    written, as a terminal shows what is typed; a program driving a child
    usually does not want its own input back, so it is off by default (line
    editors such as readline, in ``bash`` or ``python3 -i``, follow it
    too). ``raw=True`` makes the terminal
    carry bytes exactly as written, both ways, with no line discipline; by
    default it is cooked, as the module docstring describes: ``\\n`` from the
    child reads as ``\\r\\n``, and control characters written act as keys.

    Raises ``NotImplementedError`` naming the platform where there are no
    pseudo-terminals, ``TypeError`` or ``ValueError`` for bad arguments, and
    ``OSError`` (such as ``FileNotFoundError``) naming the command if it
    cannot be started; nothing is left open then.

    Close it to end the child: see :meth:`close` and :meth:`abort`.
    """

    __slots__ = ("_master", "_raw", "_opening", "_last_sent", "_hangup", "_input_ended")

    def __init__(
        self,
        argv: Sequence[Argument],
        *,
        size: tuple[int, int] = DEFAULT_TERMINAL_SIZE,
        echo: bool = False,
        raw: bool = False,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        buffering: str | Framing | None = "bytes",
        terminate_timeout: float = DEFAULT_TERMINATE_TIMEOUT,
        max_line_length: int | None = DEFAULT_MAX_LINE_LENGTH,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        if not _HAVE_PTY:
            raise NotImplementedError(f"pseudo-terminals are not available on this platform ({sys.platform})")
        _check_argv(argv)
        rows, cols = _check_size(size)
        _check.flag(echo, "echo")
        _check.flag(raw, "raw")
        self._raw = raw
        self._opening = (rows, cols, echo)
        self._last_sent: int | None = None  # the last byte the terminal took
        self._input_ended = False
        # The child leads its own session and group, and its stderr is the
        # terminal too.
        super().__init__(
            argv,
            cwd=cwd,
            env=env,
            buffering=buffering,
            new_process_group=True,
            terminate_timeout=terminate_timeout,
            max_line_length=max_line_length,
            max_pending=max_pending,
        )

    def _open_stdio(self) -> tuple[int, int, int, int]:
        rows, cols, echo = self._opening
        master, slave = _open_terminal(rows, cols, echo=echo, raw=self._raw)
        self._master = master
        # Asks the kernel, without waiting, whether the terminal is hung up.
        self._hangup = select.poll()
        self._hangup.register(master, 0)
        return master, master, slave, slave

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
        # The child's stdin, stdout and stderr are all the terminal's slave side.
        return _spawn_on(stdin, args, cwd=cwd, env=env)

    @property
    def size(self) -> tuple[int, int]:
        """The terminal's size now, ``(rows, cols)`` (the child may change it
        too). :class:`EndpointClosedException` once the channel is closed."""
        packed = fcntl.ioctl(self.get_fd(), termios.TIOCGWINSZ, bytes(_WINSIZE.size))
        rows, cols, _, _ = _WINSIZE.unpack(packed)
        return rows, cols

    def resize(self, rows: int, cols: int) -> None:
        """Make the terminal ``rows`` by ``cols`` characters.

        The child's foreground process group gets SIGWINCH (if the size
        changed), and ``os.get_terminal_size()`` in the child returns the
        new size. ``TypeError`` or ``ValueError`` unless both are whole
        numbers from 1 to 65535; :class:`EndpointClosedException` once the
        channel is closed.
        """
        rows = _check_dimension("rows", rows)
        cols = _check_dimension("cols", cols)
        fcntl.ioctl(self.get_fd(), termios.TIOCSWINSZ, _WINSIZE.pack(rows, cols, 0, 0))

    def shutdown_write(self, timeout: float | None = DEFAULT_CLOSE_TIMEOUT) -> None:
        """End the child's input as a terminal does, and go on reading.

        Delivers pending output (waiting at most ``timeout`` seconds, as
        :meth:`close` does), then writes the terminal's end-of-file character
        (``VEOF``, usually Ctrl-D) at the start of a line, where the line
        discipline turns it into an end of file for the child's next read.
        If the last byte written did not end a line, ``VEOF`` goes twice: the
        first hands the child the unfinished line as it is (no newline is
        added), the second is the end. A child that reads keys itself (its
        terminal is not in canonical mode: a line editor) gets one ``VEOF``
        and decides what Ctrl-D means.

        Afterwards ``write()`` and ``flush()`` raise
        :class:`EndpointClosedException`; ``read()`` goes on until the child
        closes the terminal. Doing it again does nothing. A raw terminal has
        no end of input: ``NotImplementedError``, and nothing is sent or
        dropped (write the child's own end-of-input byte, if it has one).
        ``NotImplementedError`` too if the child disabled ``VEOF``.
        :class:`EndpointClosedException` if the channel is closed, or if
        pending output could not be delivered because the child has closed
        the terminal (a child that did so with nothing pending needs no end
        of input: nothing is sent, and nothing raised). ``TypeError`` or
        ``ValueError`` for a bad timeout, before anything is done.
        """
        timeout = _check.timeout(timeout)
        if self.closed or self._input_ended:
            super().shutdown_write(timeout)  # raises, or does nothing, as every channel does
            return
        if self._raw:
            raise NotImplementedError(
                f"{self!r} is raw: a raw terminal has no end of input (write the child's own, such as b'\\x04')"
            )
        deadline = Deadline(timeout)
        eof = self._end_of_file_character()
        if self.flush(timeout) and not self._hangup.poll(0):
            # Everything written has been taken, so the last byte sent is the
            # last one written, and it says whether a line is open. (A child
            # that has closed the terminal needs no end: as for a pipe whose
            # reader has gone, there is nothing to tell it, and no error.)
            self.write(eof if self._at_line_start() else eof + eof)
        super().shutdown_write(deadline.remaining())
        self._input_ended = True

    def close(self, timeout: float | None = DEFAULT_CLOSE_TIMEOUT) -> None:
        """Deliver pending output, end the child's input, wait for it to
        exit, then hang up the terminal and reap the child.

        A cooked terminal (the default) gets the end of input as from
        :meth:`shutdown_write`, and the child gets the time that is left of
        ``timeout`` seconds (default :data:`~channels.DEFAULT_CLOSE_TIMEOUT`,
        5 s, shared with delivering pending output; ``None`` waits as long as
        it takes) to exit by itself; what it writes meanwhile is dropped. A
        raw terminal has no end of input, so it is hung up as soon as
        pending output is delivered (handed to the terminal: what the child
        has not read by then is lost in the hang-up). A child that has
        closed the terminal but not exited yet is waited for too, within the
        same time, lest the hang-up reach it. Hanging up sends the child's
        session SIGHUP; a child still running after that gets SIGTERM,
        :attr:`terminate_timeout` seconds more, then SIGKILL. Idempotent;
        once it returns, :attr:`returncode` is set. ``TypeError`` or
        ``ValueError`` for a bad timeout, before anything is done.
        """
        timeout = _check.timeout(timeout)
        deadline = Deadline(timeout)
        if not self.closed:
            if not self._raw:
                with contextlib.suppress(EndpointClosedException, NotImplementedError):
                    self.shutdown_write(timeout)
                self._drain_until_exit(deadline)
            if self._hangup.poll(0):
                # Nobody holds the terminal any more, yet the child may still
                # be on its way out (cat closes its stdio, then exits): a
                # hang-up now would still send it SIGHUP, its controlling
                # terminal's, and change how it ended.
                self.wait(deadline.remaining())
        super().close(deadline.remaining())

    # -- the hooks ----------------------------------------------------------

    def _read(self) -> bytes:
        try:
            data = os.read(self._master, self.read_size)
        except BlockingIOError:
            return b""
        except OSError as err:
            if err.errno == errno.EIO:
                # Linux's way to say that nobody holds the slave side any
                # more: the child has gone. A clean end, like a pipe's.
                raise EndpointClosedException(f"{self!r}: end of file (the child closed the terminal)") from None
            raise EndpointClosedException(f"{self!r}: read failed ({err})") from err
        if not data:  # pragma: no cover - the BSDs' way to say it
            raise EndpointClosedException(f"{self!r}: end of file")
        return data

    def _send(self, buffers: list[bytes | memoryview]) -> int:
        if self._hangup.poll(0):
            # Linux takes writes to a terminal that nobody holds any more and
            # drops them: say that the peer is gone, as a pipe would.
            raise OSError(errno.EIO, "the terminal is hung up: the child has closed it")
        sent = super()._send(buffers)  # at least one byte, or BlockingIOError
        self._last_sent = _byte_at(buffers, sent - 1)
        return sent

    def _shutdown_write(self) -> None:
        # shutdown_write() sent the end of input as output; a terminal has no
        # write side of its own to close.
        pass

    # -- helpers ------------------------------------------------------------

    def _end_of_file_character(self) -> bytes:
        """The terminal's ``VEOF`` character now (the child may change it)."""
        disabled = os.fpathconf(self._master, "PC_VDISABLE")
        veof = _character(termios.tcgetattr(self._master)[6][termios.VEOF])
        if veof == disabled:
            raise NotImplementedError(f"{self!r}: the terminal's end-of-file character (VEOF) is disabled")
        return bytes([veof])

    def _at_line_start(self) -> bool:
        """Whether the child's line discipline holds no unfinished line: no
        byte was sent yet, or the last one ended a line. A child reading keys
        itself (not in canonical mode) counts as at the start."""
        if self._last_sent is None:
            return True
        iflag, _, _, lflag, _, _, cc = termios.tcgetattr(self._master)
        if not lflag & termios.ICANON:
            return True
        disabled = os.fpathconf(self._master, "PC_VDISABLE")
        ends = {ord("\n"), _character(cc[termios.VEOF])}
        ends.update(c for c in (_character(cc[termios.VEOL]), _character(cc[termios.VEOL2])) if c != disabled)
        if iflag & termios.ICRNL and not iflag & termios.IGNCR:
            ends.add(ord("\r"))  # read as a newline
        return self._last_sent in ends

    def _drain_until_exit(self, deadline: Deadline) -> None:
        """Wait until the child exits, everyone who held the terminal has
        closed it, or ``deadline`` passes; drop what the child writes
        meanwhile, so that it cannot block on a full terminal."""
        while self.returncode is None:
            remaining = deadline.remaining()
            if remaining == 0:
                return
            wait = _EXIT_CHECK_INTERVAL if remaining is None else min(remaining, _EXIT_CHECK_INTERVAL)
            if not wait_for(self._master, select.POLLIN, wait):
                continue
            try:
                dropped = os.read(self._master, self.read_size)
            except BlockingIOError:  # pragma: no cover - readable, then not
                continue
            except OSError:
                return  # nobody holds the terminal any more
            if not dropped:  # pragma: no cover - the BSDs' hang-up
                return
            _LOG.debug("%r: closing dropped %d bytes the child wrote", self, len(dropped))


def _check_size(size: object) -> tuple[int, int]:
    if isinstance(size, (str, bytes)) or not isinstance(size, Sequence) or len(size) != 2:
        raise TypeError(f"size is (rows, cols), two whole numbers from 1 to {_MAX_DIMENSION}, not {size!r}")
    rows, cols = size
    return _check_dimension("rows", rows), _check_dimension("cols", cols)


def _check_dimension(name: str, value: object) -> int:
    return _check.count(value, name, minimum=1, maximum=_MAX_DIMENSION)


def _open_terminal(rows: int, cols: int, *, echo: bool, raw: bool) -> tuple[int, int]:
    """A new pseudo-terminal, ``(master, slave)``, in the modes asked for.

    Both descriptors are close-on-exec (``os.openpty()`` makes them so):
    the child gets the slave only as the stdio that ``Popen`` gives it.
    """
    master, slave = os.openpty()
    try:
        _set_modes(slave, echo=echo, raw=raw)
        fcntl.ioctl(slave, termios.TIOCSWINSZ, _WINSIZE.pack(rows, cols, 0, 0))
    except BaseException:  # pragma: no cover - a fresh terminal takes any modes
        os.close(master)
        os.close(slave)
        raise
    return master, slave


def _set_modes(fd: int, *, echo: bool, raw: bool) -> None:
    """Set the terminal's modes before the child starts, so that it never
    sees others. Raw is what ``cfmakeraw()`` makes: no input or output
    processing, no signals from characters, a read returns what is there."""
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = termios.tcgetattr(fd)
    if raw:
        iflag &= ~(
            termios.IGNBRK
            | termios.BRKINT
            | termios.PARMRK
            | termios.ISTRIP
            | termios.INLCR
            | termios.IGNCR
            | termios.ICRNL
            | termios.IXON
        )
        oflag &= ~termios.OPOST
        lflag &= ~(termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
        cflag = (cflag & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
        cc[termios.VMIN] = 1
        cc[termios.VTIME] = 0
    lflag = lflag | termios.ECHO if echo else lflag & ~(termios.ECHO | termios.ECHONL)
    termios.tcsetattr(fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, ispeed, ospeed, cc])


def _spawn_on(
    terminal: int, args: list[Argument], *, cwd: str | os.PathLike[str] | None, env: Mapping[str, str] | None
) -> subprocess.Popen[bytes]:
    """Start ``args`` with ``terminal`` as stdin, stdout, stderr and
    controlling terminal, in a new session.

    ``setsid()`` (``start_new_session``) leaves the child with no controlling
    terminal; ``TIOCSCTTY`` on its stdin makes the terminal its own. That
    must happen in the child between fork and exec, so it is a
    ``preexec_fn``, which CPython's docs call unsafe in a program with
    threads: Python code in a forked child may need a lock another thread
    held at the fork. This one is a ready-made call of one C function, with
    no import, allocation or lock of its own. The alternatives cost more:
    ``pty.fork()`` runs more Python in the child and loses ``Popen``'s
    reporting of exec errors, and a helper program that takes the terminal
    and execs the command (``setsid --ctty``, a ``python -c``) costs a
    program start per child, is not everywhere, and hides a missing command
    behind its own exit status.
    """
    take_terminal = functools.partial(fcntl.ioctl, 0, termios.TIOCSCTTY, 0)
    try:
        return subprocess.Popen(
            args,
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            cwd=cwd,
            env=env,
            start_new_session=True,
            preexec_fn=take_terminal,  # noqa: PLW1509 - see above
        )
    except OSError as err:
        where = "" if err.filename is None else f": {err.filename!r}"
        raise type(err)(err.errno, f"cannot start {args!r} on a terminal: {err.strerror}{where}") from err


def _byte_at(buffers: list[bytes | memoryview], index: int) -> int:
    """The byte at ``index`` of the buffers joined."""
    for buffer in buffers:
        size = len(buffer)
        if index < size:
            return buffer[index]
        index -= size
    raise IndexError(index)  # pragma: no cover - sent never exceeds what was offered


def _character(value: bytes | int) -> int:
    """A ``termios`` control character as a number (bytes in canonical mode,
    a number where it shares its slot with ``VMIN`` or ``VTIME``)."""
    return value if isinstance(value, int) else value[0]
