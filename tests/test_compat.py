"""Programs written for the original library run unchanged (SPEC §1, §2).

These tests use only the seed API, imported exactly as the original's users
import it, and exercise it the way such programs do: a child-process runner,
the 0.1.1 ``LineChannel`` wrapper, a JSON-lines server on ``Poller``, and the
expectations of the original library's own poller tests.
"""

from __future__ import annotations

import contextlib
import gc
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import pytest

from channels import Channel, EndpointClosedException, LineChannel, PipeChannel, SocketChannel
from channels.poller import Poller
from channels.testing import TestChannel
from tests.helpers import WAIT, open_fd_count

# A small line-oriented child: answers each line with its upper-cased text.
UPPER_CHILD = """
import sys
for line in sys.stdin:
    sys.stdout.write(line.upper())
    sys.stdout.flush()
"""


@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as exits:
        yield exits


def start(stack: contextlib.ExitStack, argv: list[str]) -> subprocess.Popen[bytes]:
    """Start a child with piped stdin/stdout; it is always reaped."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def reap() -> None:
        if proc.poll() is None:
            proc.kill()
        proc.wait(WAIT)

    stack.callback(reap)
    return proc


def read_replies(channel: Channel, count: int, timeout: float = WAIT) -> list[bytes]:
    """What a runner does: call read() in a loop until ``count`` replies came."""
    replies: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(replies) < count:
        assert time.monotonic() < deadline, f"only {replies!r} within {timeout}s"
        data = channel.read()
        if data:
            replies.append(data)
        else:
            time.sleep(0.001)
    return replies


def assert_closed(channel: Channel) -> None:
    with pytest.raises(EndpointClosedException):
        channel.read()
    with pytest.raises(EndpointClosedException):
        channel.write(b"more\n")


# -- a process runner ------------------------------------------------------------


@pytest.mark.parametrize("argv", [["cat"], [sys.executable, "-c", UPPER_CHILD]], ids=["cat", "python"])
def test_process_runner_over_popen_file_objects(stack: contextlib.ExitStack, argv: list[str]) -> None:
    proc = start(stack, argv)
    channel = PipeChannel(sink=proc.stdin, faucet=proc.stdout, buffering="line")
    stack.callback(channel.close)

    channel.write(b"hello\n")
    channel.write(b"second ", b"line\n", b"third\n")
    replies = read_replies(channel, 3)

    expected = [b"hello\n", b"second line\n", b"third\n"]
    assert replies == (expected if argv == ["cat"] else [line.upper() for line in expected])
    channel.close()
    assert_closed(channel)
    assert proc.wait(WAIT) == 0


def test_process_runner_over_descriptor_numbers(stack: contextlib.ExitStack) -> None:
    proc = start(stack, [sys.executable, "-c", UPPER_CHILD])
    assert proc.stdin is not None and proc.stdout is not None
    channel = PipeChannel(proc.stdout.fileno(), proc.stdin.fileno(), buffering="line")

    channel.write(b"one\n", b"two\n")
    replies = read_replies(channel, 2)
    channel.close()

    assert replies == [b"ONE\n", b"TWO\n"]
    assert_closed(channel)
    assert proc.wait(WAIT) == 0
    # The channel owned the numbers and closed them; the Popen file objects
    # still name them. Close those at once (before the numbers can be reused)
    # so that they do not close the numbers again later.
    for stale in (proc.stdin, proc.stdout):
        with contextlib.suppress(OSError):
            stale.close()


def test_process_runner_sees_the_child_exit(stack: contextlib.ExitStack) -> None:
    proc = start(stack, [sys.executable, "-c", "import sys; print('bye'); sys.stdout.flush()"])
    channel = PipeChannel(sink=proc.stdin, faucet=proc.stdout, buffering="line")
    stack.callback(channel.close)

    assert read_replies(channel, 1) == [b"bye\n"]
    deadline = time.monotonic() + WAIT
    with pytest.raises(EndpointClosedException):
        while time.monotonic() < deadline:
            assert channel.read() == b""
            time.sleep(0.001)
    assert proc.wait(WAIT) == 0


def test_0_1_1_line_channel_over_pipe_channel(stack: contextlib.ExitStack) -> None:
    proc = start(stack, ["cat"])
    assert proc.stdin is not None and proc.stdout is not None
    channel = LineChannel(PipeChannel(proc.stdout, proc.stdin))
    stack.callback(channel.close)

    channel.write(b"first\nsec")
    channel.write(b"ond\n")
    replies = read_replies(channel, 2)

    assert replies == [b"first\n", b"second\n"]
    assert channel.read() == b""
    channel.close()
    assert_closed(channel)
    assert proc.wait(WAIT) == 0


def test_0_1_1_line_channel_returns_the_unterminated_rest_at_the_end(stack: contextlib.ExitStack) -> None:
    proc = start(stack, [sys.executable, "-c", "import sys; sys.stdout.write('a\\nb\\nrest')"])
    channel = LineChannel(PipeChannel(proc.stdout, proc.stdin))
    stack.callback(channel.close)

    pieces: list[bytes] = []
    deadline = time.monotonic() + WAIT
    with pytest.raises(EndpointClosedException):
        while time.monotonic() < deadline:
            data = channel.read()
            if data:
                pieces.append(data)
            else:
                time.sleep(0.001)

    assert pieces == [b"a\n", b"b\n", b"rest"]
    assert proc.wait(WAIT) == 0


# -- a JSON-lines server ----------------------------------------------------------


class JsonLinesServer:
    """A server as a program written for the original would write it."""

    def __init__(self, poller: Poller) -> None:
        self.poller = poller
        self.clients: list[Channel] = []

    def turn(self, timeout: float) -> None:
        for data, channel in self.poller.poll(timeout):
            if isinstance(data, tuple):
                _address, client = data
                self.clients.append(client)
            elif not data:
                channel.close()
            else:
                try:
                    request = json.loads(data)
                except ValueError:
                    channel.close()  # garbage: drop the client
                    continue
                reply = {"id": request["id"], "sum": sum(request["args"])}
                assert isinstance(channel, Channel)
                channel.write(json.dumps(reply).encode() + b"\n")


def serve_until(server: JsonLinesServer, done: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "server loop stalled"
        server.turn(0.01)


class Client:
    def __init__(self, stack: contextlib.ExitStack, address: Any) -> None:
        self.sock = socket.create_connection(address, timeout=WAIT)
        stack.callback(self.sock.close)
        self.sock.setblocking(False)
        self.buffer = b""
        self.eof = False

    def send(self, data: bytes) -> None:
        self.sock.setblocking(True)
        self.sock.sendall(data)
        self.sock.setblocking(False)

    def pump(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while data := self.sock.recv(65536):
                self.buffer += data
            self.eof = True

    def replies(self) -> list[Any]:
        self.pump()
        return [json.loads(line) for line in self.buffer.splitlines(keepends=True) if line.endswith(b"\n")]


@pytest.fixture
def json_server(stack: contextlib.ExitStack) -> Iterator[tuple[JsonLinesServer, Any]]:
    listener = socket.socket()
    stack.callback(listener.close)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    poller = Poller(buffering="line")
    poller.add_server(listener)
    try:
        yield JsonLinesServer(poller), listener.getsockname()
    finally:
        poller.close_all()


def request(ident: int) -> bytes:
    return json.dumps({"id": ident, "args": [ident, 1, 2]}).encode() + b"\n"


def test_json_lines_server_answers_every_client(
    stack: contextlib.ExitStack, json_server: tuple[JsonLinesServer, Any]
) -> None:
    server, address = json_server
    clients = [Client(stack, address) for _ in range(4)]

    for number, client in enumerate(clients):
        client.send(request(10 * number) + request(10 * number + 1))
    serve_until(server, lambda: all(len(client.replies()) == 2 for client in clients))

    for number, client in enumerate(clients):
        assert client.replies() == [
            {"id": 10 * number, "sum": 10 * number + 3},
            {"id": 10 * number + 1, "sum": 10 * number + 4},
        ]
    assert len(server.clients) == 4
    assert all(client.buffering == "line" for client in server.clients)


def test_json_lines_server_drops_a_garbage_client_and_serves_the_others(
    stack: contextlib.ExitStack, json_server: tuple[JsonLinesServer, Any]
) -> None:
    server, address = json_server
    good = [Client(stack, address) for _ in range(2)]
    bad = Client(stack, address)
    for client in good:
        client.send(request(1))
    serve_until(server, lambda: all(len(client.replies()) == 1 for client in good))

    bad.send(b"this is not json\n")

    def bad_sees_eof() -> bool:
        bad.pump()
        return bad.eof

    serve_until(server, bad_sees_eof)
    for client in good:
        client.send(request(2))
    serve_until(server, lambda: all(len(client.replies()) == 2 for client in good))

    assert bad.eof
    assert bad.buffer == b""
    for client in good:
        assert client.replies()[1] == {"id": 2, "sum": 5}
        assert not client.eof


def test_json_lines_server_takes_a_request_split_across_packets(
    stack: contextlib.ExitStack, json_server: tuple[JsonLinesServer, Any]
) -> None:
    server, address = json_server
    client = Client(stack, address)
    whole = request(7)

    client.send(whole[:5])
    serve_until(server, lambda: len(server.clients) == 1)
    server.turn(0.05)
    client.send(whole[5:])
    serve_until(server, lambda: len(client.replies()) == 1)

    assert client.replies() == [{"id": 7, "sum": 10}]


def test_close_all_leaves_no_descriptor_behind(stack: contextlib.ExitStack) -> None:
    # Programs written for the original never call Poller.close(): only close_all().
    poller = Poller(buffering="line")
    gc.collect()
    start = open_fd_count()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    poller.add_server(listener)
    client = Client(stack, listener.getsockname())
    server = JsonLinesServer(poller)
    client.send(request(1))
    serve_until(server, lambda: len(client.replies()) == 1)

    poller.close_all()
    client.sock.close()

    gc.collect()
    assert open_fd_count() == start


# -- the original library's own poller tests ---------------------------------------


@pytest.fixture
def poller() -> Iterator[Poller]:
    p = Poller()
    try:
        yield p
    finally:
        p.close_all()


def _connect_and_get_client_channel(stack: contextlib.ExitStack, poller: Poller) -> tuple[socket.socket, SocketChannel]:
    serv = socket.socket()
    serv.bind(("127.0.0.1", 0))
    serv.listen(0)
    stack.callback(serv.close)
    addr, port = serv.getsockname()
    poller.add_server(serv)

    client = socket.create_connection((addr, port))
    stack.callback(client.close)
    result = list(poller.poll(WAIT))  # accepts the client
    assert len(result) == 1
    (_, cl_chan), reported = result[0]
    assert reported is serv
    assert isinstance(cl_chan, SocketChannel)
    stack.callback(cl_chan.close)
    return client, cl_chan


class _Timeout(Exception):
    pass


@contextlib.contextmanager
def timeout(seconds: float) -> Iterator[None]:
    """The original tests' ``utils.timeout``: raise if the block runs too long."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise _Timeout("timeout")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_blocking_poll(poller: Poller) -> None:
    with pytest.raises(_Timeout), timeout(0.1):
        poller.poll()


def test_timed_poll(poller: Poller) -> None:
    with timeout(2.0):
        result = poller.poll(0.01)
    assert list(result) == []


def test_timed_out_poll(poller: Poller) -> None:
    with pytest.raises(_Timeout), timeout(0.1):
        poller.poll(3)


def test_poll_data(poller: Poller, stack: contextlib.ExitStack) -> None:
    chan = TestChannel()
    stack.callback(chan.close)
    poller.register(chan)
    chan.put(b"hello\n")

    with timeout(2.0):
        result = poller.poll()

    assert list(result) == [(b"hello\n", chan)]


def test_poll_no_data(poller: Poller, stack: contextlib.ExitStack) -> None:
    chan = TestChannel()
    stack.callback(chan.close)
    poller.register(chan)

    with timeout(2.0):
        result = poller.poll(0.01)

    assert list(result) == []


def test_poll_accept(poller: Poller, stack: contextlib.ExitStack) -> None:
    client, cl_chan = _connect_and_get_client_channel(stack, poller)

    client.send(b"hello\n")

    result = poller.poll(WAIT)
    assert list(result) == [(b"hello\n", cl_chan)]


def test_close_all_channels(poller: Poller) -> None:
    chan = TestChannel()
    poller.register(chan)

    poller.close_all()

    with pytest.raises(EndpointClosedException):
        chan.read()


def test_close_all_servers(poller: Poller, stack: contextlib.ExitStack) -> None:
    serv = socket.socket()
    serv.bind(("127.0.0.1", 0))
    serv.listen(0)
    stack.callback(serv.close)
    poller.add_server(serv)

    poller.close_all()

    with timeout(2.0), pytest.raises(OSError):
        serv.accept()


def test_unregister(poller: Poller, stack: contextlib.ExitStack) -> None:
    chan = TestChannel()
    stack.callback(chan.close)
    poller.register(chan)
    chan.put(b"hello\n")

    poller.unregister(chan)

    with pytest.raises(_Timeout), timeout(0.1):
        poller.poll()


def test_unregister_twice(poller: Poller, stack: contextlib.ExitStack) -> None:
    chan = TestChannel()
    stack.callback(chan.close)
    poller.register(chan)
    chan.put(b"hello\n")

    poller.unregister(chan)
    poller.unregister(chan)


def test_closed(poller: Poller) -> None:
    chan = TestChannel()
    poller.register(chan)

    chan.close()

    with timeout(2.0):
        result = poller.poll()

    assert result == [(b"", chan)]


def test_disconnect(poller: Poller, stack: contextlib.ExitStack) -> None:
    client, cl_chan = _connect_and_get_client_channel(stack, poller)

    client.close()
    result = list(poller.poll(WAIT))

    assert result == [(b"", cl_chan)]


def test_unregister_on_disconnect(poller: Poller, stack: contextlib.ExitStack) -> None:
    client, _cl_chan = _connect_and_get_client_channel(stack, poller)
    client.close()
    poller.poll(WAIT)

    result = list(poller.poll(0.01))

    assert result == []


@pytest.fixture
def line_client(stack: contextlib.ExitStack) -> Iterator[tuple[Poller, socket.socket, SocketChannel]]:
    line_poller = Poller(buffering="line")
    try:
        client, cl_chan = _connect_and_get_client_channel(stack, line_poller)
        yield line_poller, client, cl_chan
    finally:
        line_poller.close_all()


def test_partial_line(line_client: tuple[Poller, socket.socket, SocketChannel]) -> None:
    line_poller, client, cl_chan = line_client
    client.send(b"test")

    result = list(line_poller.poll(0.1))

    assert result == []

    client.send(b"post\n")

    result = list(line_poller.poll(WAIT))

    assert result == [(b"testpost\n", cl_chan)]


def test_lines(line_client: tuple[Poller, socket.socket, SocketChannel]) -> None:
    line_poller, client, cl_chan = line_client
    client.send(b"test\nrest\n")

    result = list(line_poller.poll(WAIT))

    assert result == [(b"test\n", cl_chan), (b"rest\n", cl_chan)]


def test_bytes_poller(poller: Poller, stack: contextlib.ExitStack) -> None:
    _, cl_chan = _connect_and_get_client_channel(stack, poller)

    assert cl_chan.buffering == "bytes"


def test_line_poller(line_client: tuple[Poller, socket.socket, SocketChannel]) -> None:
    _, _, cl_chan = line_client

    assert cl_chan.buffering == "line"
