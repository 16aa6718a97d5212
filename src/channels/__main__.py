"""``python -m channels``: the ``channels`` command (see :mod:`channels.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
