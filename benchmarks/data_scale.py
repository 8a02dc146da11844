"""cv-data at scale: peak memory of `cv-data build-rl` against --num, and the --num-proc speed-up.

Usage:
    python benchmarks/data_scale.py --peak 400,4000          # peak RSS (/usr/bin/time -v) per --num
    python benchmarks/data_scale.py --speedup 200 --procs 2  # wall and CPU time, --num-proc 1 vs 2
    python benchmarks/data_scale.py --tiny 4000,40000        # peak RSS of the bookkeeping alone

Each run is a fresh `cv-data build-rl` process writing to a temporary folder. Peak memory is the maximum
resident set size of any process of the build (GNU time's "Maximum resident set size"; the workers of
--num-proc are separate processes, each with its own peak). The load average is printed with every timing:
on a shared machine, compare speed-ups only when it is well below the number of cores.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-m", "cv_data"]


def _run(num: int, procs: int, *, timed: bool) -> tuple[float, int | None]:
    out = Path(tempfile.mkdtemp()) / "rl"
    cmd = [*CLI, "build-rl", "--out", str(out), "--num", str(num), "--num-proc", str(procs), "--no-progress"]
    gnu_time = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    if timed and gnu_time:
        cmd = [gnu_time, "-v", *cmd]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    dt = time.perf_counter() - t0
    shutil.rmtree(out.parent, ignore_errors=True)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return dt, int(m.group(1)) // 1024 if m else None


_TINY = """
import sys
from PIL import Image
from cv_data import Item, RLBuildConfig, build_rl, sources

def tiny(i, seed, split):  # a 32 x 32 image: what grows with --num is then the build's own bookkeeping
    return Item(f"tiny-{i}", [Image.new("RGB", (32, 32), (i % 256, 0, 0))], "Which item?", str(i),
                data_source="bench/tiny", split=split)

sources.SOURCES["tiny"] = tiny
build_rl(RLBuildConfig(num=int(sys.argv[2]), sources={"tiny": 1.0}, p_identity=1.0, progress=False), sys.argv[1])
"""


def _run_tiny(num: int) -> tuple[float, int | None]:
    out = Path(tempfile.mkdtemp()) / "rl"
    gnu_time = shutil.which("time") or "/usr/bin/time"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [gnu_time, "-v", sys.executable, "-c", _TINY, str(out), str(num)],
        capture_output=True,
        text=True,
        check=True,
    )
    dt = time.perf_counter() - t0
    shutil.rmtree(out.parent, ignore_errors=True)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return dt, int(m.group(1)) // 1024 if m else None


def _cpu_split(num: int, procs: int) -> tuple[float, float, float]:
    """``(wall, CPU seconds of the main process, CPU seconds of all its descendants)`` of one build, polled
    with psutil (the fork server's workers are not children the main process waits for, so rusage misses
    them)."""
    import psutil

    out = Path(tempfile.mkdtemp()) / "rl"
    cmd = [*CLI, "build-rl", "--out", str(out), "--num", str(num), "--num-proc", str(procs), "--no-progress"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    main_ps, seen, main_cpu = psutil.Process(proc.pid), {}, 0.0
    while proc.poll() is None:
        try:
            t = main_ps.cpu_times()
            main_cpu = t.user + t.system
            for c in main_ps.children(recursive=True):
                ct = c.cpu_times()
                seen[c.pid] = ct.user + ct.system
        except psutil.Error:
            pass
        time.sleep(0.05)
    dt = time.perf_counter() - t0
    shutil.rmtree(out.parent, ignore_errors=True)
    return dt, main_cpu, sum(seen.values())


def _busy(n: int) -> int:
    s = 0
    for i in range(n):
        s += i * i
    return s


def _calibrate(procs: int) -> float:
    """Speed-up of ``procs`` workers on pure CPU work, now: what the machine offers this process group (on
    a shared machine with Linux's autogroup scheduling, more processes do not get a larger share)."""
    from cv_data._parallel import imap_ordered

    times = []
    for n in (1, procs):
        t0 = time.perf_counter()
        for _ in imap_ordered(_busy, [3_000_000] * 16 * procs, num_proc=n):
            pass
        times.append(time.perf_counter() - t0)
    return times[0] / times[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peak", default="", help="comma-separated --num values to measure peak memory for")
    ap.add_argument("--speedup", type=int, default=0, help="items for the --num-proc speed-up")
    ap.add_argument("--procs", type=int, default=os.cpu_count() or 2, help="--num-proc to compare with 1")
    ap.add_argument("--repeats", type=int, default=2, help="alternating runs of each setting")
    ap.add_argument(
        "--tiny", default="", help="comma-separated --num values of a 32x32-image source (bookkeeping)"
    )
    ap.add_argument(
        "--cpu-split",
        type=int,
        default=0,
        help="items: CPU seconds of the main process and of the workers, --num-proc 1 vs --procs, and the "
        "speed-up they allow on idle cores (for a machine too busy to time the speed-up)",
    )
    args = ap.parse_args(argv)
    if args.cpu_split:
        runs = {p: [_cpu_split(args.cpu_split, p) for _ in range(args.repeats)] for p in (1, args.procs)}
        one = statistics.median(m + w for _, m, w in runs[1])
        main_n = statistics.median(m for _, m, _ in runs[args.procs])
        total_n = statistics.median(m + w for _, m, w in runs[args.procs])
        bound = one / max(main_n, total_n / args.procs)
        print(
            f"build-rl --num {args.cpu_split}: CPU {one:.1f} s with --num-proc 1; with --num-proc {args.procs}: "
            f"main {main_n:.1f} s + workers {total_n - main_n:.1f} s = {total_n:.1f} s (medians of "
            f"{args.repeats}); on {args.procs} idle cores: speed-up <= {bound:.2f}x (load {os.getloadavg()[0]:.2f})"
        )
    for num in [int(n) for n in args.tiny.split(",") if n]:
        dt, peak = _run_tiny(num)
        print(f"build-rl of {num:6d} tiny items: peak RSS {peak} MB, {dt:7.1f} s")
    for num in [int(n) for n in args.peak.split(",") if n]:
        load = os.getloadavg()[0]
        dt, peak = _run(num, 1, timed=True)
        print(
            f"build-rl --num {num:6d}: peak RSS {peak} MB, {dt:7.1f} s ({num / dt:.2f} items/s), load {load:.2f}"
        )
    if args.speedup:
        # Alternate the two settings (A B A B ...) so that a change of the machine's load hits both alike.
        walls: dict[int, list[float]] = {1: [], args.procs: []}
        loads = [os.getloadavg()[0]]
        before = _calibrate(args.procs)
        for _ in range(args.repeats):
            for procs in (1, args.procs):
                walls[procs].append(_run(args.speedup, procs, timed=False)[0])
                loads.append(os.getloadavg()[0])
        w1, wn = statistics.median(walls[1]), statistics.median(walls[args.procs])
        after = _calibrate(args.procs)
        print(
            f"pure-CPU speed-up of {args.procs} workers on this machine now: {before:.2f}x before, {after:.2f}x after"
        )
        print(
            f"build-rl --num {args.speedup}: --num-proc 1 {w1:.1f} s, --num-proc {args.procs} {wn:.1f} s wall "
            f"(medians of {args.repeats}): speed-up {w1 / wn:.2f}x; load average {min(loads):.2f}-"
            f"{max(loads):.2f} on {os.cpu_count()} cores"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
