"""A JSON-lines server: one JSON request per line, one JSON answer per line.

The server is a ``Poller`` on a free TCP port of 127.0.0.1; its clients, in
the same program, send requests and print the answers. A request that is not
JSON, or asks for an operation the server does not know, gets an error
answer and the connection goes on. Run: ``python examples/json_lines_server.py``.
"""

from __future__ import annotations

import json

from channels import Channel, connect, listen
from channels.poller import Poller

OPERATIONS = {"add": sum, "max": max, "min": min}

#: The longest request line the server takes, in bytes: longer lines are
#: dropped by the poller with a warning, and the client stays connected.
MAX_REQUEST = 64 * 1024


def answer(line: bytes) -> bytes:
    """The answer to one request line, as one line of JSON."""
    try:
        request = json.loads(line)
        result = OPERATIONS[request["op"]](request["args"])
    except (ValueError, KeyError, TypeError) as error:
        reply = {"error": f"{type(error).__name__}: {error}"}
    else:
        reply = {"result": result}
    return json.dumps(reply).encode() + b"\n"


def main() -> None:
    requests = [
        {"op": "add", "args": [1, 2, 3]},
        {"op": "max", "args": [4, 9, 2]},
        {"op": "sqrt", "args": [2]},
    ]
    with Poller(buffering="line", max_line_length=MAX_REQUEST) as poller:
        server = listen("tcp:127.0.0.1:0")
        poller.add_server(server)
        address = f"tcp:127.0.0.1:{server.getsockname()[1]}"
        client: Channel = connect(address, buffering="line")
        poller.register(client)
        for request in requests:
            client.write(json.dumps(request).encode() + b"\n")
        client.write(b"this is not json\n")
        answers: list[object] = []
        while len(answers) < len(requests) + 1:
            for data, source in poller.poll(timeout=5):
                if source is server:
                    continue
                if source is client:
                    answers.append(json.loads(data))
                elif data:
                    source.write(answer(data))
                else:
                    source.close()
    for got in answers:
        print(got)


if __name__ == "__main__":
    main()
