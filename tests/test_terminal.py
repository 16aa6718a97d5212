"""``PtyProcessChannel``: real children on a real pseudo-terminal.

The children are ``sh``, ``cat``, ``sort``, ``sed``, ``awk`` and small
``python3 -c`` programs; every wait is bounded by ``tests.helpers.WAIT``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import select
import signal
import socket
import sys
import termios
import time
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from channels import (
    Channel,
    EndpointClosedException,
    LineChannel,
    ProcessChannel,
    PtyProcessChannel,
    SocketChannel,
    aio,
    terminal,
    testing,
)
from channels.poller import Poller
from tests.helpers import WAIT, open_fd_count, read_exactly, read_lines, read_to_end, wait_until
from tests.test_channel import ChannelContract
from tests.test_process import EchoingChild, reaped, running

PYTHON = sys.executable

# Reads its terminal until the end of input twice, saying what it had each time.
COUNTS_ENDS = """
import os
data = b""
for end in (1, 2):
    while chunk := os.read(0, 1024):
        data += chunk
    print("end", end, "after", repr(data.decode()), flush=True)
"""

# Prints its terminal's size at the start and on every SIGWINCH, until the end of input.
SHOWS_ITS_SIZE = """
import os, signal, sys
def show(*_):
    size = os.get_terminal_size(0)
    print(size.lines, size.columns, flush=True)
signal.signal(signal.SIGWINCH, show)
show()
sys.stdin.buffer.read()
"""

# Takes every key as it comes, as a line editor does, until Ctrl-D.
READS_KEYS = """
import os, tty
tty.setraw(0)
print("ready", flush=True)
keys = b""
while not keys.endswith(b"\\x04"):
    keys += os.read(0, 1)
print(repr(keys), flush=True)
"""

IGNORES_HUP_AND_TERM = ["sh", "-c", "trap '' HUP TERM; echo ready; exec sleep 60"]


def output_of(channel: Channel) -> bytes:
    """Everything ``channel`` reads until its end."""
    return b"".join(read_to_end(channel))


def end_of(channel: Channel) -> EndpointClosedException:
    """The exception that ends ``channel``, once all it had was read."""
    read_to_end(channel)
    with pytest.raises(EndpointClosedException) as ended:
        channel.read()
    return ended.value


# -- what the child sees ---------------------------------------------------------------


def test_the_childs_stdin_stdout_and_stderr_are_one_terminal() -> None:
    script = "import os; print(all(os.isatty(fd) for fd in (0, 1, 2)), len({os.ttyname(fd) for fd in (0, 1, 2)}))"
    with PtyProcessChannel([PYTHON, "-c", script]) as child:
        assert output_of(child) == b"True 1\r\n"


def test_the_terminal_is_the_childs_controlling_terminal() -> None:
    script = "import os; os.write(os.open('/dev/tty', os.O_WRONLY), b'through /dev/tty\\n')"
    with PtyProcessChannel([PYTHON, "-c", script]) as child:
        assert output_of(child) == b"through /dev/tty\r\n"


def test_the_child_leads_its_own_session_in_the_terminals_foreground() -> None:
    script = "import os; print(os.getsid(0) == os.getpid() == os.getpgrp() == os.tcgetpgrp(0))"
    with PtyProcessChannel([PYTHON, "-c", script]) as child:
        assert output_of(child) == b"True\r\n"


def test_stderr_goes_to_the_terminal_too() -> None:
    with PtyProcessChannel(["sh", "-c", "echo err >&2; echo out"]) as child:
        assert output_of(child) == b"err\r\nout\r\n"
        assert child.stderr is None


def test_cwd_and_env_are_as_for_a_process_channel(tmp_path: Path) -> None:
    with PtyProcessChannel(["sh", "-c", 'echo "$GREETING"; pwd'], cwd=tmp_path, env={"GREETING": "hi"}) as child:
        assert output_of(child) == b"hi\r\n" + os.fsencode(tmp_path.resolve()) + b"\r\n"


# -- size --------------------------------------------------------------------------------


def test_the_terminal_is_24_by_80_by_default() -> None:
    with PtyProcessChannel(["stty", "size"]) as child:
        assert output_of(child) == b"24 80\r\n"


def test_the_child_starts_with_the_size_asked_for() -> None:
    with PtyProcessChannel(["stty", "size"], size=(50, 132)) as child:
        assert output_of(child) == b"50 132\r\n"
        assert child.size == (50, 132)


def test_resize_sends_sigwinch_and_the_child_sees_the_new_size() -> None:
    with PtyProcessChannel([PYTHON, "-c", SHOWS_ITS_SIZE], size=(30, 100), buffering="line") as child:
        assert read_lines(child, 1) == [b"30 100\r\n"]  # its SIGWINCH handler is set
        child.resize(40, 120)
        assert read_lines(child, 1) == [b"40 120\r\n"]
        assert child.size == (40, 120)
        child.resize(41, 121)
        assert read_lines(child, 1) == [b"41 121\r\n"]


# -- what comes through ------------------------------------------------------------------


def test_by_default_newlines_read_as_crlf_and_what_is_written_is_not_echoed() -> None:
    with PtyProcessChannel(["cat"]) as child:
        child.write(b"one\ntwo\n")
        assert read_exactly(child, 10) == b"one\r\ntwo\r\n"
        child.shutdown_write()
        assert output_of(child) == b""


def test_echo_shows_what_is_written_as_a_terminal_shows_what_is_typed() -> None:
    with PtyProcessChannel(["cat"], echo=True) as child:
        child.write(b"hi\n")
        assert read_exactly(child, 8) == b"hi\r\nhi\r\n"  # the echo, then cat's copy


def round_trip(child: Channel, data: bytes) -> bytes:
    """Write ``data`` and read as much back, sending what waits meanwhile."""
    received = bytearray()
    child.write(data)
    deadline = time.monotonic() + WAIT
    while len(received) < len(data):
        assert time.monotonic() < deadline, f"{len(received)} of {len(data)} bytes came back"
        child.flush(timeout=0)
        chunk = child.read()
        received += chunk
        if not chunk:
            select.select([child.get_fd()], [], [], 0.01)
    return bytes(received)


def test_raw_carries_every_byte_exactly_both_ways() -> None:
    data = bytes(range(256)) * 256
    with PtyProcessChannel(["cat"], raw=True) as child:
        assert round_trip(child, data) == data


def test_raw_carries_far_more_than_the_terminal_holds() -> None:
    data = os.urandom(4 * 1024 * 1024)
    with PtyProcessChannel(["cat"], raw=True) as child:
        assert round_trip(child, data) == data


def test_a_control_character_written_acts_as_the_key_would() -> None:
    with PtyProcessChannel(["sleep", "60"]) as child:
        child.write(b"\x03")  # Ctrl-C: the line discipline interrupts the foreground group
        assert child.wait(WAIT) == -signal.SIGINT


@pytest.mark.parametrize("program", [["awk", "{print}"], ["sed", "s/^/> /"]], ids=["awk", "sed"])
def test_a_c_stdio_program_answers_each_line_at_once_on_a_terminal_not_on_a_pipe(program: list[str]) -> None:
    expected = b"> one\r\n" if program[0] == "sed" else b"one\r\n"
    with PtyProcessChannel(program) as child:
        child.write(b"one\n")
        assert read_exactly(child, len(expected)) == expected  # line-buffered: a terminal is its stdout
    with ProcessChannel(program) as piped:
        piped.write(b"one\n")
        # Block-buffered on a pipe: the answer waits for 4 KiB, or the end.
        select.select([piped.get_fd()], [], [], 0.2)
        assert piped.read() == b""
        piped.shutdown_write()
        assert output_of(piped) == expected.replace(b"\r\n", b"\n")


def test_line_mode_returns_the_lines_with_their_crlf() -> None:
    with PtyProcessChannel(["printf", "a\\nb\\nlast"], buffering="line") as child:
        assert child.buffering == "line"
        assert read_to_end(child) == [b"a\r\n", b"b\r\n", b"last"]


# -- the end of input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "first", "second"),
    [
        (b"", "''", "'de\\n'"),
        (b"abc\n", "'abc\\n'", "'abc\\nde\\n'"),
        (b"abc\r", "'abc\\n'", "'abc\\nde\\n'"),  # a CR is read as a newline
        (b"abc", "'abc'", "'abcde\\n'"),
    ],
    ids=["nothing", "after-a-newline", "after-a-cr", "in-mid-line"],
)
def test_shutdown_write_ends_the_input_once_at_the_start_of_a_line(written: bytes, first: str, second: str) -> None:
    with PtyProcessChannel([PYTHON, "-c", COUNTS_ENDS], buffering="line") as child:
        child.write(written)
        child.shutdown_write()
        assert read_lines(child, 1) == [f"end 1 after {first}\r\n".encode()]
        # The child reads on, as it would from a terminal after Ctrl-D: type
        # at it past the channel, then end its input a second time.
        os.write(child.get_fd(), b"de\n\x04")
        assert read_lines(child, 1) == [f"end 2 after {second}\r\n".encode()]
        assert child.wait(WAIT) == 0


def set_modes(channel: Channel, change: Callable[[list[Any]], None]) -> None:
    """Change the child's terminal modes through the master side, as
    ``stty`` in the child would (Linux applies them to the slave side)."""
    attrs = termios.tcgetattr(channel.get_fd())
    change(attrs)
    termios.tcsetattr(channel.get_fd(), termios.TCSANOW, attrs)


def no_icrnl(attrs: list[Any]) -> None:
    attrs[0] &= ~termios.ICRNL


def semicolon_ends_lines(attrs: list[Any]) -> None:
    attrs[6][termios.VEOL] = b";"


@pytest.mark.parametrize(
    ("change", "written", "first", "second"),
    [
        (no_icrnl, b"abc\r", "'abc\\r'", "'abc\\rde\\n'"),  # a CR that is just a character
        (semicolon_ends_lines, b"abc;", "'abc;'", "'abc;de\\n'"),  # VEOL ends a line as a newline does
    ],
    ids=["cr-without-icrnl", "veol"],
)
def test_shutdown_write_reads_the_line_ends_from_the_terminals_modes(
    change: Callable[[list[Any]], None], written: bytes, first: str, second: str
) -> None:
    with PtyProcessChannel([PYTHON, "-c", COUNTS_ENDS], buffering="line") as child:
        set_modes(child, change)
        child.write(written)
        child.shutdown_write()
        assert read_lines(child, 1) == [f"end 1 after {first}\r\n".encode()]
        os.write(child.get_fd(), b"de\n\x04")
        assert read_lines(child, 1) == [f"end 2 after {second}\r\n".encode()]


def test_shutdown_write_drops_what_the_child_did_not_take_in_time(caplog: pytest.LogCaptureFixture) -> None:
    child = PtyProcessChannel(["sleep", "60"])  # reads nothing
    try:
        child.write(b"line\n" * 200_000)  # whole lines: the line discipline holds them for the child
        assert child.pending_output > 0
        with caplog.at_level(logging.WARNING, logger="channels.channel"):
            child.shutdown_write(timeout=0.05)
        assert child.pending_output == 0
        assert "dropped" in caplog.text
        with pytest.raises(EndpointClosedException):
            child.write(b"late")
    finally:
        child.abort()


def test_shutdown_write_lets_cat_finish_with_an_unfinished_last_line() -> None:
    with PtyProcessChannel(["cat"]) as child:
        child.write(b"line\nno newline")
        child.shutdown_write()
        assert output_of(child) == b"line\r\nno newline"  # nothing added
        assert child.wait(WAIT) == 0


def test_shutdown_write_lets_sort_answer() -> None:
    with PtyProcessChannel(["sort"], buffering="line") as child:
        child.write(b"pear\n", b"apple\n", b"fig")
        child.shutdown_write()
        assert read_to_end(child) == [b"apple\r\n", b"fig\r\n", b"pear\r\n"]
        assert child.wait(WAIT) == 0


def test_shutdown_write_delivers_pending_output_first() -> None:
    lines = b"".join(b"line %06d\n" % n for n in range(20_000))
    with PtyProcessChannel(["sh", "-c", "wc -l"]) as child:
        child.write(lines)
        assert child.pending_output > 0
        child.shutdown_write()
        assert output_of(child).strip() == b"20000"


def test_a_child_that_reads_keys_itself_gets_one_end_of_file_character() -> None:
    with PtyProcessChannel([PYTHON, "-c", READS_KEYS]) as child:
        assert read_exactly(child, 6) == b"ready\n"  # raw now, by its own choice
        child.write(b"abc")
        child.shutdown_write()
        assert output_of(child) == b"b'abc\\x04'\n"


def test_after_shutdown_write_writes_raise_and_reads_go_on() -> None:
    with PtyProcessChannel(["sh", "-c", "cat; echo done"]) as child:
        child.shutdown_write()
        with pytest.raises(EndpointClosedException):
            child.write(b"late")
        child.shutdown_write()  # again: nothing
        assert output_of(child) == b"done\r\n"


def test_shutdown_write_of_a_raw_terminal_raises_not_implemented_and_drops_nothing() -> None:
    with PtyProcessChannel(["cat"], raw=True) as child:
        child.write(b"kept")
        with pytest.raises(NotImplementedError, match="raw"):
            child.shutdown_write()
        assert read_exactly(child, 4) == b"kept"
        child.write(b"more")  # still writable
        assert read_exactly(child, 4) == b"more"


def test_shutdown_write_raises_not_implemented_when_the_child_disabled_veof() -> None:
    child = PtyProcessChannel(["sh", "-c", "stty eof undef && echo ready && exec cat"])
    try:
        assert read_exactly(child, 7) == b"ready\r\n"
        child.write(b"kept\n")
        with pytest.raises(NotImplementedError, match="VEOF"):
            child.shutdown_write()
        assert read_exactly(child, 6) == b"kept\r\n"
    finally:
        child.abort()  # it can never see an end of input


def test_shutdown_write_after_the_child_exited_does_nothing_as_for_a_pipe() -> None:
    with PtyProcessChannel(["true"]) as child:
        child.wait(WAIT)
        child.shutdown_write()
        with pytest.raises(EndpointClosedException):
            child.write(b"late")


def test_shutdown_write_raises_endpoint_closed_when_the_child_left_output_undelivered() -> None:
    with PtyProcessChannel(["sh", "-c", "read line; echo got it"]) as child:
        child.write(b"line\n" * 200_000)
        assert read_exactly(child, 8) == b"got it\r\n"
        assert child.wait(WAIT) == 0
        assert child.pending_output > 0
        with pytest.raises(EndpointClosedException) as refused:
            child.shutdown_write()
        assert isinstance(refused.value.__cause__, OSError)


def test_shutdown_write_of_a_closed_channel_raises_endpoint_closed() -> None:
    child = PtyProcessChannel(["cat"])
    child.close()
    with pytest.raises(EndpointClosedException):
        child.shutdown_write()


# -- the end of the child -------------------------------------------------------------------


def test_the_childs_exit_is_a_clean_end_of_the_channel() -> None:
    with PtyProcessChannel(["sh", "-c", "echo bye"]) as child:
        end = end_of(child)
        assert end.__cause__ is None
        with pytest.raises(EndpointClosedException):
            child.read()


def test_what_the_child_wrote_before_it_exited_is_read_before_the_end() -> None:
    script = "import sys; sys.stdout.buffer.write(bytes(range(256)) * 12)"
    with PtyProcessChannel([PYTHON, "-c", script], raw=True) as child:
        assert child.wait(WAIT) == 0  # gone, and its output is still in the terminal
        assert output_of(child) == bytes(range(256)) * 12


def test_everything_a_child_writes_in_a_rush_arrives_before_the_end() -> None:
    script = "import sys; sys.stdout.buffer.write(b'x' * 1_000_000 + b'end')"
    with PtyProcessChannel([PYTHON, "-c", script], raw=True) as child:
        received = output_of(child)
    assert len(received) == 1_000_003
    assert received.endswith(b"xend")


def test_a_read_that_fails_raises_endpoint_closed_with_the_error_as_its_cause() -> None:
    child = PtyProcessChannel(["cat"])
    try:
        os.close(child.get_fd())  # behind the channel's back
        with pytest.raises(EndpointClosedException) as failed:
            child.read()
        assert isinstance(failed.value.__cause__, OSError)
        assert failed.value.__cause__.errno == errno.EBADF
    finally:
        child.abort()


def test_writing_to_a_child_that_exited_raises_endpoint_closed_caused_by_eio() -> None:
    with PtyProcessChannel(["true"]) as child:
        child.wait(WAIT)
        with pytest.raises(EndpointClosedException) as refused:
            child.write(b"nobody reads this")
        assert isinstance(refused.value.__cause__, OSError)
        assert refused.value.__cause__.errno == errno.EIO


def test_output_held_for_a_child_that_exited_is_refused_not_waited_for() -> None:
    with PtyProcessChannel(["sh", "-c", "read line; echo got it"], raw=True) as child:
        child.write(b"x\n" + bytes(1024 * 1024))
        assert child.pending_output > 0
        assert read_exactly(child, 7) == b"got it\n"
        assert child.wait(WAIT) == 0
        start = time.monotonic()
        with pytest.raises(EndpointClosedException):
            child.flush(WAIT)
        assert time.monotonic() - start < 1.0
        assert child.pending_output == 0


# -- the child's life ---------------------------------------------------------------------------


def test_pid_returncode_and_wait_are_as_for_a_process_channel() -> None:
    with PtyProcessChannel(["sh", "-c", "read x; exit 3"]) as child:
        assert child.returncode is None
        assert child.wait(0.01) is None
        child.write(b"go\n")
        assert child.wait(WAIT) == 3
        assert child.returncode == 3
        assert reaped(child.pid)


def test_close_ends_the_childs_input_and_reaps_it() -> None:
    child = PtyProcessChannel(["cat"])
    child.write(b"unfinished")
    child.close()
    assert child.returncode == 0  # cat saw the end of its input and exited by itself
    assert reaped(child.pid)


def test_close_delivers_pending_output_before_the_end_of_input(tmp_path: Path) -> None:
    target = tmp_path / "copy"
    lines = b"".join(b"line %06d\n" % n for n in range(100_000))
    child = PtyProcessChannel(["sh", "-c", 'cat > "$0"', str(target)])
    child.write(lines)
    assert child.pending_output > 0
    child.close()
    assert child.returncode == 0
    assert target.read_bytes() == lines


def test_close_lets_a_child_finish_what_it_writes_after_the_end_of_input() -> None:
    child = PtyProcessChannel(["sh", "-c", "cat > /dev/null; head -c 1000000 /dev/zero; exit 7"])
    child.close()
    assert child.returncode == 7  # not killed: its output was read (and dropped) until it exited


@pytest.mark.parametrize("raw", [False, True], ids=["cooked", "raw"])
def test_close_waits_for_a_child_that_closed_the_terminal_before_it_exits(raw: bool) -> None:
    # Closed, the terminal reads as ended while the child still runs: a
    # hang-up then would reach it as SIGHUP, its controlling terminal's.
    child = PtyProcessChannel(["sh", "-c", "exec 0<&- 1>&- 2>&-; sleep 0.05; exit 3"], raw=raw)
    assert read_to_end(child) == []
    child.close()
    assert child.returncode == 3


def test_close_hangs_up_a_child_that_does_not_end_at_the_end_of_input() -> None:
    child = PtyProcessChannel(["yes"])
    start = time.monotonic()
    child.close(timeout=0.1)
    assert child.returncode in (-signal.SIGHUP, -signal.SIGTERM)  # the hang-up, or SIGTERM just after
    assert time.monotonic() - start < WAIT
    assert reaped(child.pid)


def test_close_kills_a_child_that_ignores_the_hang_up_and_sigterm() -> None:
    child = PtyProcessChannel(IGNORES_HUP_AND_TERM, terminate_timeout=0.1)
    assert read_exactly(child, 7) == b"ready\r\n"
    start = time.monotonic()
    child.close(timeout=0.05)
    assert child.returncode == -signal.SIGKILL
    assert reaped(child.pid)
    assert time.monotonic() - start < WAIT


def test_close_of_a_raw_terminal_hangs_up_at_once() -> None:
    child = PtyProcessChannel(["cat"], raw=True)
    child.write(b"bye")
    start = time.monotonic()
    child.close()
    assert child.returncode == -signal.SIGHUP
    assert time.monotonic() - start < 1.0


def test_abort_kills_a_running_child_and_reaps_it() -> None:
    child = PtyProcessChannel(IGNORES_HUP_AND_TERM)
    assert read_exactly(child, 7) == b"ready\r\n"
    child.abort()
    assert child.returncode == -signal.SIGKILL
    assert reaped(child.pid)
    child.close()  # afterwards: nothing
    assert child.closed


def test_terminate_kill_and_send_signal_send_those_signals() -> None:
    for send, expected in [
        (PtyProcessChannel.terminate, signal.SIGTERM),
        (PtyProcessChannel.kill, signal.SIGKILL),
        (lambda child: child.send_signal(signal.SIGUSR1), signal.SIGUSR1),
    ]:
        with PtyProcessChannel(["cat"]) as child:
            send(child)
            assert child.wait(WAIT) == -expected


def test_signals_reach_the_childs_whole_process_group() -> None:
    with PtyProcessChannel(["sh", "-c", "sleep 60 & echo $!; wait"], buffering="line") as child:
        grandchild = int(read_lines(child, 1)[0])
        assert running(grandchild)
        child.terminate()
        assert child.wait(WAIT) == -signal.SIGTERM
        wait_until(lambda: not running(grandchild))


def test_repr_names_the_program_and_its_pid() -> None:
    with PtyProcessChannel(["cat"]) as child:
        assert repr(child) == f"<PtyProcessChannel 'cat' pid={child.pid} bytes open>"


# -- in a poller ------------------------------------------------------------------------------


def test_one_poller_serves_many_children_on_terminals() -> None:
    children = [PtyProcessChannel(["sh", "-c", 'read name; echo "hello $name"'], buffering="line") for _ in range(5)]
    answers: dict[int, list[bytes]] = {id(child): [] for child in children}
    ended: set[int] = set()
    with Poller() as poller:
        for number, child in enumerate(children):
            poller.register(child)
            child.write(b"child%d\n" % number)
        deadline = time.monotonic() + WAIT
        while len(ended) < len(children):
            assert time.monotonic() < deadline, f"{len(ended)} of {len(children)} children ended"
            for data, channel in poller.poll(0.1):
                if data:
                    assert isinstance(data, bytes)
                    answers[id(channel)].append(data)
                else:
                    ended.add(id(channel))
    for number, child in enumerate(children):
        assert answers[id(child)] == [b"hello child%d\r\n" % number]
        child.close()
        assert child.returncode == 0


def test_a_registered_child_gets_held_output_then_the_end_of_input() -> None:
    with Poller() as poller, PtyProcessChannel(["sort"]) as child:
        poller.register(child)
        received = b""
        child.write(b"b\n")
        child.write(b"a\n")  # held for the next poll, with the one before
        child.shutdown_write()  # sends them, then the end of input
        deadline = time.monotonic() + WAIT
        while True:
            assert time.monotonic() < deadline, "sort's end was never reported"
            events = poller.poll(0.1)
            received += b"".join(data for data, _ in events if isinstance(data, bytes))
            if (b"", child) in events:
                break
        assert received == b"a\r\nb\r\n"


def test_a_line_channel_wraps_a_terminal_child() -> None:
    with LineChannel(PtyProcessChannel(["printf", "x\\ny"])) as lines:
        assert read_to_end(lines) == [b"x\r\n", b"y"]


def test_asyncio_awaits_a_terminal_child_through_channels_aio() -> None:
    async def talk(child: PtyProcessChannel) -> list[bytes]:
        await aio.awrite(child, b"b\n", b"a\n")
        child.shutdown_write()
        return [line async for line in aio.alines(child)]

    with PtyProcessChannel(["sort"]) as child:
        loop = asyncio.new_event_loop()
        try:
            lines = loop.run_until_complete(asyncio.wait_for(talk(child), WAIT))
        finally:
            loop.close()
    assert lines == [b"a\r\n", b"b\r\n"]


# -- no leaks -------------------------------------------------------------------------------


def test_many_children_leave_no_descriptors_and_no_zombies() -> None:
    before = open_fd_count()
    pids = []
    for round_ in range(20):
        child = PtyProcessChannel(["cat"], raw=round_ % 2 == 1)
        child.write(b"x")
        pids.append(child.pid)
        if round_ % 3 == 0:
            child.abort()
        else:
            child.close()
    assert open_fd_count() == before
    assert all(reaped(pid) for pid in pids)


def test_a_missing_program_raises_file_not_found_naming_it_and_leaks_nothing() -> None:
    before = open_fd_count()
    with pytest.raises(FileNotFoundError, match="no-such-program"):
        PtyProcessChannel(["no-such-program-here"])
    assert open_fd_count() == before


def test_a_bad_option_starts_nothing_and_leaks_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    before = open_fd_count()
    with pytest.raises(ValueError, match="buffering"):
        PtyProcessChannel(["touch", str(marker)], buffering="words")
    with pytest.raises(ValueError, match="max_pending"):
        PtyProcessChannel(["touch", str(marker)], max_pending=0)
    assert open_fd_count() == before
    assert not marker.exists()


# -- bad input ------------------------------------------------------------------------------


def test_where_the_platform_has_no_ptys_raises_not_implemented_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulated with the module's own flag, set at import from what the
    platform offers (``os.openpty``, ``termios.TIOCSCTTY``); the OS itself is
    not touched. Nothing is opened."""
    monkeypatch.setattr(terminal, "_HAVE_PTY", False)
    before = open_fd_count()
    with pytest.raises(NotImplementedError, match=f"pseudo-terminals .*{sys.platform}"):
        PtyProcessChannel(["cat"])
    assert open_fd_count() == before


@pytest.mark.parametrize("size", [24, "24x80", (24,), (24, 80, 1), [24.0, 80], ("24", "80"), (True, 80), None])
def test_a_size_that_is_not_two_whole_numbers_raises_type_error(size: object) -> None:
    with pytest.raises(TypeError, match=r"size|rows|cols"):
        PtyProcessChannel(["true"], size=size)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [(0, 80), (24, 0), (-1, 80), (24, 65536)])
def test_a_size_out_of_range_raises_value_error(size: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="from 1 to 65535"):
        PtyProcessChannel(["true"], size=size)


def test_a_size_as_a_list_is_accepted() -> None:
    with PtyProcessChannel(["stty", "size"], size=[10, 20]) as child:  # type: ignore[arg-type]
        assert output_of(child) == b"10 20\r\n"


def test_resize_checks_its_arguments() -> None:
    with PtyProcessChannel(["cat"]) as child:
        with pytest.raises(TypeError, match="rows"):
            child.resize(24.5, 80)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="cols"):
            child.resize(24, 0)
        assert child.size == (24, 80)


def test_resize_and_size_after_close_raise_endpoint_closed() -> None:
    child = PtyProcessChannel(["cat"])
    child.close()
    with pytest.raises(EndpointClosedException):
        child.resize(10, 10)
    with pytest.raises(EndpointClosedException):
        _ = child.size


@pytest.mark.parametrize("option", ["echo", "raw"])
def test_echo_and_raw_must_be_booleans(option: str) -> None:
    with pytest.raises(TypeError, match=f"{option} must be True or False"):
        PtyProcessChannel(["true"], **{option: "yes"})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("argv", "error", "match"),
    [
        ([], ValueError, "argv is empty"),
        ("cat -u", TypeError, r"shlex\.split"),
        (iter(["cat"]), TypeError, "list of arguments"),
        (["sleep", 1], TypeError, "int"),
    ],
    ids=["empty", "string", "iterator", "int-argument"],
)
def test_bad_argv_is_refused_as_for_a_process_channel(argv: object, error: type[Exception], match: str) -> None:
    before = open_fd_count()
    with pytest.raises(error, match=match):
        PtyProcessChannel(argv)  # type: ignore[arg-type]
    assert open_fd_count() == before


def test_a_negative_terminate_timeout_raises_value_error() -> None:
    with pytest.raises(ValueError, match="terminate_timeout"):
        PtyProcessChannel(["true"], terminate_timeout=-1)


# -- the channel contract --------------------------------------------------------------------


class TestRawTerminalCatContract(ChannelContract[EchoingChild]):
    """``PtyProcessChannel(['cat'], raw=True)`` keeps the contract every channel
    keeps: raw, the terminal gives back exactly what ``cat`` is given. (A
    cooked one gives ``cat`` whole lines only, and echoes them with
    ``\\r\\n``, so an echo of ``b'hello'`` never comes back as it was sent.)"""

    leak_rounds = 20

    def open_pair(self, workdir: Path, max_pending: int) -> tuple[Channel, EchoingChild]:
        channel = PtyProcessChannel(["cat"], raw=True, max_pending=max_pending)
        return channel, EchoingChild(channel)


# The far end of the conformance pairs: a child on a raw terminal that copies
# its terminal to a Unix socket and back, with backpressure, and exits when
# the socket ends (which, a terminal having no half-close, is how the end
# reaches the terminal's reader) or when the terminal hangs up.
COPIER = """
import sys
from channels import PipeChannel, Poller, connect
terminal = PipeChannel(0, 1)
peer = connect("unix:" + sys.argv[1])
with Poller() as poller:
    poller.register(terminal)
    poller.register(peer)
    while True:
        for data, source in poller.poll():
            target = peer if source is terminal else terminal
            if data:
                target.write(data)
                continue
            if source is peer:
                terminal.flush()
            sys.exit(0)
        for source, target in ((terminal, peer), (peer, terminal)):
            if target.pending_output > 1024 * 1024:
                poller.pause_reading(source)
            elif not target.pending_output:
                poller.resume_reading(source)
"""

# check_channel's checks that cannot hold for a terminal, by who writes:
NOT_FROM_THE_TERMINAL = {
    # Closing the terminal hangs it up, and the kernel throws away what the
    # child has not read yet: whether the peer gets all of it is a race.
    testing._check_end_of_file_comes_after_the_data,
    testing._check_close_delivers_pending_output,
}
NOT_TO_THE_TERMINAL = {
    # A terminal has no half-close: the peer's end reaches the terminal's
    # reader only as the child's exit, which ends the other way too.
    testing._check_shutdown_write_is_a_half_close,
}


def conformance_cases() -> Iterator[tuple[Callable[[testing._Case], None], bool]]:
    for check in testing._CHECKS:
        for terminal_writes in [True] if check in testing._BOTH_WAYS_AT_ONCE else [True, False]:
            if terminal_writes and check in NOT_FROM_THE_TERMINAL:
                continue
            if not terminal_writes and check in NOT_TO_THE_TERMINAL:
                continue
            yield check, terminal_writes


@pytest.fixture(scope="module")
def copier_socket_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pty")  # short: a Unix socket path holds at most 107 bytes


_names = count()


def raw_terminal_pair(directory: Path) -> tuple[PtyProcessChannel, SocketChannel]:
    """A raw terminal channel and a socket channel, joined by the copier child."""
    path = str(directory / f"c{next(_names)}")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        listener.settimeout(WAIT)
        child = PtyProcessChannel([PYTHON, "-c", COPIER, path], raw=True)
        try:
            accepted, _ = listener.accept()
        except BaseException:
            child.abort()
            raise
    os.unlink(path)
    return child, SocketChannel(accepted)


@pytest.mark.parametrize(
    ("check", "terminal_writes"),
    list(conformance_cases()),
    ids=[f"{check.__name__[7:]}-{'from' if writes else 'to'}-the-terminal" for check, writes in conformance_cases()],
)
def test_a_raw_terminal_keeps_the_conformance_checks_that_apply(
    check: Callable[[testing._Case], None], terminal_writes: bool, copier_socket_dir: Path
) -> None:
    """``channels.testing.check_channel``'s checks, one at a time, on a raw
    terminal whose child relays to a socket channel; each as the writer and
    as the reader, except where a terminal cannot keep the promise:

    - the terminal's ``close()`` is a hang-up, which discards what the child
      has not read, so "the peer reads all that was written, then the end"
      and "close() delivers pending output" cannot be promised with the
      terminal writing (they pass when the child happens to have read
      everything before the hang-up, often not); they hold with it reading;
    - a terminal has no half-close, so "shutdown_write() ends one direction
      only" does not hold with the terminal reading; with it writing, its
      refusal (raw: ``NotImplementedError``) is checked to drop nothing.

    The checks reach into ``channels.testing`` for its private list: the
    public ``check_channel()`` runs all of them.
    """
    before = open_fd_count()
    pty_end, socket_end = raw_terminal_pair(copier_socket_dir)
    try:
        writer, reader = (pty_end, socket_end) if terminal_writes else (socket_end, pty_end)
        check(testing._Case(writer, reader, False, WAIT))
    finally:
        pty_end.abort()
        socket_end.abort()
    assert reaped(pty_end.pid)
    assert open_fd_count() == before
