"""Twisted's LineReceiver on the default (epoll) reactor: sendLine per line."""

from __future__ import annotations

import socket

from twisted.internet import protocol, reactor
from twisted.protocols.basic import LineReceiver


class LineEcho(LineReceiver):
    delimiter = b"\n"

    def lineReceived(self, line: bytes) -> None:  # noqa: N802 - Twisted's name
        self.sendLine(line)


def serve(listener: socket.socket, seconds: float) -> None:
    factory = protocol.Factory.forProtocol(LineEcho)
    listener.setblocking(False)
    reactor.adoptStreamPort(listener.fileno(), socket.AF_INET, factory)  # type: ignore[attr-defined]
    reactor.callLater(seconds, reactor.stop)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
