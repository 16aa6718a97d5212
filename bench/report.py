"""Summaries, targets, and the three outputs: latest.json, latest.md, latest.png."""

from __future__ import annotations

import json
import math
import os
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
from baseline import SUFFIX
from common import median

OURS = "channels_line"
#: Our echo server run from the baseline's code (see baseline.py).
BEFORE = OURS + SUFFIX
#: What "no slower than before, within noise" means for a now/before ratio.
HELD = 0.95


def _values(samples: list[dict[str, Any]], key: str) -> list[float]:
    return [s[key] for s in samples if "error" not in s and s.get(key) is not None]


def _spread(values: list[float]) -> tuple[float | None, float | None, float | None]:
    if not values:
        return None, None, None
    return median(values), min(values), max(values)


def _by_round(samples: list[dict[str, Any]], key: str) -> dict[int, float]:
    return {s["round"]: s[key] for s in samples if "error" not in s and s.get(key) is not None and "round" in s}


def summarise_echo(echo: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for level, impls in echo["samples"].items():
        out[level] = {}
        for impl, samples in impls.items():
            rate = _values(samples, "lines_per_s")
            med, low, high = _spread(rate)
            out[level][impl] = {
                "lines_per_s": med,
                "min": low,
                "max": high,
                "by_round": _by_round(samples, "lines_per_s"),
                "server_cpu_us_per_line": median(_values(samples, "server_cpu_us_per_line")),
                "client_busy_share": median(_values(samples, "client_busy_share")),
                "foreign_cpus": median(_values(samples, "foreign_cpus")),
                "runs": len(rate),
                "errors": [s["error"] for s in samples if "error" in s],
            }
    return out


def summarise_bulk(bulk: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for impl, samples in bulk["samples"].items():
        rate = _values(samples, "mb_per_s")
        med, low, high = _spread(rate)
        cpu = [s["cpu_seconds"] / s["bytes"] * 1024 * 1e9 for s in samples if "error" not in s]
        out[impl] = {
            "mb_per_s": med,
            "min": low,
            "max": high,
            "by_round": _by_round(samples, "mb_per_s"),
            "receiver_cpu_ns_per_kib": median(cpu),
            "page_faults_per_mib": median(_values(samples, "page_faults_per_mib")),
            "foreign_cpus": median(_values(samples, "foreign_cpus")),
            "runs": len(rate),
            "errors": [s["error"] for s in samples if "error" in s],
        }
    return out


def summarise_lines(lines: dict[str, Any]) -> dict[str, Any]:
    """Median seconds per split, MB/s, and growth exponents."""
    per: dict[str, dict[str, Any]] = {}
    for case, splitters in lines["values"].items():
        size = lines["bytes"][case]
        per[case] = {}
        for splitter, values in splitters.items():
            seconds = median(values)
            per[case][splitter] = {
                "seconds": seconds,
                "mb_per_s": size / seconds / 1e6 if seconds else None,
                "by_round": dict(enumerate(values)),
                "runs": len(values),
            }
    # The exponent compares the fastest round of each size: it asks how the
    # work grows, and a round slowed by the rest of the machine says nothing
    # of that (a median of five still moved it by 0.5 between runs).
    growth = {}
    small = lines["values"].get("line2MiB/4KiB", {})
    big = lines["values"].get("line8MiB/4KiB", {})
    for splitter, values in small.items():
        if values and big.get(splitter):
            growth[splitter] = math.log(min(big[splitter]) / min(values)) / math.log(4)
    return {"cases": per, "growth_exponent": growth}


def summarise_scale(scale: dict[str, Any]) -> dict[str, Any]:
    return scale


def paired(ours: dict[int, float], theirs: dict[int, float], *, inverse: bool = False) -> list[float]:
    """Per-round ratios ours/theirs (theirs/ours with ``inverse``), rounds both have."""
    rounds = sorted(set(ours) & set(theirs))
    if inverse:
        return [theirs[r] / ours[r] for r in rounds if ours[r]]
    return [ours[r] / theirs[r] for r in rounds if theirs[r]]


def targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Each performance target: the measured value, the goal, met or not.

    A ratio is the median of per-round ratios (each round measures both sides
    close together in time), so a machine that is busier in one round than in
    another does not tilt it; the range of the per-round ratios goes with it.
    """
    rows: list[dict[str, Any]] = []

    def add(
        name: str, values: list[float] | float | None, goal: float, *, higher: bool = True, unit: str = "x"
    ) -> None:
        if isinstance(values, list):
            value, low, high = _spread(values)
        else:
            value, low, high = values, None, None
        met = None if value is None else (value >= goal if higher else value <= goal)
        rows.append(
            {
                "target": name,
                "value": value,
                "low": low,
                "high": high,
                "goal": f"{'>=' if higher else '<='} {goal:g}{unit}",
                "met": met,
            }
        )

    echo = summary.get("echo")
    if echo:

        def vs(level: str, peer: str) -> list[float]:
            cells = echo.get(level, {})
            if OURS not in cells or peer not in cells:
                return []
            return paired(cells[OURS]["by_round"], cells[peer]["by_round"])

        add("echo 100x16 vs Twisted", vs("100x16", "twisted_linereceiver"), 1.5)
        add("echo 100x16 vs asyncio streams", vs("100x16", "asyncio_streams"), 3.0)
        add("echo 1000x4 vs uvloop (streams)", vs("1000x4", "uvloop_streams"), 1.5)
        add("echo 1000x4 vs uvloop (Protocol)", vs("1000x4", "uvloop_protocol"), 1.5)
        add("echo 1x1 vs raw epoll loop", vs("1x1", "raw_epoll"), 0.9)
        # The same run measured the baseline's code too (bench/baseline.py):
        # held within noise, not slower.
        for level in echo:
            if BEFORE in echo[level]:
                add(f"echo {level} now vs before (the baseline)", vs(level, BEFORE), HELD)
    bulk = summary.get("bulk")
    if bulk:
        for ours, raw, label in (
            ("channels_socket", "raw_recv_into", "bulk SocketChannel vs raw recv_into"),
            ("channels_pipe", "raw_pipe_readv", "bulk PipeChannel vs raw pipe readv"),
        ):
            if ours in bulk and raw in bulk:
                add(label, paired(bulk[ours]["by_round"], bulk[raw]["by_round"]), 0.9)
    lines = summary.get("lines")
    if lines:
        cases = lines["cases"]
        for case, goal in (("16B/4KiB", 0.6), ("16B/64KiB", 0.6), ("1KiB/4KiB", 0.8), ("1KiB/64KiB", 0.8)):
            for splitter, label in (("channels_take", "poll()"), ("channels_next", "read()")):
                cells = cases.get(case, {})
                if splitter in cells and "raw_find" in cells:
                    # Seconds: the raw splitter's time over ours is our relative speed.
                    ratios = paired(cells[splitter]["by_round"], cells["raw_find"]["by_round"], inverse=True)
                    add(f"lines {case} {label} path vs raw splitter", ratios, goal)
                if splitter + SUFFIX in cells:
                    ratios = paired(cells[splitter]["by_round"], cells[splitter + SUFFIX]["by_round"], inverse=True)
                    add(f"lines {case} {label} path now vs before (the baseline)", ratios, HELD)
        for splitter, label in (("channels_take", "poll()"), ("channels_next", "read()")):
            add(
                f"lines single-line growth exponent, {label} path",
                lines["growth_exponent"].get(splitter),
                1.1,
                higher=False,
                unit="",
            )
    scale = summary.get("scale")
    if scale and "poll_us" in scale:
        for i, level in enumerate(scale["levels"]):
            add(f"scale poll() with {level:,} idle vs raw epoll", scale["ratios"][i], 1.3, higher=False)
        memory = scale.get("bytes_per_channel", {})
        add("scale memory per idle channel (bytes mode)", memory.get("channels_bytes"), 300, higher=False, unit=" B")
        add("scale memory per idle channel (line mode)", memory.get("channels_line"), 300, higher=False, unit=" B")
    micro = summary.get("micro")
    if micro:
        pending = micro.get("ours/write_pending", {}).get("median_us")
        idle = micro.get("ours/write_idle", {}).get("median_us")
        add(
            "micro write() with output pending, peer not reading, vs nothing pending",
            pending / idle if pending and idle else None,
            2.0,
            higher=False,
        )
    return rows


# -- markdown -------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _disturbance(foreign: list[float]) -> str:
    if not foreign:
        return ""
    return (
        f"Other processes on the machine kept {median(foreign):.2f} CPUs busy during the median measurement "
        f"(at most {max(foreign):.2f}); a measurement disturbed by more than 0.25 was repeated once when time allowed."
    )


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lib = result["library"]
    out = [
        "# io-channels benchmark results",
        "",
        f"Run {result['generated']} with `{result['command']}` ({result['mode']} mode, {result['duration_s']:.0f} s).",
        "",
        f"Machine: {m['cpu']}, {m['usable_cpus']} usable CPUs, {m['memory_gib']} GiB, {m['os']}, {m['python']}.",
        f"Placement: {result['placement']}",
        f"Library: io-channels {lib['version']} at {lib['git']}"
        + (" with uncommitted changes in src/channels" if lib["src_modified"] else "")
        + f" (src sha256 {lib['src_sha256'][:12]}).",
        (
            f"Baseline: the code of {result['baseline']} measured in the same run, interleaved "
            f"(rows ending in `{SUFFIX}`)."
            if result.get("baseline")
            else "Baseline: none (the working tree alone)."
        ),
        "Peers: " + ", ".join(f"{k} {v}" for k, v in result["peers"].items()) + ".",
        f"Load average before/after: {result['loadavg_before']} / {result['loadavg_after']}.",
        "",
        "All numbers are medians over interleaved rounds (the order of implementations rotates each round);",
        "ratios compare medians from this one run.",
        "",
    ]
    summary = result["summary"]
    if "echo" in summary:
        echo = summary["echo"]
        levels = result["echo"]["levels"]
        out += [
            "## echo: 64-byte lines, lines/s (server CPU µs per line)",
            "",
            f"{result['echo_settings']}",
            "",
            "| server | " + " | ".join(levels) + " |",
            "|---|" + "---:|" * len(levels),
        ]
        for impl in result["echo"]["impls"]:
            cells = []
            for level in levels:
                cell = echo[level][impl]
                text = f"{_fmt(cell['lines_per_s'])} ({_fmt(cell['server_cpu_us_per_line'], 1)})"
                if cell["errors"]:
                    text += f" [{len(cell['errors'])} failed]"
                cells.append(text)
            out.append(f"| {impl} | " + " | ".join(cells) + " |")
        busy = [
            f"{level} {impl} {cell['client_busy_share']:.0%}"
            for level in levels
            for impl, cell in echo[level].items()
            if cell["client_busy_share"] is not None and cell["client_busy_share"] > 0.8
        ]
        foreign = [c["foreign_cpus"] for lv in echo.values() for c in lv.values() if c["foreign_cpus"] is not None]
        if any(impl.startswith("channels_workers_") for impl in result["echo"]["impls"]):
            out += [
                "",
                "channels_workers_N is `examples/workers.py` with N worker processes, each a line poller as "
                "channels_line on a `reuse_port` listener of its own; measured at 1000x4 only, not pinned "
                "(the load generator still is), its CPU time summed over the workers.",
            ]
        out += [
            "",
            _disturbance(foreign),
            "",
            "Client saturation (share of time the load generator was handling events, above 80%): "
            + (", ".join(busy) if busy else "none")
            + ".",
            "",
        ]
    if "bulk" in summary:
        out += [
            f"## bulk: {result['bulk']['size'] / 2**30:g} GiB one way, MB/s (min-max)",
            "",
            "| receiver | MB/s | min-max | receiver CPU ns/KiB | page faults/MiB |",
            "|---|---:|---:|---:|---:|",
        ]
        for impl, cell in summary["bulk"].items():
            out.append(
                f"| {impl} | {_fmt(cell['mb_per_s'])} | {_fmt(cell['min'])}-{_fmt(cell['max'])} "
                f"| {_fmt(cell['receiver_cpu_ns_per_kib'])} | {_fmt(cell['page_faults_per_mib'], 1)} |"
            )
        foreign = [c["foreign_cpus"] for c in summary["bulk"].values() if c["foreign_cpus"] is not None]
        out += ["", _disturbance(foreign), ""]
    if "lines" in summary:
        lines = summary["lines"]
        splitters = result["lines"]["splitters"]
        out += [
            f"## lines: in-memory splitting, MB/s ({result['lines']['data_mib']} MiB per case; single lines once)",
            "",
            "| case | " + " | ".join(splitters) + " |",
            "|---|" + "---:|" * len(splitters),
        ]
        for case, cells in lines["cases"].items():
            out.append(f"| {case} | " + " | ".join(_fmt(cells.get(s, {}).get("mb_per_s")) for s in splitters) + " |")
        out += [
            "",
            "Growth exponent, 2 MiB to 8 MiB single line (fastest round of each): "
            + ", ".join(f"{k} {v:.2f}" for k, v in lines["growth_exponent"].items())
            + ".",
            "",
        ]
    if "scale" in summary and "poll_us" in summary["scale"]:
        scale = summary["scale"]
        out += [
            "## scale: one poll() returning the one active channel, median µs (p90)",
            "",
            "| idle channels | channels Poller | raw epoll | ratio (median of block pairs) |",
            "|---:|---:|---:|---:|",
        ]
        for i, level in enumerate(scale["levels"]):
            ours, raw = scale["poll_us"]["channels"][i], scale["poll_us"]["raw_epoll"][i]
            out.append(
                f"| {level:,} | {ours:.1f} ({scale['p90_us']['channels'][i]:.1f}) "
                f"| {raw:.1f} ({scale['p90_us']['raw_epoll'][i]:.1f}) | {_fmt(median(scale['ratios'][i]), 2)} |"
            )
        mem = scale.get("bytes_per_channel", {})
        out += [
            "",
            f"Python memory per idle registered channel (tracemalloc, {scale.get('memory_count', 0):,} channels): "
            + ", ".join(f"{k} {v:.0f} B" for k, v in mem.items())
            + ".",
            "",
        ]
    if "micro" in summary:
        micro = summary["micro"]
        names = sorted({name.split("/", 1)[1] for name in micro})
        out += [
            "## micro (pyperf, in-process on a socketpair): median µs per operation",
            "",
            "| operation | ours | raw | ours / raw |",
            "|---|---:|---:|---:|",
        ]
        for name in names:
            ours, raw = micro.get(f"ours/{name}", {}), micro.get(f"raw/{name}", {})
            o, r = ours.get("median_us"), raw.get("median_us")
            out.append(f"| {name} | {_fmt(o, 2)} | {_fmt(r, 2)} | {_fmt(o / r if o and r else None, 2)} |")
        out += ["", "See `bench/micro.py` for what each operation does.", ""]
    out += [
        "## targets",
        "",
        "Ratios are medians of per-round ratios; the range shows the lowest and highest round.",
        "",
        "| target | measured | per-round range | goal | met |",
        "|---|---:|---:|---:|:---:|",
    ]
    for row in result["targets"]:
        value = row["value"]
        shown = "-" if value is None else (f"{value:.0f}" if "B" in row["goal"] else f"{value:.3f}")
        spread = "" if row["low"] is None else f"{row['low']:.2f}-{row['high']:.2f}"
        met = "-" if row["met"] is None else ("yes" if row["met"] else "**no**")
        out.append(f"| {row['target']} | {shown} | {spread} | {row['goal']} | {met} |")
    out += ["", f"Chart: `{result['stem']}.png`. Reproduce with `{result['command']}`.", ""]
    return "\n".join(out)


# -- chart ---------------------------------------------------------------------


def chart(result: dict[str, Any], path: str) -> None:
    summary = result["summary"]
    fig, axes = plt.subplots(2, 2, figsize=(14, 9))
    ours_colour, other = "#d95f02", "#7570b3"

    ax = axes[0][0]
    if "echo" in summary:
        levels = result["echo"]["levels"]
        impls = result["echo"]["impls"]
        width = 0.8 / len(impls)
        cmap = plt.get_cmap("tab10")
        for j, impl in enumerate(impls):
            values = [summary["echo"][lv][impl]["lines_per_s"] or 0 for lv in levels]
            ax.bar([i + j * width for i in range(len(levels))], values, width, label=impl, color=cmap(j % 10))
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(levels))], levels)
        ax.set_yscale("log")
        ax.set_ylabel("lines/s (log)")
        ax.set_title("echo: lines/s by connections x lines in flight")
        ax.legend(fontsize=7, ncol=2)

    ax = axes[0][1]
    if "bulk" in summary:
        names = list(summary["bulk"])
        values = [summary["bulk"][n]["mb_per_s"] or 0 for n in names]
        colours = [ours_colour if n.startswith("channels") else other for n in names]
        ax.barh(names, values, color=colours)
        ax.set_xlabel("MB/s")
        ax.set_title(f"bulk: {result['bulk']['size'] / 2**30:g} GiB one way")

    ax = axes[1][0]
    if "lines" in summary:
        cases = [c for c in summary["lines"]["cases"] if not c.startswith("line")]
        splitters = result["lines"]["splitters"]
        width = 0.8 / len(splitters)
        for j, s in enumerate(splitters):
            values = [summary["lines"]["cases"][c].get(s, {}).get("mb_per_s") or 0 for c in cases]
            ax.bar([i + j * width for i in range(len(cases))], values, width, label=s)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(cases))], cases)
        ax.set_ylabel("MB/s")
        ax.set_title("lines: in-memory splitting (line size / chunk size)")
        ax.legend(fontsize=8)

    ax = axes[1][1]
    if "scale" in summary and "poll_us" in summary["scale"]:
        scale = summary["scale"]
        for name, colour in (("channels", ours_colour), ("raw_epoll", other)):
            ax.plot(scale["levels"], scale["poll_us"][name], marker="o", label=name, color=colour)
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.set_xlabel("idle registered channels (log)")
        ax.set_ylabel("µs per poll() (median)")
        ax.set_title("scale: one poll() returning the one active channel")
        ax.legend()

    m = result["machine"]
    fig.suptitle(
        f"io-channels {result['library']['version']} vs peers — {m['cpu']}, {m['usable_cpus']} CPUs, {m['python']}"
        f" — {result['generated'][:10]} — {result['command']}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write(result: dict[str, Any], directory: str, stem: str) -> dict[str, str]:
    """Write ``STEM.json``, ``STEM.md`` and ``STEM.png`` into ``directory``."""
    os.makedirs(directory, exist_ok=True)
    paths = {ext: os.path.join(directory, f"{stem}.{ext}") for ext in ("json", "md", "png")}
    with open(paths["json"], "w") as out:
        json.dump(result, out, indent=1, sort_keys=False)
        out.write("\n")
    with open(paths["md"], "w") as out:
        out.write(markdown(result))
    chart(result, paths["png"])
    return paths
