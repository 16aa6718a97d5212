"""The Poller: channel kinds and subclasses.

Everything here runs over real descriptors: TestChannel pipes, socketpairs,
TCP on 127.0.0.1 and Unix sockets under ``tmp_path``. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import gc
import socket

from channels import (
    Channel,
    EndpointClosedException,
    LineChannel,
)
from channels.base import Buffer
from channels.poller import Poller
from tests.helpers import WAIT
from tests.poller.support import (
    channel_pair,
    data_of,
    ended,
    poll_until,
)


def test_line_channel_is_polled_line_by_line_to_its_end(poller: Poller, stack: contextlib.ExitStack) -> None:
    inner, peer = channel_pair(stack)
    channel = LineChannel(inner)
    stack.callback(channel.close)
    poller.register(channel)
    peer.sendall(b"one\ntwo\nthr")

    assert poll_until(poller, bool) == [(b"one\n", channel), (b"two\n", channel)]

    peer.sendall(b"ee\n")
    peer.close()
    results = poll_until(poller, ended(channel))
    assert data_of(results, channel) == [b"three\n", b""]
    assert len(poller) == 0


class OldStyleChannel(Channel):
    """A channel written for 0.1.1: overrides everything, never calls ``super().__init__``."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._sock.setblocking(False)

    def read(self) -> bytes:
        try:
            result = self._sock.recv(4096)
        except BlockingIOError:
            return b""
        except OSError as ex:
            raise EndpointClosedException(ex) from ex
        if not result:
            raise EndpointClosedException()
        return result

    def write(self, *data: Buffer) -> None:
        try:
            for chunk in data:
                self._sock.send(chunk)
        except OSError as ex:
            raise EndpointClosedException(ex) from ex

    def close(self) -> None:  # type: ignore[override]  # the 0.1.1 signature
        self._sock.close()

    def get_fd(self) -> int:
        return self._sock.fileno()


def old_style_pair(stack: contextlib.ExitStack) -> tuple[OldStyleChannel, socket.socket]:
    mine, peer = socket.socketpair()
    stack.callback(mine.close)
    stack.callback(peer.close)
    peer.settimeout(WAIT)
    return OldStyleChannel(mine), peer


def test_old_style_subclass_is_polled_to_its_end(poller: Poller, stack: contextlib.ExitStack) -> None:
    channel, peer = old_style_pair(stack)
    poller.register(channel)
    peer.sendall(b"hello")

    assert poller.poll(WAIT) == [(b"hello", channel)]
    channel.write(b"reply")
    assert peer.recv(16) == b"reply"

    peer.close()
    assert poll_until(poller, ended(channel)) == [(b"", channel)]
    assert len(poller) == 0
    assert poller.poll(0.05) == []


def test_old_style_subclass_closed_by_owner_yields_its_descriptor(poller: Poller, stack: contextlib.ExitStack) -> None:
    gc.collect()
    old, _ = old_style_pair(stack)
    poller.register(old)
    old_fd = old.get_fd()

    old.close()
    new, peer = channel_pair(stack)
    assert new.get_fd() == old_fd, "the new descriptor should take the freed number"
    poller.register(new)
    peer.sendall(b"fresh")

    results = poll_until(poller, lambda r: (b"fresh", new) in r)
    assert data_of(results, old) == [b""]
    assert len(poller) == 1


def test_old_style_line_channel_is_polled_line_by_line(poller: Poller, stack: contextlib.ExitStack) -> None:
    inner, peer = old_style_pair(stack)
    channel = LineChannel(inner)
    stack.callback(channel.close)
    poller.register(channel)
    peer.sendall(b"a\nb\nc")

    assert poll_until(poller, bool) == [(b"a\n", channel), (b"b\n", channel)]
    peer.close()
    assert data_of(poll_until(poller, ended(channel)), channel) == [b"c", b""]


class NewStyleChannel(Channel):
    """A channel written for 0.2: defines ``_read()``, ``write()``, ``close()``."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(buffering="line")
        self._sock = sock
        self._sock.setblocking(False)

    def _read(self) -> bytes:
        try:
            result = self._sock.recv(4096)
        except BlockingIOError:
            return b""
        if not result:
            raise EndpointClosedException()
        return result

    def write(self, *data: Buffer) -> None:
        for chunk in data:
            self._sock.send(chunk)

    def close(self) -> None:  # type: ignore[override]  # the 0.2 signature
        self._sock.close()

    def get_fd(self) -> int:
        return self._sock.fileno()


def test_new_style_subclass_gets_lines_split_by_the_poller(poller: Poller, stack: contextlib.ExitStack) -> None:
    mine, peer = socket.socketpair()
    stack.callback(mine.close)
    stack.callback(peer.close)
    channel = NewStyleChannel(mine)
    stack.callback(channel.close)
    poller.register(channel)
    peer.sendall(b"one\ntwo\nthr")

    assert poll_until(poller, bool) == [(b"one\n", channel), (b"two\n", channel)]

    peer.sendall(b"ee\n")
    assert poll_until(poller, bool) == [(b"three\n", channel)]
    channel.write(b"ok\n")
    assert peer.recv(16) == b"ok\n"
    peer.close()
    assert poll_until(poller, ended(channel)) == [(b"", channel)]
