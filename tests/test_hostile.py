"""Servers written the natural way survive hostile clients (SPEC §3.1, §3.2).

Two servers are put to the test, each in a child process of its own so that
its memory can be measured and a crash seen: the echo server that opened the
README until 0.4 (the natural way to write a server on a ``Poller``, as it
was written there), and the line hub of ``examples/line_hub.py``. Each is hit over loopback TCP by a client that
resets mid-stream, one that never reads, one that half-closes and never
reads, and a flood of short lines; meanwhile well-behaved clients must keep
getting their answers, and the server must stay alive and small.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Seconds any one wait in these tests may take.
WAIT = 30.0

MIB = 1024 * 1024

# The child exits on its own when the test process goes away (its stdin ends)
# or after this long, whichever comes first: no server outlives its test.
WATCHDOG = """
import os, sys, threading, time
def _watchdog():
    sys.stdin.buffer.read()
    os._exit(0)
threading.Thread(target=_watchdog, daemon=True).start()
threading.Timer(300, os._exit, (3,)).start()
"""


# The README's first example until 0.4, as it was there: a server written
# the natural way, which programs copied.
ECHO_SERVER = """\
import socket
from channels.poller import Poller

server = socket.create_server(("127.0.0.1", 8000))
poller = Poller(buffering="line")          # clients get whole lines
poller.add_server(server)
while True:
    for data, source in poller.poll():
        if source is server:               # data is (address, client), registered
            continue
        if data:
            source.write(data)             # echo the line back
        else:
            source.close()                 # b'' once: the peer left
"""


def echo_server_script(max_pending: int | None) -> str:
    """The echo server, serving on a free port that it prints."""
    code = ECHO_SERVER
    assert '("127.0.0.1", 8000)' in code and "while True:" in code, "the echo server changed shape"
    code = code.replace('("127.0.0.1", 8000)', '("127.0.0.1", 0)')
    code = code.replace("while True:", "print(server.getsockname()[1], flush=True)\nwhile True:", 1)
    if max_pending is not None:
        assert 'Poller(buffering="line")' in code
        code = code.replace('Poller(buffering="line")', f'Poller(buffering="line", max_pending={max_pending})')
    return WATCHDOG + code


def hub_script(max_pending: int | None) -> str:
    """The line hub of examples/line_hub.py, its turn repeated forever."""
    options = "" if max_pending is None else f", max_pending={max_pending}"
    return WATCHDOG + (
        "import socket\n"
        f"sys.path.insert(0, {str(ROOT / 'examples')!r})\n"
        "from line_hub import serve_once\n"
        "from channels.poller import Poller\n"
        'server = socket.create_server(("127.0.0.1", 0))\n'
        f'hub = Poller(buffering="line"{options})\n'
        "hub.add_server(server)\n"
        "members = []\n"
        "print(server.getsockname()[1], flush=True)\n"
        "sys.stdout = open(os.devnull, 'w')  # the hub tells of every line it relays\n"
        "while True:\n"
        "    serve_once(hub, server, members, {})\n"
    )


SCRIPTS: dict[str, Callable[[int | None], str]] = {"echo": echo_server_script, "hub": hub_script}


class Server:
    """A server in a child process, on 127.0.0.1."""

    def __init__(self, stack: contextlib.ExitStack, kind: str, tmp_path: Path, max_pending: int | None = None) -> None:
        self.kind = kind
        self._stderr_path = tmp_path / f"{kind}.stderr"
        stderr = stack.enter_context(self._stderr_path.open("wb"))
        self.process = subprocess.Popen(
            [sys.executable, "-c", SCRIPTS[kind](max_pending)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        stack.callback(self._stop)
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], WAIT)
        assert ready, f"the {kind} server did not start: {self.stderr()}"
        self.port = int(self.process.stdout.readline())

    def _stop(self) -> None:
        self.process.kill()
        self.process.wait(WAIT)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()

    def stderr(self) -> str:
        return self._stderr_path.read_text(errors="replace")

    def assert_alive(self) -> None:
        assert self.process.poll() is None, f"the {self.kind} server died: {self.stderr()}"
        assert "Traceback" not in self.stderr(), self.stderr()

    def memory(self, field: str) -> int:
        """``VmRSS`` or ``VmHWM`` (the peak) of the server, in bytes."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} in /proc/{self.process.pid}/status")

    def open_descriptors(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def connect(self, *, small_window: bool = False) -> socket.socket:
        """A blocking client socket; ``small_window`` shrinks its receive
        buffer, so that what it does not read piles up in the server soon."""
        sock = socket.socket()
        if small_window:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(WAIT)
        sock.connect(("127.0.0.1", self.port))
        return sock


class Client:
    """A well-behaved client: a thread reads everything it is sent, and
    notes when each ``probe-...`` line arrives."""

    def __init__(self, stack: contextlib.ExitStack, server: Server) -> None:
        self._server = server
        self.sock = server.connect()
        self.received = 0
        self.seen: dict[bytes, float] = {}
        self._arrived = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()
        stack.callback(self.close)

    def _drain(self) -> None:
        rest = b""
        while not self._stop:
            readable, _, _ = select.select([self.sock], [], [], 0.2)
            if not readable:
                continue
            try:
                data = self.sock.recv(256 * 1024)
            except OSError:
                return
            if not data:
                return
            with self._arrived:
                self.received += len(data)
                lines = (rest + data).split(b"\n")
                rest = lines.pop()[-64:]
                now = time.monotonic()
                for line in lines:
                    if line.startswith(b"probe-"):
                        self.seen[line] = now
                self._arrived.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while not self._arrived.wait_for(predicate, 0.5):
                self._server.assert_alive()
                assert time.monotonic() < deadline, "the server stopped answering"

    def close(self) -> None:
        self._stop = True
        self._thread.join(WAIT)
        self.sock.close()


class Prober:
    """Round trips through the server: a line sent by one well-behaved
    client until it reaches another (the same one, for the echo server)."""

    def __init__(self, stack: contextlib.ExitStack, server: Server) -> None:
        self.sender = Client(stack, server)
        self.receiver = self.sender if server.kind == "echo" else Client(stack, server)
        self._count = 0
        self.round_trip()  # both are members now

    def round_trip(self) -> float:
        self._count += 1
        marker = b"probe-%d" % self._count
        started = time.monotonic()
        self.sender.sock.sendall(marker + b"\n")
        self.receiver.wait_for(lambda: marker in self.receiver.seen)
        return self.receiver.seen[marker] - started


def lines_of(size: int, line: bytes) -> bytes:
    return line * (size // len(line))


class Sender(threading.Thread):
    """Sends ``data`` from a thread; a server that drops the client ends it
    (``error`` then says how)."""

    def __init__(self, sock: socket.socket, data: bytes) -> None:
        super().__init__(daemon=True)
        self._sock = sock
        self._data = data
        self.error: OSError | None = None
        self.start()

    def run(self) -> None:
        try:
            self._sock.sendall(self._data)
        except OSError as err:
            self.error = err


def read_until_dropped(sock: socket.socket) -> int:
    """Read what reached ``sock`` until the server's end; how many bytes."""
    received = 0
    with contextlib.suppress(ConnectionResetError):
        while data := sock.recv(256 * 1024):
            received += len(data)
    return received


def reset(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), whatever is unread or unsent."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as exits:
        yield exits


KINDS = ["echo", "hub"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_client_that_resets_mid_stream_leaves_the_server_serving(
    stack: contextlib.ExitStack, tmp_path: Path, kind: str
) -> None:
    server = Server(stack, kind, tmp_path)
    prober = Prober(stack, server)
    for _ in range(4):
        hostile = server.connect(small_window=True)
        talker = Client(stack, server) if kind == "hub" else None
        # Lines pipelined faster than a non-reader takes its answers (for
        # the hub: lines relayed to it), then a reset with all that unread.
        (talker.sock if talker else hostile).sendall(lines_of(2 * MIB, b"x" * 99 + b"\n"))
        reset(hostile)
        prober.round_trip()
        server.assert_alive()


@pytest.mark.parametrize("kind", KINDS)
def test_a_client_that_never_reads_is_dropped_at_max_pending(
    stack: contextlib.ExitStack, tmp_path: Path, kind: str
) -> None:
    server = Server(stack, kind, tmp_path, max_pending=MIB)
    prober = Prober(stack, server)
    hostile = stack.enter_context(server.connect(small_window=True))
    talker = Client(stack, server) if kind == "hub" else None
    source = talker.sock if talker else hostile
    flood = lines_of(8 * MIB, b"y" * 999 + b"\n")
    sending = Sender(source, flood)

    sending.join(WAIT)

    if talker is None:
        # Dropped by the server (one that went on reading would have taken it all).
        assert isinstance(sending.error, (ConnectionResetError, BrokenPipeError)), sending.error
    else:
        assert sending.error is None
        prober.receiver.wait_for(lambda: prober.receiver.received >= len(flood))  # all relayed
        assert read_until_dropped(hostile) < len(flood) // 2, "the hub kept what it relayed to a client that never read"
    prober.round_trip()
    server.assert_alive()


def test_a_client_that_never_reads_is_dropped_at_the_default_max_pending(
    stack: contextlib.ExitStack, tmp_path: Path
) -> None:
    server = Server(stack, "echo", tmp_path)
    prober = Prober(stack, server)
    before = server.memory("VmRSS")
    hostile = stack.enter_context(server.connect(small_window=True))
    sending = Sender(hostile, lines_of(72 * MIB, b"z" * 65_535 + b"\n"))

    sending.join(WAIT * 2)

    assert isinstance(sending.error, (ConnectionResetError, BrokenPipeError)), sending.error
    prober.round_trip()
    server.assert_alive()
    # It held up to max_pending (64 MiB) for the client, and a fixed
    # overhead more, not a multiple of it.
    grown = server.memory("VmHWM") - before
    assert 32 * MIB < grown < 64 * MIB + 24 * MIB, f"the server grew by {grown / MIB:.1f} MiB"


@pytest.mark.parametrize("kind", KINDS)
def test_a_half_closed_client_that_never_reads_does_not_freeze_the_others(
    stack: contextlib.ExitStack, tmp_path: Path, kind: str
) -> None:
    server = Server(stack, kind, tmp_path)
    prober = Prober(stack, server)
    hostile = stack.enter_context(server.connect(small_window=True))
    talker = Client(stack, server) if kind == "hub" else None
    # More than the kernel buffers hold, so that output is still pending
    # when the server closes the client.
    flood = lines_of(4 * MIB, b"h" * 99 + b"\n")
    sending = Sender(talker.sock if talker else hostile, flood)
    sending.join(WAIT)
    assert not sending.is_alive()
    if kind == "hub":  # all relayed, to the hostile client too
        prober.receiver.wait_for(lambda: prober.receiver.received >= len(flood))
    descriptors = server.open_descriptors()
    hostile.shutdown(socket.SHUT_WR)
    shut = time.monotonic()

    # The server reads the end and closes the client, whose linger is 5 s:
    # the others are answered meanwhile, each far faster than that, and the
    # descriptor is released once the linger has passed.
    slowest = 0.0
    while server.open_descriptors() >= descriptors:
        assert time.monotonic() - shut < 5 + WAIT, "the client's descriptor was never released"
        slowest = max(slowest, prober.round_trip())
        time.sleep(0.05)
    assert slowest < 1.0, f"a round trip took {slowest:.2f}s while a client was closed"
    assert time.monotonic() - shut > 2.0, "released before the linger: its output was not given the time"
    server.assert_alive()


def test_two_hundred_clients_bursting_short_lines_keep_the_server_small(
    stack: contextlib.ExitStack, tmp_path: Path
) -> None:
    server = Server(stack, "echo", tmp_path)
    prober = Prober(stack, server)
    burst = lines_of(64 * 1024, b"q\n")
    clients = [stack.enter_context(server.connect()) for _ in range(200)]
    for client in clients:
        client.setblocking(False)
    unsent = {client: memoryview(burst) for client in clients}
    echoed = dict.fromkeys(clients, 0)
    # 6.5 million lines through Python: seconds alone, far more on a loaded machine.
    deadline = time.monotonic() + WAIT * 6
    while any(size < len(burst) for size in echoed.values()):
        assert time.monotonic() < deadline, f"{sum(echoed.values())} of {len(burst) * len(clients)} bytes came back"
        writers = [client for client, rest in unsent.items() if rest]
        readers = [client for client, size in echoed.items() if size < len(burst)]
        readable, writable, _ = select.select(readers, writers, [], 1.0)
        for client in writable:
            with contextlib.suppress(BlockingIOError):
                unsent[client] = unsent[client][client.send(unsent[client]) :]
        for client in readable:
            data = client.recv(256 * 1024)
            assert data, "the server closed a well-behaved client"
            echoed[client] += len(data)

    assert prober.round_trip() < WAIT
    server.assert_alive()
    peak = server.memory("VmHWM")
    assert peak < 100 * MIB, f"the server grew to {peak / MIB:.1f} MiB"


def test_a_hub_flooded_with_short_lines_stays_small(stack: contextlib.ExitStack, tmp_path: Path) -> None:
    server = Server(stack, "hub", tmp_path)
    prober = Prober(stack, server)
    listeners = [Client(stack, server) for _ in range(4)]
    burst = lines_of(64 * 1024, b"f\n")
    senders = [server.connect() for _ in range(4)]
    for sender in senders:
        stack.callback(sender.close)
        sender.sendall(burst)

    # Every listener gets every line of every sender.
    for listener in listeners:
        listener.wait_for(lambda listener=listener: listener.received >= len(burst) * len(senders))  # type: ignore[misc]
    assert prober.round_trip() < WAIT
    server.assert_alive()
    assert server.memory("VmHWM") < 100 * MIB
