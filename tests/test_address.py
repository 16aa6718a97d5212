"""``channels.connect()`` and ``channels.listen()``: address strings to real endpoints."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import importlib.util
import os
import socket
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import channels
from channels import (
    Channel,
    EndpointClosedException,
    PipeChannel,
    ProcessChannel,
    PtyProcessChannel,
    SocketChannel,
    connect,
    listen,
)
from channels.poller import Poller
from tests.helpers import WAIT, open_fd_count, read_exactly, read_to_end


def ipv6_loopback_works() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not ipv6_loopback_works(), reason="this machine has no IPv6 loopback (::1)")


@pytest.fixture
def short_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Short, unlike tmp_path: a Unix socket path holds at most 107 bytes.
    return tmp_path_factory.mktemp("a")


def exchange(client: Channel, server: socket.socket) -> None:
    """Check that ``client`` talks to whoever ``server`` accepts, both ways."""
    peer, _ = server.accept()
    with peer:
        peer.settimeout(WAIT)
        client.write(b"ping")
        assert peer.recv(4) == b"ping"
        peer.sendall(b"pong")
        assert read_exactly(client, 4) == b"pong"


# -- malformed addresses ---------------------------------------------------------------

MALFORMED = [
    "",
    "tcp",
    "gopher:host:70",
    "tcp:",
    "tcp:example.org",
    "tcp::80",
    "tcp:example.org:http",
    "tcp:example.org:65536",
    "tcp:example.org:-1",
    "tcp:::1:80",
    "tcp:[::1]80",
    "tcp:[::1:80",
    "tcp:[example.org]:80",
    "unix:",
    "exec:",
    "exec:   ",
    "exec:echo 'unclosed",
    "pty:",
    "pty:   ",
    "pty:sh -c 'unclosed",
    "fd:",
    "fd:x",
    "fd:1,2,3",
    "fd:-1",
    "stdio:",
    "tls:example.org",
]


@pytest.mark.parametrize("address", MALFORMED)
def test_connect_to_a_malformed_address_raises_value_error_naming_the_forms(address: str) -> None:
    with pytest.raises(ValueError, match=r"accepts tcp:HOST:PORT, .*unix:PATH, exec:COMMAND LINE, stdio, fd:N"):
        connect(address)


def test_connect_to_port_zero_raises_value_error() -> None:
    with pytest.raises(ValueError, match="port 0"):
        connect("tcp:127.0.0.1:0")


@pytest.mark.parametrize("address", ["exec:cat", "pty:cat", "stdio", "fd:0", "tcp:localhost", "unix:", "nonsense"])
def test_listen_on_an_address_it_cannot_serve_raises_value_error_naming_its_forms(address: str) -> None:
    with pytest.raises(ValueError, match=r"listen\(\) accepts tcp:HOST:PORT, tcp:\[IPV6\]:PORT, unix:PATH"):
        listen(address)


def test_an_address_that_is_not_a_string_raises_type_error() -> None:
    with pytest.raises(TypeError, match="address string"):
        connect(("127.0.0.1", 80))  # type: ignore[arg-type]


def test_an_option_the_kind_does_not_take_raises_type_error() -> None:
    with pytest.raises(TypeError, match="cwd"):
        connect("tcp:127.0.0.1:9", cwd="/")


def test_the_kind_is_not_case_sensitive() -> None:
    with listen("TCP:127.0.0.1:0") as server:
        port = server.getsockname()[1]
        with connect(f"Tcp:127.0.0.1:{port}") as client:
            exchange(client, server)


# -- tcp -------------------------------------------------------------------------------


def test_tcp_over_ipv4_connects_a_socket_channel() -> None:
    with listen("tcp:127.0.0.1:0") as server:
        port = server.getsockname()[1]
        with connect(f"tcp:127.0.0.1:{port}") as client:
            assert isinstance(client, SocketChannel)
            exchange(client, server)


@needs_ipv6
def test_tcp_over_ipv6_in_brackets_connects() -> None:
    with listen("tcp:[::1]:0") as server:
        assert server.family == socket.AF_INET6
        port = server.getsockname()[1]
        with connect(f"tcp:[::1]:{port}") as client:
            exchange(client, server)


def test_tcp_with_a_host_name_connects() -> None:
    with listen("tcp:localhost:0") as server:
        port = server.getsockname()[1]
        with connect(f"tcp:localhost:{port}", timeout=WAIT) as client:
            exchange(client, server)


def test_connect_passes_channel_options_on() -> None:
    with listen("tcp:127.0.0.1:0") as server:
        port = server.getsockname()[1]
        with connect(f"tcp:127.0.0.1:{port}", buffering="line", max_pending=1024) as client:
            assert client.buffering == "line"
            assert client.max_pending == 1024
            server.accept()[0].close()


def test_connect_where_nobody_listens_raises_connection_refused_naming_the_address() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
        with pytest.raises(ConnectionRefusedError, match=f"tcp:127.0.0.1:{port}"):
            connect(f"tcp:127.0.0.1:{port}")


def test_connect_gives_up_after_its_timeout() -> None:
    # A listener with a full backlog drops new connection requests unanswered.
    with listen("tcp:127.0.0.1:0", backlog=0) as server:
        port = server.getsockname()[1]
        opened = []
        try:
            with pytest.raises(TimeoutError, match=f"tcp:127.0.0.1:{port}"):
                for _ in range(8):
                    opened.append(connect(f"tcp:127.0.0.1:{port}", timeout=0.1))
        finally:
            for channel in opened:
                channel.close()


def test_a_bad_channel_option_leaves_no_socket_open() -> None:
    with listen("tcp:127.0.0.1:0") as server:
        before = open_fd_count()
        with pytest.raises(ValueError, match="buffering"):
            connect(f"tcp:127.0.0.1:{server.getsockname()[1]}", buffering="words")
        assert open_fd_count() == before


def test_listen_on_a_busy_port_raises_os_error_naming_the_address() -> None:
    with listen("tcp:127.0.0.1:0") as server:
        port = server.getsockname()[1]
        with pytest.raises(OSError, match=f"tcp:127.0.0.1:{port}"):
            listen(f"tcp:127.0.0.1:{port}")


def test_listen_takes_a_backlog() -> None:
    with listen("tcp:127.0.0.1:0", backlog=1) as server:
        assert server.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)


def test_a_listening_socket_serves_a_poller() -> None:
    with Poller() as poller:
        server = listen("tcp:127.0.0.1:0")
        poller.add_server(server)
        with connect(f"tcp:127.0.0.1:{server.getsockname()[1]}") as client:
            client.write(b"hi")
            received = b""
            for _ in range(100):
                for data, _source in poller.poll(0.1):
                    if isinstance(data, bytes):
                        received += data
                if received:
                    break
            assert received == b"hi"


# -- unix ------------------------------------------------------------------------------


def test_unix_connects_a_socket_channel(short_dir: Path) -> None:
    path = short_dir / "s"
    with listen(f"unix:{path}") as server, connect(f"unix:{path}") as client:
        assert isinstance(client, SocketChannel)
        exchange(client, server)


def test_unix_socket_file_is_created_with_mode_0600(short_dir: Path) -> None:
    path = short_dir / "s"
    with listen(f"unix:{path}"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_stale_unix_socket_file_is_replaced(short_dir: Path) -> None:
    path = short_dir / "s"
    listen(f"unix:{path}").close()  # the file stays behind, with nobody listening
    assert path.is_socket()
    with listen(f"unix:{path}") as server, connect(f"unix:{path}") as client:
        exchange(client, server)


def test_a_unix_socket_with_a_live_server_is_not_replaced(short_dir: Path) -> None:
    path = short_dir / "s"
    with listen(f"unix:{path}") as server:
        with pytest.raises(OSError, match="already") as raised:
            listen(f"unix:{path}")
        assert raised.value.errno == errno.EADDRINUSE
        with connect(f"unix:{path}") as client:
            server.accept()[0].close()  # the prober's connection
            exchange(client, server)


def test_a_file_that_is_not_a_socket_is_left_alone(short_dir: Path) -> None:
    path = short_dir / "notes.txt"
    path.write_text("precious")
    with pytest.raises(FileExistsError, match="not a socket"):
        listen(f"unix:{path}")
    assert path.read_text() == "precious"


def test_a_unix_socket_whose_server_is_too_busy_to_answer_is_not_replaced(short_dir: Path) -> None:
    path = short_dir / "s"
    with listen(f"unix:{path}", backlog=0) as server, connect(f"unix:{path}"):  # that fills the backlog
        with pytest.raises(OSError, match="already"):
            listen(f"unix:{path}")
        assert server.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)


def test_listen_in_a_missing_directory_raises_file_not_found_naming_the_address(short_dir: Path) -> None:
    with pytest.raises(FileNotFoundError, match="unix:"):
        listen(f"unix:{short_dir / 'missing' / 's'}")


def test_listen_with_a_bad_backlog_leaves_no_socket_file(short_dir: Path) -> None:
    path = short_dir / "s"
    with pytest.raises(TypeError):
        listen(f"unix:{path}", backlog="many")
    assert not path.exists()


def test_connect_to_a_missing_unix_socket_raises_file_not_found(short_dir: Path) -> None:
    with pytest.raises(FileNotFoundError, match="unix:"):
        connect(f"unix:{short_dir / 'nobody'}")


# -- exec ------------------------------------------------------------------------------


def test_exec_starts_a_process_channel() -> None:
    with connect("exec:cat") as child:
        assert isinstance(child, ProcessChannel)
        child.write(b"echo")
        assert read_exactly(child, 4) == b"echo"


def test_exec_splits_the_command_line_as_a_shell_would_but_runs_no_shell() -> None:
    with connect("exec:printf '%s|' 'two words' $HOME") as child:
        assert b"".join(read_to_end(child)) == b"two words|$HOME|"


def test_exec_passes_process_options_on() -> None:
    with connect("exec:sh -c 'echo err >&2'", stderr=subprocess.STDOUT) as child:
        assert b"".join(read_to_end(child)) == b"err\n"


# -- pty -------------------------------------------------------------------------------


def test_pty_starts_a_child_on_a_pseudo_terminal() -> None:
    with connect("pty:sh -c 'test -t 0 && test -t 1 && echo terminal'") as child:
        assert isinstance(child, PtyProcessChannel)
        assert b"".join(read_to_end(child)) == b"terminal\r\n"


def test_pty_splits_the_command_line_as_exec_does() -> None:
    with connect("pty:printf '%s|' 'two words' $HOME") as child:
        assert b"".join(read_to_end(child)) == b"two words|$HOME|"


def test_pty_passes_terminal_options_on() -> None:
    with connect("pty:stty size", size=(30, 100)) as child:
        assert b"".join(read_to_end(child)) == b"30 100\r\n"
    with connect("pty:printf 'a\\nb'", raw=True, buffering="line") as child:
        assert read_to_end(child) == [b"a\n", b"b"]


def test_pty_refuses_the_options_of_a_pipe_child() -> None:
    with pytest.raises(TypeError, match=r"takes the options .*size, echo, raw.*; not stderr"):
        connect("pty:cat", stderr=subprocess.STDOUT)


# -- descriptors -----------------------------------------------------------------------


@pytest.fixture
def pipes() -> Iterator[tuple[int, int, int, int]]:
    """Two pipes: (faucet, its feed, drain, its sink)."""
    faucet, feed = os.pipe()
    drain, sink = os.pipe()
    yield faucet, feed, drain, sink
    for fd in (feed, drain):
        os.close(fd)


def test_fd_in_out_reads_one_descriptor_and_writes_the_other(pipes: tuple[int, int, int, int]) -> None:
    faucet, feed, drain, sink = pipes
    with connect(f"fd:{faucet},{sink}") as channel:
        assert isinstance(channel, PipeChannel)
        os.write(feed, b"in")
        assert read_exactly(channel, 2) == b"in"
        channel.write(b"out")
        assert os.read(drain, 3) == b"out"


def test_fd_takes_ownership_of_its_descriptors(pipes: tuple[int, int, int, int]) -> None:
    faucet, _, _, sink = pipes
    connect(f"fd:{faucet},{sink}").close()
    for fd in (faucet, sink):
        with pytest.raises(OSError):
            fcntl.fcntl(fd, fcntl.F_GETFL)


def test_fd_n_open_for_reading_only_makes_a_read_only_channel(pipes: tuple[int, int, int, int]) -> None:
    faucet, feed, _, sink = pipes
    os.close(sink)
    with connect(f"fd:{faucet}") as channel:
        os.write(feed, b"in")
        assert read_exactly(channel, 2) == b"in"
        with pytest.raises(NotImplementedError):
            channel.write(b"out")


def test_fd_n_open_for_writing_only_makes_a_write_only_channel(pipes: tuple[int, int, int, int]) -> None:
    faucet, _, drain, sink = pipes
    os.close(faucet)
    with connect(f"fd:{sink}") as channel:
        channel.write(b"out")
        assert os.read(drain, 3) == b"out"
        with pytest.raises(NotImplementedError):
            channel.get_fd()


def test_fd_n_open_both_ways_reads_and_writes_it() -> None:
    ours, theirs = socket.socketpair()
    with connect(f"fd:{ours.detach()}") as channel, theirs:
        theirs.sendall(b"in")
        assert read_exactly(channel, 2) == b"in"
        channel.write(b"out")
        assert theirs.recv(3) == b"out"


def test_fd_n_that_is_not_open_raises_value_error() -> None:
    with pytest.raises(ValueError, match="not open"):
        connect("fd:987654")


# -- stdio -----------------------------------------------------------------------------

STDIO_ECHO = textwrap.dedent(
    """
    import os, time
    import channels

    channel = channels.connect("stdio", buffering="line")
    deadline = time.monotonic() + 10
    line = b""
    while not line and time.monotonic() < deadline:
        line = channel.read() or time.sleep(0.001) or b""
    channel.write(line.upper())
    channel.close()
    # fds 0 and 1 are still open, and blocking again, after close().
    print("blocking:", os.get_blocking(0), os.get_blocking(1), flush=True)
    """
)


@contextlib.contextmanager
def fake_stdio() -> Iterator[tuple[int, int]]:
    """Descriptors 0 and 1 replaced by pipes: (what feeds stdin, what drains stdout).

    Used inside the test itself: pytest puts its own capture back on
    descriptor 1 when the test's call begins.
    """
    saved = os.dup(0), os.dup(1)
    stdin, feed = os.pipe()
    drain, stdout = os.pipe()
    os.dup2(stdin, 0)
    os.dup2(stdout, 1)
    os.close(stdin)
    os.close(stdout)
    try:
        yield feed, drain
    finally:
        os.dup2(saved[0], 0)
        os.dup2(saved[1], 1)
        for fd in (*saved, feed, drain):
            os.close(fd)


def test_stdio_works_on_duplicates_so_descriptors_0_and_1_outlive_it() -> None:
    with fake_stdio() as (feed, drain), connect("stdio") as channel:
        os.write(feed, b"in")
        assert read_exactly(channel, 2) == b"in"
        channel.write(b"out")
        assert os.read(drain, 3) == b"out"
        channel.close()
        assert os.get_blocking(0)  # still open, and blocking again
        assert os.get_blocking(1)


def test_a_bad_option_for_stdio_leaves_no_duplicate_open() -> None:
    before = open_fd_count()
    with pytest.raises(ValueError, match="buffering"):
        connect("stdio", buffering="words")
    assert open_fd_count() == before


def test_stdio_reads_stdin_writes_stdout_and_leaves_both_usable_after_close() -> None:
    done = subprocess.run(
        [sys.executable, "-c", STDIO_ECHO], input=b"hello\n", capture_output=True, timeout=WAIT, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"HELLO\nblocking: True True\n"


# -- tls -------------------------------------------------------------------------------

needs_tls = pytest.mark.skipif(
    importlib.util.find_spec("channels.tls") is None, reason="channels.tls is not written yet"
)


@needs_tls
def test_tls_connect_is_forwarded_with_host_port_and_options(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []
    tls = importlib.import_module("channels.tls")
    monkeypatch.setattr(tls, "connect_tls", lambda *args, **options: calls.append((*args, options)))
    connect("tls:[::1]:8443", cafile="ca.pem", server_hostname="example.org")
    assert calls == [("::1", 8443, {"cafile": "ca.pem", "server_hostname": "example.org"})]


@needs_tls
def test_tls_listen_is_forwarded_with_host_port_and_options(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []
    tls = importlib.import_module("channels.tls")
    monkeypatch.setattr(tls, "listen_tls", lambda *args, **options: calls.append((*args, options)))
    listen("tls:localhost:0", certfile="cert.pem", keyfile="key.pem")
    assert calls == [("localhost", 0, {"certfile": "cert.pem", "keyfile": "key.pem"})]


def test_connect_and_listen_are_exported_by_the_package() -> None:
    assert channels.connect is connect
    assert channels.listen is listen
    assert {"connect", "listen", "ProcessChannel", "PtyProcessChannel", "PeerCredentials"} <= set(channels.__all__)


def test_a_closed_channel_from_connect_refuses_reads(short_dir: Path) -> None:
    path = short_dir / "s"
    with listen(f"unix:{path}"):
        client = connect(f"unix:{path}")
        client.close()
        with pytest.raises(EndpointClosedException):
            client.read()
