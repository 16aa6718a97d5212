"""Programs written for the original library run unchanged (SPEC §1, §2, §3.1).

Each test here is a small program written the way programs for the original
``channels`` are written, driven the way their own test suites drive them:

- servers that poll once per ``work()``/``tick()`` and return, whose peer (the
  test) then expects the reply to be there already: a blocking socket with a
  timeout, no further call into the program;
- channel subclasses of their own, in the 0.1.1 style (their own ``read``,
  ``write``, ``close``, ``get_fd`` and attributes) and the 0.2 style
  (``_read`` only, line buffering from the base);
- regular files and devices as descriptors (``program < file``,
  ``program < /dev/null``, ``program > file``, a full disk);
- a process runner that reads a child's last unterminated piece;
- imports from the original's module path ``channels.channel``;
- the ``channels relay`` command with its stdio on files, pipes and
  ``/dev/null``.

Everything uses real descriptors and real child processes; every wait is
bounded, and everything opened is closed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

import channels.poller
from channels import Channel, EndpointClosedException, LineChannel, PipeChannel, SocketChannel
from channels.poller import Poller
from tests.helpers import WAIT

#: How long the peer's blocking ``recv()`` waits for a reply that should
#: already be on its way: generous, since the reply has been sent (or not) by
#: the time the program's call returns.
REPLY_TIMEOUT = 2.0

#: The bytes-like chunks that a channel's ``write()`` takes.
Data = bytes | bytearray | memoryview


@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as exits:
        yield exits


@pytest.fixture(params=["epoll", "selectors"])
def watcher(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test over both of the poller's watchers, as ``test_poller.py`` does."""
    from channels._watch import EpollWatcher, SelectorsWatcher  # noqa: PLC0415 - only for the tests that use it

    kind: str = request.param
    if kind == "epoll":
        if not hasattr(select, "epoll"):
            pytest.skip("epoll is Linux only")
        monkeypatch.setattr(channels.poller, "_make_watcher", EpollWatcher)
    else:
        monkeypatch.setattr(channels.poller, "_make_watcher", SelectorsWatcher)
    return kind


def listening_socket(stack: contextlib.ExitStack) -> socket.socket:
    listener = socket.socket()
    stack.callback(listener.close)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    return listener


def connect_peer(stack: contextlib.ExitStack, listener: socket.socket) -> socket.socket:
    """The test's end: a plain blocking socket whose every call is bounded."""
    peer = socket.create_connection(listener.getsockname(), timeout=REPLY_TIMEOUT)
    stack.callback(peer.close)
    return peer


def receive(peer: socket.socket, size: int) -> bytes:
    """What the peer's blocking ``recv()`` calls get, up to ``size`` bytes or
    the end; each call raises ``TimeoutError`` after ``REPLY_TIMEOUT``."""
    data = b""
    while len(data) < size:
        chunk = peer.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def wait_readable(chans: list[Channel]) -> None:
    """Wait until the server side of each channel has something to read, so
    that one call of the program sees all of it."""
    waiting = {chan.get_fd() for chan in chans}
    deadline = time.monotonic() + WAIT
    while waiting:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "the peers' data never reached the server"
        ready, _, _ = select.select(list(waiting), [], [], remaining)
        waiting.difference_update(ready)


def repeat_until(step: Callable[[], object], done: Callable[[], bool]) -> None:
    """Call ``step`` until ``done()``; fail after ``WAIT`` seconds."""
    deadline = time.monotonic() + WAIT
    while not done():
        assert time.monotonic() < deadline, "the program never got there"
        step()


# -- 1. servers that poll once per call and return ---------------------------------


class ShoutServer:
    """Answers whatever a client sends with the same text in capitals."""

    def __init__(self, listener: socket.socket, buffering: str) -> None:
        self._poller = Poller(buffering=buffering)
        self._poller.add_server(listener)
        self.clients: list[Channel] = []

    def work(self, timeout: float) -> None:
        for data, channel in self._poller.poll(timeout):
            if isinstance(data, tuple):  # ((address, client), server): a new client
                self.clients.append(data[1])
                continue
            assert isinstance(channel, Channel)
            if data:
                channel.write(data.upper())
            else:
                channel.close()

    def close(self) -> None:
        self._poller.close_all()


class DeferredShoutServer(ShoutServer):
    """The same, but it collects the replies in the loop and writes them after it."""

    def work(self, timeout: float) -> None:
        replies: list[tuple[Channel, bytes]] = []
        for data, channel in self._poller.poll(timeout):
            if isinstance(data, tuple):
                self.clients.append(data[1])
                continue
            assert isinstance(channel, Channel)
            if data:
                replies.append((channel, data.upper()))
            else:
                channel.close()
        for channel, reply in replies:
            channel.write(reply)


class LoginServer(ShoutServer):
    """Greets every client with a prompt as soon as it is accepted."""

    def work(self, timeout: float) -> None:
        for data, _channel in self._poller.poll(timeout):
            if isinstance(data, tuple):
                _address, client = data
                self.clients.append(client)
                client.write(b"login: ")


class TranslatorServer:
    """A JSON-lines server: one JSON request a line, one JSON reply a line; a
    line that is not JSON is answered with an error, then the client is dropped."""

    def __init__(self, listener: socket.socket) -> None:
        self._poller = Poller(buffering="line")
        self._poller.add_server(listener)
        self.clients: list[Channel] = []

    def work(self, timeout: float) -> None:
        for data, channel in self._poller.poll(timeout):
            if isinstance(data, tuple):
                self.clients.append(data[1])
                continue
            assert isinstance(channel, Channel)
            if not data:
                channel.close()
                continue
            try:
                request = json.loads(data)
            except ValueError:
                channel.write(b'{"error": "not JSON"}\n')
                channel.close()
                continue
            if "text" in request:
                reply = {"intent": request["text"].lower()}
            elif "intent" in request:
                reply = {"text": request["intent"].upper()}
            else:
                reply = {"error": "Either 'intent' or 'text' required"}
            channel.write(json.dumps(reply).encode() + b"\n")

    def close(self) -> None:
        self._poller.close_all()


@pytest.mark.parametrize("buffering", ["bytes", "line"])
def test_poll_once_server_has_answered_when_work_returns(stack: contextlib.ExitStack, buffering: str) -> None:
    listener = listening_socket(stack)
    server = ShoutServer(listener, buffering)
    stack.callback(server.close)
    peer = connect_peer(stack, listener)
    server.work(WAIT)  # accepts the client
    assert len(server.clients) == 1

    peer.sendall(b"hello\nworld\n")
    wait_readable(server.clients)
    server.work(WAIT)

    assert receive(peer, 12) == b"HELLO\nWORLD\n"


def test_poll_once_server_answers_every_client_of_one_call(stack: contextlib.ExitStack) -> None:
    listener = listening_socket(stack)
    server = ShoutServer(listener, "line")
    stack.callback(server.close)
    peers = [connect_peer(stack, listener) for _ in range(3)]
    repeat_until(lambda: server.work(0.01), lambda: len(server.clients) == 3)

    for number, peer in enumerate(peers):
        peer.sendall(b"client %d\n" % number)
    wait_readable(server.clients)
    server.work(WAIT)

    for number, peer in enumerate(peers):
        assert receive(peer, 9) == b"CLIENT %d\n" % number


def test_reply_written_after_the_poll_loop_is_sent_at_once(stack: contextlib.ExitStack) -> None:
    listener = listening_socket(stack)
    server = DeferredShoutServer(listener, "line")
    stack.callback(server.close)
    peer = connect_peer(stack, listener)
    server.work(WAIT)

    peer.sendall(b"later\n")
    wait_readable(server.clients)
    server.work(WAIT)

    assert receive(peer, 6) == b"LATER\n"


def test_prompt_written_when_a_client_is_accepted_reaches_it(stack: contextlib.ExitStack) -> None:
    listener = listening_socket(stack)
    server = LoginServer(listener, "line")
    stack.callback(server.close)
    peer = connect_peer(stack, listener)

    server.work(WAIT)

    assert len(server.clients) == 1
    assert receive(peer, 7) == b"login: "


def test_json_lines_server_answers_within_the_call(stack: contextlib.ExitStack) -> None:
    listener = listening_socket(stack)
    server = TranslatorServer(listener)
    stack.callback(server.close)
    peer = connect_peer(stack, listener)
    server.work(WAIT)

    for request, expected in [
        ({"text": "Hello", "from": "user"}, {"intent": "hello"}),
        ({"intent": "hello", "user": "user"}, {"text": "HELLO"}),
        ({"a": "b"}, {"error": "Either 'intent' or 'text' required"}),
    ]:
        line = json.dumps(request).encode() + b"\n"
        peer.sendall(line)
        wait_readable(server.clients)
        server.work(WAIT)
        reply = json.dumps(expected).encode() + b"\n"
        assert json.loads(receive(peer, len(reply))) == expected


def test_garbage_line_is_answered_with_an_error_before_the_client_is_closed(stack: contextlib.ExitStack) -> None:
    listener = listening_socket(stack)
    server = TranslatorServer(listener)
    stack.callback(server.close)
    bad = connect_peer(stack, listener)
    good = connect_peer(stack, listener)
    repeat_until(lambda: server.work(0.01), lambda: len(server.clients) == 2)

    bad.sendall(b"this is not json\n")
    good.sendall(b'{"text": "Hi"}\n')
    wait_readable(server.clients)
    server.work(WAIT)

    error = b'{"error": "not JSON"}\n'
    assert receive(bad, len(error)) == error
    assert bad.recv(1024) == b""  # then the end: the server closed it
    reply = b'{"intent": "hi"}\n'
    assert receive(good, len(reply)) == reply


class Router:
    """Forwards messages between clients. A client's first line names it
    (``{"name": ...}``); each later line (``{"to": ..., ...}``) is passed on,
    as it is, to the client of that name, in the same ``tick()``."""

    def __init__(self, listener: socket.socket) -> None:
        self._poller = Poller(buffering="line")
        self._poller.add_server(listener)
        self.accepted = 0
        self.names: dict[str, Channel] = {}

    def tick(self, timeout: float = 0.0) -> None:
        for data, channel in self._poller.poll(timeout):
            if isinstance(data, tuple):
                self.accepted += 1
                continue
            assert isinstance(channel, Channel)
            if not data:
                channel.close()
                continue
            message = json.loads(data)
            if "name" in message:
                self.names[message["name"]] = channel
            elif message.get("to") in self.names:
                self.names[message["to"]].write(data)

    def close(self) -> None:
        self._poller.close_all()


def test_router_forwards_a_message_to_another_client_in_the_same_tick(stack: contextlib.ExitStack) -> None:
    listener = listening_socket(stack)
    router = Router(listener)
    stack.callback(router.close)
    alice = connect_peer(stack, listener)
    bob = connect_peer(stack, listener)
    repeat_until(lambda: router.tick(0.01), lambda: router.accepted == 2)
    alice.sendall(b'{"name": "alice"}\n')
    bob.sendall(b'{"name": "bob"}\n')
    repeat_until(lambda: router.tick(0.01), lambda: len(router.names) == 2)

    message = b'{"to": "bob", "text": "hi bob"}\n'
    alice.sendall(message)
    wait_readable([router.names["alice"]])
    router.tick(WAIT)

    assert receive(bob, len(message)) == message


class FakeBackend:
    """What a program's test suite puts in place of its real backend: clients
    connect and name themselves; the test makes it send to one of them with
    ``send_message_to()``, between ticks, outside any poll."""

    def __init__(self, listener: socket.socket) -> None:
        self._poller = Poller(buffering="line")
        self._poller.add_server(listener)
        self.clients: dict[str, Channel] = {}
        self.received: list[Any] = []

    def tick(self, timeout: float = 0.0) -> None:
        for data, channel in self._poller.poll(timeout):
            if isinstance(data, tuple):
                continue
            assert isinstance(channel, Channel)
            if not data:
                channel.close()
                continue
            message = json.loads(data)
            if "name" in message:
                self.clients[message["name"]] = channel
            else:
                self.received.append(message)

    def send_message_to(self, name: str, message: Any) -> None:
        self.clients[name].write(json.dumps(message).encode() + b"\n")

    def close(self) -> None:
        self._poller.close_all()


def test_fake_backend_message_written_outside_a_poll_is_delivered(stack: contextlib.ExitStack) -> None:
    listener = listening_socket(stack)
    backend = FakeBackend(listener)
    stack.callback(backend.close)
    peer = connect_peer(stack, listener)
    peer.sendall(b'{"name": "brain"}\n')
    repeat_until(lambda: backend.tick(0.01), lambda: "brain" in backend.clients)

    backend.send_message_to("brain", {"message": "first"})
    backend.send_message_to("brain", {"message": "second"})

    expected = b'{"message": "first"}\n{"message": "second"}\n'
    assert receive(peer, len(expected)) == expected

    # And it still reads what the client answers, in the next tick.
    peer.sendall(b'{"reply": "ok"}\n')
    repeat_until(lambda: backend.tick(0.01), lambda: bool(backend.received))
    assert backend.received == [{"reply": "ok"}]


# -- 2. channel subclasses of the program's own --------------------------------------


class OldStyleChannel(Channel):
    """A socket channel in the 0.1.1 style: its own ``read``, ``write``,
    ``close`` and ``get_fd``, and its own state, set in ``__init__``."""

    def __init__(self, sock: socket.socket, name: str = "old") -> None:
        super().__init__()
        self._setup(sock, name)

    def _setup(self, sock: socket.socket, name: str) -> None:
        sock.setblocking(False)
        self._sock = sock
        self.closed = False  # type: ignore[misc, unused-ignore]
        self.fd = sock.fileno()
        self.name = name
        self.data = b""  # everything read so far
        self.buffer = b""  # output the socket did not take yet
        self.read_size = 4096

    def read(self) -> bytes:
        if self.closed:
            raise EndpointClosedException(f"{self.name} is closed")
        try:
            chunk = self._sock.recv(self.read_size)
        except BlockingIOError:
            return b""
        except OSError as err:
            raise EndpointClosedException(str(err)) from err
        if not chunk:
            raise EndpointClosedException(f"{self.name}: end of stream")
        self.data += chunk
        return chunk

    def write(self, *data: Data) -> None:
        if self.closed:
            raise EndpointClosedException(f"{self.name} is closed")
        self.buffer += b"".join(bytes(chunk) for chunk in data)
        try:
            while self.buffer:
                sent = self._sock.send(self.buffer)
                self.buffer = self.buffer[sent:]
        except BlockingIOError:
            pass
        except OSError as err:
            raise EndpointClosedException(str(err)) from err

    def close(self) -> None:  # type: ignore[override]
        if not self.closed:
            self.closed = True  # type: ignore[misc, unused-ignore]
            self._sock.close()

    def get_fd(self) -> int:
        return self.fd


class OldStyleChannelWithoutSuper(OldStyleChannel):
    """The same, written without calling the base's ``__init__`` at all."""

    def __init__(self, sock: socket.socket, name: str = "old") -> None:
        self._setup(sock, name)


OLD_STYLE = [OldStyleChannel, OldStyleChannelWithoutSuper]
OLD_STYLE_IDS = ["with-super", "without-super"]


def socket_pair(stack: contextlib.ExitStack) -> tuple[socket.socket, socket.socket]:
    """(the channel's end, the test's blocking end with a timeout)."""
    ours, peer = socket.socketpair()
    stack.callback(ours.close)  # harmless once the channel closed it
    stack.callback(peer.close)
    peer.settimeout(REPLY_TIMEOUT)
    return ours, peer


def read_until_data(read: Callable[[], bytes]) -> bytes:
    deadline = time.monotonic() + WAIT
    while not (data := read()):
        assert time.monotonic() < deadline, "nothing came"
        time.sleep(0.001)
    return data


def read_all(read: Callable[[], bytes]) -> list[bytes]:
    """Every non-empty result of ``read()`` until it raises."""
    pieces: list[bytes] = []
    deadline = time.monotonic() + WAIT
    while True:
        assert time.monotonic() < deadline, f"no end within {WAIT}s; got {pieces!r}"
        try:
            data = read()
        except EndpointClosedException:
            return pieces
        if data:
            pieces.append(data)
        else:
            time.sleep(0.001)


def test_channel_base_cannot_be_instantiated() -> None:
    with pytest.raises(TypeError):
        made = Channel()  # type: ignore[abstract, unused-ignore]
        made.abort()  # not reached where it raises, as it must


@pytest.mark.parametrize("cls", OLD_STYLE, ids=OLD_STYLE_IDS)
def test_0_1_1_style_subclass_works_alone(stack: contextlib.ExitStack, cls: type[OldStyleChannel]) -> None:
    ours, peer = socket_pair(stack)
    channel = cls(ours, name="alone")
    stack.callback(channel.close)
    assert channel.closed is False
    assert (channel.fd, channel.name, channel.data, channel.buffer) == (ours.fileno(), "alone", b"", b"")
    assert isinstance(channel, Channel)

    peer.sendall(b"ping")
    assert read_until_data(channel.read) == b"ping"
    channel.write(b"po", b"ng")
    assert receive(peer, 4) == b"pong"
    peer.shutdown(socket.SHUT_WR)
    assert read_all(channel.read) == []
    assert channel.data == b"ping"

    channel.close()
    assert channel.closed is True
    with pytest.raises(EndpointClosedException):
        channel.write(b"more")


@pytest.mark.parametrize("cls", OLD_STYLE, ids=OLD_STYLE_IDS)
def test_0_1_1_style_subclass_works_in_a_line_channel(stack: contextlib.ExitStack, cls: type[OldStyleChannel]) -> None:
    ours, peer = socket_pair(stack)
    inner = cls(ours)
    channel = LineChannel(inner)
    stack.callback(channel.close)

    peer.sendall(b"one\ntw")
    assert read_until_data(channel.read) == b"one\n"
    peer.sendall(b"o\nlast")
    channel.write(b"reply\n")
    assert receive(peer, 6) == b"reply\n"
    peer.shutdown(socket.SHUT_WR)
    assert read_all(channel.read) == [b"two\n", b"last"]

    channel.close()
    assert inner.closed is True


@pytest.mark.parametrize("wrap", [False, True], ids=["as-is", "in-line-channel"])
@pytest.mark.parametrize("cls", OLD_STYLE, ids=OLD_STYLE_IDS)
def test_0_1_1_style_subclass_works_in_a_poller(
    stack: contextlib.ExitStack, cls: type[OldStyleChannel], wrap: bool
) -> None:
    poller = Poller()
    stack.callback(poller.close_all)
    ours, peer = socket_pair(stack)
    inner = cls(ours)
    channel: Channel = LineChannel(inner) if wrap else inner
    stack.callback(channel.close)
    poller.register(channel)

    peer.sendall(b"hello\n")
    entries: list[Any] = []
    repeat_until(lambda: entries.extend(poller.poll(0.01)), lambda: bool(entries))
    assert entries == [(b"hello\n", channel)]
    for _data, source in entries:
        source.write(b"welcome\n")
    assert receive(peer, 8) == b"welcome\n"

    peer.close()
    entries.clear()
    repeat_until(lambda: entries.extend(poller.poll(0.01)), lambda: bool(entries))
    assert entries == [(b"", channel)]
    assert poller.poll(0.05) == []  # reported once, then forgotten
    channel.close()
    assert inner.closed is True

    # close_all() closes the channels still registered, through their own close().
    ours2, _peer2 = socket_pair(stack)
    second = cls(ours2)
    poller.register(second)
    poller.close_all()
    assert second.closed is True


class NewStyleChannel(Channel):
    """A socket channel in the 0.2 style: ``_read()`` only, buffering from the base."""

    def __init__(self, sock: socket.socket, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        sock.setblocking(False)
        self._sock = sock

    def _read(self) -> bytes:
        try:
            chunk = self._sock.recv(4096)
        except BlockingIOError:
            return b""
        except OSError as err:
            raise EndpointClosedException(str(err)) from err
        if not chunk:
            raise EndpointClosedException("end of stream")
        return chunk

    def write(self, *data: Data) -> None:
        try:
            for chunk in data:
                self._sock.sendall(chunk)
        except OSError as err:
            raise EndpointClosedException(str(err)) from err

    def close(self) -> None:  # type: ignore[override]
        self._sock.close()

    def get_fd(self) -> int:
        return self._sock.fileno()


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (b"first\nsecond\nrest", [b"first\n", b"second\n", b"rest"]),
        (b"only a piece", [b"only a piece"]),
    ],
    ids=["lines-then-rest", "a-piece-alone"],
)
def test_0_2_style_subclass_gets_line_buffering_alone(
    stack: contextlib.ExitStack, sent: bytes, expected: list[bytes]
) -> None:
    ours, peer = socket_pair(stack)
    channel = NewStyleChannel(ours, buffering="line")
    stack.callback(channel.close)
    assert channel.buffering == "line"

    peer.sendall(sent)
    peer.shutdown(socket.SHUT_WR)
    # Everything, the end included, is there already: each read returns the next piece.
    got = [channel.read() for _ in expected]
    assert got == expected
    with pytest.raises(EndpointClosedException):
        channel.read()
    channel.write(b"bye\n")
    assert receive(peer, 4) == b"bye\n"


def test_0_2_style_subclass_gets_line_buffering_in_a_poller(stack: contextlib.ExitStack) -> None:
    poller = Poller()
    stack.callback(poller.close_all)
    ours, peer = socket_pair(stack)
    channel = NewStyleChannel(ours, buffering="line")
    stack.callback(channel.close)
    poller.register(channel)

    peer.sendall(b"a\nb")
    entries: list[Any] = []
    repeat_until(lambda: entries.extend(poller.poll(0.01)), lambda: bool(entries))
    assert entries == [(b"a\n", channel)]
    channel.write(b"got a\n")
    assert receive(peer, 6) == b"got a\n"

    peer.sendall(b"\nc\ntail")
    peer.shutdown(socket.SHUT_WR)
    entries.clear()
    repeat_until(lambda: entries.extend(poller.poll(0.01)), lambda: (b"", channel) in entries)
    assert entries == [(b"b\n", channel), (b"c\n", channel), (b"tail", channel), (b"", channel)]
    assert poller.poll(0.05) == []


# -- 3. regular files and devices --------------------------------------------------


def lines_of_text(count: int) -> bytes:
    """``count`` numbered lines and an unterminated last piece."""
    return b"".join(b"line %06d of the file\n" % number for number in range(count)) + b"the end"


def open_fd(stack: contextlib.ExitStack, path: str | Path, flags: int) -> int:
    """A descriptor for a channel to own; closed here only if no channel took it."""
    fd = os.open(path, flags | os.O_CLOEXEC)

    def close_if_still_ours() -> None:
        with contextlib.suppress(OSError):
            # Still open under this number only if no channel closed it and
            # nothing reused it: compare the file behind it.
            opened, named = os.fstat(fd), os.stat(path)
            if (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino):
                os.close(fd)

    stack.callback(close_if_still_ours)
    return fd


def poll_to_the_end(poller: Poller, channel: Channel) -> list[Any]:
    """Every entry the poller reports until ``(b'', channel)``."""
    entries: list[Any] = []
    deadline = time.monotonic() + WAIT
    while (b"", channel) not in entries:
        assert time.monotonic() < deadline, "the end was never reported"
        entries.extend(poller.poll(WAIT))
    return entries


def assert_poll_waits(poller: Poller) -> None:
    """With nothing ready, ``poll(0.2)`` waits about 0.2 s and returns ``[]``:
    no descriptor that is done keeps it spinning."""
    for _ in range(2):
        started = time.monotonic()
        assert poller.poll(0.2) == []
        assert time.monotonic() - started >= 0.15


def test_regular_file_as_faucet_reads_to_the_end(stack: contextlib.ExitStack, tmp_path: Path) -> None:
    content = lines_of_text(20_000)  # several reads' worth
    path = tmp_path / "input.txt"
    path.write_bytes(content)
    channel = PipeChannel(faucet=open_fd(stack, path, os.O_RDONLY))
    stack.callback(channel.close)

    assert b"".join(read_all(channel.read)) == content
    with pytest.raises(EndpointClosedException):
        channel.read()


@pytest.mark.parametrize("buffering", ["bytes", "line"])
def test_regular_file_as_faucet_in_a_poller(
    stack: contextlib.ExitStack, tmp_path: Path, watcher: str, buffering: str
) -> None:
    content = lines_of_text(20_000)
    path = tmp_path / "input.txt"
    path.write_bytes(content)
    poller = Poller()
    stack.callback(poller.close_all)
    idle, _idle_peer = socket_pair(stack)
    idle_channel = SocketChannel(idle)
    stack.callback(idle_channel.close)
    poller.register(idle_channel)
    channel = PipeChannel(faucet=open_fd(stack, path, os.O_RDONLY), buffering=buffering)
    stack.callback(channel.close)

    poller.register(channel)
    entries = poll_to_the_end(poller, channel)

    assert all(source is channel for _data, source in entries)
    data = [piece for piece, _source in entries]
    assert data[-1] == b""
    assert b"" not in data[:-1]
    assert b"".join(data) == content
    if buffering == "line":
        assert data[:-1] == content.splitlines(keepends=True)
    # The file is done: forgotten, never reported again, and no busy loop.
    assert_poll_waits(poller)


@pytest.mark.parametrize("register_first", [True, False], ids=["alone", "among-others"])
def test_dev_null_as_faucet_in_a_poller(stack: contextlib.ExitStack, watcher: str, register_first: bool) -> None:
    poller = Poller(buffering="line")
    stack.callback(poller.close_all)
    idle, _idle_peer = socket_pair(stack)
    idle_channel = SocketChannel(idle)
    stack.callback(idle_channel.close)
    if not register_first:
        poller.register(idle_channel)
    channel = PipeChannel(faucet=open_fd(stack, os.devnull, os.O_RDONLY), buffering="line")
    stack.callback(channel.close)

    poller.register(channel)
    entries = poll_to_the_end(poller, channel)

    assert entries == [(b"", channel)]
    if register_first:
        poller.register(idle_channel)
    assert_poll_waits(poller)


def test_dev_null_as_faucet_ends_at_once() -> None:
    with PipeChannel(faucet=os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), buffering="line") as channel:
        with pytest.raises(EndpointClosedException):
            channel.read()
        with pytest.raises(EndpointClosedException):
            channel.read()


def test_regular_file_as_sink_gets_a_large_write_in_full(stack: contextlib.ExitStack, tmp_path: Path) -> None:
    content = random.Random(1).randbytes(5 * 1024 * 1024)
    path = tmp_path / "output.bin"
    channel = PipeChannel(sink=open_fd(stack, path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC))
    stack.callback(channel.close)

    channel.write(content)
    assert channel.flush(WAIT)
    channel.close()

    assert path.read_bytes() == content


def test_file_to_file_copy_through_a_poller(stack: contextlib.ExitStack, tmp_path: Path, watcher: str) -> None:
    # ``program < input > output``, in-process: one channel, a file each way.
    content = random.Random(2).randbytes(5 * 1024 * 1024)
    input_path = tmp_path / "input.bin"
    input_path.write_bytes(content)
    output_path = tmp_path / "output.bin"
    poller = Poller()
    stack.callback(poller.close_all)
    channel = PipeChannel(
        faucet=open_fd(stack, input_path, os.O_RDONLY),
        sink=open_fd(stack, output_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
    )
    stack.callback(channel.close)
    poller.register(channel)

    ended = False
    deadline = time.monotonic() + WAIT
    while not ended:
        assert time.monotonic() < deadline, "the copy never ended"
        for data, source in poller.poll(WAIT):
            assert source is channel and isinstance(data, bytes)
            if data:
                channel.write(data)
            else:
                ended = True
    channel.close()

    assert output_path.read_bytes() == content


def assert_no_space(raised: pytest.ExceptionInfo[EndpointClosedException]) -> None:
    cause = raised.value.__cause__
    assert isinstance(cause, OSError), f"the cause is {cause!r}"
    assert cause.errno == errno.ENOSPC


def test_full_disk_as_sink_raises_with_the_os_error_as_cause(stack: contextlib.ExitStack) -> None:
    channel = PipeChannel(sink=open_fd(stack, "/dev/full", os.O_WRONLY))
    stack.callback(channel.abort)

    with pytest.raises(EndpointClosedException) as raised:
        channel.write(b"x" * 100_000)
        channel.flush(WAIT)

    assert_no_space(raised)


def test_full_disk_as_sink_in_a_poller_raises_with_the_os_error_as_cause(
    stack: contextlib.ExitStack, tmp_path: Path, watcher: str
) -> None:
    path = tmp_path / "input.txt"
    path.write_bytes(lines_of_text(100))
    poller = Poller()
    stack.callback(poller.close_all)
    channel = PipeChannel(
        faucet=open_fd(stack, path, os.O_RDONLY), sink=open_fd(stack, "/dev/full", os.O_WRONLY), buffering="line"
    )
    stack.callback(channel.abort)
    poller.register(channel)

    with pytest.raises(EndpointClosedException) as raised:
        for _ in range(3):
            for data, source in poller.poll(WAIT):
                assert source is channel and isinstance(data, bytes)
                if data:
                    channel.write(data)
            channel.flush(WAIT)

    assert_no_space(raised)


# A program that uses the library over its own stdin and stdout, as a filter:
# each line comes back in capitals, the last unterminated piece too.
FILTER_PROGRAM = """
import sys, time
from channels import PipeChannel
from channels.poller import Poller

poller = Poller()
channel = PipeChannel(0, 1, buffering="line")
poller.register(channel)
deadline = time.monotonic() + 20
ended = False
while not ended:
    if time.monotonic() > deadline:
        sys.exit("no end of input")
    for line, source in poller.poll(1.0):
        if line:
            source.write(line.upper())
        else:
            ended = True
channel.close()
"""


@pytest.mark.parametrize(
    ("stdin_kind", "stdout_kind"),
    [("file", "pipe"), ("devnull", "pipe"), ("pipe", "file"), ("file", "file"), ("devnull", "file")],
)
def test_program_with_stdio_on_files_and_dev_null(
    stack: contextlib.ExitStack, tmp_path: Path, stdin_kind: str, stdout_kind: str
) -> None:
    content = lines_of_text(5_000)
    expected = b"" if stdin_kind == "devnull" else content.upper()
    stdin: IO[bytes] | int | None = None  # None: a pipe, fed with ``input``
    if stdin_kind == "file":
        (tmp_path / "input.txt").write_bytes(content)
        stdin = stack.enter_context((tmp_path / "input.txt").open("rb"))
    elif stdin_kind == "devnull":
        stdin = subprocess.DEVNULL
    output = tmp_path / "output.txt"
    stdout: IO[bytes] | int = stack.enter_context(output.open("wb")) if stdout_kind == "file" else subprocess.PIPE

    done = subprocess.run(
        [sys.executable, "-c", FILTER_PROGRAM],
        stdin=stdin,
        stdout=stdout,
        stderr=subprocess.PIPE,
        input=content if stdin_kind == "pipe" else None,
        timeout=WAIT * 3,
        check=False,
    )

    assert done.returncode == 0, done.stderr.decode(errors="replace")
    got = output.read_bytes() if stdout_kind == "file" else done.stdout
    assert got == expected


# -- 4. the last piece, read by a process runner ---------------------------------


def start_child(stack: contextlib.ExitStack, argv: list[str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def reap() -> None:
        if proc.poll() is None:
            proc.kill()
        proc.wait(WAIT)

    stack.callback(reap)
    return proc


def runner_channel(stack: contextlib.ExitStack, proc: subprocess.Popen[bytes], how: str) -> Channel:
    """The channel a runner makes right after starting the child: over the
    pipes' descriptor numbers, line by line."""
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout
    channel: Channel
    if how == "buffering-line":
        channel = PipeChannel(sink=stdin.fileno(), faucet=stdout.fileno(), buffering="line")
    else:
        channel = LineChannel(PipeChannel(sink=stdin.fileno(), faucet=stdout.fileno()))

    def close() -> None:
        channel.close()
        # The channel owned the numbers and closed them; the Popen file
        # objects still name them: close those at once, before the numbers
        # can be reused.
        for stale in (stdin, stdout):
            with contextlib.suppress(OSError):
                stale.close()

    stack.callback(close)
    return channel


PRINT_TEST = [["printf", "test"], [sys.executable, "-c", "import sys; sys.stdout.write('test')"]]


@pytest.mark.parametrize("how", ["buffering-line", "line-channel"])
@pytest.mark.parametrize("argv", PRINT_TEST, ids=["printf", "python"])
def test_runner_gets_the_last_piece_on_the_first_read(stack: contextlib.ExitStack, argv: list[str], how: str) -> None:
    proc = start_child(stack, argv)
    channel = runner_channel(stack, proc, how)
    assert proc.wait(WAIT) == 0

    assert channel.read() == b"test"
    with pytest.raises(EndpointClosedException):
        channel.read()


@pytest.mark.parametrize("how", ["buffering-line", "line-channel"])
def test_runner_gets_the_lines_then_the_last_piece(stack: contextlib.ExitStack, how: str) -> None:
    proc = start_child(stack, [sys.executable, "-c", "import sys; sys.stdout.write('a\\nb')"])
    channel = runner_channel(stack, proc, how)
    assert proc.wait(WAIT) == 0

    assert channel.read() == b"a\n"
    assert channel.read() == b"b"
    with pytest.raises(EndpointClosedException):
        channel.read()


# -- 5. the original's module path ------------------------------------------------


def test_original_module_path_offers_the_original_names() -> None:
    import channels  # noqa: PLC0415
    from channels.channel import (  # noqa: PLC0415 - the import is what is tested
        Channel as OriginalChannel,
    )
    from channels.channel import (  # noqa: PLC0415
        EndpointClosedException as OriginalEndpointClosedException,
    )
    from channels.channel import LineChannel as OriginalLineChannel  # noqa: PLC0415
    from channels.channel import PipeChannel as OriginalPipeChannel  # noqa: PLC0415
    from channels.channel import SocketChannel as OriginalSocketChannel  # noqa: PLC0415

    assert OriginalChannel is channels.Channel
    assert OriginalPipeChannel is channels.PipeChannel
    assert OriginalSocketChannel is channels.SocketChannel
    assert OriginalLineChannel is channels.LineChannel
    assert OriginalEndpointClosedException is channels.EndpointClosedException


@pytest.mark.parametrize(
    "statement",
    [
        "from channels.channel import SocketChannel",
        "from channels.channel import Channel, PipeChannel, SocketChannel, LineChannel, EndpointClosedException",
        "import channels.channel, channels.poller; channels.channel.LineChannel",
        "from channels.channel import PipeChannel; from channels.poller import Poller; Poller().close()",
    ],
)
def test_original_module_path_imports_first_in_a_fresh_interpreter(statement: str) -> None:
    done = subprocess.run([sys.executable, "-c", statement], capture_output=True, text=True, timeout=WAIT, check=False)
    assert done.returncode == 0, done.stderr


# -- 6. ``channels relay`` with stdio on files, pipes and /dev/null -------------------


def channels_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "channels", *args]


def names() -> bytes:
    """A few thousand names in no order, one a line."""
    shuffled = [b"name-%05d\n" % number for number in range(20_000)]
    random.Random(3).shuffle(shuffled)
    return b"".join(shuffled)


def run_relay(
    stack: contextlib.ExitStack, tmp_path: Path, command: str, *, stdin_kind: str, stdout_kind: str, content: bytes
) -> subprocess.CompletedProcess[bytes]:
    """``channels relay stdio COMMAND`` with stdin and stdout as asked; the
    output a file gets is put in ``stdout`` of the result."""
    stdin: IO[bytes] | int | None = None  # None: a pipe, fed with ``input``
    if stdin_kind == "file":
        source = tmp_path / f"input-{stdout_kind}.txt"
        source.write_bytes(content)
        stdin = stack.enter_context(source.open("rb"))
    elif stdin_kind == "devnull":
        stdin = subprocess.DEVNULL
    target = tmp_path / f"output-{stdin_kind}-{stdout_kind}.txt"
    stdout: IO[bytes] | int = stack.enter_context(target.open("wb")) if stdout_kind == "file" else subprocess.PIPE
    done = subprocess.run(
        channels_command("relay", "stdio", command),
        stdin=stdin,
        stdout=stdout,
        stderr=subprocess.PIPE,
        input=content if stdin_kind == "pipe" else None,
        env={**os.environ, "LC_ALL": "C"},
        timeout=WAIT * 3,
        check=False,
    )
    if stdout_kind == "file":
        done.stdout = target.read_bytes()
    return done


@pytest.mark.parametrize(
    ("stdin_kind", "stdout_kind"), [("file", "pipe"), ("file", "file"), ("pipe", "file"), ("pipe", "pipe")]
)
def test_relay_sorts_names_with_stdio_on_files_and_pipes(
    stack: contextlib.ExitStack, tmp_path: Path, stdin_kind: str, stdout_kind: str
) -> None:
    content = names()

    done = run_relay(stack, tmp_path, "exec:sort", stdin_kind=stdin_kind, stdout_kind=stdout_kind, content=content)

    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert done.stdout == b"".join(sorted(content.splitlines(keepends=True)))


@pytest.mark.parametrize("stdout_kind", ["pipe", "file"])
def test_relay_with_dev_null_on_stdin_ends_cleanly(
    stack: contextlib.ExitStack, tmp_path: Path, stdout_kind: str
) -> None:
    done = run_relay(stack, tmp_path, "exec:cat", stdin_kind="devnull", stdout_kind=stdout_kind, content=b"")

    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert done.stdout == b""


def test_relay_output_to_a_file_is_byte_identical_to_a_pipe(stack: contextlib.ExitStack, tmp_path: Path) -> None:
    # Bytes the relay must not touch: every value, no line structure.
    content = random.Random(4).randbytes(3 * 1024 * 1024 + 17)

    outputs = {
        (stdin_kind, stdout_kind): run_relay(
            stack, tmp_path, "exec:cat", stdin_kind=stdin_kind, stdout_kind=stdout_kind, content=content
        )
        for stdin_kind in ("file", "pipe")
        for stdout_kind in ("pipe", "file")
    }

    for kinds, done in outputs.items():
        assert done.returncode == 0, f"{kinds}: {done.stderr.decode(errors='replace')}"
        assert done.stdout == content, f"{kinds}: {len(done.stdout)} bytes, not the {len(content)} sent"
