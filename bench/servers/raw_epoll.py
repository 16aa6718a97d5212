"""The pure-Python limit: a hand-written epoll loop echoing each chunk in one send."""

from __future__ import annotations

import select
import socket
import time

_IN = select.EPOLLIN
_OUT = select.EPOLLOUT
# 64 KiB: a larger recv() size makes every read allocate (and free) a fresh
# mmap-backed buffer, which costs more than the read itself for small messages.
_READ_SIZE = 64 * 1024


def serve(listener: socket.socket, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    listener.setblocking(False)
    lfd = listener.fileno()
    ep = select.epoll()
    ep.register(lfd, _IN)
    socks: dict[int, socket.socket] = {}
    backlog: dict[int, bytes] = {}  # output the kernel did not take yet
    try:
        while time.monotonic() < deadline:
            for fd, events in ep.poll(1.0):
                if fd == lfd:
                    _accept(listener, ep, socks)
                    continue
                sock = socks[fd]
                if events & _OUT and _send(sock, fd, backlog.pop(fd), backlog):
                    ep.modify(fd, _IN)
                if events & (_IN | select.EPOLLHUP | select.EPOLLERR):
                    try:
                        data = sock.recv(_READ_SIZE)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        ep.unregister(fd)
                        backlog.pop(fd, None)
                        del socks[fd]
                        sock.close()
                    elif fd in backlog:
                        backlog[fd] += data
                    elif not _send(sock, fd, data, backlog):
                        ep.modify(fd, _IN | _OUT)
    finally:
        for sock in socks.values():
            sock.close()
        ep.close()


def _accept(listener: socket.socket, ep: select.epoll, socks: dict[int, socket.socket]) -> None:
    for _ in range(64):
        try:
            sock, _addr = listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        socks[sock.fileno()] = sock
        ep.register(sock.fileno(), _IN)


def _send(sock: socket.socket, fd: int, data: bytes, backlog: dict[int, bytes]) -> bool:
    """Send ``data``; keep what the kernel does not take. ``True`` if all went."""
    try:
        sent = sock.send(data)
    except BlockingIOError:
        sent = 0
    except OSError:
        return True  # the peer is gone; the read side will see it
    if sent < len(data):
        backlog[fd] = data[sent:]
        return False
    return True
