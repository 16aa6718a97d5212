"""Where does our side spend its time? Profiles of one workload at a time.

    python bench/hotspots.py echo [--level 100x16] [--impl channels_line] [--seconds 4] [--py-spy]
    python bench/hotspots.py bulk [--impl channels_socket] [--size-mib 1024] [--py-spy]
    python bench/hotspots.py lines [--case 1KiB/4KiB] [--splitter channels_take]
    python bench/hotspots.py scale [--idle 1000] [--polls 20000]

cProfile by default (exact call counts, but it slows Python code down and
hides time spent in C); ``--py-spy`` samples the running process instead,
with native frames, and prints the functions most often on top of the stack
("self") and anywhere on it ("total"). Run it in the bench environment
(``.venv-bench/bin/python``). ``--impl channels_line@before`` profiles the
code of another revision: set ``CHANNELS_BASELINE_SRC`` to the folder that
holds its ``channels`` package (see ``baseline.py``).
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import io
import os
import pstats
import socket
import subprocess
import sys
import tempfile
import time

import echo
import lines
from baseline import SUFFIX
from bulk_recv import RECEIVERS
from common import parse_result, placement, raise_nofile

from channels import Poller, SocketChannel

HERE = os.path.dirname(os.path.abspath(__file__))


def show_pstats(path_or_profile: str | cProfile.Profile, top: int) -> None:
    out = io.StringIO()
    stats = pstats.Stats(path_or_profile, stream=out)  # type: ignore[arg-type]
    stats.strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    print(out.getvalue())


def py_spy(pid: int, seconds: float, out: str) -> subprocess.Popen[bytes]:
    exe = os.path.join(os.path.dirname(sys.executable), "py-spy")
    # --native needs the process paused while sampled: a lower rate disturbs it less.
    cmd = [exe, "record", "--native", "-r", "250", "-f", "raw", "-d", str(int(seconds) + 1)]
    return subprocess.Popen([*cmd, "-o", out, "-p", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def show_py_spy(path: str, top: int) -> None:
    """Summarise py-spy's collapsed stacks: self and total samples per frame."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            frames = [_short(frame) for frame in stack.split(";") if frame]
            n = int(count)
            samples += n
            if frames:
                own[frames[-1]] += n
            for frame in set(frames):
                total[frame] += n
    print(f"{samples} samples")
    for title, counter in (("self", own), ("total", total)):
        print(f"\ntop {top} by {title}:")
        for frame, n in counter.most_common(top):
            print(f"  {100 * n / samples:5.1f}%  {frame}")


def _short(frame: str) -> str:
    # "func (path/to/file.py:123)" -> "func (file.py:123)"
    name, _, where = frame.partition(" (")
    return f"{name} ({os.path.basename(where)}" if where else name


def profile_echo(args: argparse.Namespace) -> None:
    level = {name: (conns, depth) for name, conns, depth in echo.LEVELS}[args.level]
    server_cpu, load_cpu = placement()
    with tempfile.TemporaryDirectory() as tmp:
        stats = os.path.join(tmp, "server.prof")
        server = echo.Server(args.impl, server_cpu, args.seconds + 60, profile=None if args.py_spy else stats)
        try:
            server.wait_ready()
            spy = py_spy(server.proc.pid, args.seconds, os.path.join(tmp, "spy.txt")) if args.py_spy else None
            result = echo.run_load(
                server, conns=level[0], depth=level[1], warmup=0.3, duration=args.seconds, cpu=load_cpu
            )
            print(f"{args.impl} at {args.level}: {result}")
            if spy is not None:
                spy.wait(args.seconds + 30)
        finally:
            server.stop()
        if args.py_spy:
            show_py_spy(os.path.join(tmp, "spy.txt"), args.top)
        else:
            show_pstats(stats, args.top)


def profile_bulk(args: argparse.Namespace) -> None:
    size = args.size_mib << 20
    with tempfile.TemporaryDirectory() as tmp:
        stats = os.path.join(tmp, "recv.prof")
        recv = [os.path.join(HERE, "bulk_recv.py"), args.impl, "--size", str(size)]
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        send = [sys.executable, os.path.join(HERE, "bulk_send.py"), "--size", str(size)]
        if RECEIVERS[args.impl][0] == "pipe":
            recv_fd, write_fd = os.pipe()
            send += ["--fd", str(write_fd)]
            own, send_fds = [recv_fd, write_fd], (write_fd,)
            listener.close()
        else:
            recv_fd = listener.fileno()
            send += ["--port", str(listener.getsockname()[1])]
            own, send_fds = [listener.detach()], ()
        prefix = [sys.executable] if args.py_spy else [sys.executable, "-m", "cProfile", "-o", stats]
        receiver = subprocess.Popen(
            [*prefix, *recv, "--fd", str(recv_fd)], pass_fds=(recv_fd,), stdout=subprocess.PIPE, text=True
        )
        spy = py_spy(receiver.pid, 30, os.path.join(tmp, "spy.txt")) if args.py_spy else None
        time.sleep(0.5 if spy else 0)
        sender = subprocess.Popen(send, pass_fds=send_fds)
        for fd in own:
            os.close(fd)
        out, _ = receiver.communicate(timeout=300)
        sender.wait(60)
        print(f"{args.impl}: {parse_result(out)}")
        if spy is not None:
            spy.wait(30)  # it writes its file when the receiver has exited
            show_py_spy(os.path.join(tmp, "spy.txt"), args.top)
        else:
            show_pstats(stats, args.top)


def profile_lines(args: argparse.Namespace) -> None:
    line_len, chunk, total, _repeat = lines.CASES[args.case]
    chunks = lines.make_chunks(line_len, chunk, total or 32 * lines.MIB)
    split = lines.SPLITTERS[args.splitter]
    profiler = cProfile.Profile()
    profiler.runcall(split, chunks)
    show_pstats(profiler, args.top)


def profile_scale(args: argparse.Namespace) -> None:
    raise_nofile()
    pairs = [socket.socketpair() for _ in range(args.idle)]
    active, peer = socket.socketpair()
    poller = Poller()
    for sock, _ in pairs:
        poller.register(SocketChannel(sock))
    poller.register(SocketChannel(active))
    profiler = cProfile.Profile()
    for _ in range(args.polls):
        peer.send(b"x")
        profiler.runcall(poller.poll, 1.0)
    show_pstats(profiler, args.top)
    poller.close()
    peer.close()
    for _, other in pairs:
        other.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--top", type=int, default=25)
    sub = parser.add_subparsers(dest="workload", required=True)
    p = sub.add_parser("echo")
    p.add_argument("--level", default="100x16", choices=[lv[0] for lv in echo.LEVELS])
    p.add_argument(
        "--impl",
        default="channels_line",
        choices=[*echo.IMPLS, *(name + SUFFIX for name in echo.IMPLS if name.startswith("channels_"))],
    )
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--py-spy", action="store_true")
    p = sub.add_parser("bulk")
    p.add_argument("--impl", default="channels_socket", choices=sorted(RECEIVERS))
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--py-spy", action="store_true")
    p = sub.add_parser("lines")
    p.add_argument("--case", default="1KiB/4KiB", choices=list(lines.CASES))
    p.add_argument("--splitter", default="channels_take", choices=list(lines.SPLITTERS))
    p = sub.add_parser("scale")
    p.add_argument("--idle", type=int, default=1000)
    p.add_argument("--polls", type=int, default=20000)
    args = parser.parse_args()
    {"echo": profile_echo, "bulk": profile_bulk, "lines": profile_lines, "scale": profile_scale}[args.workload](args)


if __name__ == "__main__":
    main()
