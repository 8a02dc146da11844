"""cv-data throughput: samples/s of each builder vs the encode-only bound (PNG-encoding the same images).

Usage: python benchmarks/data_bench.py [--num 24] [--seed 0]

The encode-only bound is what writing the produced images costs by itself (PNG, compress_level=1, as
cv-data writes them). The in-memory builders (sources, ``build_rl_items``, ``build_bench``, ``build_sft``)
do not encode, so their ratio compares making a sample with encoding it (target >= 0.5: making costs at
most twice the encoding). The streamed builders (``build_rl`` / ``build_bench_dataset`` /
``build_sft_dataset`` to a sharded folder) make, encode and write, so their ratio is at most 1 (>= 0.5: everything else costs no more than
the encoding).
"""

from __future__ import annotations

import argparse
import tempfile
import time

from cv_data import (
    SOURCES,
    BenchConfig,
    BuildReport,
    RLBuildConfig,
    SFTBuildConfig,
    build_bench,
    build_bench_dataset,
    build_rl,
    build_rl_items,
    build_sft,
    build_sft_dataset,
    load_sft,
    read_items,
)
from cv_data._images import encode_png


def _rate(n: int, dt: float) -> float:
    return n / dt if dt > 0 else float("inf")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--num", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rows: list[tuple[str, int, float, float]] = []

    def bench(name: str, fn) -> None:
        t0 = time.perf_counter()
        images = fn()
        dt = time.perf_counter() - t0
        t1 = time.perf_counter()
        for im in images:
            encode_png(im)
        enc = time.perf_counter() - t1
        rows.append((name, len(images), _rate(len(images), dt), _rate(len(images), enc)))

    for src, make in SOURCES.items():
        bench(
            f"source:{src}",
            lambda make=make: [make(i, args.seed, "train").images[0] for i in range(args.num)],
        )
    bench(
        "build_rl_items",
        lambda: [
            it.images[0] for it in build_rl_items(RLBuildConfig(num=args.num, seed=args.seed, progress=False))
        ],
    )
    bench(
        "build_bench:orientation",
        lambda: [
            it.images[0]
            for it in build_bench("orientation", num=max(1, args.num // 6), seed=args.seed, progress=False)
        ],
    )

    # Import the writers' modules (pyarrow.parquet, ...) before timing: a one-time cost per process.
    build_rl(RLBuildConfig(num=1, sources={"chart": 1.0}, progress=False), tempfile.mkdtemp())

    def streamed(name: str, fn) -> None:
        out = tempfile.mkdtemp()
        t0 = time.perf_counter()
        fn(out)
        dt = time.perf_counter() - t0
        images = [it.images[0] for it in read_items(out)]
        t1 = time.perf_counter()
        for im in images:
            encode_png(im)
        enc = time.perf_counter() - t1
        rows.append((name, len(images), _rate(len(images), dt), _rate(len(images), enc)))

    streamed(
        "build_rl (to disk)",
        lambda out: build_rl(RLBuildConfig(num=args.num, seed=args.seed, progress=False), out),
    )
    streamed(
        "build_bench_dataset (disk)",
        lambda out: build_bench_dataset(
            BenchConfig("orientation", num=max(1, args.num // 6), seed=args.seed, progress=False), out
        ),
    )
    sft_n = max(1, args.num // 2)
    t0 = time.perf_counter()
    report = BuildReport()
    recs = build_sft(SFTBuildConfig(num=sft_n, seed=args.seed, progress=False), report=report)
    dt = time.perf_counter() - t0
    for e in report.errors:
        print(f"build_sft error: record {e.index} ({e.id}): {e.message}")
    t1 = time.perf_counter()
    for r in recs:
        for im in r["images"]:
            encode_png(im)
    enc = time.perf_counter() - t1
    rows.append(("build_sft (trajectories)", len(recs), _rate(len(recs), dt), _rate(len(recs), enc)))

    out = tempfile.mkdtemp()
    t0 = time.perf_counter()
    build_sft_dataset(SFTBuildConfig(num=sft_n, seed=args.seed, progress=False), out)
    dt = time.perf_counter() - t0
    recs = load_sft(out)
    t1 = time.perf_counter()
    for r in recs:
        for im in r["images"]:
            encode_png(im)
    enc = time.perf_counter() - t1
    rows.append(("build_sft_dataset (disk)", len(recs), _rate(len(recs), dt), _rate(len(recs), enc)))

    print(f"{'builder':28s} {'n':>5s} {'samples/s':>10s} {'encode-only/s':>14s} {'ratio':>6s}")
    for name, n, rate, bound in rows:
        print(f"{name:28s} {n:5d} {rate:10.2f} {bound:14.2f} {rate / bound:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
