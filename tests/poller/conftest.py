"""Fixtures of the Poller tests: each runs over epoll itself and over selectors."""

from __future__ import annotations

import contextlib
import select
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import channels.poller
from channels._watch import EpollWatcher, SelectorsWatcher
from channels.poller import Poller
from tests.poller.support import tcp_server, unix_server


@pytest.fixture(autouse=True, params=["epoll", "selectors"])
def watcher(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every poller test runs over epoll itself and over selectors."""
    if request.param == "epoll":
        if not hasattr(select, "epoll"):
            pytest.skip("no epoll on this system")
        monkeypatch.setattr(channels.poller, "_make_watcher", EpollWatcher)
    else:
        monkeypatch.setattr(channels.poller, "_make_watcher", SelectorsWatcher)
    return str(request.param)


@pytest.fixture
def poller() -> Iterator[Poller]:
    p = Poller()
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def line_poller() -> Iterator[Poller]:
    p = Poller(buffering="line")
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    """Closes what a test opened, last opened first."""
    with contextlib.ExitStack() as exits:
        yield exits


@pytest.fixture(params=["tcp", "unix"])
def server(request: pytest.FixtureRequest, stack: contextlib.ExitStack, tmp_path: Path) -> socket.socket:
    if request.param == "tcp":
        return tcp_server(stack)
    return unix_server(stack, tmp_path)
