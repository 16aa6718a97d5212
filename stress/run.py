"""Opt-in stress runs on loopback: ``python stress/run.py [--only NAME]``.

Each scenario is bounded in time and count, stops by itself and prints
PASS or FAIL with the figure it measured; the exit status is non-zero if
any failed. Scenarios: echo, cycles, loris, kill, exhaustion.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "src"))

from scenarios import SCENARIOS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(SCENARIOS), help="run this scenario alone")
    names = [parser.parse_args().only] if parser.parse_args().only else list(SCENARIOS)
    failed = 0
    started = time.monotonic()
    for name in names:
        began = time.monotonic()
        try:
            result = SCENARIOS[name]()
        except Exception as err:  # a crashed scenario is a failure, not the end of the run
            print(f"FAIL  {name}: crashed: {type(err).__name__}: {err}", flush=True)
            failed += 1
            continue
        print(f"{result.line()}  [{time.monotonic() - began:.1f} s]", flush=True)
        failed += not result.passed
    print(f"{len(names) - failed} of {len(names)} passed in {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
