"""Many child processes at once: one ``Poller`` reads them all as they print.

Each child counts a few lines at its own pace; the poller reports each line
as it comes, whichever child wrote it, and ``(b'', child)`` once when a child
has closed its output. Closing the channel then reaps the child and gives its
exit status. Run: ``python examples/many_children.py``.
"""

from __future__ import annotations

import sys

from channels import ProcessChannel
from channels.poller import Poller

WORKER = """
import sys, time
name, pause = sys.argv[1], float(sys.argv[2])
for step in range(3):
    time.sleep(pause)
    print(f"{name}: step {step}", flush=True)
sys.exit(len(name) % 3)
"""


def main() -> None:
    children = {
        name: ProcessChannel([sys.executable, "-c", WORKER, name, str(pause)], buffering="line")
        for name, pause in [("ant", 0.03), ("bee", 0.01), ("cat", 0.02), ("dingo", 0.015)]
    }
    names = {child: name for name, child in children.items()}
    with Poller() as poller:
        for child in children.values():
            poller.register(child)
        running = len(children)
        while running:
            for line, child in poller.poll(timeout=10):
                if line:
                    print(line.decode().rstrip())
                else:  # the child closed its output: reap it
                    child.close()
                    print(f"{names[child]} exited with status {child.returncode}")
                    running -= 1


if __name__ == "__main__":
    main()
