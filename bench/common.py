"""Helpers shared by the benchmark scripts: CPU pinning, CPU time, limits, stats.

Every bench script runs as its own process (``python bench/NAME.py``), so the
``bench`` folder is on ``sys.path`` and they import this module as ``common``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

#: Where results go, relative to this file.
RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpus() -> list[int]:
    """The CPUs this process may run on, sorted."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return list(range(os.cpu_count() or 1))


def placement() -> tuple[int | None, int | None]:
    """The CPU for the process under test and the one for its load, if two exist."""
    available = cpus()
    if len(available) >= 2:
        return available[0], available[1]
    return None, None


def pin(cpu: int | None) -> bool:
    """Pin this process to ``cpu``; ``False`` if that is not possible here."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return False
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        return False
    return True


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds used so far by process ``pid`` (default: this one)."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    with open(f"/proc/{pid}/stat") as stat:
        # The command name (field 2) may contain spaces; it ends at the last ')'.
        fields = stat.read().rsplit(")", 1)[1].split()
    # A server of several processes (examples/workers.py) works in its
    # children: count theirs too, while they run.
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK + sum(_children_cpu_seconds(pid))


def _children_cpu_seconds(pid: int) -> list[float]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            pids = [int(child) for child in children.read().split()]
    except OSError:  # no such file on kernels without CONFIG_PROC_CHILDREN
        return []
    seconds = []
    for child in pids:
        try:
            seconds.append(cpu_seconds(child))
        except OSError:  # it has just exited
            continue
    return seconds


def busy_cpu_seconds() -> float:
    """CPU seconds all CPUs of the machine have spent busy since boot (Linux)."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
    except OSError:  # pragma: no cover - not Linux
        return 0.0
    # cpu user nice system idle iowait irq softirq steal ...
    busy = sum(int(fields[i]) for i in (1, 2, 3, 6, 7, 8))
    return busy / _CLK_TCK


def wait_quiet(max_wait: float, threshold: float = 0.15, step: float = 0.1) -> float:
    """Wait (at most ``max_wait`` s) until the machine is nearly idle.

    Call it when none of the benchmark's own processes is working: any busy
    CPU then belongs to someone else (another user, a test suite, a build).
    Returns the busy CPUs (0 to the number of CPUs) seen in the last step.
    """
    deadline = time.monotonic() + max_wait
    while True:
        before, t0 = busy_cpu_seconds(), time.monotonic()
        time.sleep(step)
        load = (busy_cpu_seconds() - before) / (time.monotonic() - t0)
        if load <= threshold or time.monotonic() >= deadline:
            return load


#: Other processes' CPU use (in CPUs) above which a measurement is made again.
FOREIGN_LIMIT = 0.25


def least_disturbed(measure: Callable[[], dict[str, Any]], patience: float) -> dict[str, Any]:
    """Run ``measure()`` on a machine as quiet as ``patience`` seconds allow.

    Waits for other processes to go quiet, and measures again once if they
    took more than :data:`FOREIGN_LIMIT` CPUs meanwhile (the result's
    ``foreign_cpus``); keeps the less disturbed result. A result with an
    ``error`` is returned at once.
    """
    best: dict[str, Any] | None = None
    for _attempt in range(2 if patience else 1):
        wait_quiet(patience)
        result = measure()
        if "error" in result:
            return result
        if best is None or result["foreign_cpus"] < best["foreign_cpus"]:
            best = result
        if best["foreign_cpus"] <= FOREIGN_LIMIT:
            break
    assert best is not None
    return best


def raise_nofile(wanted: int | None = None) -> int:
    """Raise the soft RLIMIT_NOFILE towards ``wanted`` (default: the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if wanted is None else wanted
    if hard != resource.RLIM_INFINITY:
        target = min(target, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def median(values: Iterable[float]) -> float | None:
    """The median, or ``None`` for no values."""
    data = [v for v in values if v is not None]
    return statistics.median(data) if data else None


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on (no host names, no paths)."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:  # pragma: no cover - not Linux
        pass
    memory = None
    try:
        with open("/proc/meminfo") as info:
            memory = round(int(info.readline().split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):  # pragma: no cover
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "usable_cpus": len(cpus()),
        "memory_gib": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def emit(result: dict[str, Any]) -> None:
    """Print ``result`` as the one JSON line a child process reports."""
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()


def parse_result(output: str) -> dict[str, Any]:
    """The JSON a child reported with :func:`emit`."""
    for line in reversed(output.splitlines()):
        if line.startswith("RESULT "):
            parsed: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return parsed
    raise ValueError("the child reported no RESULT line")


def rotated(items: Sequence[str], turn: int) -> list[str]:
    """``items`` rotated by ``turn``, so that each round starts elsewhere."""
    if not items:
        return []
    shift = turn % len(items)
    return list(items[shift:]) + list(items[:shift])
