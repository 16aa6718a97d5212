"""Every public entry point answers bad input the same way.

A wrong type raises ``TypeError``, a wrong value ``ValueError``; the message
names the parameter (or the address, the file, the descriptor) and what was
expected; and nothing is half-done: no socket, descriptor or child process
is left behind, no channel is closed or changed. The table below is the
public surface, one row per (entry point, bad argument); the tests after it
are the rows that need more than one call to show, and the unit tests of
``channels._check`` and ``channels._wait`` themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import select
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from channels import (
    Channel,
    EndpointClosedException,
    LineChannel,
    LineSplitter,
    PipeChannel,
    ProcessChannel,
    PtyProcessChannel,
    SocketChannel,
    _check,
    _wait,
    connect,
    listen,
)
from channels.aio import aclose, alines
from channels.poller import Poller
from channels.testing import TestChannel, check_channel
from channels.tls import TLSChannel, connect_tls, listen_tls
from tests.helpers import WAIT, open_fd_count
from tests.test_tls import Certs, make_certs

NAN = float("nan")
INF = float("inf")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("tls"))


class Kit:
    """Fresh, valid things for a row to misuse; all closed when the row ends."""

    def __init__(self, stack: contextlib.ExitStack, tmp_path: Path, certs: Certs) -> None:
        self.stack = stack
        self.tmp_path = tmp_path
        self.certs = certs

    def sockets(self) -> tuple[socket.socket, socket.socket]:
        ours, theirs = socket.socketpair()
        self.stack.enter_context(ours)
        self.stack.enter_context(theirs)
        return ours, theirs

    def socket_channel(self, **options: Any) -> SocketChannel:
        ours, _ = self.sockets()
        return self.stack.enter_context(SocketChannel(ours, **options))

    def test_channel(self, **options: Any) -> TestChannel:
        return self.stack.enter_context(TestChannel(**options))

    def pending(self) -> TestChannel:
        """A channel holding output its stalled peer does not take."""
        channel = self.test_channel()
        channel.stall()
        channel.write(b"held")
        self.stack.callback(channel.abort)  # before the close on the stack, which would wait
        return channel

    def line_channel(self) -> LineChannel:
        return self.stack.enter_context(LineChannel(TestChannel()))

    def poller(self, **options: Any) -> Poller:
        return self.stack.enter_context(Poller(**options))

    def process(self) -> ProcessChannel:
        channel = ProcessChannel(["cat"])
        self.stack.callback(channel.abort)
        return channel

    def pty(self) -> PtyProcessChannel:
        channel = PtyProcessChannel(["cat"])
        self.stack.callback(channel.abort)
        return channel

    def tls_channel(self) -> TLSChannel:
        ours, _ = self.sockets()
        channel = TLSChannel(ours, self.certs.client_context(), server_hostname="localhost")
        self.stack.callback(channel.abort)
        return channel

    def server_port(self) -> int:
        server = self.stack.enter_context(listen("tcp:127.0.0.1:0"))
        return int(server.getsockname()[1])

    def listener(self) -> socket.socket:
        return self.stack.enter_context(listen("tcp:127.0.0.1:0"))

    def unix_path(self) -> str:
        path = str(self.tmp_path / "server.sock")
        self.stack.enter_context(listen(f"unix:{path}"))
        return path


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def first_line(channel: Channel, max_line_length: Any) -> bytes:
    return await alines(channel, max_line_length=max_line_length).__anext__()


def a_pair() -> tuple[Channel, Channel]:  # pragma: no cover - the rows refuse before calling it
    left, right = socket.socketpair()
    return SocketChannel(left), SocketChannel(right)


@dataclass(frozen=True)
class Row:
    """One bad call: the error it raises, and what the message must name."""

    call: Callable[[Kit], object]
    error: type[BaseException]
    names: str


def rows_for_a_timeout(name: str, call: Callable[[Kit, Any], object], *, none: bool = True) -> dict[str, Row]:
    """The bad values every timeout refuses, for one entry point."""
    rows = {
        f"{name}-str": Row(lambda kit: call(kit, "1"), TypeError, "timeout"),
        f"{name}-bool": Row(lambda kit: call(kit, True), TypeError, "timeout"),
        f"{name}-nan": Row(lambda kit: call(kit, NAN), ValueError, "timeout"),
        f"{name}-negative": Row(lambda kit: call(kit, -1), ValueError, "timeout"),
    }
    if not none:
        rows[f"{name}-none"] = Row(lambda kit: call(kit, None), TypeError, "timeout")
    return rows


def rows_for_a_server_deadline(name: str) -> dict[str, Row]:
    """The bad values ``add_server()`` refuses for one of its deadlines
    (``None`` is no limit; inf is refused, as for any timer, saying so)."""

    def call(kit: Kit, value: Any) -> None:
        kit.poller().add_server(kit.listener(), **{name: value})

    return {
        f"add_server-{name}-str": Row(lambda kit: call(kit, "5"), TypeError, name),
        f"add_server-{name}-bool": Row(lambda kit: call(kit, True), TypeError, name),
        f"add_server-{name}-nan": Row(lambda kit: call(kit, NAN), ValueError, name),
        f"add_server-{name}-negative": Row(lambda kit: call(kit, -1), ValueError, name),
        f"add_server-{name}-zero": Row(lambda kit: call(kit, 0), ValueError, f"add_server(): {name} must be"),
        f"add_server-{name}-inf": Row(lambda kit: call(kit, INF), ValueError, "None is no limit"),
    }


def rows_for_the_channel_options(name: str, make: Callable[..., object]) -> dict[str, Row]:
    """The bad options every channel constructor refuses."""
    return {
        f"{name}-max_pending-str": Row(lambda kit: make(kit, max_pending="1M"), TypeError, "max_pending"),
        f"{name}-max_pending-float": Row(lambda kit: make(kit, max_pending=1.5), TypeError, "max_pending"),
        f"{name}-max_pending-zero": Row(lambda kit: make(kit, max_pending=0), ValueError, "max_pending"),
        f"{name}-max_line_length-float": Row(lambda kit: make(kit, max_line_length=1.5), TypeError, "max_line_length"),
        f"{name}-max_line_length-negative": Row(
            lambda kit: make(kit, max_line_length=-3), ValueError, "max_line_length"
        ),
        f"{name}-buffering": Row(lambda kit: make(kit, buffering="lines"), ValueError, "buffering"),
    }


def make_pipe_channel(kit: Kit, **options: Any) -> object:
    ours, _ = kit.sockets()
    return PipeChannel(ours, ours, **options)


ROWS: dict[str, Row] = {
    # -- timeouts ---------------------------------------------------------------
    **rows_for_a_timeout("receive", lambda kit, t: kit.socket_channel().receive(timeout=t)),
    **rows_for_a_timeout("expect", lambda kit, t: kit.socket_channel().expect(b"x", timeout=t)),
    **rows_for_a_timeout("flush", lambda kit, t: kit.pending().flush(timeout=t)),
    **rows_for_a_timeout("close", lambda kit, t: kit.pending().close(timeout=t)),
    **rows_for_a_timeout("shutdown_write", lambda kit, t: kit.socket_channel().shutdown_write(timeout=t)),
    **rows_for_a_timeout("line-close", lambda kit, t: kit.line_channel().close(timeout=t)),
    **rows_for_a_timeout("line-shutdown_write", lambda kit, t: kit.line_channel().shutdown_write(timeout=t)),
    **rows_for_a_timeout("close_all", lambda kit, t: kit.poller().close_all(timeout=t)),
    **rows_for_a_timeout("process-wait", lambda kit, t: kit.process().wait(timeout=t)),
    **rows_for_a_timeout("process-close", lambda kit, t: kit.process().close(timeout=t)),
    **rows_for_a_timeout("pty-close", lambda kit, t: kit.pty().close(timeout=t)),
    **rows_for_a_timeout("pty-shutdown_write", lambda kit, t: kit.pty().shutdown_write(timeout=t)),
    **rows_for_a_timeout("handshake", lambda kit, t: kit.tls_channel().handshake(timeout=t)),
    **rows_for_a_timeout("aclose", lambda kit, t: run(aclose(kit.pending(), timeout=t))),
    **rows_for_a_timeout("terminate_timeout", lambda kit, t: ProcessChannel(["true"], terminate_timeout=t), none=False),
    **rows_for_a_timeout(
        "pty-terminate_timeout", lambda kit, t: PtyProcessChannel(["true"], terminate_timeout=t), none=False
    ),
    **rows_for_a_timeout("connect-tcp", lambda kit, t: connect(f"tcp:127.0.0.1:{kit.server_port()}", timeout=t)),
    **rows_for_a_timeout("connect-unix", lambda kit, t: connect(f"unix:{kit.unix_path()}", timeout=t)),
    **rows_for_a_timeout("connect_tls", lambda kit, t: connect_tls("127.0.0.1", kit.server_port(), timeout=t)),
    **rows_for_a_timeout("check_channel", lambda kit, t: check_channel(a_pair, timeout=t), none=False),
    "poll-str": Row(lambda kit: kit.poller().poll("1"), TypeError, "timeout"),  # type: ignore[arg-type]
    "poll-bool": Row(lambda kit: kit.poller().poll(True), TypeError, "timeout"),
    "poll-nan": Row(lambda kit: kit.poller().poll(NAN), ValueError, "timeout"),
    "connect-tcp-zero": Row(lambda kit: connect(f"tcp:127.0.0.1:{kit.server_port()}", timeout=0), ValueError, "> 0"),
    "connect-unix-zero": Row(lambda kit: connect(f"unix:{kit.unix_path()}", timeout=0), ValueError, "> 0"),
    "connect_tls-zero": Row(lambda kit: connect_tls("127.0.0.1", kit.server_port(), timeout=0), ValueError, "> 0"),
    "check_channel-inf": Row(lambda kit: check_channel(a_pair, timeout=INF), ValueError, "timeout"),
    **rows_for_a_server_deadline("idle_timeout"),
    **rows_for_a_server_deadline("handshake_timeout"),
    # -- timers: finite seconds, inf refused ---------------------------------------------
    "call_later-str": Row(lambda kit: kit.poller().call_later("1"), TypeError, "call_later(): seconds"),  # type: ignore[arg-type]
    "call_later-none": Row(lambda kit: kit.poller().call_later(None), TypeError, "call_later(): seconds"),  # type: ignore[arg-type]
    "call_later-negative": Row(lambda kit: kit.poller().call_later(-1), ValueError, "call_later(): seconds"),
    "call_later-nan": Row(lambda kit: kit.poller().call_later(NAN), ValueError, "call_later(): seconds"),
    "call_later-inf": Row(lambda kit: kit.poller().call_later(INF), ValueError, "finite"),
    "call_every-bool": Row(lambda kit: kit.poller().call_every(True), TypeError, "call_every(): seconds"),
    "call_every-zero": Row(lambda kit: kit.poller().call_every(0), ValueError, "call_every(): seconds"),
    "call_every-inf": Row(lambda kit: kit.poller().call_every(INF), ValueError, "call_every(): seconds"),
    "reset-negative": Row(lambda kit: kit.poller().call_later(1).reset(-1), ValueError, "reset(): seconds"),
    "reset-str": Row(lambda kit: kit.poller().call_later(1).reset("1"), TypeError, "reset(): seconds"),  # type: ignore[arg-type]
    # -- counts and sizes ------------------------------------------------------------
    **rows_for_the_channel_options("PipeChannel", make_pipe_channel),
    **rows_for_the_channel_options("SocketChannel", lambda kit, **o: SocketChannel(kit.sockets()[0], **o)),
    **rows_for_the_channel_options("TestChannel", lambda kit, **o: TestChannel(**o)),
    **rows_for_the_channel_options("ProcessChannel", lambda kit, **o: ProcessChannel(["true"], **o)),
    **rows_for_the_channel_options("PtyProcessChannel", lambda kit, **o: PtyProcessChannel(["true"], **o)),
    **rows_for_the_channel_options(
        "TLSChannel", lambda kit, **o: TLSChannel(kit.sockets()[0], kit.certs.client_context(), **o)
    ),
    **rows_for_the_channel_options("connect-tcp", lambda kit, **o: connect(f"tcp:127.0.0.1:{kit.server_port()}", **o)),
    **rows_for_the_channel_options("connect-unix", lambda kit, **o: connect(f"unix:{kit.unix_path()}", **o)),
    **rows_for_the_channel_options("connect-stdio", lambda kit, **o: connect("stdio", **o)),
    **rows_for_the_channel_options("connect-exec", lambda kit, **o: connect("exec:true", **o)),
    **rows_for_the_channel_options(
        "connect_tls", lambda kit, **o: connect_tls("127.0.0.1", kit.server_port(), cafile=kit.certs.ca_file, **o)
    ),
    "LineChannel-max_line_length-float": Row(
        lambda kit: LineChannel(kit.test_channel(), max_line_length=1.5),  # type: ignore[arg-type]
        TypeError,
        "max_line_length",
    ),
    "LineSplitter-max_line_length-float": Row(lambda kit: LineSplitter(1.5), TypeError, "max_line_length"),  # type: ignore[arg-type]
    "LineSplitter-max_line_length-str": Row(lambda kit: LineSplitter("9"), TypeError, "max_line_length"),  # type: ignore[arg-type]
    "alines-max_line_length": Row(lambda kit: run(first_line(kit.test_channel(), 1.5)), TypeError, "max_line_length"),
    "Poller-max_pending-negative": Row(lambda kit: Poller(max_pending=-1), ValueError, "max_pending"),
    "Poller-max_pending-float": Row(lambda kit: Poller(max_pending=1.5), TypeError, "max_pending"),  # type: ignore[arg-type]
    "Poller-max_line_length-negative": Row(lambda kit: Poller(max_line_length=-3), ValueError, "max_line_length"),
    "Poller-max_line_length-float": Row(lambda kit: Poller(max_line_length=1.5), TypeError, "max_line_length"),  # type: ignore[arg-type]
    "read_size-float": Row(lambda kit: setattr(kit.test_channel(), "read_size", 1.5), TypeError, "read_size"),
    "read_size-zero": Row(lambda kit: setattr(kit.test_channel(), "read_size", 0), ValueError, "read_size"),
    "send_limit-float": Row(lambda kit: TestChannel(send_limit=1.5), TypeError, "send_limit"),  # type: ignore[arg-type]
    "send_limit-negative": Row(lambda kit: TestChannel(send_limit=-1), ValueError, "send_limit"),
    "listen-tcp-backlog-negative": Row(lambda kit: listen("tcp:127.0.0.1:0", backlog=-5), ValueError, "backlog"),
    "listen-tcp-backlog-float": Row(lambda kit: listen("tcp:127.0.0.1:0", backlog=1.5), TypeError, "backlog"),
    "listen-unix-backlog-negative": Row(
        lambda kit: listen(f"unix:{kit.tmp_path / 's'}", backlog=-5), ValueError, "backlog"
    ),
    "listen_tls-backlog-negative": Row(
        lambda kit: listen_tls("127.0.0.1", 0, certfile=kit.certs.cert_file, backlog=-5), ValueError, "backlog"
    ),
    "pty-size-float": Row(lambda kit: PtyProcessChannel(["true"], size=(1.5, 80)), TypeError, "rows"),  # type: ignore[arg-type]
    "pty-resize-zero": Row(lambda kit: kit.pty().resize(24, 0), ValueError, "cols"),
    "send_signal-str": Row(lambda kit: kit.process().send_signal("TERM"), TypeError, "sig"),  # type: ignore[arg-type]
    # -- flags ------------------------------------------------------------------------
    "Poller-batch_writes": Row(lambda kit: Poller(batch_writes="no"), TypeError, "batch_writes"),  # type: ignore[arg-type]
    "new_process_group": Row(
        lambda kit: ProcessChannel(["true"], new_process_group="yes"),  # type: ignore[arg-type]
        TypeError,
        "new_process_group",
    ),
    "pty-echo": Row(lambda kit: PtyProcessChannel(["true"], echo=1), TypeError, "echo"),  # type: ignore[arg-type]
    "pty-raw": Row(lambda kit: PtyProcessChannel(["true"], raw="no"), TypeError, "raw"),  # type: ignore[arg-type]
    "TLSChannel-server_side": Row(
        lambda kit: TLSChannel(kit.sockets()[0], kit.certs.client_context(), server_side="no"),  # type: ignore[arg-type]
        TypeError,
        "server_side",
    ),
    # -- data ---------------------------------------------------------------------------
    "write-str": Row(lambda kit: kit.test_channel().write("text"), TypeError, "write()"),  # type: ignore[arg-type]
    "put-str": Row(lambda kit: kit.test_channel().put("x"), TypeError, "put()"),  # type: ignore[arg-type]
    "put-int": Row(lambda kit: kit.test_channel().put(3), TypeError, "put()"),  # type: ignore[arg-type]
    "feed-str": Row(lambda kit: LineSplitter().feed("abc"), TypeError, "takes bytes"),  # type: ignore[arg-type]
    "feed-none": Row(lambda kit: LineSplitter().feed(None), TypeError, "takes bytes"),  # type: ignore[arg-type]
    "expect-str": Row(lambda kit: kit.test_channel().expect("x", 0), TypeError, "bytes"),  # type: ignore[arg-type]
    # -- channels and descriptors ---------------------------------------------------------
    "LineChannel-None": Row(lambda kit: LineChannel(None), TypeError, "LineChannel"),  # type: ignore[arg-type]
    "LineChannel-socket": Row(lambda kit: LineChannel(kit.sockets()[0]), TypeError, "SocketChannel"),  # type: ignore[arg-type]
    "register-None": Row(lambda kit: kit.poller().register(None), TypeError, "register()"),  # type: ignore[arg-type]
    "register-socket": Row(lambda kit: kit.poller().register(kit.sockets()[0]), TypeError, "register()"),  # type: ignore[arg-type]
    "register-int": Row(lambda kit: kit.poller().register(3), TypeError, "register()"),  # type: ignore[arg-type]
    "PipeChannel-huge-descriptor": Row(lambda kit: PipeChannel(2**31), ValueError, "2147483648"),
    "PipeChannel-float-descriptor": Row(lambda kit: PipeChannel(1.5), TypeError, "faucet"),  # type: ignore[arg-type]
    "connect-fd-huge": Row(lambda kit: connect("fd:2147483648"), ValueError, "'fd:2147483648'"),
    "connect-fd-pair-huge": Row(lambda kit: connect("fd:0,2147483648"), ValueError, "'fd:0,2147483648'"),
    # -- processes ------------------------------------------------------------------------------
    "env-int-value": Row(lambda kit: ProcessChannel(["true"], env={"A": 1}), TypeError, "env"),  # type: ignore[dict-item]
    "env-list": Row(lambda kit: ProcessChannel(["true"], env=["A=1"]), TypeError, "env"),  # type: ignore[arg-type]
    "pty-env": Row(lambda kit: PtyProcessChannel(["true"], env={"A": 1}), TypeError, "env"),  # type: ignore[dict-item]
    "connect-exec-env": Row(lambda kit: connect("exec:true", env={"A": 1}), TypeError, "env"),
    "cwd-int": Row(lambda kit: ProcessChannel(["true"], cwd=3), TypeError, "cwd"),  # type: ignore[arg-type]
    # -- files and addresses -------------------------------------------------------------------
    "listen_tls-certfile-missing": Row(
        lambda kit: listen_tls("127.0.0.1", 0, certfile=kit.tmp_path / "missing.pem"), FileNotFoundError, "missing.pem"
    ),
    "listen_tls-keyfile-missing": Row(
        lambda kit: listen_tls("127.0.0.1", 0, certfile=kit.certs.cert_file, keyfile=kit.tmp_path / "key.pem"),
        FileNotFoundError,
        "key.pem",
    ),
    "listen-tls-certfile-missing": Row(
        lambda kit: listen("tls:127.0.0.1:0", certfile=kit.tmp_path / "missing.pem"), FileNotFoundError, "certfile"
    ),
    "connect_tls-cafile-missing": Row(
        lambda kit: connect_tls("127.0.0.1", kit.server_port(), cafile=kit.tmp_path / "ca.pem"),
        FileNotFoundError,
        "ca.pem",
    ),
    "listen-unix-under-a-file": Row(
        lambda kit: listen(f"unix:{kit.certs.cert_file}/"), NotADirectoryError, "'unix:{cert}/'"
    ),
    "listen_tls-in-use": Row(
        lambda kit: listen_tls("127.0.0.1", kit.server_port(), certfile=kit.certs.cert_file), OSError, "'tls:127.0.0.1:"
    ),
    "connect-tls-refused": Row(
        lambda kit: connect(f"tls:127.0.0.1:{closed_port()}"), ConnectionRefusedError, "'tls:127.0.0.1:"
    ),
}


def closed_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


def child_pids() -> set[str]:
    """This process's children, as the kernel lists them."""
    pids: set[str] = set()
    for task in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError), open(f"/proc/self/task/{task}/children") as children:
            pids.update(children.read().split())
    return pids


@pytest.mark.parametrize("row", list(ROWS.values()), ids=list(ROWS))
def test_a_bad_argument_raises_naming_it_and_leaves_nothing_behind(row: Row, tmp_path: Path, certs: Certs) -> None:
    gc.collect()
    descriptors = open_fd_count()
    children = child_pids()
    with contextlib.ExitStack() as stack:
        kit = Kit(stack, tmp_path, certs)
        with pytest.raises(row.error) as raised:
            row.call(kit)
    gc.collect()  # a half-built channel would warn here (ResourceWarning is an error)
    assert row.names.replace("{cert}", certs.cert_file) in str(raised.value)
    assert open_fd_count() == descriptors
    assert child_pids() <= children


# -- inf and long timeouts: no limit, never OverflowError ---------------------------------


@pytest.mark.parametrize("timeout", [INF, 1e12, 10**400])
def test_an_infinite_or_huge_timeout_waits_without_limit(timeout: float) -> None:
    with TestChannel() as channel, Poller() as poller:
        channel.put(b"ready\n")
        assert channel.receive(timeout) == b"ready\n"
        channel.put(b"more\n")
        assert channel.expect(b"\n", timeout) == b"more\n"
        channel.write(b"out")
        assert channel.flush(timeout)
        poller.register(channel)
        channel.put(b"polled")
        assert poller.poll(timeout) == [(b"polled", channel)]
        poller.unregister(channel)
        channel.put(b"waited")
        assert _wait.wait_for(channel.get_fd(), select.POLLIN, timeout)
        channel.close(timeout)


def test_an_infinite_timeout_waits_for_a_child_to_exit() -> None:
    with ProcessChannel([sys.executable, "-c", "pass"]) as child:
        assert child.wait(INF) == 0
        child.close(INF)


def test_poll_with_an_infinite_timeout_returns_when_woken() -> None:
    with Poller() as poller:
        waker = threading.Timer(0.05, poller.wakeup)
        waker.start()
        try:
            assert poller.poll(INF) == []
        finally:
            waker.join(WAIT)


def test_a_server_refused_for_a_bad_deadline_is_not_added() -> None:
    with Poller() as poller, listen("tcp:127.0.0.1:0") as server:
        with pytest.raises(ValueError, match="idle_timeout"):
            poller.add_server(server, idle_timeout=0)
        poller.unregister(server)  # silent: it was never added
        poller.register(TestChannel())  # its descriptor is free, and the poller goes on
        assert len(poller) == 1


# -- checked before anything happens ---------------------------------------------------------


@pytest.mark.parametrize("method", ["close", "flush", "shutdown_write"])
def test_a_bad_timeout_leaves_the_channel_open_with_its_output(method: str) -> None:
    with TestChannel() as channel:
        channel.stall()
        channel.write(b"kept")
        with pytest.raises(TypeError, match="timeout"):
            getattr(channel, method)(timeout="x")
        assert not channel.closed
        assert channel.pending_output == 4
        channel.resume()
        channel.write(b" and more")  # still open for writing: shutdown_write() did nothing
        assert channel.flush(WAIT)
        assert channel.get() == b"kept and more"


def test_a_bad_timeout_to_process_close_leaves_the_child_running() -> None:
    with ProcessChannel(["cat"]) as child:
        with pytest.raises(ValueError, match="timeout"):
            child.close(-1)
        assert child.returncode is None
        child.write(b"still here\n")
        assert child.receive(WAIT) == b"still here\n"


def test_a_bad_timeout_to_close_all_closes_nothing() -> None:
    with Poller() as poller, TestChannel() as channel:
        poller.register(channel)
        with pytest.raises(TypeError, match="timeout"):
            poller.close_all("soon")  # type: ignore[arg-type]
        assert not channel.closed
        assert len(poller) == 1


def test_a_negative_connect_timeout_opens_no_socket() -> None:
    with listen("tcp:127.0.0.1:0") as server:
        before = open_fd_count()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a leaked socket would warn
            with pytest.raises(ValueError, match="timeout"):
                connect(f"tcp:127.0.0.1:{server.getsockname()[1]}", timeout=-1)
            gc.collect()
        assert open_fd_count() == before


def test_a_negative_poll_timeout_still_means_do_not_wait() -> None:
    with Poller() as poller:
        started = time.monotonic()
        assert poller.poll(-5) == []
        assert time.monotonic() - started < WAIT


# -- the poller once closed -----------------------------------------------------------------


@pytest.mark.parametrize("call", ["poll", "register", "add_server"])
def test_a_closed_poller_says_it_is_closed(call: str) -> None:
    poller = Poller()
    poller.close()
    with TestChannel() as channel, socket.create_server(("127.0.0.1", 0)) as server:
        argument = {"poll": 0, "register": channel, "add_server": server}[call]
        with pytest.raises(ValueError, match="Poller is closed"):
            getattr(poller, call)(argument)
    poller.close()  # still idempotent
    poller.wakeup()  # and still does nothing


# -- one descriptor, one PipeChannel ----------------------------------------------------------


# Each channel owns the descriptors it is given, and closes them: a test
# closes only those no channel took, lest it close a number reused meanwhile.


def test_a_second_pipe_channel_on_a_descriptor_is_refused_naming_it() -> None:
    read_end, write_end = os.pipe()
    with PipeChannel(read_end) as first, PipeChannel(sink=write_end) as feed:
        with pytest.raises(ValueError, match=f"descriptor {read_end} already belongs to"):
            PipeChannel(read_end)
        gc.collect()  # the refused one left no unclosed channel behind
        feed.write(b"first's")
        assert first.receive(WAIT) == b"first's"


def test_a_second_pipe_channel_through_a_file_object_is_refused_too() -> None:
    read_end, write_end = os.pipe()
    os.close(write_end)
    with (
        PipeChannel(read_end),
        open(read_end, "rb", buffering=0, closefd=False) as same,
        pytest.raises(ValueError, match=f"descriptor {read_end}"),
    ):
        PipeChannel(same)


def test_a_refused_sink_claims_nothing_of_the_faucet() -> None:
    read_end, write_end = os.pipe()
    with PipeChannel(sink=write_end):
        with pytest.raises(ValueError, match=f"descriptor {write_end}"):
            PipeChannel(read_end, write_end)
        with PipeChannel(read_end) as reader:  # the faucet was not kept by the refused channel
            assert reader.read() == b""


def test_one_channel_may_read_and_write_one_descriptor() -> None:
    ours, theirs = socket.socketpair()
    with PipeChannel(ours, ours) as channel, theirs:
        channel.write(b"both ways")
        assert theirs.recv(100) == b"both ways"
        with pytest.raises(ValueError, match=f"descriptor {ours.fileno()}"):
            PipeChannel(ours)


def test_connect_on_a_descriptor_a_channel_owns_names_the_address() -> None:
    read_end, write_end = os.pipe()
    os.close(write_end)
    with PipeChannel(read_end), pytest.raises(ValueError, match=f"'fd:{read_end}'.*already belongs"):
        connect(f"fd:{read_end}")


@pytest.mark.parametrize("how", ["close", "abort"])
def test_a_closed_channel_gives_its_descriptor_up(how: str) -> None:
    read_end, write_end = os.pipe()
    channel = PipeChannel(read_end)
    other_read, other_write = os.pipe()  # made first, so that it does not take the number itself
    getattr(channel, how)()
    os.dup2(other_read, read_end)  # the number, reused by another file
    os.close(other_read)
    with PipeChannel(read_end) as reused:
        os.write(other_write, b"new file")
        assert reused.receive(WAIT) == b"new file"
    os.close(write_end)
    os.close(other_write)


def test_a_collected_channel_gives_its_descriptor_up() -> None:
    read_end, write_end = os.pipe()
    channel = PipeChannel(read_end)
    other_read, other_write = os.pipe()
    with pytest.warns(ResourceWarning, match="unclosed"):
        del channel
        gc.collect()
    os.dup2(other_read, read_end)
    os.close(other_read)
    with PipeChannel(read_end) as reused:
        os.write(other_write, b"x")
        assert reused.receive(WAIT) == b"x"
    os.close(write_end)
    os.close(other_write)


def test_a_subclass_that_closes_its_descriptor_itself_gives_it_up() -> None:
    class ClosesItself(PipeChannel):
        """The original library's style: a close() of its own."""

        __slots__ = ()

        def close(self, timeout: float | None = None) -> None:
            os.close(self.get_fd())
            self.closed = True

    read_end, write_end = os.pipe()
    old = ClosesItself(read_end)
    other_read, other_write = os.pipe()
    old.close()
    os.dup2(other_read, read_end)  # another file, on the same number
    os.close(other_read)
    with PipeChannel(read_end) as reused:
        os.write(other_write, b"mine")
        assert reused.receive(WAIT) == b"mine"
    os.close(write_end)
    os.close(other_write)
    del old


# -- errors that name the address or the file ----------------------------------------------


@dataclass
class OneHandshakeServer:
    """A TLS server, in a thread, that answers one handshake however it ends."""

    port: int
    thread: threading.Thread

    def finish(self) -> None:
        """Wait until it has closed its side (it lives in this process: its
        descriptors count with ours)."""
        self.thread.join(WAIT)
        assert not self.thread.is_alive()


@pytest.fixture
def tls_server(certs: Certs) -> Iterator[OneHandshakeServer]:
    server = listen_tls("127.0.0.1", 0, certfile=certs.cert_file)
    server.settimeout(WAIT)

    def serve() -> None:
        with contextlib.suppress(OSError):
            sock, _ = server.accept()
            with contextlib.suppress(OSError), certs.server_context().wrap_socket(sock, server_side=True) as tls:
                tls.recv(1)
            sock.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield OneHandshakeServer(int(server.getsockname()[1]), thread)
    finally:
        thread.join(WAIT)
        server.close()


def test_a_failed_tls_handshake_names_the_address_and_keeps_the_cause(tls_server: OneHandshakeServer) -> None:
    before = open_fd_count()
    with pytest.raises(EndpointClosedException, match=f"'tls:localhost:{tls_server.port}'") as raised:
        connect(f"tls:localhost:{tls_server.port}")  # the test CA is not trusted
    assert isinstance(raised.value.__cause__, ssl.SSLCertVerificationError)
    tls_server.finish()
    assert open_fd_count() == before


def test_a_missing_certificate_file_leaves_no_socket(tmp_path: Path) -> None:
    before = open_fd_count()
    with pytest.raises(FileNotFoundError, match="certfile") as raised:
        listen_tls("127.0.0.1", 0, certfile=tmp_path / "gone.pem")
    assert raised.value.filename == str(tmp_path / "gone.pem")
    assert open_fd_count() == before


# -- channels._check ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 0.0), (1, 1.0), (0.25, 0.25), (None, None), (INF, None), (10**400, None)]
)
def test_check_timeout_takes_seconds_and_reads_inf_as_no_limit(value: object, expected: float | None) -> None:
    assert _check.timeout(value) == expected


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("1", TypeError),
        (True, TypeError),
        (b"1", TypeError),
        (NAN, ValueError),
        (-1, ValueError),
        (-(10**400), ValueError),
    ],
)
def test_check_timeout_refuses_what_is_not_seconds(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"^wait must be a number of seconds >= 0 or None, not "):
        _check.timeout(value, "wait")


def test_check_timeout_can_refuse_none_and_zero() -> None:
    with pytest.raises(TypeError, match="linger must be a number of seconds >= 0, not None"):
        _check.timeout(None, "linger", allow_none=False)
    with pytest.raises(ValueError, match="timeout must be a number of seconds > 0"):
        _check.timeout(0, positive=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), (-1, 0), (0, 0), (0.5, 0.5), (INF, None), (1e12, _check.LONGEST_WAIT)],
)
def test_check_poll_timeout_reads_negative_as_no_wait_and_clamps_long_ones(
    value: object, expected: float | None
) -> None:
    assert _check.poll_timeout(value) == expected


@pytest.mark.parametrize(("value", "error"), [("1", TypeError), (NAN, ValueError)])
def test_check_poll_timeout_refuses_what_is_not_seconds(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="timeout"):
        _check.poll_timeout(value)


def test_check_count_takes_whole_numbers_in_range() -> None:
    assert _check.count(5, "n") == 5
    assert _check.count(0, "n", minimum=0) == 0
    assert _check.count(65535, "n", maximum=65535) == 65535
    number = _check.count(signal.SIGTERM, "sig")  # anything with __index__ but bool
    assert type(number) is int and number == signal.SIGTERM


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (1.5, TypeError, r"size must be a whole number of bytes >= 1, not float 1\.5"),
        ("1M", TypeError, r"size must be a whole number of bytes >= 1, not str '1M'"),
        (True, TypeError, r"not bool True"),
        (None, TypeError, r"not NoneType None"),
        (0, ValueError, r"size must be a whole number of bytes >= 1, not 0"),
    ],
)
def test_check_count_refuses_what_is_not_a_whole_number_in_range(
    value: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        _check.count(value, "size", unit="bytes")


def test_check_count_says_the_range() -> None:
    with pytest.raises(ValueError, match="from 1 to 9, not 10"):
        _check.count(10, "n", maximum=9)


def test_check_optional_count_takes_none_and_says_so() -> None:
    assert _check.optional_count(None, "limit") is None
    with pytest.raises(ValueError, match=r"limit must be a whole number >= 0 or None, not -1"):
        _check.optional_count(-1, "limit", minimum=0)


def test_check_flag_takes_only_booleans() -> None:
    assert _check.flag(False, "raw") is False
    with pytest.raises(TypeError, match="raw must be True or False, not int 1"):
        _check.flag(1, "raw")


def test_check_descriptor_takes_what_the_os_can() -> None:
    assert _check.descriptor(0, "fd") == 0
    assert _check.descriptor(_check.MAX_DESCRIPTOR, "fd") == _check.MAX_DESCRIPTOR
    with pytest.raises(ValueError, match="fd 2147483648 is not an open file descriptor"):
        _check.descriptor(2**31, "fd")
    with pytest.raises(ValueError, match="fd -1"):
        _check.descriptor(-1, "fd")
    with pytest.raises(TypeError, match="fd must be a descriptor number, not bool"):
        _check.descriptor(False, "fd")


def test_check_byte_view_names_the_taker_and_flattens() -> None:
    with pytest.raises(TypeError, match=r"put\(\) takes bytes-like objects, not str: encode"):
        _check.byte_view("x", "put()")
    with pytest.raises(TypeError, match=r"write\(\) takes bytes-like objects, not int"):
        _check.byte_view(3)
    assert _check.byte_view(bytearray(b"ab")).tobytes() == b"ab"
    words = memoryview(b"abcd").cast("H")
    assert _check.byte_view(words).tobytes() == b"abcd"
    assert _check.byte_view(memoryview(b"abcdef")[::2]).tobytes() == b"ace"


def test_check_channel_like_wants_only_what_the_taker_uses() -> None:
    class ReadOnly:
        def read(self) -> bytes:  # pragma: no cover - never called
            return b""

    _check.channel_like(ReadOnly(), "LineChannel")
    with pytest.raises(TypeError, match=r"register\(\) takes a channel .*not ReadOnly"):
        _check.channel_like(ReadOnly(), "register()", needs=("read", "get_fd"))
    with pytest.raises(TypeError, match="wrap a descriptor in PipeChannel"):
        _check.channel_like(3, "register()")


def test_check_readable_file_names_the_parameter_and_the_file(tmp_path: Path) -> None:
    present = tmp_path / "here.pem"
    present.write_text("x")
    _check.readable_file(present, "certfile")
    with pytest.raises(FileNotFoundError, match="cafile cannot be read") as raised:
        _check.readable_file(tmp_path / "absent.pem", "cafile")
    assert raised.value.filename == str(tmp_path / "absent.pem")


# -- channels._wait ------------------------------------------------------------------------------


def test_a_deadline_without_a_timeout_never_expires() -> None:
    deadline = _wait.Deadline(None)
    assert not deadline.expired()
    assert deadline.remaining() is None


def test_a_deadline_of_zero_has_expired_and_nothing_remains() -> None:
    deadline = _wait.Deadline(0)
    assert deadline.expired()
    assert deadline.remaining() == 0.0


def test_a_deadline_counts_down_and_never_below_zero() -> None:
    deadline = _wait.Deadline(WAIT)
    first = deadline.remaining()
    assert first is not None and 0 < first <= WAIT
    second = deadline.remaining()
    assert second is not None and 0 <= second <= first


def test_wait_for_reports_readiness_at_once_and_a_quiet_descriptor_after_the_timeout() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        assert not _wait.wait_for(ours.fileno(), select.POLLIN, 0)
        assert not _wait.wait_for(ours.fileno(), select.POLLIN, 0.001)
        theirs.send(b"x")
        assert _wait.wait_for(ours.fileno(), select.POLLIN, WAIT)
        assert _wait.wait_for_any({ours.fileno(): select.POLLIN, theirs.fileno(): 0}, WAIT) == [
            (ours.fileno(), select.POLLIN)
        ]


def test_wait_for_counts_a_hang_up_as_ready() -> None:
    ours, theirs = socket.socketpair()
    with ours:
        theirs.close()
        assert _wait.wait_for(ours.fileno(), 0, WAIT)


@pytest.mark.parametrize(
    ("seconds", "milliseconds"),
    [(None, None), (0, 0), (0.0001, 1), (0.001, 1), (0.0011, 2), (2.5, 2500), (1e12, _check.LONGEST_WAIT * 1000)],
)
def test_waits_round_up_to_whole_milliseconds_and_are_bounded(seconds: float | None, milliseconds: int | None) -> None:
    assert _wait._milliseconds(seconds) == milliseconds


def test_subprocess_is_not_started_for_a_refused_env() -> None:
    before = child_pids()
    with pytest.raises(TypeError, match=r"env must map str to str, not str to int \('A': 1\)"):
        ProcessChannel([sys.executable, "-c", "pass"], env={"A": 1}, stderr=subprocess.DEVNULL)  # type: ignore[dict-item]
    assert child_pids() <= before
