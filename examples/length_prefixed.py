"""A length-prefixed protocol: each message is a 4-byte big-endian length, then the payload.

The server is a ``Poller`` on a free TCP port of 127.0.0.1 that serves
documents by name: a request carries a name, the answer carries the
document. Its clients are in the same program. One asks for a document
longer than it accepts: that answer is skipped, ``FrameTooLongError`` is
raised in its place, and the next answer follows. Another sends half a
request and leaves: the server sees that client end with a ``FramingError``
as the cause. Run: ``python examples/length_prefixed.py``.
"""

from __future__ import annotations

from channels import FrameTooLongError, connect, listen
from channels.framing import LengthPrefixed
from channels.poller import Poller

DOCUMENTS = {b"motd": b"Welcome!", b"version": b"1.0", b"log": b"x" * 5000}

#: What the server takes: a name of at most 256 bytes. A longer request is
#: dropped by the poller, with a warning logged, and the client stays.
REQUEST = LengthPrefixed(4, max_length=256)
#: What the client takes: a document of at most 1 KiB.
ANSWER = LengthPrefixed(4, max_length=1024)


def answer(frame: bytes) -> bytes:
    """The answer to one request, a frame as it came from the wire."""
    name = REQUEST.decode(frame)
    return ANSWER.encode(DOCUMENTS.get(name, b"no such document: " + name))


def main() -> None:
    names = [b"motd", b"log", b"version", b"nothing"]
    with Poller(buffering=REQUEST) as poller:  # each client gets a decoder of its own
        server = listen("tcp:127.0.0.1:0")
        poller.add_server(server)
        address = f"tcp:127.0.0.1:{server.getsockname()[1]}"

        client = connect(address, buffering=ANSWER)
        for name in names:
            client.write(REQUEST.encode(name))
        broken = connect(address)  # bytes mode: it sends a prefix of 16, 4 bytes, and leaves
        broken.write(b"\x00\x00\x00\x10half")
        broken.close()

        served, ended = 0, 0
        while served < len(names) or not ended:
            for data, source in poller.poll(timeout=5):
                if source is server:  # a client was accepted
                    continue
                if data:  # one whole request: b'\x00\x00\x00\x04motd'
                    source.write(answer(data))
                    served += 1
                else:  # b'' once: that client ended, end_cause says why
                    print("server: a client ended:", repr(source.end_cause))
                    source.close()
                    ended += 1

        # The client reads its answers with receive(), a waiting read().
        for _ in names:
            try:
                frame = client.receive(timeout=5)
            except FrameTooLongError as error:
                print("client: skipped:", error)
            else:
                print("client:", ANSWER.decode(frame))
        client.close()


if __name__ == "__main__":
    main()
