"""``cv-data build-rl | build-sft | build-bench``: thin wrappers over the library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cv_protocol import PRESETS

from .report import BuildReport
from .rl import ORIENTATION_TRANSFORMS
from .suites import BUILTIN_SUITES

#: Teacher distillation runs the agent loop, which cv-data cannot import: it lives in cv-bench.
TEACHER_MOVED = (
    "--teacher moved: distillation runs the agent loop, use "
    "`cv-bench distill --model openai:URL#MODEL --suite SUITE | --data items.parquet --out DIR`"
)


def _common(p: argparse.ArgumentParser, default_num: int | None, default_seed: int) -> None:
    p.add_argument("--out", required=True, help="output: .parquet file, or a folder")
    p.add_argument(
        "--num",
        type=int,
        default=default_num,
        help="number of items / trajectories / base items"
        + (" (default: the suite's size, `cv-bench list`)" if default_num is None else ""),
    )
    p.add_argument("--seed", type=int, default=default_seed, help="seed (same seed, same data)")
    p.add_argument("--num-proc", type=int, default=1, help="worker processes")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _input_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--input",
        help="use these records instead of synthetic ones: our parquet/JSONL items, a "
        "verl parquet (--input-format verl) or a table with --columns",
    )
    p.add_argument("--input-format", choices=["items", "verl", "table", "hf"], default="items")
    p.add_argument(
        "--columns",
        default="",
        help="column map for --input-format table/hf, e.g. 'image=img,question=query,answer=answers|label' "
        "(| separates alternatives; fields not named keep the defaults of cv_data.ColumnMap)",
    )
    p.add_argument("--split", default="test", help="split to load for --input-format hf")


def _load_input(args: argparse.Namespace, report: BuildReport):
    from .records import read_items, read_verl
    from .tables import ColumnMap, load_hf, load_table

    if not args.input:
        return None
    if args.input_format == "items":
        return read_items(args.input, report=report)
    if args.input_format == "verl":
        return read_verl(args.input, report=report)
    cols = ColumnMap.parse(args.columns) if args.columns else ColumnMap()
    if args.input_format == "hf":
        return load_hf(args.input, args.split, cols, report=report)
    return load_table(args.input, cols, report=report)


def _report_path(out: Path) -> Path:
    return out / "report.json" if out.suffix != ".parquet" else out.with_name(out.stem + ".report.json")


def _write_items(items, out: Path, fmt: str) -> Path:
    from .records import write_items, write_verl

    if fmt == "verl":
        target = out if out.suffix == ".parquet" else out / "data.parquet"
        return write_verl(items, target)
    if out.suffix != ".parquet" and fmt == "parquet":
        return write_items(items, out / "items.parquet")
    return write_items(items, out)


def main(argv: list[str] | None = None) -> int:
    """Entry point.

    Example:
        >>> main(["build-rl", "--out", "/tmp/rl.parquet", "--num", "2", "--no-progress"])  # doctest: +SKIP
        0
    """
    ap = argparse.ArgumentParser(prog="cv-data", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    rl = sub.add_parser("build-rl", help="RL items with sampled orientation transforms")
    _common(rl, 1000, 0)
    _input_args(rl)
    rl.add_argument("--sources", default="document,chart,scene", help="synthetic sources, comma separated")
    rl.add_argument("--p-identity", type=float, default=0.2, help="share of items left upright")
    rl.add_argument("--p-compose", type=float, default=0.15, help="share of rotation+flip compositions")
    rl.add_argument(
        "--transforms",
        default=",".join(ORIENTATION_TRANSFORMS),
        help="single perturbations to draw from, comma separated (toy task: rotate_90,rotate_180,rotate_270)",
    )
    rl.add_argument("--format", choices=["parquet", "jsonl", "verl"], default="parquet")

    sft = sub.add_parser("build-sft", help="executed SFT trajectories (parquet + ShareGPT)")
    _common(sft, 100, 0)
    sft.add_argument(
        "--kinds",
        default="",
        help="kind weights, e.g. 'single_tool=2,no_tool=1' (default: the paper's five, equal); the toy task of "
        "the learning proof: 'toy=1' (or 'toy=0.4,toy_wrong_op=0.6' for a deliberately noisy teacher)",
    )
    sft.add_argument("--formats", default="parquet,sharegpt")
    sft.add_argument(
        "--preset",
        default="default",
        choices=sorted(PRESETS),
        help="what the trajectories show the model: system prompt and tool texts (cv_protocol.PRESETS); "
        "train and evaluate with the same one",
    )
    sft.add_argument(
        "--teacher",
        default="",
        help="moved: distilling from a teacher model is `cv-bench distill --model openai:URL#MODEL`",
    )

    bench = sub.add_parser("build-bench", help="benchmark suites")
    _common(bench, None, 1234)
    _input_args(bench)
    bench.add_argument("--suite", choices=BUILTIN_SUITES, default="orientation", help="built-in suite")
    bench.add_argument("--format", choices=["parquet", "jsonl", "verl"], default="parquet")

    args = ap.parse_args(argv)
    out = Path(args.out)
    report = BuildReport()
    progress = not args.no_progress
    try:
        if args.cmd == "build-rl":
            from .rl import RLBuildConfig, build_rl_items

            srcs = {s.strip(): 1.0 for s in args.sources.split(",") if s.strip()}
            cfg = RLBuildConfig(
                num=args.num,
                seed=args.seed,
                sources=srcs,
                p_identity=args.p_identity,
                p_compose=args.p_compose,
                transforms=tuple(t.strip() for t in args.transforms.split(",") if t.strip()),
                num_proc=args.num_proc,
                progress=progress,
            )
            load_rep = BuildReport()
            base = _load_input(args, load_rep)
            items = build_rl_items(cfg, base, report=report)
            report.errors[:0] = load_rep.errors
            path = _write_items(items, out, args.format)
        elif args.cmd == "build-bench":
            from .bench import BenchConfig, build_bench

            load_rep = BuildReport()
            base = _load_input(args, load_rep)
            cfg = BenchConfig(
                suite=args.suite, num=args.num, seed=args.seed, num_proc=args.num_proc, progress=progress
            )
            items = build_bench(cfg, base, report=report)
            report.errors[:0] = load_rep.errors
            path = _write_items(items, out, args.format)
        else:
            from .sft import SFTBuildConfig, build_sft, save_sft

            if args.teacher:
                raise ValueError(TEACHER_MOVED)
            kinds = None
            if args.kinds:
                kinds = {k: float(v) for k, _, v in (s.partition("=") for s in args.kinds.split(",") if s)}
            cfg = SFTBuildConfig(
                num=args.num,
                seed=args.seed,
                num_proc=args.num_proc,
                progress=progress,
                preset=args.preset,
                **({"kinds": kinds} if kinds else {}),
            )
            recs = build_sft(cfg, report=report)
            paths = save_sft(recs, out, formats=[f for f in args.formats.split(",") if f], report=report)
            print(f"wrote {len(recs)} trajectories to {out} ({report.summary()}; report: {paths['report']})")
            return 0
    except (ValueError, FileNotFoundError, ImportError) as e:
        print(f"cv-data: error: {e}", file=sys.stderr)
        return 2
    rp = report.write(_report_path(out))
    print(f"wrote {len(items)} items to {path} ({report.summary()}; report: {rp})")
    return 0
