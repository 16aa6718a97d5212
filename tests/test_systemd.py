"""Running under systemd: ``listen('systemd')``, ``listen('systemd:NAME')``,
``channels.systemd.listeners()`` and ``channels.systemd.notify()``.

Each test runs a real child process set up as systemd sets up a service:
the sockets on descriptors 3, 4, ... (inheritable), ``LISTEN_FDS``,
``LISTEN_FDNAMES``, and ``LISTEN_PID`` equal to the child's own pid, which a
small launcher sets before it replaces itself with the program (as systemd
sets it in the forked child before ``exec``). ``NOTIFY_SOCKET`` names a
datagram socket in a temporary directory that the test reads.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from channels import listen, systemd
from tests.helpers import WAIT

# Moves the descriptors it is given to 3, 4, ... in order, sets LISTEN_PID to
# its own pid, and executes the program: what systemd does between fork and
# exec. The moves go through descriptors above any target, so that none
# overwrites another before it has moved.
LAUNCHER = textwrap.dedent(
    """
    import fcntl, os, sys
    sources = [int(fd) for fd in sys.argv[1].split(",") if fd]
    parked = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in sources]
    for fd in sources:
        os.close(fd)
    for target, fd in enumerate(parked, 3):
        os.dup2(fd, target)  # inheritable, as systemd passes them
        os.close(fd)
    if sys.argv[2] == "own":
        os.environ["LISTEN_PID"] = str(os.getpid())
    os.execv(sys.executable, [sys.executable, *sys.argv[3:]])
    """
)

# Listens on the address it is given (or takes listeners() by a name),
# serves one connection on each socket (says which address it answers on),
# and reports what it saw as JSON.
PROGRAM = textwrap.dedent(
    """
    import json, os, sys
    from channels import listen, systemd
    what, address = sys.argv[1], sys.argv[2]
    report = {}
    try:
        if what == "listen":
            sockets = [listen(address)]
        else:
            sockets = systemd.listeners(address or None)
    except ValueError as err:
        report["error"] = str(err)
        sockets = []
    report["fds"] = [sock.fileno() for sock in sockets]
    report["inheritable"] = [sock.get_inheritable() for sock in sockets]
    report["ports"] = [sock.getsockname()[1] for sock in sockets]
    report["environment"] = [name for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES") if name in os.environ]
    for sock in sockets:
        sock.settimeout(10)
        client, _ = sock.accept()
        client.sendall(b"answered by %d" % sock.fileno())
        client.close()
        sock.close()
    report["notified"] = systemd.notify("READY=1\\nSTATUS=serving")
    print(json.dumps(report))
    """
)


def run_service(
    passed: Sequence[socket.socket],
    program_args: Sequence[str],
    environment: dict[str, str],
    *,
    own_pid: bool = True,
) -> dict[str, Any]:
    """Run PROGRAM as systemd would, with ``passed`` on descriptors 3, 4, ...;
    return its report."""
    fds = [sock.fileno() for sock in passed]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LISTEN_", "NOTIFY_SOCKET"))}
    env.update(environment)
    launcher = [sys.executable, "-c", LAUNCHER, ",".join(map(str, fds)), "own" if own_pid else "given"]
    done = subprocess.run(
        [*launcher, "-c", PROGRAM, *program_args],
        pass_fds=fds,
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.fixture
def listeners() -> Iterator[list[socket.socket]]:
    made = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]
    yield made
    for sock in made:
        sock.close()


def connect_to(sock: socket.socket) -> socket.socket:
    return socket.create_connection(sock.getsockname(), timeout=WAIT)


def test_listen_systemd_takes_the_one_socket_passed_on_descriptor_3(listeners: list[socket.socket]) -> None:
    with connect_to(listeners[0]) as client:
        report = run_service(listeners[:1], ["listen", "systemd"], {"LISTEN_FDS": "1", "LISTEN_FDNAMES": "web"})
        assert report.get("error") is None
        assert report["fds"] == [3]
        assert report["ports"] == [listeners[0].getsockname()[1]]
        assert client.recv(100) == b"answered by 3"


def test_the_sockets_are_made_non_inheritable_and_the_variables_removed(listeners: list[socket.socket]) -> None:
    # As sd_listen_fds(unset_environment=1) does, so that the service's own
    # children do not take the sockets for theirs.
    with connect_to(listeners[0]):
        report = run_service(listeners[:1], ["listen", "systemd"], {"LISTEN_FDS": "1"})
    assert report["inheritable"] == [False]
    assert report["environment"] == []


def test_listen_systemd_name_takes_the_socket_of_that_name(listeners: list[socket.socket]) -> None:
    with connect_to(listeners[1]) as client:
        report = run_service(listeners, ["listen", "systemd:admin"], {"LISTEN_FDS": "2", "LISTEN_FDNAMES": "web:admin"})
        assert report["fds"] == [4]
        assert report["ports"] == [listeners[1].getsockname()[1]]
        assert client.recv(100) == b"answered by 4"


def test_listen_systemd_with_several_sockets_raises_value_error_asking_for_a_name(
    listeners: list[socket.socket],
) -> None:
    report = run_service(listeners, ["listen", "systemd"], {"LISTEN_FDS": "2", "LISTEN_FDNAMES": "web:admin"})
    assert "systemd passed 2 sockets" in report["error"]
    assert "systemd:NAME" in report["error"]
    assert "'web' (descriptor 3), 'admin' (descriptor 4)" in report["error"]


def test_listen_systemd_name_that_was_not_passed_raises_value_error_naming_those_passed(
    listeners: list[socket.socket],
) -> None:
    report = run_service(listeners[:1], ["listen", "systemd:admin"], {"LISTEN_FDS": "1", "LISTEN_FDNAMES": "web"})
    assert "no socket named 'admin'" in report["error"]
    assert "'web' (descriptor 3)" in report["error"]


def test_without_fdnames_the_sockets_are_named_unknown_as_systemd_names_them(listeners: list[socket.socket]) -> None:
    with connect_to(listeners[0]) as client:
        report = run_service(listeners[:1], ["listen", "systemd:unknown"], {"LISTEN_FDS": "1"})
        assert report["fds"] == [3]
        assert client.recv(100) == b"answered by 3"


def test_sockets_meant_for_another_process_are_not_taken(listeners: list[socket.socket]) -> None:
    # LISTEN_PID names the process systemd started; a program that process
    # started with the same environment is not it.
    report = run_service(listeners[:1], ["listen", "systemd"], {"LISTEN_FDS": "1", "LISTEN_PID": "1"}, own_pid=False)
    assert "systemd passed no sockets" in report["error"]
    assert report["environment"] == []


def test_without_the_variables_listen_systemd_raises_value_error() -> None:
    report = run_service([], ["listen", "systemd"], {})
    assert "systemd passed no sockets" in report["error"]


def test_a_passed_descriptor_that_is_not_a_listening_stream_socket_raises_value_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as datagram:
        report = run_service([datagram], ["listen", "systemd"], {"LISTEN_FDS": "1"})
    assert "descriptor 3, passed by systemd, is not a stream socket" in report["error"]


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"LISTEN_FDS": "x"}, "LISTEN_FDS='x' is not a count"),
        ({"LISTEN_FDS": "2", "LISTEN_FDNAMES": "web"}, "names 1 descriptors, but LISTEN_FDS=2"),
        ({"LISTEN_FDS": "2"}, "descriptor 4 is not open"),
    ],
)
def test_malformed_variables_raise_value_error(
    listeners: list[socket.socket], environment: dict[str, str], message: str
) -> None:
    report = run_service(listeners[:1], ["listen", "systemd"], environment)
    assert message in report["error"]


def test_a_malformed_listen_pid_raises_value_error(listeners: list[socket.socket]) -> None:
    report = run_service(listeners[:1], ["listen", "systemd"], {"LISTEN_FDS": "1", "LISTEN_PID": "me"}, own_pid=False)
    assert "LISTEN_PID='me' is not a process id" in report["error"]


def test_listeners_takes_every_socket_of_a_name(listeners: list[socket.socket]) -> None:
    # A .socket unit with two ListenStream= lines names both after itself.
    with connect_to(listeners[0]) as first, connect_to(listeners[1]) as second:
        report = run_service(
            listeners, ["listeners", "web.socket"], {"LISTEN_FDS": "2", "LISTEN_FDNAMES": "web.socket:web.socket"}
        )
        assert report["fds"] == [3, 4]
        assert first.recv(100) == b"answered by 3"
        assert second.recv(100) == b"answered by 4"


def test_listeners_leaves_descriptors_that_are_not_listening_stream_sockets(listeners: list[socket.socket]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as datagram, connect_to(listeners[0]) as client:
        report = run_service([datagram, listeners[0]], ["listeners", ""], {"LISTEN_FDS": "2"})
        assert report["fds"] == [4]
        assert client.recv(100) == b"answered by 4"


def test_listen_systemd_with_an_empty_name_raises_value_error() -> None:
    with pytest.raises(ValueError, match="the socket's name is empty"):
        listen("systemd:")


def test_listen_systemd_takes_no_options() -> None:
    with pytest.raises(TypeError, match="backlog"):
        listen("systemd", backlog=1)


# -- notify ----------------------------------------------------------------------


@pytest.fixture
def notify_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[socket.socket, str]]:
    # A short directory: a Unix socket path holds at most 107 bytes.
    path = str(tmp_path_factory.mktemp("n") / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(WAIT)
        yield sock, path


def test_a_service_tells_systemd_it_is_ready(
    listeners: list[socket.socket], notify_socket: tuple[socket.socket, str]
) -> None:
    sock, path = notify_socket
    with connect_to(listeners[0]):
        report = run_service(listeners[:1], ["listen", "systemd"], {"LISTEN_FDS": "1", "NOTIFY_SOCKET": path})
    assert report["notified"] is True
    assert sock.recv(4096) == b"READY=1\nSTATUS=serving"


def test_notify_reaches_a_socket_in_the_abstract_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"channels-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(WAIT)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert systemd.notify() is True
        assert sock.recv(4096) == b"READY=1"


def test_notify_without_notify_socket_does_nothing_and_returns_false(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.notify("STOPPING=1") is False


def test_notify_socket_is_left_set_for_later_messages(
    monkeypatch: pytest.MonkeyPatch, notify_socket: tuple[socket.socket, str]
) -> None:
    sock, path = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert systemd.notify("READY=1")
    assert systemd.notify("STOPPING=1")
    assert [sock.recv(4096), sock.recv(4096)] == [b"READY=1", b"STOPPING=1"]


def test_notify_to_an_address_that_is_not_a_unix_socket_raises_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    with pytest.raises(ValueError, match="NOTIFY_SOCKET='vsock:2:1234'"):
        systemd.notify()


def test_notify_to_a_socket_that_is_gone_raises_oserror_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = str(tmp_path / "gone")
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    with pytest.raises(OSError, match="notifying systemd at"):
        systemd.notify()


@pytest.mark.parametrize("state", ["", b"READY=1", None])
def test_notify_takes_a_non_empty_str(state: object) -> None:
    with pytest.raises(TypeError, match="READY=1"):
        systemd.notify(state)  # type: ignore[arg-type]
