"""``ProcessChannel``: a real child's stdin and stdout, its signals and its end."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from channels import EndpointClosedException, ProcessChannel, PtyProcessChannel, close_processes
from channels.poller import Poller
from tests.helpers import WAIT, open_fd_count, read_exactly, read_lines, read_to_end, wait_until
from tests.test_channel import ChannelContract, Peer

# A child that ignores SIGTERM (the disposition survives exec) and says when
# it is ready, so that no signal can arrive before the trap is set.
IGNORES_SIGTERM = ["sh", "-c", "trap '' TERM; echo ready; exec sleep 60"]


def reaped(pid: int) -> bool:
    """Whether ``pid`` is no child of ours any more, not even a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (any parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def wait_for_ready(channel: ProcessChannel) -> None:
    assert read_exactly(channel, 6) == b"ready\n"


# -- stdio ------------------------------------------------------------------------


def test_read_returns_what_the_child_writes_to_stdout() -> None:
    with ProcessChannel(["sh", "-c", "echo hello"]) as channel:
        assert b"".join(read_to_end(channel)) == b"hello\n"


def test_write_goes_to_the_childs_stdin() -> None:
    with ProcessChannel(["cat"]) as channel:
        channel.write(b"marco\n")
        assert read_exactly(channel, 6) == b"marco\n"


def test_line_buffering_returns_one_line_per_read() -> None:
    with ProcessChannel(["sh", "-c", "printf 'a\\nb\\n'"], buffering="line") as channel:
        assert read_lines(channel, 2) == [b"a\n", b"b\n"]


def test_a_registered_process_channel_is_polled_like_any_channel() -> None:
    with Poller() as poller, ProcessChannel(["cat"]) as channel:
        poller.register(channel)
        channel.write(b"ping")
        channel.shutdown_write()
        received = b""
        deadline = time.monotonic() + WAIT
        while True:
            assert time.monotonic() < deadline, "cat's end was never reported"
            events = poller.poll(0.1)
            received += b"".join(data for data, _ in events if isinstance(data, bytes))
            if (b"", channel) in events:
                break
        assert received == b"ping"


def test_cwd_sets_the_childs_working_directory(tmp_path: Path) -> None:
    with ProcessChannel(["pwd"], cwd=tmp_path) as channel:
        assert b"".join(read_to_end(channel)).strip() == os.fsencode(tmp_path.resolve())


def test_env_replaces_the_childs_environment() -> None:
    with ProcessChannel(["sh", "-c", 'echo "$GREETING:$HOME"'], env={"GREETING": "hi"}) as channel:
        assert b"".join(read_to_end(channel)) == b"hi:\n"


# -- stderr -----------------------------------------------------------------------


ERR_AND_OUT = ["sh", "-c", "echo err >&2; echo out"]


def test_stderr_goes_to_ours_by_default(capfd: pytest.CaptureFixture[str]) -> None:
    with ProcessChannel(ERR_AND_OUT) as channel:
        assert b"".join(read_to_end(channel)) == b"out\n"
        assert channel.wait(WAIT) == 0
    assert capfd.readouterr().err == "err\n"


def test_stderr_devnull_discards_it(capfd: pytest.CaptureFixture[str]) -> None:
    with ProcessChannel(ERR_AND_OUT, stderr=subprocess.DEVNULL) as channel:
        assert b"".join(read_to_end(channel)) == b"out\n"
        assert channel.wait(WAIT) == 0
    assert capfd.readouterr().err == ""


def test_stderr_stdout_merges_it_into_what_read_returns() -> None:
    with ProcessChannel(ERR_AND_OUT, stderr=subprocess.STDOUT) as channel:
        assert b"".join(read_to_end(channel)) == b"err\nout\n"


def test_stderr_pipe_makes_a_channel_of_it() -> None:
    with ProcessChannel(ERR_AND_OUT, stderr=subprocess.PIPE) as channel:
        assert channel.stderr is not None
        assert b"".join(read_to_end(channel.stderr)) == b"err\n"
        assert b"".join(read_to_end(channel)) == b"out\n"


def test_the_stderr_channel_is_closed_with_the_process_channel() -> None:
    channel = ProcessChannel(ERR_AND_OUT, stderr=subprocess.PIPE)
    channel.close()
    assert channel.stderr is not None
    assert channel.stderr.closed


def test_stderr_is_none_without_a_pipe() -> None:
    with ProcessChannel(["true"]) as channel:
        assert channel.stderr is None


def test_a_stderr_choice_that_is_not_one_raises_value_error() -> None:
    with pytest.raises(ValueError, match="stderr"):
        ProcessChannel(["true"], stderr=-42)


def test_a_stderr_of_the_wrong_type_raises_type_error() -> None:
    with pytest.raises(TypeError, match="stderr must be"):
        ProcessChannel(["true"], stderr="log.txt")  # type: ignore[arg-type]


# -- the child's life -----------------------------------------------------------------


def test_pid_is_the_childs_process_id() -> None:
    with ProcessChannel(["sh", "-c", "echo $$"]) as channel:
        assert int(b"".join(read_to_end(channel))) == channel.pid


def test_returncode_is_none_while_the_child_runs() -> None:
    with ProcessChannel(["cat"]) as channel:
        assert channel.returncode is None


def test_wait_returns_none_when_the_child_outlives_the_timeout() -> None:
    with ProcessChannel(["cat"]) as channel:
        assert channel.wait(0.01) is None


def test_wait_returns_the_exit_status() -> None:
    with ProcessChannel(["sh", "-c", "exit 3"]) as channel:
        assert channel.wait(WAIT) == 3
        assert channel.returncode == 3


def test_close_ends_the_childs_input_and_reaps_it() -> None:
    channel = ProcessChannel(["cat"])
    channel.close()
    assert channel.returncode == 0  # cat saw end of file and exited by itself
    assert reaped(channel.pid)


def test_close_delivers_pending_output_before_the_end_of_input(tmp_path: Path) -> None:
    target = tmp_path / "copy"
    data = os.urandom(1024 * 1024)  # far more than a pipe holds
    channel = ProcessChannel(["sh", "-c", 'cat > "$0"', str(target)])
    channel.write(data)
    assert channel.pending_output > 0
    channel.close()
    assert channel.returncode == 0
    assert target.read_bytes() == data


def test_a_child_that_exits_at_once_is_reaped_by_close() -> None:
    channel = ProcessChannel(["true"])
    assert read_to_end(channel) == []
    channel.close()
    assert channel.returncode == 0
    assert reaped(channel.pid)


def test_writing_to_a_child_that_exited_raises_endpoint_closed() -> None:
    with ProcessChannel(["true"]) as channel:
        channel.wait(WAIT)
        with pytest.raises(EndpointClosedException):
            for _ in range(100):
                channel.write(b"x" * 65536)


def test_close_sends_sigterm_to_a_child_that_ignores_the_end_of_input() -> None:
    channel = ProcessChannel(["sh", "-c", "echo ready; exec sleep 60"])
    wait_for_ready(channel)
    channel.close(timeout=0.05)
    assert channel.returncode == -signal.SIGTERM
    assert reaped(channel.pid)


def test_close_kills_a_child_that_ignores_sigterm() -> None:
    channel = ProcessChannel(IGNORES_SIGTERM, terminate_timeout=0.1)
    wait_for_ready(channel)
    start = time.monotonic()
    channel.close(timeout=0.05)
    assert channel.returncode == -signal.SIGKILL
    assert reaped(channel.pid)
    assert time.monotonic() - start < WAIT


def test_abort_kills_a_running_child_and_reaps_it() -> None:
    channel = ProcessChannel(IGNORES_SIGTERM)
    wait_for_ready(channel)
    channel.abort()
    assert channel.returncode == -signal.SIGKILL
    assert reaped(channel.pid)


def test_close_after_abort_does_nothing() -> None:
    channel = ProcessChannel(["cat"])
    channel.abort()
    channel.close()
    assert channel.closed
    assert channel.returncode == -signal.SIGKILL


def test_terminate_sends_sigterm() -> None:
    with ProcessChannel(["cat"]) as channel:
        channel.terminate()
        assert channel.wait(WAIT) == -signal.SIGTERM


def test_kill_sends_sigkill() -> None:
    with ProcessChannel(IGNORES_SIGTERM) as channel:
        wait_for_ready(channel)
        channel.kill()
        assert channel.wait(WAIT) == -signal.SIGKILL


def test_send_signal_sends_that_signal() -> None:
    with ProcessChannel(["cat"]) as channel:
        channel.send_signal(signal.SIGUSR1)
        assert channel.wait(WAIT) == -signal.SIGUSR1


def test_signals_after_the_child_is_reaped_do_nothing() -> None:
    channel = ProcessChannel(["true"])
    channel.close()
    channel.terminate()
    channel.kill()
    assert channel.returncode == 0


def test_a_negative_terminate_timeout_raises_value_error() -> None:
    with pytest.raises(ValueError, match="terminate_timeout"):
        ProcessChannel(["true"], terminate_timeout=-1)


def test_repr_names_the_program_and_its_pid() -> None:
    with ProcessChannel(["cat"]) as channel:
        assert repr(channel) == f"<ProcessChannel 'cat' pid={channel.pid} bytes open>"


# -- process groups ---------------------------------------------------------------------


def test_new_process_group_makes_the_child_lead_its_own_group() -> None:
    with ProcessChannel(["cat"], new_process_group=True) as channel:
        assert os.getpgid(channel.pid) == channel.pid


def test_by_default_the_child_stays_in_our_process_group() -> None:
    with ProcessChannel(["cat"]) as channel:
        assert os.getpgid(channel.pid) == os.getpgrp()


def test_with_new_process_group_terminate_reaches_grandchildren() -> None:
    channel = ProcessChannel(["sh", "-c", "sleep 60 & echo $!; wait"], new_process_group=True, buffering="line")
    grandchild = int(read_lines(channel, 1)[0])
    assert running(grandchild)
    channel.terminate()
    assert channel.wait(WAIT) == -signal.SIGTERM
    wait_until(lambda: not running(grandchild))
    channel.close()


def start_a_grandchild_and_exit(**options: Any) -> tuple[ProcessChannel, int]:
    """A child that leaves a grandchild running in its group and exits; the
    child is reaped before this returns."""
    channel = ProcessChannel(
        ["sh", "-c", "sleep 60 </dev/null >/dev/null 2>&1 & echo $!"],
        new_process_group=True,
        buffering="line",
        **options,
    )
    grandchild = int(read_lines(channel, 1)[0])
    assert channel.wait(WAIT) == 0
    assert running(grandchild)
    return channel, grandchild


@pytest.mark.parametrize("method", ["terminate", "kill", "abort"])
def test_with_new_process_group_signals_reach_grandchildren_after_the_child_is_reaped(method: str) -> None:
    channel, grandchild = start_a_grandchild_and_exit()
    try:
        getattr(channel, method)()
        wait_until(lambda: not running(grandchild))
    finally:
        channel.abort()


def test_with_new_process_group_close_ends_what_the_exited_child_left_running() -> None:
    channel, grandchild = start_a_grandchild_and_exit(terminate_timeout=0.5)
    channel.close()
    assert not running(grandchild)


def test_with_new_process_group_close_kills_a_grandchild_that_ignores_sigterm() -> None:
    script = "trap '' TERM; echo ready; exec sleep 60"
    channel = ProcessChannel(
        ["sh", "-c", f"sh -c {shlex.quote(script)} </dev/null & echo $!"],
        new_process_group=True,
        buffering="line",
        terminate_timeout=0.2,
    )
    lines = sorted(read_lines(channel, 2))  # its pid and "ready", in either order
    assert lines[1] == b"ready\n"  # its trap is set
    grandchild = int(lines[0])
    assert channel.wait(WAIT) == 0
    channel.close()
    wait_until(lambda: not running(grandchild))


def test_signals_to_a_group_that_has_emptied_do_nothing() -> None:
    channel = ProcessChannel(["true"], new_process_group=True)
    channel.close()
    assert channel.returncode == 0
    channel.terminate()
    channel.kill()
    channel.abort()
    assert channel.returncode == 0


# -- bad arguments --------------------------------------------------------------------


def test_an_empty_argv_raises_value_error_and_leaks_nothing() -> None:
    before = open_fd_count()
    with pytest.raises(ValueError, match="argv is empty"):
        ProcessChannel([])
    assert open_fd_count() == before


def test_a_missing_program_raises_file_not_found_naming_it_and_leaks_nothing() -> None:
    before = open_fd_count()
    with pytest.raises(FileNotFoundError, match="no-such-program"):
        ProcessChannel(["no-such-program-here"])
    assert open_fd_count() == before


def test_a_missing_cwd_raises_file_not_found_naming_it() -> None:
    with pytest.raises(FileNotFoundError, match="no-such-dir"):
        ProcessChannel(["true"], cwd="/no-such-dir")


def test_a_string_argv_raises_type_error_suggesting_a_list() -> None:
    with pytest.raises(TypeError, match=r"shlex\.split"):
        ProcessChannel("cat -u")  # a str is a sequence of str: only the check at run time catches it


def test_an_argv_that_is_not_a_list_raises_type_error() -> None:
    with pytest.raises(TypeError, match="list of arguments"):
        ProcessChannel(iter(["cat"]))  # type: ignore[arg-type]


def test_an_argument_that_is_not_text_raises_type_error() -> None:
    with pytest.raises(TypeError, match="int"):
        ProcessChannel(["sleep", 1])  # type: ignore[list-item]


def test_a_bad_option_starts_nothing_and_leaks_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    before = open_fd_count()
    with pytest.raises(ValueError, match="buffering"):
        ProcessChannel(["touch", str(marker)], buffering="words")
    assert open_fd_count() == before
    assert not marker.exists()


def test_many_children_leave_no_descriptors_and_no_zombies() -> None:
    before = open_fd_count()
    pids = []
    for _ in range(20):
        channel = ProcessChannel(["cat"], stderr=subprocess.PIPE)
        channel.write(b"x")
        pids.append(channel.pid)
        channel.close()
    assert open_fd_count() == before
    assert all(reaped(pid) for pid in pids)


# -- the channel contract ---------------------------------------------------------------------


class EchoingChild(Peer):
    """The ``cat`` child of a ``ProcessChannel``: what is written comes back."""

    def __init__(self, channel: ProcessChannel) -> None:
        self._channel = channel

    def receive(self, size: int, timeout: float = WAIT) -> bytes:
        return read_exactly(self._channel, size, timeout)

    def close(self) -> None:
        self._channel.abort()


class TestProcessChannelContract(ChannelContract[EchoingChild]):
    """``ProcessChannel(['cat'])`` keeps the contract every channel keeps."""

    leak_rounds = 20

    def open_pair(self, workdir: Path, max_pending: int) -> tuple[ProcessChannel, EchoingChild]:
        channel = ProcessChannel(["cat"], max_pending=max_pending)
        return channel, EchoingChild(channel)


# -- many children, one deadline -------------------------------------------------------------

STUBBORN = 8


def stubborn_children(count: int, terminate_timeout: float) -> list[ProcessChannel]:
    children = [ProcessChannel(IGNORES_SIGTERM, terminate_timeout=terminate_timeout) for _ in range(count)]
    for child in children:
        wait_for_ready(child)
    return children


def test_close_processes_ends_children_that_ignore_sigterm_under_one_deadline() -> None:
    children = stubborn_children(STUBBORN, terminate_timeout=0.5)
    started = time.monotonic()

    close_processes(children, timeout=0.1)

    # One by one they would take 8 x (0.1 + 0.5) = 4.8 s; together about 0.6 s.
    assert time.monotonic() - started < 0.6 * STUBBORN / 2
    assert all(child.returncode == -signal.SIGKILL for child in children)
    assert all(reaped(child.pid) for child in children)


def test_close_all_ends_the_children_of_a_poller_under_one_deadline() -> None:
    children = stubborn_children(STUBBORN, terminate_timeout=0.5)
    poller = Poller()
    for child in children:
        poller.register(child)
    started = time.monotonic()

    poller.close_all(timeout=0.1)

    assert time.monotonic() - started < 0.6 * STUBBORN / 2
    assert all(child.closed and child.returncode == -signal.SIGKILL for child in children)
    poller.close()


def test_close_processes_lets_children_that_exit_on_end_of_input_exit() -> None:
    children = [ProcessChannel(["cat"]) for _ in range(3)]

    close_processes(children)

    assert [child.returncode for child in children] == [0, 0, 0]
    assert all(child.closed for child in children)


def test_close_processes_sends_sigterm_only_to_those_still_running() -> None:
    quick = ProcessChannel(["cat"])
    slow = ProcessChannel(["sh", "-c", "echo ready; exec sleep 60"])
    wait_for_ready(slow)

    close_processes([quick, slow], timeout=0.5)

    assert quick.returncode == 0
    assert slow.returncode == -signal.SIGTERM


def test_close_processes_closes_a_pty_child_by_its_own_close() -> None:
    children = [PtyProcessChannel(["cat"]), ProcessChannel(["cat"])]

    close_processes(children)

    assert all(child.closed and child.returncode is not None for child in children)
