"""``cv-data build-rl | build-sft | build-bench | import``: thin wrappers over the library."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from .importers import IMPORTERS, SFT_IMPORTERS
from .inputs import INPUT_FORMATS
from .rl import ORIENTATION_TRANSFORMS
from .shards import parse_shard
from .suites import BUILTIN_SUITES

#: Teacher distillation runs the agent loop, which cv-data cannot import: it lives in cv-bench.
TEACHER_MOVED = (
    "--teacher moved: distillation runs the agent loop, use "
    "`cv-bench distill --model openai:URL#MODEL --suite SUITE | --data items.parquet --out DIR`"
)


def _common(p: argparse.ArgumentParser, default_num: int | None, default_seed: int) -> None:
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--num",
        type=int,
        default=default_num,
        help="number of items / trajectories / base items"
        + (" (default: the suite's size, `cv-bench list`)" if default_num is None else ""),
    )
    p.add_argument("--seed", type=int, default=default_seed, help="seed (same seed, same data)")
    p.add_argument("--num-proc", type=int, default=1, help="worker processes (use all local cores)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _dataset_args(p: argparse.ArgumentParser, *, items: bool = True) -> None:
    """Options of the streaming, sharded builders (build-rl, build-bench, import, build-sft)."""
    if items:
        p.add_argument(
            "--format",
            choices=["verl", "items", "jsonl"],
            default="verl",
            help="verl: verl's RL parquet layout, also read by cv-train and cv-bench (default); items: our flat "
            "parquet layout; jsonl: the items layout as JSON lines + PNG files",
        )
    p.add_argument(
        "--preset",
        default="default",
        help="prompt preset (cv_protocol.PRESETS: default, release, minimal): the verl rows' system prompt / "
        "the SFT trajectories' system prompt, tool texts and tool schema; train and evaluate with the same one",
    )
    p.add_argument(
        "--shard",
        default="0/1",
        help="K/N: build only the shards j with j %% N == K (N machines, e.g. a Slurm array, build disjoint "
        "files; copy them into one folder and rerun without --shard to write README.md and report.json)",
    )
    p.add_argument("--records-per-shard", type=int, default=None, help="records per file shard")
    p.add_argument(
        "--overwrite", action="store_true", help="replace another build's shards in --out instead of refusing"
    )


def _input_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--input",
        help="use these records instead of synthetic ones: our parquet/JSONL items, a "
        "verl parquet (--input-format verl) or a table with --columns",
    )
    p.add_argument("--input-format", choices=list(INPUT_FORMATS), default="items")
    p.add_argument(
        "--columns",
        default="",
        help="column map for --input-format table/hf, e.g. 'image=img,question=query,answer=answers|label' "
        "(| separates alternatives; fields not named keep the defaults of cv_data.ColumnMap)",
    )
    p.add_argument("--split", default="test", help="split to load for --input-format hf")


def _input_spec(args: argparse.Namespace):
    from .inputs import InputSpec
    from .tables import ColumnMap

    if not args.input:
        return None
    cols = ColumnMap.parse(args.columns) if args.columns else None
    return InputSpec(args.input, args.input_format, cols, split=args.split)


def _shards(args: argparse.Namespace, split: str):
    from .shards import ShardConfig

    kw = {"records_per_shard": args.records_per_shard} if args.records_per_shard else {}
    fmt = "jsonl" if getattr(args, "format", "parquet") == "jsonl" else "parquet"
    return ShardConfig(split=split, file_format=fmt, **kw)


def _check_out(out: Path) -> None:
    if out.suffix in (".parquet", ".jsonl", ".json"):
        raise ValueError(
            f"--out {out} looks like a file: builds write a dataset folder (data/*-of-*.parquet, README.md, "
            f"report.json); use e.g. --out {out.with_suffix('')}"
        )


def _print_result(res, what: str) -> None:
    rep = res.report
    print(
        f"{what}: {rep.stats.get('rows', 0)} rows from {rep.ok}/{rep.total} records in {res.built} new + "
        f"{res.skipped} kept shard(s) of {len(res.files)} under {res.out / 'data'} ({len(rep.errors)} failed)"
    )
    if res.complete:
        print(f"dataset card: {res.card}; report: {res.out / 'report.json'}")
    else:
        print(
            f"shards still missing: {sum(1 for f in res.files if not f.exists())} of {len(res.files)}; once all "
            "are in one folder, rerun without --shard to write README.md and report.json"
        )


def _build_rl(args: argparse.Namespace, out: Path, progress: bool) -> int:
    from cv_protocol import get_preset

    from .rl import RLBuildConfig, build_rl

    source = _input_spec(args)
    if source is not None and args.p_identity is not None and not args.transform_input:
        raise ValueError(
            "--p-identity samples transforms for synthetic items; input items are kept as they are unless "
            "you add --transform-input"
        )
    srcs = {s.strip(): 1.0 for s in args.sources.split(",") if s.strip()}
    cfg = RLBuildConfig(
        num=args.num,
        seed=args.seed,
        sources=srcs,
        p_identity=0.2 if args.p_identity is None else args.p_identity,
        p_compose=args.p_compose,
        transforms=tuple(t.strip() for t in args.transforms.split(",") if t.strip()),
        transform_input=args.transform_input,
        num_proc=args.num_proc,
        progress=progress,
    )
    res = build_rl(
        cfg,
        out,
        layout="items" if args.format == "jsonl" else args.format,
        preset=get_preset(args.preset),
        source=source,
        shards=_shards(args, cfg.split),
        shard=parse_shard(args.shard),
        overwrite=args.overwrite,
    )
    _print_result(res, "build-rl")
    return 0


def _build_sft(args: argparse.Namespace, out: Path, progress: bool) -> int:
    from .sft import SFTBuildConfig, build_sft_dataset

    if args.teacher:
        raise ValueError(TEACHER_MOVED)
    if [f for f in args.formats.split(",") if f] != ["parquet"]:
        raise ValueError(
            "--formats: build-sft writes parquet shards only; they hold the ShareGPT columns LLaMA-Factory reads "
            "(dataset_info.json), so a JSON copy of every image is no longer needed (cv_data.save_sft(..., "
            "formats=['sharegpt']) writes one for a small set)"
        )
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
    shards = replace(_shards(args, "train"), records_per_shard=args.records_per_shard or 200)
    res = build_sft_dataset(
        cfg,
        out,
        shards=shards,
        shard=parse_shard(args.shard),
        overwrite=args.overwrite,
    )
    _print_result(res, "build-sft")
    return 0


def _import(args: argparse.Namespace, out: Path, progress: bool) -> int:
    import shlex

    from cv_protocol import get_preset

    from .inputs import InputSpec
    from .rl import RLBuildConfig, build_rl

    importer = IMPORTERS[args.importer]
    if args.importer in SFT_IMPORTERS:
        from .importers import sft_import_spec
        from .shards import run_build

        spec = sft_import_spec(args.importer, args.input)
        shards = _shards(args, importer.split)
        res = run_build(
            spec,
            out,
            config=replace(shards, records_per_shard=args.records_per_shard or 200, file_format="parquet"),
            shard=parse_shard(args.shard),
            num_proc=args.num_proc,
            progress=progress,
            overwrite=args.overwrite,
        )
        _print_result(res, f"import {args.importer}")
        return 0
    cfg = RLBuildConfig(split=importer.split, num_proc=args.num_proc, progress=progress)
    command = ["cv-data", "import", "--from", args.importer, "--input", Path(args.input).name, "--out", "OUT"]
    res = build_rl(
        cfg,
        out,
        layout="items" if args.format == "jsonl" else args.format,
        preset=get_preset(args.preset),
        source=InputSpec(args.input, args.importer),
        shards=_shards(args, importer.split),
        shard=parse_shard(args.shard),
        overwrite=args.overwrite,
        command=shlex.join([*command, "--format", args.format]),
    )
    _print_result(res, f"import {args.importer}")
    return 0


def _build_bench(args: argparse.Namespace, out: Path, progress: bool) -> int:
    from cv_protocol import get_preset

    from .bench import BenchConfig, build_bench_dataset, variants_per_base

    cfg = BenchConfig(
        suite=args.suite, num=args.num, seed=args.seed, num_proc=args.num_proc, progress=progress
    )
    shards = _shards(args, cfg.split)
    if not args.records_per_shard:
        shards = replace(shards, records_per_shard=max(1, 500 // variants_per_base(cfg)))
    res = build_bench_dataset(
        cfg,
        out,
        layout="items" if args.format == "jsonl" else args.format,
        preset=get_preset(args.preset),
        source=_input_spec(args),
        shards=shards,
        shard=parse_shard(args.shard),
        overwrite=args.overwrite,
    )
    _print_result(res, f"build-bench {args.suite}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point.

    Example:
        >>> main(["build-rl", "--out", "/tmp/rl.parquet", "--num", "2", "--no-progress"])  # doctest: +SKIP
        0
    """
    ap = argparse.ArgumentParser(prog="cv-data", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    rl = sub.add_parser("build-rl", help="RL items with sampled orientation transforms (streamed, sharded)")
    _common(rl, 1000, 0)
    _input_args(rl)
    _dataset_args(rl)
    rl.add_argument("--sources", default="document,chart,scene", help="synthetic sources, comma separated")
    rl.add_argument(
        "--p-identity",
        type=float,
        default=None,
        help="probability that an item keeps its orientation (default 0.2; synthetic items, or input items "
        "with --transform-input)",
    )
    rl.add_argument("--p-compose", type=float, default=0.15, help="share of rotation+flip compositions")
    rl.add_argument(
        "--transforms",
        default=",".join(ORIENTATION_TRANSFORMS),
        help="single perturbations to draw from, comma separated (toy task: rotate_90,rotate_180,rotate_270)",
    )
    rl.add_argument(
        "--transform-input",
        action="store_true",
        help="also give --input items sampled transforms (default: they are kept exactly as they are)",
    )

    sft = sub.add_parser("build-sft", help="executed SFT trajectories (parquet + ShareGPT)")
    _common(sft, 100, 0)
    sft.add_argument(
        "--kinds",
        default="",
        help="kind weights, e.g. 'single_tool=2,no_tool=1' (default: the paper's five, equal); the toy task of "
        "the learning proof: 'toy=1' (or 'toy=0.4,toy_wrong_op=0.6' for a deliberately noisy teacher)",
    )
    sft.add_argument(
        "--formats",
        default="parquet",
        help="parquet only: the shards hold the ShareGPT columns LLaMA-Factory reads (dataset_info.json), so "
        "no second copy of the images is written",
    )
    _dataset_args(sft, items=False)
    sft.add_argument(
        "--teacher",
        default="",
        help="moved: distilling from a teacher model is `cv-bench distill --model openai:URL#MODEL`",
    )

    bench = sub.add_parser("build-bench", help="benchmark suites (streamed, sharded)")
    _common(bench, None, 1234)
    _input_args(bench)
    _dataset_args(bench)
    bench.add_argument("--suite", choices=BUILTIN_SUITES, default="orientation", help="built-in suite")

    imp = sub.add_parser(
        "import",
        help="convert published data (the CodeVision release, MVToolBench, V*, HRBench, DeepEyes, Thyme) "
        "into our layout, images stored inside, unconvertible records reported",
    )
    imp.add_argument("--from", dest="importer", required=True, choices=list(IMPORTERS), help="source layout")
    imp.add_argument("--input", required=True, help="the published file or folder")
    imp.add_argument("--out", required=True, help="output folder")
    imp.add_argument("--num-proc", type=int, default=1, help="worker processes")
    imp.add_argument("--no-progress", action="store_true", help="hide progress bars")
    _dataset_args(imp)

    args = ap.parse_args(argv)
    out = Path(args.out)
    progress = not args.no_progress
    commands = {
        "build-rl": _build_rl,
        "build-bench": _build_bench,
        "import": _import,
        "build-sft": _build_sft,
    }
    try:
        _check_out(out)
        return commands[args.cmd](args, out, progress)
    except (ValueError, FileNotFoundError, ImportError, KeyError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"cv-data: error: {msg}", file=sys.stderr)
        return 2
