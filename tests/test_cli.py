"""The ``channels`` command: ``relay`` and ``hub``, in-process and against socat and nc."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shlex
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
import trustme

from channels import Channel, EndpointClosedException, PipeChannel, ProcessChannel, SocketChannel, connect, listen
from channels.cli import Endpoint, Hub, Relay, main, open_endpoint, parse_endpoint
from channels.testing import TestChannel

from .helpers import WAIT, read_lines, read_to_end, wait_until

needs_socat = pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed (apt-get install socat)")
needs_nc = pytest.mark.skipif(shutil.which("nc") is None, reason="nc is not installed (apt-get install netcat-openbsd)")


def channels_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "channels", *args]


def wait_for_socket(path: Path) -> None:
    """Wait until a server answers on the Unix socket ``path``."""

    def answers() -> bool:
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(str(path))
            except OSError:
                return False
            return True

    wait_until(answers)


class RunningHub:
    """A ``channels hub`` child process whose log goes to a file."""

    def __init__(self, path: Path, log: Path, *options: str) -> None:
        self.path = path
        self.log_path = log
        self._log: IO[bytes] = log.open("wb")
        self.process = subprocess.Popen(channels_command("hub", f"unix:{path}", *options), stderr=self._log)
        wait_until(lambda: "listening on" in self.log())

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_for_joined(self, count: int) -> None:
        wait_until(lambda: self.log().count(" joined ") >= count)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(WAIT)
        finally:
            self._log.close()


@pytest.fixture
def hub_factory(tmp_path: Path) -> Iterator[Callable[..., RunningHub]]:
    """Start ``channels hub OPTIONS...`` on a socket in ``tmp_path``; stopped at teardown."""
    started: list[RunningHub] = []

    def start(*options: str) -> RunningHub:
        hub = RunningHub(tmp_path / "hub.sock", tmp_path / "hub.log", *options)
        started.append(hub)
        return hub

    yield start
    for hub in started:
        if hub.process.poll() is None:
            hub.process.kill()
        hub.stop()


def hub_client(path: Path) -> Channel:
    return connect(f"unix:{path}", buffering="line")


def turn_until(step: Callable[[float], None], predicate: Callable[[], object]) -> None:
    """Run ``step`` (a relay's or hub's turn) until ``predicate`` holds; bounded by WAIT."""

    def turned() -> object:
        step(0.01)
        return predicate()

    wait_until(turned)


# -- argument parsing, in-process ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("tcp-listen:9000", "tcp:127.0.0.1:9000"),
        ("tcp-listen:127.0.0.1:9000", "tcp:127.0.0.1:9000"),
        ("TCP-LISTEN:[::1]:9000", "tcp:[::1]:9000"),
        ("unix-listen:app.sock", "unix:app.sock"),
    ],
)
def test_listen_forms_name_a_listening_address(text: str, address: str) -> None:
    assert parse_endpoint(text) == Endpoint(text, address, listening=True)


@pytest.mark.parametrize(
    "text", ["stdio", "tcp:example.org:80", "unix:x.sock", "exec:cat -n", "pty:cat -n", "fd:3,4", "TLS:h:443"]
)
def test_connect_forms_pass_through_unchanged(text: str) -> None:
    assert parse_endpoint(text) == Endpoint(text, text)


@pytest.mark.parametrize("text", ["", "bogus:1", "tcp", "tcp-listen:", "unix-listen:", "stdout"])
def test_unknown_endpoints_are_refused_naming_the_forms(text: str) -> None:
    with pytest.raises(ValueError, match="tcp-listen"):
        parse_endpoint(text)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["relay", "stdio"],
        ["relay", "bogus:1", "stdio"],
        ["relay", "stdio", "tcp:no-port"],
        ["relay", "--max-pending", "0", "stdio", "exec:cat"],
        ["hub", "exec:cat"],
        ["hub", "unix:x.sock", "--max-line", "zero"],
        ["hub", "unix:x.sock", "--max-line", "100", "--max-pending", "100"],
        ["hub", "unix:x.sock", "--log-level", "loud"],
        ["frobnicate"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "error" in capsys.readouterr().err


def test_help_shows_examples_and_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["relay", "--help"]) == 0
    out = capsys.readouterr().out
    assert "channels relay stdio tcp:example.org:80" in out
    assert "channels relay tcp-listen:127.0.0.1:9000 exec:cat" in out
    assert "exit status" in out


def test_bad_arguments_exit_2_from_the_command_line() -> None:
    done = subprocess.run(channels_command("relay", "stdio"), check=False, capture_output=True, text=True, timeout=WAIT)
    assert done.returncode == 2
    assert "usage:" in done.stderr


# -- the relay pump, in-process --------------------------------------------------


def socket_pair() -> tuple[SocketChannel, SocketChannel]:
    """(the relay's end, the test's end) of a connected pair."""
    ours, theirs = socket.socketpair()
    return SocketChannel(ours), SocketChannel(theirs)


def test_relay_moves_bytes_both_ways_and_passes_each_end_on() -> None:
    left, left_peer = socket_pair()
    right, right_peer = socket_pair()
    with Relay(left, right) as relay, left_peer, right_peer:
        left_peer.write(b"to the right")
        right_peer.write(b"to the left")
        left_peer.shutdown_write()
        turn_until(relay.step, lambda: relay.result().forward == 12)
        for _ in range(5):  # the end goes out once the data has
            relay.step(0.01)
        assert read_to_end(right_peer) == [b"to the right"]  # data, then the end
        right_peer.shutdown_write()
        result = relay.run(timeout=WAIT)
        assert b"".join(read_to_end(left_peer)) == b"to the left"
    assert (result.forward, result.backward, result.error) == (12, 11, None)
    assert not relay.running


def test_relay_stops_reading_a_side_while_the_other_holds_too_much() -> None:
    left, left_peer = socket_pair()
    right, right_peer = socket_pair()
    bound = 64 * 1024
    data = os.urandom(4 * 1024 * 1024)
    sent = 0
    with Relay(left, right, max_pending=bound) as relay, left_peer, right_peer:
        deadline = time.monotonic() + WAIT
        # The right peer reads nothing: the relay must stop reading the left
        # side, so the left peer's output piles up in its own channel.
        while left_peer.pending_output < 1024 * 1024:
            assert time.monotonic() < deadline
            assert sent < len(data), "the relay never stopped reading"
            left_peer.write(data[sent : sent + 65536])
            sent += 65536
            left_peer.flush(0)
            relay.step(0.001)
            assert right.pending_output <= bound + left.read_size
        received = bytearray()
        while len(received) < sent:
            assert time.monotonic() < deadline
            left_peer.flush(0)
            relay.step(0.001)
            received += right_peer.read()
        assert bytes(received) == data[:sent]


def test_relay_reports_a_peer_that_is_gone_as_an_error() -> None:
    left, left_peer = socket_pair()
    right, right_peer = socket_pair()
    right_peer.close()
    with Relay(left, right, names=("a", "b")) as relay, left_peer:
        left_peer.write(b"x" * 100_000)
        result = relay.run(timeout=WAIT)
    assert result.error is not None
    assert result.error.startswith("a -> b")


def test_relay_waits_for_the_other_side_when_an_end_cannot_be_passed_on(caplog: pytest.LogCaptureFixture) -> None:
    left, left_peer = socket_pair()
    right = TestChannel()  # it cannot half-close
    caplog.set_level(logging.INFO, logger="channels.cli")
    with Relay(left, right) as relay, left_peer:
        left_peer.write(b"ping")
        left_peer.shutdown_write()
        turn_until(relay.step, lambda: "no half-close" in caplog.text)
        assert right.get() == b"ping"
        for _ in range(10):
            relay.step(0.01)
        assert relay.running
        right.put(b"pong")
        right.put_eof()
        result = relay.run(timeout=WAIT)
        assert read_to_end(left_peer) == [b"pong"]
    assert result.error is None
    assert "no half-close" in caplog.text


def test_relay_run_gives_up_after_its_timeout() -> None:
    left, left_peer = socket_pair()
    right, right_peer = socket_pair()
    with Relay(left, right) as relay, left_peer, right_peer:
        result = relay.run(timeout=0.05)
    assert result.error is not None
    assert "did not end" in result.error


def test_relay_refuses_a_non_positive_bound() -> None:
    left, left_peer = socket_pair()
    with left, left_peer, pytest.raises(ValueError, match="max_pending"):
        Relay(left, left_peer, max_pending=0)


# -- the hub, in-process ---------------------------------------------------------


def test_hub_relays_lines_drops_oversize_ones_and_stops(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="channels")
    hub = Hub(listen(f"unix:{tmp_path / 'hub.sock'}"), max_line=100, max_pending=1000)
    try:
        a = hub_client(tmp_path / "hub.sock")
        b = hub_client(tmp_path / "hub.sock")
        with a, b:
            turn_until(hub.step, lambda: hub.client_count == 2)
            a.write(b"y" * 500 + b"\n", b"short\n")
            b.write(b"unterminated")
            b.shutdown_write()
            turn_until(hub.step, lambda: hub.client_count == 1)
            assert read_lines(b, 1) == [b"short\n"]
        hub.stop()
        hub.serve()  # returns at once: stop() came first
    finally:
        hub.close()
    assert "longer than 100" in caplog.text
    assert "unterminated last piece" in caplog.text


def test_hub_refuses_a_bound_that_cannot_hold_one_line(tmp_path: Path) -> None:
    with listen(f"unix:{tmp_path / 'hub.sock'}") as server, pytest.raises(ValueError, match="max_pending"):
        Hub(server, max_line=100, max_pending=100)


# -- relay against real programs -------------------------------------------------


@needs_socat
def test_relay_carries_10_mb_between_a_socat_listener_and_exec_cat(tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(os.urandom(10 * 1024 * 1024))
    target = tmp_path / "out.bin"
    path = tmp_path / "socat.sock"
    # socat sends the file, writes what comes back, and half-closes at the end of the file.
    peer = subprocess.Popen(["socat", "-t", "30", f"UNIX-LISTEN:{path}", f"OPEN:{source}!!CREATE:{target}"])
    try:
        wait_until(path.exists)
        done = subprocess.run(
            channels_command("relay", "-v", f"unix:{path}", "exec:cat"),
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert peer.wait(WAIT) == 0
    finally:
        if peer.poll() is None:
            peer.kill()
            peer.wait()
    assert hashlib.sha256(target.read_bytes()).hexdigest() == hashlib.sha256(source.read_bytes()).hexdigest()
    assert f"unix:{path} -> exec:cat: 10485760 bytes" in done.stderr
    assert f"exec:cat -> unix:{path}: 10485760 bytes" in done.stderr


@needs_socat
def test_stdin_pipe_end_reaches_the_peer_as_eof_and_the_reply_still_comes_back(tmp_path: Path) -> None:
    path = tmp_path / "peer.sock"
    received = tmp_path / "received"
    # The peer answers only after it has seen the end of its input: the byte count.
    peer = subprocess.Popen(["socat", f"UNIX-LISTEN:{path}", f"SYSTEM:cat >{received}; wc -c <{received}"])
    try:
        wait_until(path.exists)
        pipeline = f"printf 'one\\ntwo\\n' | {shlex.join(channels_command('relay', 'stdio', f'unix:{path}'))}"
        done = subprocess.run(pipeline, shell=True, check=False, capture_output=True, text=True, timeout=WAIT)
        assert peer.wait(WAIT) == 0
    finally:
        if peer.poll() is None:
            peer.kill()
            peer.wait()
    assert done.returncode == 0, done.stderr
    assert received.read_bytes() == b"one\ntwo\n"
    assert done.stdout.strip() == "8"


@needs_nc
def test_tcp_listen_accepts_one_nc_client_and_relays_it_to_exec(tmp_path: Path) -> None:
    log = tmp_path / "relay.log"
    with log.open("wb") as stderr:
        relay = subprocess.Popen(
            channels_command("relay", "-v", "tcp-listen:127.0.0.1:0", "exec:tr a-z A-Z"), stderr=stderr
        )
    try:
        wait_until(lambda: "listening on 127.0.0.1:" in log.read_text())
        port = log.read_text().split("listening on 127.0.0.1:")[1].split()[0]
        client = subprocess.run(
            ["nc", "-N", "127.0.0.1", port],
            input=b"shout\n",
            capture_output=True,
            timeout=WAIT,
            check=True,
        )
        assert relay.wait(WAIT) == 0
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait()
    assert client.stdout == b"SHOUT\n"
    assert "accepted a client from 127.0.0.1:" in log.read_text()


@pytest.mark.parametrize(
    ("command", "given", "expected"),
    [
        ("pty:sort", b"pear\napple\n", b"apple\r\npear\r\n"),  # the end of stdin reaches sort as ^D
        ("pty:cat", b"no newline", b"no newline"),  # an unfinished last line, then the end
        ("pty:sh -c 'test -t 0 && test -t 1 && echo on a terminal'", b"", b"on a terminal\r\n"),
    ],
    ids=["sort", "unfinished-line", "is-a-terminal"],
)
def test_relay_runs_a_program_on_a_pseudo_terminal(command: str, given: bytes, expected: bytes) -> None:
    done = subprocess.run(
        channels_command("relay", "stdio", command), input=given, capture_output=True, timeout=WAIT, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected


def test_relay_from_a_terminal_child_to_a_socket_passes_its_end_on(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)
        server.settimeout(WAIT)
        relay = subprocess.Popen(channels_command("relay", "pty:printf 'a\\nb\\n'", f"unix:{path}"))
        try:
            peer, _ = server.accept()
            with peer:
                peer.settimeout(WAIT)
                received = b""
                while chunk := peer.recv(4096):  # until the relay passes the child's end on
                    received += chunk
                peer.shutdown(socket.SHUT_WR)
            assert relay.wait(WAIT) == 0
        finally:
            if relay.poll() is None:
                relay.kill()
                relay.wait()
    assert received == b"a\r\nb\r\n"


def test_verbose_summary_counts_bytes_each_way_and_the_duration() -> None:
    done = subprocess.run(
        channels_command("relay", "-v", "stdio", "exec:sed s/^/reply:/"),
        input="abc\n",
        check=False,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "reply:abc\n"
    lines = done.stderr.splitlines()
    assert "channels relay: stdio -> exec:sed s/^/reply:/: 4 bytes" in lines
    assert "channels relay: exec:sed s/^/reply:/ -> stdio: 10 bytes" in lines
    assert any(line.startswith("channels relay: ") and line.endswith(" s") for line in lines)


def test_unreachable_endpoint_exits_1_with_a_one_line_message(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # free once closed: nothing listens there
    for address in (f"tcp:127.0.0.1:{port}", f"unix:{tmp_path / 'nobody.sock'}"):
        done = subprocess.run(
            channels_command("relay", "stdio", address),
            check=False,
            capture_output=True,
            text=True,
            timeout=WAIT,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 1
        assert done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith("channels relay: error: ")
        assert "Traceback" not in done.stderr


# -- the hub against real programs -----------------------------------------------


@needs_socat
@needs_nc
def test_socat_and_nc_clients_chat_through_the_hub(hub_factory: Callable[..., RunningHub]) -> None:
    hub = hub_factory()
    alice = ProcessChannel(["socat", "-", f"UNIX-CONNECT:{hub.path}"], buffering="line")
    bob = ProcessChannel(["socat", "-", f"UNIX-CONNECT:{hub.path}"], buffering="line")
    carol = ProcessChannel(["nc", "-U", str(hub.path)], buffering="line")
    with alice, bob, carol:
        hub.wait_for_joined(3)
        alice.write(b"hello from alice\n")
        assert read_lines(bob, 1) == [b"hello from alice\n"]
        assert read_lines(carol, 1) == [b"hello from alice\n"]
        carol.write(b"carol here\n")
        assert read_lines(alice, 1) == [b"carol here\n"]
        assert read_lines(bob, 1) == [b"carol here\n"]
        assert alice.read() == b""  # nobody hears themselves
    assert hub.stop() == 0


def test_hub_refuses_an_oversize_line_without_disturbing_others(hub_factory: Callable[..., RunningHub]) -> None:
    hub = hub_factory("--max-line", "100")
    with hub_client(hub.path) as a, hub_client(hub.path) as b:
        hub.wait_for_joined(2)
        a.write(b"z" * 5000 + b"\n", b"after\n")
        assert read_lines(b, 1) == [b"after\n"]
        b.write(b"still there?\n")
        assert read_lines(a, 1) == [b"still there?\n"]  # the sender stayed connected
    assert hub.stop() == 0
    assert "longer than 100" in hub.log()


def test_hub_drops_a_client_that_never_reads_and_the_others_keep_receiving(
    hub_factory: Callable[..., RunningHub],
) -> None:
    # The bound must leave room for a burst: one poll may read read_size
    # (64 KiB) from the sender, all of it for each reader at once.
    hub = hub_factory("--max-line", "2000", "--max-pending", str(1024 * 1024))
    line = b"m" * 999 + b"\n"
    count = 3000  # 3 MB: more than the kernel's buffers and the bound together
    stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    with stalled, hub_client(hub.path) as sender, hub_client(hub.path) as reader:
        stalled.connect(str(hub.path))
        hub.wait_for_joined(3)
        got = 0
        sent = 0
        deadline = time.monotonic() + WAIT
        while got < count:
            assert time.monotonic() < deadline, f"{got} of {count} lines arrived; {hub.log()}"
            if sent < count and sender.pending_output < 65536:
                sender.write(line * 10)
                sent += 10
            sender.flush(0)
            while reader.read():
                got += 1
        wait_until(lambda: "dropped client" in hub.log())
    assert hub.stop() == 0, hub.log()
    assert got == count
    assert "not reading" in hub.log()


def test_sigterm_stops_the_hub_cleanly_and_removes_its_socket(hub_factory: Callable[..., RunningHub]) -> None:
    hub = hub_factory()
    with hub_client(hub.path) as client:
        hub.wait_for_joined(1)
        assert hub.stop() == 0
        assert read_to_end(client) == []  # the hub closed the connection
    assert not hub.path.exists()
    assert "Traceback" not in hub.log()


def test_sigint_stops_the_hub_cleanly_too(hub_factory: Callable[..., RunningHub]) -> None:
    hub = hub_factory()
    hub.process.send_signal(signal.SIGINT)
    assert hub.process.wait(WAIT) == 0
    assert not hub.path.exists()
    assert "Traceback" not in hub.log()


def test_hub_on_tcp_reports_its_port_and_an_address_in_use_exits_1(tmp_path: Path) -> None:
    log = tmp_path / "hub.log"
    with log.open("wb") as stderr:
        hub = subprocess.Popen(channels_command("hub", "tcp:127.0.0.1:0"), stderr=stderr)
    try:
        wait_until(lambda: "listening on 127.0.0.1:" in log.read_text())
        port = log.read_text().split("listening on 127.0.0.1:")[1].split()[0]
        with connect(f"tcp:127.0.0.1:{port}"):
            wait_until(lambda: "from 127.0.0.1:" in log.read_text())
            busy = subprocess.run(
                channels_command("hub", f"tcp:127.0.0.1:{port}"),
                check=False,
                capture_output=True,
                text=True,
                timeout=WAIT,
            )
            assert busy.returncode == 1
            assert busy.stderr.startswith("channels hub: error: ")
        hub.send_signal(signal.SIGTERM)
        assert hub.wait(WAIT) == 0
    finally:
        if hub.poll() is None:
            hub.kill()
            hub.wait()


def test_relay_refuses_a_channel_it_cannot_read() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    sink_only = PipeChannel(sink=write_end)
    left, left_peer = socket_pair()
    with sink_only, left, left_peer, pytest.raises(ValueError, match="cannot be read"):
        Relay(left, sink_only)


def test_output_to_a_side_whose_input_has_ended_still_flows_to_the_last_byte() -> None:
    left, left_peer = socket_pair()
    right, right_peer = socket_pair()
    data = os.urandom(2 * 1024 * 1024)
    with Relay(left, right) as relay, left_peer, right_peer:
        left_peer.shutdown_write()  # the left side's input ends at once...
        right_peer.write(data)  # ...and a lot still has to go to it
        received = bytearray()
        shut = False
        deadline = time.monotonic() + WAIT
        while relay.running:
            assert time.monotonic() < deadline
            if not shut and right_peer.flush(0):
                right_peer.shutdown_write()
                shut = True
            relay.step(0.01)
            if relay.result().backward > len(data) // 2:
                # A slow reader: only once half is through. It may see the end here.
                with contextlib.suppress(EndpointClosedException):
                    received += left_peer.read()
        assert read_to_end(right_peer) == []
        with contextlib.suppress(EndpointClosedException):
            received += b"".join(read_to_end(left_peer))
    assert bytes(received) == data


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
    return client, accepted


def reset(sock: socket.socket) -> None:
    """Close ``sock`` so that its peer gets a reset, not an end of file."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_a_reset_ends_the_relay_with_exit_1_and_a_one_line_message() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        relay = subprocess.Popen(
            channels_command("relay", f"tcp:127.0.0.1:{port}", "exec:cat"), stderr=subprocess.PIPE, text=True
        )
        try:
            peer, _ = server.accept()
            peer.sendall(b"hello\n")
            assert peer.recv(6) == b"hello\n"
            reset(peer)
            _, err = relay.communicate(timeout=WAIT)
        finally:
            if relay.poll() is None:
                relay.kill()
                relay.wait()
    assert relay.returncode == 1
    assert err.startswith("channels relay: error: ")
    assert err.count("\n") == 1, err


@needs_socat
def test_unix_listen_serves_one_client_and_removes_its_socket_file(tmp_path: Path) -> None:
    path = tmp_path / "relay.sock"
    log = tmp_path / "relay.log"
    with log.open("wb") as stderr:
        relay = subprocess.Popen(channels_command("relay", "-v", f"unix-listen:{path}", "exec:rev"), stderr=stderr)
    try:
        wait_until(lambda: "listening on" in log.read_text())
        client = subprocess.run(
            ["socat", "-t", "5", "-", f"UNIX-CONNECT:{path}"],
            input=b"abc\n",
            capture_output=True,
            timeout=WAIT,
            check=True,
        )
        assert relay.wait(WAIT) == 0
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait()
    assert client.stdout == b"cba\n"
    assert not path.exists()


def test_sigint_while_waiting_for_a_client_exits_130_quietly(tmp_path: Path) -> None:
    path = tmp_path / "relay.sock"
    relay = subprocess.Popen(channels_command("relay", f"unix-listen:{path}", "exec:cat"), stderr=subprocess.PIPE)
    try:
        wait_until(path.exists)
        relay.send_signal(signal.SIGINT)
        _, err = relay.communicate(timeout=WAIT)
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait()
    assert relay.returncode == 130
    assert b"Traceback" not in err
    assert not path.exists()


def test_hub_forgets_a_client_whose_connection_broke(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="channels.cli")
    hub = Hub(listen(f"unix:{tmp_path / 'hub.sock'}"))
    try:
        with hub_client(tmp_path / "hub.sock") as sender:
            broken = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            broken.connect(str(tmp_path / "hub.sock"))
            turn_until(hub.step, lambda: hub.client_count == 2)
            broken.close()
            sender.write(b"anyone?\n" * 1000)
            turn_until(hub.step, lambda: hub.client_count == 1)
    finally:
        hub.close()
    # Whether the hub saw the end or a failed write first, the client is gone and said so.
    assert "dropped client 2" in caplog.text or ("client 2 (pid" in caplog.text and " left " in caplog.text)


# -- no traceback reaches a user -------------------------------------------------


def run_channels(*args: str, **options: Any) -> subprocess.CompletedProcess[str]:
    options.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(channels_command(*args), check=False, capture_output=True, text=True, timeout=WAIT, **options)


def error_line(stderr: str) -> str:
    """The one error line of a failed command, checking there is no other (but usage)."""
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if not line.startswith(("usage:", " "))]
    assert len(lines) == 1, stderr
    return lines[0]


def test_a_descriptor_number_too_large_exits_2_naming_it() -> None:
    done = run_channels("relay", "fd:2147483648", "stdio")
    assert done.returncode == 2
    assert "fd:2147483648" in error_line(done.stderr)


def test_a_read_only_side_makes_the_relay_one_way(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_bytes(b"".join(b"line %d\n" % n for n in range(20000)))
    with source.open("rb") as readable:
        done = run_channels("relay", "-v", f"fd:{readable.fileno()}", "exec:cat", pass_fds=(readable.fileno(),))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "can only be read" in done.stderr
    assert f"-> exec:cat: {source.stat().st_size} bytes" in done.stderr


def test_a_read_only_side_delivers_its_input_to_the_end(tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(os.urandom(300_000))
    copy = tmp_path / "copy.bin"
    with source.open("rb") as readable:
        command = f"exec:sh -c 'cat >{copy}; echo done'"
        done = run_channels("relay", f"fd:{readable.fileno()}", command, pass_fds=(readable.fileno(),))
    assert done.returncode == 0, done.stderr
    assert copy.read_bytes() == source.read_bytes()


def test_relay_drops_what_comes_for_a_side_that_can_only_be_read() -> None:
    read_end, write_end = os.pipe()
    read_only = PipeChannel(read_end)
    right, right_peer = socket_pair()
    with Relay(read_only, right) as relay, right_peer:
        right_peer.write(b"nowhere to go")
        os.write(write_end, b"to the right")
        os.close(write_end)
        turn_until(relay.step, lambda: relay.result().forward == 12)
        right_peer.shutdown_write()
        result = relay.run(timeout=WAIT)
        assert read_to_end(right_peer) == [b"to the right"]
    assert (result.forward, result.backward, result.error) == (12, 0, None)


def test_an_unexpected_error_is_one_line_with_its_type(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(self: Relay, timeout: float | None = None) -> None:
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr(Relay, "run", broken)
    a, a_peer = socket.socketpair()
    b, b_peer = socket.socketpair()
    with a, a_peer, b, b_peer:
        # The relay owns what fd: names and closes it: give it duplicates.
        assert main(["relay", f"fd:{os.dup(a.fileno())}", f"fd:{os.dup(b.fileno())}"]) == 1
    assert capsys.readouterr().err == "channels relay: error: RuntimeError: something broke\n"


# -- the relay does not linger for a side nobody reads ----------------------------


def test_close_reads_a_child_that_answers_so_that_it_takes_its_input(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="channels")
    child = ProcessChannel(["cat"])
    right, right_peer = socket_pair()
    relay = Relay(child, right, max_pending=64 * 1024)
    try:
        chunk = b"x" * 65536
        deadline = time.monotonic() + WAIT
        # The peer never reads: the echo piles up until the relay stops
        # reading cat, cat stops reading its input, and the input waits.
        while child.pending_output == 0 or right.pending_output <= relay.max_pending:
            assert time.monotonic() < deadline
            if right_peer.pending_output < 1024 * 1024:
                right_peer.write(chunk)
            right_peer.flush(0)
            relay.step(0.001)
        right_peer.abort()
        result = relay.run(timeout=WAIT)
        assert result.error is not None
        assert child.pending_output > 0
    finally:
        relay.close(timeout=WAIT)
    # Not read, cat would have stopped taking its input, and the close would
    # have waited WAIT seconds for it, then dropped the rest with a warning.
    assert "dropped" not in caplog.text
    assert child.returncode is not None


def relay_log_port(log: Path) -> int:
    wait_until(lambda: "listening on 127.0.0.1:" in log.read_text())
    return int(log.read_text().split("listening on 127.0.0.1:")[1].split()[0])


# The close linger is 5 s: a relay that waited for cat would take that long.
PROMPT = 3.0


def test_tcp_listen_to_cat_exits_soon_after_the_client_dies(tmp_path: Path) -> None:
    log = tmp_path / "relay.log"
    with log.open("wb") as stderr:
        relay = subprocess.Popen(channels_command("relay", "-v", "tcp-listen:127.0.0.1:0", "exec:cat"), stderr=stderr)
    try:
        client = socket.create_connection(("127.0.0.1", relay_log_port(log)), timeout=WAIT)
        client.setblocking(False)
        chunk = b"y" * 65536
        deadline = time.monotonic() + WAIT
        idle_since = time.monotonic()
        # Send without reading until nothing more is taken for a while: the
        # echo has filled every buffer on the way back, cat is blocked.
        while time.monotonic() - idle_since < 0.5:
            assert time.monotonic() < deadline
            try:
                client.send(chunk)
                idle_since = time.monotonic()
            except BlockingIOError:
                time.sleep(0.01)
        reset(client)
        died = time.monotonic()
        assert relay.wait(WAIT) == 1
        assert time.monotonic() - died < PROMPT
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait()
    assert "Traceback" not in log.read_text()


def test_a_pipeline_whose_reader_leaves_early_exits_soon() -> None:
    pipeline = f"yes | {shlex.join(channels_command('relay', 'stdio', 'exec:cat'))} | head -c 10"
    started = time.monotonic()
    done = subprocess.run(pipeline, shell=True, check=False, capture_output=True, text=True, timeout=WAIT)
    assert time.monotonic() - started < PROMPT
    assert done.stdout == "y\n" * 5
    assert "Traceback" not in done.stderr


# -- TLS: --cafile, tls-listen:, and certificates that do not verify -----------------


@dataclass(frozen=True)
class Certificates:
    ca: str  # the private CA's certificate
    cert: str  # the server's chain, for localhost and 127.0.0.1
    key: str  # its private key


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    directory = tmp_path_factory.mktemp("certificates")
    authority = trustme.CA()
    issued = authority.issue_cert("localhost", "127.0.0.1")
    files = Certificates(str(directory / "ca.pem"), str(directory / "cert.pem"), str(directory / "key.pem"))
    authority.cert_pem.write_to_path(files.ca)
    issued.cert_chain_pems[0].write_to_path(files.cert)
    issued.private_key_pem.write_to_path(files.key)
    return files


@contextlib.contextmanager
def tls_server(certificates: Certificates) -> Iterator[tuple[socket.socket, ssl.SSLContext]]:
    """A listening socket on 127.0.0.1 and the server context to wrap its clients with."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates.cert, certificates.key)
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(WAIT)
        yield server, context


def test_cafile_trusts_a_private_ca_for_a_tls_address(certificates: Certificates, tmp_path: Path) -> None:
    given = tmp_path / "given"
    given.write_bytes(b"ping\n")
    with tls_server(certificates) as (server, context), given.open("rb") as stdin:
        port = server.getsockname()[1]
        relay = subprocess.Popen(
            channels_command("relay", "--cafile", certificates.ca, "stdio", f"tls:127.0.0.1:{port}"),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            accepted, _ = server.accept()
            with context.wrap_socket(accepted, server_side=True) as peer:
                peer.settimeout(WAIT)
                assert peer.recv(5) == b"ping\n"
                peer.sendall(b"pong\n")
                peer.unwrap().close()  # close_notify: the relay's TLS input ends cleanly
            out, err = relay.communicate(timeout=WAIT)
        finally:
            if relay.poll() is None:
                relay.kill()
                relay.wait()
    assert relay.returncode == 0, err
    assert out == b"pong\n"


def test_a_certificate_that_does_not_verify_is_one_line_naming_the_address_and_why(
    certificates: Certificates,
) -> None:
    with tls_server(certificates) as (server, context):
        address = f"tls:127.0.0.1:{server.getsockname()[1]}"
        relay = subprocess.Popen(
            channels_command("relay", "stdio", address), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        try:
            accepted, _ = server.accept()
            with pytest.raises(ssl.SSLError), context.wrap_socket(accepted, server_side=True):
                pass  # the client refuses the certificate: its CA is not trusted
            _, err = relay.communicate(timeout=WAIT)
        finally:
            if relay.poll() is None:
                relay.kill()
                relay.wait()
    assert relay.returncode == 1
    line = error_line(err)
    assert line.startswith(f"channels relay: error: {address}: ")
    assert "certificate" in line
    assert "local issuer" in line  # OpenSSL's reason: the CA is unknown


def test_a_tls_listen_endpoint_without_a_certificate_is_refused_before_listening() -> None:
    with pytest.raises(ValueError, match="--cert"):
        open_endpoint(parse_endpoint("tls-listen:127.0.0.1:0"))


def test_tls_listen_serves_one_client_with_the_given_certificate(certificates: Certificates, tmp_path: Path) -> None:
    log = tmp_path / "relay.log"
    options = ("--cert", certificates.cert, "--key", certificates.key)
    with log.open("wb") as stderr:
        relay = subprocess.Popen(
            channels_command("relay", "-v", *options, "tls-listen:127.0.0.1:0", "exec:cat"), stderr=stderr
        )
    try:
        port = relay_log_port(log)
        context = ssl.create_default_context(cafile=certificates.ca)
        with (
            socket.create_connection(("127.0.0.1", port), timeout=WAIT) as plain,
            context.wrap_socket(plain, server_hostname="localhost") as client,
        ):
            client.sendall(b"echo\n")
            assert client.recv(5) == b"echo\n"
            client.unwrap()  # close_notify: cat's input ends, and so does the relay
        assert relay.wait(WAIT) == 0
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait()
    assert "accepted a client from 127.0.0.1:" in log.read_text()


def test_a_tls_listen_client_that_refuses_the_certificate_ends_the_relay_with_one_line(
    certificates: Certificates, tmp_path: Path
) -> None:
    relay = subprocess.Popen(
        channels_command(
            "relay", "-v", "--cert", certificates.cert, "--key", certificates.key, "tls-listen:127.0.0.1:0", "exec:cat"
        ),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert relay.stderr is not None
        first = relay.stderr.readline()
        port = int(first.split("listening on 127.0.0.1:")[1])
        with (
            socket.create_connection(("127.0.0.1", port), timeout=WAIT) as plain,
            pytest.raises(ssl.SSLCertVerificationError),
        ):
            ssl.create_default_context().wrap_socket(plain, server_hostname="localhost")
        _, err = relay.communicate(timeout=WAIT)
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait()
    assert relay.returncode == 1
    logged = [line for line in err.splitlines(keepends=True) if line.startswith("channels.cli: INFO: ")]
    assert error_line(err.replace("".join(logged), "")).startswith("channels relay: error: tls-listen:127.0.0.1:0: ")


def test_the_hub_serves_tls_with_its_certificate(certificates: Certificates, tmp_path: Path) -> None:
    log = tmp_path / "hub.log"
    options = ("--cert", certificates.cert, "--key", certificates.key)
    with log.open("wb") as stderr:
        hub = subprocess.Popen(channels_command("hub", "tls:127.0.0.1:0", *options), stderr=stderr)
    try:
        port = relay_log_port(log)
        address = f"tls:127.0.0.1:{port}"
        with (
            connect(address, cafile=certificates.ca, buffering="line") as a,
            connect(address, cafile=certificates.ca, buffering="line") as b,
        ):
            wait_until(lambda: log.read_text().count(" joined ") == 2)
            a.write(b"over tls\n")
            assert read_lines(b, 1) == [b"over tls\n"]
        hub.send_signal(signal.SIGTERM)
        assert hub.wait(WAIT) == 0
    finally:
        if hub.poll() is None:
            hub.kill()
            hub.wait()


@pytest.mark.parametrize(
    ("command", "needs"),
    [
        (["relay", "--cafile", "{ca}", "stdio", "exec:cat"], "--cafile is for tls"),
        (["relay", "tls-listen:0", "exec:cat"], "needs --cert"),
        (["relay", "--cert", "{cert}", "tcp-listen:0", "exec:cat"], "--cert is for tls-listen"),
        (["relay", "--key", "{key}", "stdio", "exec:cat"], "--key goes with --cert"),
        (["relay", "--cafile", "{missing}", "stdio", "tls:localhost:1"], "missing.pem"),
        (["hub", "tls:127.0.0.1:0"], "needs --cert"),
        (["hub", "--cert", "{cert}", "unix:x.sock"], "--cert is for a tls"),
        (["hub", "--cert", "{missing}", "tls:127.0.0.1:0"], "missing.pem"),
    ],
)
def test_tls_options_that_do_not_fit_exit_2_saying_so(
    command: list[str], needs: str, certificates: Certificates, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {
        "ca": certificates.ca,
        "cert": certificates.cert,
        "key": certificates.key,
        "missing": str(tmp_path / "missing.pem"),
    }
    assert main([part.format(**files) for part in command]) == 2
    assert needs in capsys.readouterr().err
