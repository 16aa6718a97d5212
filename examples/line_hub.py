"""A line hub and two clients talking through it, in one process.

The hub is a ``Poller`` serving a Unix socket in a temporary folder: every
complete line from one client goes to all the others. Two clients connect,
greet each other, and leave; the transcript shows each line as it crosses
the hub. The hub's ``Poller(buffering="line")`` is what the clients it
accepts get; the two client channels are made line-buffered themselves.
Run it with ``python examples/line_hub.py`` (``make demo`` runs the command-
line version, ``examples/cli_demo.py``); it exits 0 and leaves nothing
behind.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import time

from channels import Channel, EndpointClosedException, SocketChannel
from channels.poller import Poller

CONVERSATION = [
    ("alice", b"hello, is anyone there?\n"),
    ("bob", b"hi alice, bob here.\n"),
    ("alice", b"lines arrive whole, however the bytes are cut.\n"),
    ("bob", b"and nobody needed a thread. bye!\n"),
]


def serve_once(hub: Poller, server: socket.socket, members: list[Channel], names: dict[int, str]) -> None:
    """One turn of the hub: accept clients, relay each line to the others."""
    for data, source in hub.poll(0.05):
        if source is server:
            _, client = data
            members.append(client)
            print(f"hub:   client {len(members)} joined")
        elif data:
            print(f"hub:   relaying {data!r} from {names.get(id(source), '?')}")
            for member in members:
                if member is not source:
                    member.write(data)
        else:
            members.remove(source)
            source.close()
            print("hub:   a client left")


def connect(path: str) -> SocketChannel:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    return SocketChannel(sock, buffering="line")


def receive_line(
    hub: Poller, server: socket.socket, members: list[Channel], names: dict[int, str], client: SocketChannel
) -> bytes:
    """Turn the hub until ``client`` has a whole line; bounded in time."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        serve_once(hub, server, members, names)
        line = client.read()
        if line:
            return line
    raise TimeoutError("the hub did not deliver a line within 5 seconds")


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "hub.sock")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen()
        members: list[Channel] = []
        with Poller(buffering="line") as hub:
            hub.add_server(server)
            clients = {"alice": connect(path), "bob": connect(path)}
            while len(members) < 2:
                serve_once(hub, server, members, {})
            # The hub sees its side of each connection; name them in join order.
            names = {id(members[0]): "alice", id(members[1]): "bob"}
            for speaker, line in CONVERSATION:
                listener = "bob" if speaker == "alice" else "alice"
                print(f"{speaker}: says   {line!r}")
                clients[speaker].write(line)
                heard = receive_line(hub, server, members, names, clients[listener])
                print(f"{listener}: hears  {heard!r}")
                assert heard == line
            for client in clients.values():
                client.close()
            deadline = time.monotonic() + 5
            while members and time.monotonic() < deadline:
                serve_once(hub, server, members, names)
        os.unlink(path)
        left = os.listdir(folder)
    print(f"done: {len(CONVERSATION)} lines relayed; sockets closed, folder empty: {not left}")
    return 0 if not left else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (EndpointClosedException, TimeoutError) as err:
        print(f"demo failed: {err}", file=sys.stderr)
        sys.exit(1)
