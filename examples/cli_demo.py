"""The ``channels`` command at work: a hub and two relays, all separate programs.

``channels hub`` serves a Unix socket in a temporary folder; two clients,
alice and bob, are each a ``channels relay stdio unix:...`` whose stdin and
stdout this script holds. Lines written to alice's relay come out of bob's,
and back. Then each client ends its input (the relay passes the end on as a
half-close and exits), the hub gets SIGTERM, and the transcript shows it all.
Run it with ``make demo``; it exits 0 and leaves nothing behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from channels import EndpointClosedException, ProcessChannel
from channels.poller import Poller

CONVERSATION = [
    ("alice", b"hello, is anyone there?\n"),
    ("bob", b"hi alice, bob here.\n"),
    ("alice", b"two relays and a hub, three processes, no threads.\n"),
    ("bob", b"bye!\n"),
]

#: Seconds any one step may take before the demo gives up.
STEP_TIMEOUT = 10.0


def command(*args: str) -> list[str]:
    """``channels ARGS...``, run by this Python."""
    return [sys.executable, "-m", "channels", *args]


def expect(poller: Poller, channel: ProcessChannel, wanted: bytes) -> bytes:
    """Read ``channel`` (a registered line channel) until a line containing
    ``wanted`` arrives, and return it; fail after ``STEP_TIMEOUT``."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while time.monotonic() < deadline:
        for line, source in poller.poll(0.1):
            if source is channel and isinstance(line, bytes) and wanted in line:
                return line
    raise SystemExit(f"demo: no line with {wanted!r} within {STEP_TIMEOUT}s")


def say(text: str) -> None:
    print(text, flush=True)


def run(folder: str) -> int:
    """Start the hub and the relays, hold the conversation, and stop them all."""
    path = os.path.join(folder, "hub.sock")
    with Poller(buffering="line") as poller:
        # The hub logs to stderr; the demo reads it to know when a client joined.
        hub = ProcessChannel(command("hub", f"unix:{path}"), stderr=subprocess.STDOUT, buffering="line")
        poller.register(hub)
        say("hub:   " + expect(poller, hub, b"listening").decode().strip())
        clients: dict[str, ProcessChannel] = {}
        for name in ("alice", "bob"):
            clients[name] = ProcessChannel(command("relay", "stdio", f"unix:{path}"), buffering="line")
            poller.register(clients[name])
            say("hub:   " + expect(poller, hub, b"joined").decode().strip())
        for speaker, line in CONVERSATION:
            listener = "bob" if speaker == "alice" else "alice"
            clients[speaker].write(line)
            heard = expect(poller, clients[listener], line.strip())
            say(f"{listener:5}  hears {speaker}: {heard.decode().strip()}")
        for name, client in clients.items():
            client.shutdown_write()  # the relay's stdin ends: it half-closes and exits
            status = client.wait(STEP_TIMEOUT)
            say(f"{name:5}  relay ended its input and exited with status {status}")
            client.close()
        hub.terminate()
        status = hub.wait(STEP_TIMEOUT)
        drain(hub)
        hub.close()
        say(f"hub:   stopped by SIGTERM, exit status {status}; socket file removed: {not os.path.exists(path)}")
    return 0 if status == 0 else 1


def drain(channel: ProcessChannel) -> None:
    """Read what is left of ``channel`` so that closing it discards nothing unread."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if not channel.read():
                time.sleep(0.01)
        except EndpointClosedException:
            return


def main() -> int:
    """Run the demo in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="channels-demo-") as folder:
        status = run(folder)
        left = os.listdir(folder)
    say(f"folder empty before removal: {not left}")
    return status


if __name__ == "__main__":
    sys.exit(main())
