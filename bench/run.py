"""Run the benchmark suite: io-channels and its peers on the same workloads.

    python bench/run.py [--quick] [--only echo,bulk,lines,scale] [--out DIR] [--baseline REV|auto|none]

Workloads run one after another; within each, implementations are
interleaved (the order rotates every round) and repeated, and the report
gives medians and the ratios of the performance targets. Results go to
``bench/results/latest.{json,md,png}`` (``quick.*`` with ``--quick``, so that
a quick run never replaces the full results). ``make bench`` / ``make bench-quick``
run this in its own virtual environment (``.venv-bench``). The code of a
baseline revision runs beside the working tree in the same run, so that a
change is measured before and after under the same conditions (see
``baseline.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

import baseline
import bulk
import echo
import lines
import pyperf
import report
from common import RESULTS_DIR, machine_info, median, parse_result, placement, wait_quiet

import channels

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

SETTINGS = {
    "full": {
        "echo": {"rounds": 5, "warmup": 0.3, "duration": 1.0, "patience": 1.0},
        "bulk": {"rounds": 5, "size": 1 << 30, "patience": 1.0},
        "lines": {"rounds": 5, "slow_rounds": 2, "data_mib": 32, "patience": 1.0},
        "scale": {"samples": 4000, "block": 200},
        "micro": {"processes": 3, "values": 3, "min_time": 0.05},
    },
    "quick": {
        "echo": {"rounds": 1, "warmup": 0.2, "duration": 0.5, "patience": 0.0},
        "bulk": {"rounds": 1, "size": 256 << 20, "patience": 0.0},
        "lines": {"rounds": 2, "slow_rounds": 1, "data_mib": 4, "patience": 0.0},
        "scale": {"samples": 1000, "block": 100},
        "micro": {"processes": 1, "values": 2, "min_time": 0.02},
    },
}

WORKLOADS = ("echo", "bulk", "lines", "scale", "micro")

#: Seconds the whole run may take; waiting for a quiet machine and measuring
#: again (when other processes disturbed a measurement) stop in time for it.
BUDGET = {"full": 560.0, "quick": 110.0}
#: Of the time left, the share bulk may use before echo (which runs last).
BULK_SHARE = 0.3


def log(message: str) -> None:
    print(message, flush=True)


def run_lines(settings: dict[str, Any], cpu: int | None) -> dict[str, Any]:
    """One process per case; the splitters alternate inside it."""
    values: dict[str, dict[str, list[float]]] = {}
    sizes: dict[str, int] = {}
    for case in lines.CASES:
        wait_quiet(settings["patience"])
        cmd = [
            sys.executable, os.path.join(HERE, "lines.py"), case,
            "--rounds", str(settings["rounds"]), "--slow-rounds", str(settings["slow_rounds"]),
            "--data-mib", str(settings["data_mib"]),
        ]  # fmt: skip
        if cpu is not None:
            cmd += ["--cpu", str(cpu)]
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"lines.py {case} failed: {done.stderr.strip()[-500:]}")
        found = parse_result(done.stdout)
        values[case] = found["values"]
        sizes[case] = found["bytes"]
        log(f"  lines {case}: " + ", ".join(f"{k} {1e3 * median(v):.1f} ms" for k, v in found["values"].items() if v))
    splitters = list(dict.fromkeys(name for case in values.values() for name in case))
    return {"values": values, "bytes": sizes, "data_mib": settings["data_mib"], "splitters": splitters}


def run_micro(settings: dict[str, Any], cpu: int | None) -> dict[str, Any]:
    """The pyperf micro-benchmarks; pyperf's own JSON stays in a temporary file
    (its metadata names this machine's paths)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "micro.json")
        cmd = [
            sys.executable, os.path.join(HERE, "micro.py"), "--quiet",
            "--processes", str(settings["processes"]), "--values", str(settings["values"]),
            "--warmups", "1", "--min-time", str(settings["min_time"]), "--output", path,
        ]  # fmt: skip
        if cpu is not None:
            cmd += ["--affinity", str(cpu)]
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"micro.py failed: {done.stderr.strip()[-500:]}")
        suite = pyperf.BenchmarkSuite.load(path)
        out = {}
        for bench in suite.get_benchmarks():
            values = bench.get_values()
            out[bench.get_name()] = {"median_us": median(values) * 1e6, "values": len(values)}
    return out


def run_scale(settings: dict[str, Any], cpu: int | None) -> dict[str, Any]:
    cmd = [
        sys.executable, os.path.join(HERE, "scale.py"),
        "--samples", str(settings["samples"]), "--block", str(settings["block"]),
    ]  # fmt: skip
    if cpu is not None:
        cmd += ["--cpu", str(cpu)]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"scale.py failed: {done.stderr.strip()[-500:]}")
    return parse_result(done.stdout)


def library_info() -> dict[str, Any]:
    src = os.path.dirname(os.path.abspath(channels.__file__))
    digest = hashlib.sha256()
    for name in sorted(os.listdir(src)):
        if name.endswith(".py"):
            with open(os.path.join(src, name), "rb") as f:
                digest.update(name.encode() + b"\0" + f.read())

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", "-C", ROOT, *args], check=False, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "version": channels.__version__,
        "git": git("rev-parse", "--short", "HEAD") or "unknown",
        "src_modified": bool(git("status", "--porcelain", "--", "src/channels")),
        "src_sha256": digest.hexdigest(),
    }


def peer_versions() -> dict[str, str]:
    out = {}
    for name in ("uvloop", "tornado", "twisted", "pyperf"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def choose_baseline(wanted: str) -> str | None:
    """The commit to measure beside the working tree (see baseline.py), or
    ``None``: ``'none'``, or ``'auto'`` when the committed results measured
    this very commit with no change since."""
    if wanted == "none":
        return None
    if wanted == "auto":
        revision = baseline.recorded_revision(os.path.join(RESULTS_DIR, "latest.json"))
        if revision is None:
            log("baseline: the committed results name no revision; measuring the working tree alone")
            return None
    else:
        revision = wanted
    commit = baseline.resolve(revision)
    if commit is None:
        log(f"baseline: {revision!r} is no commit of this repository; measuring the working tree alone")
        return None
    unchanged = not subprocess.run(
        ["git", "-C", ROOT, "diff", "--quiet", commit, "--", "src/channels"], check=False
    ).returncode
    if wanted == "auto" and unchanged:
        log(f"baseline: src/channels is as it was at {revision}; nothing to compare")
        return None
    return commit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and less data (under 2 minutes)")
    parser.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated workloads to run")
    parser.add_argument("--out", default=RESULTS_DIR, help="where the results go")
    parser.add_argument(
        "--baseline",
        default="auto",
        help="a revision whose code is measured beside the working tree, interleaved (default 'auto': "
        "the one the committed results measured; 'none': the working tree alone)",
    )
    args = parser.parse_args()
    wanted = [w for w in args.only.split(",") if w]
    unknown = set(wanted) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    commit = choose_baseline(args.baseline)
    with contextlib.ExitStack() as cleanup:
        if commit is not None:
            src = baseline.extract(commit)
            cleanup.callback(shutil.rmtree, os.path.dirname(src), True)
            os.environ[baseline.ENV] = src  # the children that run the baseline's code look here
            log(f"baseline: {commit[:7]} measured beside the working tree (names ending in {baseline.SUFFIX})")
        measure(args, wanted, commit)


def measure(args: argparse.Namespace, wanted: list[str], commit: str | None) -> None:
    """Run the wanted workloads and write the results."""
    mode = "quick" if args.quick else "full"
    settings = SETTINGS[mode]
    cpus = placement()
    where = (
        f"servers/receivers pinned to CPU {cpus[0]}, load generators/senders to CPU {cpus[1]}"
        if cpus[0] is not None
        else "not pinned (fewer than two usable CPUs)"
    )
    started = time.monotonic()
    result: dict[str, Any] = {
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "make bench-quick" if args.quick else "make bench",
        "mode": mode,
        "stem": "quick" if args.quick else "latest",
        "machine": machine_info(),
        "placement": where,
        "library": library_info(),
        "baseline": commit[:7] if commit else None,
        "peers": peer_versions(),
        "settings": settings,
        "loadavg_before": loadavg(),
        "summary": {},
    }
    log(f"io-channels benchmarks, {mode} mode; {where}")
    if "scale" in wanted:
        log("scale ...")
        result["scale"] = run_scale(settings["scale"], cpus[0])
        result["summary"]["scale"] = report.summarise_scale(result["scale"])
    if "micro" in wanted:
        log("micro (pyperf) ...")
        result["micro"] = run_micro(settings["micro"], cpus[0])
        result["summary"]["micro"] = result["micro"]
    if "lines" in wanted:
        log("lines ...")
        result["lines"] = run_lines(settings["lines"], cpus[0])
        result["summary"]["lines"] = report.summarise_lines(result["lines"])
    if "bulk" in wanted:
        log("bulk ...")
        s = settings["bulk"]
        left = started + BUDGET[mode] - time.monotonic()
        deadline = time.monotonic() + BULK_SHARE * left
        result["bulk"] = bulk.run(s["rounds"], s["size"], cpus, patience=s["patience"], deadline=deadline, log=log)
        result["bulk"]["impls"] = list(bulk.IMPLS)
        result["summary"]["bulk"] = report.summarise_bulk(result["bulk"])
    if "echo" in wanted:
        log("echo ...")
        s = settings["echo"]
        impls = echo.IMPLS
        if commit is not None:
            impls += tuple(name + baseline.SUFFIX for name in ("channels_line", "channels_bytes"))
        result["echo"] = echo.run(
            s["rounds"],
            s["warmup"],
            s["duration"],
            cpus,
            impls=impls,
            patience=s["patience"],
            deadline=started + BUDGET[mode],
            log=log,
        )
        result["echo"]["impls"] = list(impls)
        result["echo_settings"] = (
            f"{s['rounds']} rounds of {s['warmup']} s warm-up + {s['duration']} s measured per cell; "
            "the load generator (one process, raw epoll, busy-polling) checks every echoed byte."
        )
        result["summary"]["echo"] = report.summarise_echo(result["echo"])
    result["loadavg_after"] = loadavg()
    result["duration_s"] = time.monotonic() - started
    result["targets"] = report.targets(result["summary"])
    paths = report.write(result, args.out, result["stem"])
    log("")
    with open(paths["md"]) as f:
        log(f.read())
    log(f"wrote {', '.join(os.path.relpath(p) for p in paths.values())} in {result['duration_s']:.0f} s")


if __name__ == "__main__":
    main()
