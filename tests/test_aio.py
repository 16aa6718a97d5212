"""The asyncio bridge: the same channels, awaited under asyncio and uvloop."""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import socket
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from channels import Channel, EndpointClosedException, LineTooLongError, PipeChannel, SocketChannel, aio
from channels.aio import aclose, alines, aread, awrite
from tests.helpers import WAIT
from tests.test_tls import Certs, make_certs, tls_pair

T = TypeVar("T")

KIB = 1024
MIB = 1024 * KIB


def _loop_factories() -> Iterator[Any]:
    yield pytest.param(asyncio.new_event_loop, id="asyncio")
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        yield pytest.param(None, id="uvloop", marks=pytest.mark.skip(reason="uvloop is not installed here"))
    else:
        yield pytest.param(uvloop.new_event_loop, id="uvloop")


class Runner:
    """Runs a coroutine to the end on a fresh loop of one kind, within WAIT seconds."""

    def __init__(self, new_loop: Callable[[], asyncio.AbstractEventLoop]) -> None:
        self._new_loop = new_loop

    def __call__(self, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
        loop = self._new_loop()
        try:
            return loop.run_until_complete(asyncio.wait_for(main(), WAIT))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


@pytest.fixture(params=list(_loop_factories()))
def run(request: pytest.FixtureRequest) -> Runner:
    return Runner(request.param)


@pytest.fixture
def pair() -> Iterator[tuple[SocketChannel, socket.socket]]:
    """A channel over one end of a socket pair, and the other end (non-blocking)."""
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    channel = SocketChannel(ours)
    yield channel, theirs
    channel.abort()
    theirs.close()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("tls"))


def watches() -> int:
    """How many descriptor watches the bridge holds on the running loop."""
    return len(aio._watches.get(asyncio.get_running_loop(), {}))


async def receive(sock: socket.socket, size: int) -> bytes:
    """Read exactly ``size`` bytes from a plain socket, the asyncio way."""
    loop = asyncio.get_running_loop()
    chunks = bytearray()
    while len(chunks) < size:
        chunk = await loop.sock_recv(sock, min(256 * KIB, size - len(chunks)))
        assert chunk, "the channel closed early"
        chunks += chunk
    return bytes(chunks)


# -- aread -------------------------------------------------------------------------


def test_aread_waits_for_data_and_returns_it(run: Runner, pair: tuple[SocketChannel, socket.socket]) -> None:
    channel, peer = pair

    async def main() -> bytes:
        asyncio.get_running_loop().call_later(0.01, peer.send, b"hello")
        return await aread(channel)

    assert run(main) == b"hello"


def test_aread_raises_endpoint_closed_at_the_end(run: Runner, pair: tuple[SocketChannel, socket.socket]) -> None:
    channel, peer = pair

    async def main() -> None:
        asyncio.get_running_loop().call_later(0.01, peer.shutdown, socket.SHUT_WR)
        with pytest.raises(EndpointClosedException):
            await aread(channel)
        assert watches() == 0

    run(main)


def test_aread_of_a_line_channel_returns_one_line_at_a_time(run: Runner) -> None:
    ours, theirs = socket.socketpair()
    with SocketChannel(ours, buffering="line") as channel, theirs:
        theirs.sendall(b"one\ntwo\n")

        async def main() -> list[bytes]:
            return [await aread(channel), await aread(channel)]

        assert run(main) == [b"one\n", b"two\n"]


def test_cancelling_aread_removes_its_watch(run: Runner, pair: tuple[SocketChannel, socket.socket]) -> None:
    channel, peer = pair

    async def main() -> bytes:
        reader = asyncio.ensure_future(aread(channel))
        await asyncio.sleep(0.01)
        assert watches() == 1
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        assert watches() == 0
        peer.send(b"for the next reader")
        return await aread(channel)

    assert run(main) == b"for the next reader"


def test_two_tasks_can_wait_on_one_channel(run: Runner) -> None:
    ours, theirs = socket.socketpair()
    with SocketChannel(ours, buffering="line") as channel, theirs:

        async def main() -> set[bytes]:
            readers = [asyncio.ensure_future(aread(channel)) for _ in range(2)]
            await asyncio.sleep(0.01)
            theirs.sendall(b"first\nsecond\n")
            return set(await asyncio.gather(*readers))

        assert run(main) == {b"first\n", b"second\n"}


# -- awrite ------------------------------------------------------------------------


def test_awrite_returns_once_the_peer_has_taken_everything(
    run: Runner, pair: tuple[SocketChannel, socket.socket]
) -> None:
    channel, peer = pair
    data = bytes(range(256)) * (16 * KIB)  # 4 MiB: far more than the kernel holds

    async def main() -> bytes:
        reader = asyncio.ensure_future(receive(peer, len(data)))
        await awrite(channel, data)
        assert channel.pending_output == 0
        assert watches() == 0
        return await reader

    assert run(main) == data


def test_awrite_with_no_data_waits_for_what_is_pending(run: Runner, pair: tuple[SocketChannel, socket.socket]) -> None:
    channel, peer = pair
    data = b"x" * (4 * MIB)
    channel.write(data)
    assert channel.pending_output

    async def main() -> bytes:
        reader = asyncio.ensure_future(receive(peer, len(data)))
        await awrite(channel)
        assert channel.pending_output == 0
        return await reader

    assert run(main) == data


def test_cancelling_awrite_keeps_the_output_pending_in_order(
    run: Runner, pair: tuple[SocketChannel, socket.socket]
) -> None:
    channel, peer = pair
    data = b"a" * (4 * MIB)

    async def main() -> bytes:
        writer = asyncio.ensure_future(awrite(channel, data))
        await asyncio.sleep(0.01)  # the peer does not read: the write waits
        writer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writer
        assert watches() == 0
        assert channel.pending_output
        reader = asyncio.ensure_future(receive(peer, len(data) + 4))
        await awrite(channel, b"tail")
        return await reader

    assert run(main) == data + b"tail"


def test_awrite_to_a_peer_that_went_away_raises_endpoint_closed(
    run: Runner, pair: tuple[SocketChannel, socket.socket]
) -> None:
    channel, peer = pair
    peer.close()

    async def main() -> None:
        with pytest.raises(EndpointClosedException):
            await awrite(channel, b"lost")

    run(main)


# -- alines ------------------------------------------------------------------------


def test_alines_splits_a_bytes_channel_until_its_end(run: Runner, pair: tuple[SocketChannel, socket.socket]) -> None:
    channel, peer = pair
    peer.sendall(b"one\ntw")
    peer.sendall(b"o\nlast")
    peer.shutdown(socket.SHUT_WR)

    async def main() -> list[bytes]:
        return [line async for line in alines(channel)]

    assert run(main) == [b"one\n", b"two\n", b"last"]


def test_alines_gives_the_lines_of_a_line_channel_until_its_end(run: Runner) -> None:
    ours, theirs = socket.socketpair()
    with SocketChannel(ours, buffering="line") as channel, theirs:
        theirs.sendall(b"one\ntwo\nlast")
        theirs.shutdown(socket.SHUT_WR)

        async def main() -> list[bytes]:
            return [line async for line in alines(channel)]

        assert run(main) == [b"one\n", b"two\n", b"last"]


def test_alines_raises_when_an_error_ended_the_input(run: Runner, pair: tuple[SocketChannel, socket.socket]) -> None:
    channel, peer = pair
    channel.write(b"never read")
    peer.close()  # with unread data: a reset

    async def main() -> None:
        with pytest.raises(EndpointClosedException) as raised:
            async for _ in alines(channel):
                pass
        assert isinstance(raised.value.__cause__, ConnectionResetError)

    run(main)


def test_alines_raises_line_too_long_for_an_overlong_line(
    run: Runner, pair: tuple[SocketChannel, socket.socket]
) -> None:
    channel, peer = pair
    peer.sendall(b"x" * 100 + b"\n")

    async def main() -> None:
        with pytest.raises(LineTooLongError):
            async for _ in alines(channel, max_line_length=10):
                pass

    run(main)


def test_leaving_an_alines_loop_early_removes_its_watch(run: Runner, pair: tuple[SocketChannel, socket.socket]) -> None:
    channel, peer = pair
    peer.sendall(b"one\n")

    async def main() -> None:
        lines = alines(channel)
        assert await lines.__anext__() == b"one\n"
        waiting = asyncio.ensure_future(lines.__anext__())
        await asyncio.sleep(0.01)
        assert watches() == 1
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert watches() == 0

    run(main)


# -- aclose ------------------------------------------------------------------------


def test_aclose_delivers_pending_output_then_closes(run: Runner, pair: tuple[SocketChannel, socket.socket]) -> None:
    channel, peer = pair
    data = b"z" * (4 * MIB)
    channel.write(data)

    async def main() -> bytes:
        reader = asyncio.ensure_future(receive(peer, len(data)))
        await aclose(channel)
        assert channel.closed
        return await reader

    assert run(main) == data


def test_aclose_wakes_a_task_waiting_in_aread(run: Runner, pair: tuple[SocketChannel, socket.socket]) -> None:
    channel, _ = pair

    async def main() -> None:
        reader = asyncio.ensure_future(aread(channel))
        await asyncio.sleep(0.01)
        await aclose(channel)
        with pytest.raises(EndpointClosedException):
            await reader
        assert watches() == 0

    run(main)


def test_aclose_drops_what_a_stuck_peer_left_after_the_timeout(
    run: Runner, pair: tuple[SocketChannel, socket.socket], caplog: pytest.LogCaptureFixture
) -> None:
    channel, _ = pair
    channel.write(b"y" * (4 * MIB))  # the peer never reads

    async def main() -> None:
        with caplog.at_level(logging.WARNING, logger="channels"):
            await aclose(channel, timeout=0.05)

    run(main)
    assert channel.closed
    assert "dropped" in caplog.text


def test_aclose_of_a_closed_channel_does_nothing(run: Runner, pair: tuple[SocketChannel, socket.socket]) -> None:
    channel, _ = pair
    channel.close()

    async def main() -> None:
        await aclose(channel)

    run(main)


# -- the same channels as everywhere ---------------------------------------------------


def test_tls_channels_complete_their_handshake_under_asyncio(run: Runner, certs: Certs) -> None:
    client, server = tls_pair(certs)

    async def main() -> bytes:
        # The client's write waits for the server's part of the handshake,
        # the server's read for the client's: both wait on readability.
        request = asyncio.ensure_future(aread(server))
        await awrite(client, b"ping")
        assert await request == b"ping"
        await awrite(server, b"pong")
        return await aread(client)

    with client, server:
        assert run(main) == b"pong"


def test_alines_reads_a_pipe_channel(run: Runner) -> None:
    faucet, feed = os.pipe()
    with PipeChannel(faucet) as channel:
        os.write(feed, b"piped")
        os.close(feed)

        async def main() -> list[bytes]:
            return [chunk async for chunk in alines(channel)]

        assert run(main) == [b"piped"]


def test_a_channel_is_usable_by_plain_calls_between_awaits(
    run: Runner, pair: tuple[SocketChannel, socket.socket]
) -> None:
    channel: Channel = pair[0]
    peer = pair[1]

    async def main() -> bytes:
        channel.write(b"plain ")
        await awrite(channel, b"and awaited")
        return await receive(peer, 17)

    assert run(main) == b"plain and awaited"
