"""A TLS line server and a client that verifies it.

The certificates come from ``trustme``, a test helper that makes a private
certificate authority and a certificate for ``localhost`` signed by it
(``pip install trustme``); a real server uses its own certificate and key
files, and a real client the system's CAs, which ``connect_tls()`` trusts by
default. The server's handshakes run inside ``poll()``, never blocking it.
It runs in a thread here only so that one file holds both ends; the client's
``connect_tls()`` returns once its handshake is done. Run:
``python examples/tls_echo.py``.
"""

from __future__ import annotations

import os
import tempfile
import threading

import trustme

from channels.poller import Poller
from channels.tls import connect_tls, listen_tls


def serve(poller: Poller, stop: threading.Event) -> None:
    """Answer each line with the same line, until ``stop`` is set."""
    while not stop.is_set():
        for data, source in poller.poll(timeout=0.1):
            if isinstance(data, tuple):  # ((address, client), server): a client was accepted
                continue
            if data:
                source.write(b"echo: " + data)
            else:
                source.close()


def main() -> None:
    authority = trustme.CA()
    certificate = authority.issue_cert("localhost")
    with tempfile.TemporaryDirectory() as folder:
        server_pem = os.path.join(folder, "server.pem")  # the chain and the key, in one file
        ca_pem = os.path.join(folder, "ca.pem")
        certificate.private_key_and_cert_chain_pem.write_to_path(server_pem)
        authority.cert_pem.write_to_path(ca_pem)

        stop = threading.Event()
        with Poller(buffering="line") as poller:
            server = listen_tls("127.0.0.1", 0, certfile=server_pem)
            poller.add_server(server)
            port = server.getsockname()[1]
            thread = threading.Thread(target=serve, args=(poller, stop))
            thread.start()
            try:
                with connect_tls("localhost", port, cafile=ca_pem, buffering="line", timeout=10) as client:
                    print("connected with", client.socket.version())
                    client.write(b"hello over TLS\n")
                    print(client.receive(timeout=10))
            finally:
                stop.set()
                thread.join()


if __name__ == "__main__":
    main()
