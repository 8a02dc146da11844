"""``cv-bench``: ``eval``, ``distill``, ``report``, ``compare`` and ``list``; a thin layer over the library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cv_data import SUITES, list_suites
from cv_protocol import PRESETS, parse_model_spec

from .report import compare_runs, format_table, format_tool_table, write_report
from .runner import MODEL_HELP, EvalConfig, evaluate

DISTILL_HELP = """The teacher plays every item through the agent loop and cv-sandbox (as `cv-bench eval` does);
trajectories whose answer cv-rewards' matcher verifies are written as SFT data (cv_data.save_sft), their tool
calls rewritten in the canonical format. Example:
  cv-data build-rl --out data/rl.parquet --num 200
  cv-bench distill --model openai:http://localhost:8000/v1#Qwen/Qwen3-VL-32B --data data/rl.parquet --out data/sft"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cv-bench", description="Benchmark suites and reports for CodeVision.")
    sub = p.add_subparsers(dest="cmd", required=True)

    e = sub.add_parser(
        "eval",
        help="evaluate a model on a suite (resumable)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=MODEL_HELP,
    )
    e.add_argument("--model", default="", help="reference | openai:URL#MODEL | hf:PATH | vllm:PATH")
    e.add_argument("--suite", default="orientation", choices=list(SUITES), help="suite (see `cv-bench list`)")
    e.add_argument(
        "--out", required=False, default=None, help="run directory (rerun the same command to resume)"
    )
    e.add_argument(
        "--data", default=None, help="your copy of an external benchmark (parquet/JSONL/TSV + images)"
    )
    e.add_argument(
        "--size", type=int, default=None, help="base items of a built-in suite (default: the suite's)"
    )
    e.add_argument("--limit", type=int, default=None, help="evaluate at most this many items")
    e.add_argument("--samples", type=int, default=1, help="k of Avg@k (episodes per item)")
    e.add_argument("--concurrency", type=int, default=8, help="episodes in flight")
    e.add_argument(
        "--judge", default=None, help="LLM judge openai:URL#MODEL, used only when rules cannot decide"
    )
    e.add_argument("--judge-concurrency", type=int, default=4)
    e.add_argument("--seed", type=int, default=0, help="seed of the built-in synthetic suites")
    e.add_argument("--max-turns", type=int, default=12)
    e.add_argument("--max-new-tokens", type=int, default=2048)
    e.add_argument("--temperature", type=float, default=None)
    e.add_argument(
        "--max-pixels", type=int, default=None, help="pixel budget of model images (default 8192*28*28)"
    )
    e.add_argument(
        "--trajectories",
        choices=["page", "full", "none"],
        default="page",
        help="per episode: viewer page + JSON (page), plus full-resolution images (full), or nothing",
    )
    e.add_argument("--label", default=None, help="row label in tables (default: the model spec)")
    _preset_arg(e)
    e.add_argument("--quiet", action="store_true", help="no progress bar")

    d = sub.add_parser(
        "distill",
        help="SFT data from a teacher model: its verified-correct trajectories (resumable)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=DISTILL_HELP,
    )
    d.add_argument("--model", required=True, help="the teacher: openai:URL#MODEL | hf:PATH | vllm:PATH")
    d.add_argument("--suite", default=None, choices=list(SUITES), help="items: a suite (`cv-bench list`)")
    d.add_argument("--data", default=None, help="items: a file from `cv-data build-rl` (or a benchmark copy)")
    d.add_argument("--out", required=True, help="output folder (rerun the same command to resume)")
    d.add_argument("--size", type=int, default=None, help="base items of a built-in suite")
    d.add_argument("--limit", type=int, default=None, help="use at most this many items")
    d.add_argument("--samples", type=int, default=1, help="attempts per item (with --temperature > 0)")
    d.add_argument("--concurrency", type=int, default=8, help="episodes in flight")
    d.add_argument("--judge", default=None, help="LLM judge openai:URL#MODEL for answers rules cannot decide")
    d.add_argument("--seed", type=int, default=0, help="seed of the built-in synthetic suites")
    d.add_argument("--max-turns", type=int, default=6)
    d.add_argument("--max-new-tokens", type=int, default=1024)
    d.add_argument("--temperature", type=float, default=0.7)
    d.add_argument("--max-pixels", type=int, default=None, help="pixel budget of the teacher's images")
    d.add_argument("--formats", default="parquet,sharegpt", help="SFT files: parquet and/or sharegpt")
    _preset_arg(d)
    d.add_argument("--quiet", action="store_true", help="no progress bar")

    r = sub.add_parser("report", help="rebuild summary.json and report.html of a run and print its tables")
    r.add_argument("run_dir")

    c = sub.add_parser("compare", help="put two or more runs side by side")
    c.add_argument("run_dirs", nargs="+")

    sub.add_parser("list", help="list suites and their sizes")
    return p


def _preset_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--preset",
        default="default",
        choices=sorted(PRESETS),
        help="what the model is shown: system prompt, tool schema and texts, code limit "
        "(release: the public CodeVision release's, for its models)",
    )


def _print_summary(summary: dict, run_dir: Path) -> None:
    print(format_table([summary]))
    print()
    print(format_tool_table([summary]))
    print(f"\n{summary['n_results']} episodes in {run_dir}: results.jsonl, summary.json, report.html")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``cv-bench`` (and ``python -m cv_bench``); returns the exit status.

    Example:
        >>> main(["list"])  # doctest: +ELLIPSIS
        suite ...
        0
    """
    args = _parser().parse_args(argv)
    if args.cmd == "list":
        print(f"{'suite':<12} {'kind':<9} {'base':>5} {'items':>6}  description")
        for s in list_suites():
            kind = "built-in" if s.builtin else "--data"
            base = str(s.default_size) if s.default_size else "-"
            n = s.n_items()
            print(f"{s.name:<12} {kind:<9} {base:>5} {n if n is not None else '-':>6}  {s.description}")
        print(
            "\nBuilt-in sizes are defaults: --size N sets base items (each expands into its variants), "
            "--limit N caps items."
        )
        return 0
    if args.cmd == "report":
        try:
            summary = write_report(args.run_dir)
        except (FileNotFoundError, ValueError) as e:
            print(f"cv-bench report: {e}", file=sys.stderr)
            return 2
        _print_summary(summary, Path(args.run_dir))
        return 0
    if args.cmd == "compare":
        try:
            print(compare_runs(args.run_dirs))
        except (FileNotFoundError, ValueError) as e:
            print(f"cv-bench compare: {e}", file=sys.stderr)
            return 2
        return 0
    if args.cmd == "distill":
        return _distill(args)
    # eval
    if not args.model:
        print(MODEL_HELP, file=sys.stderr)
        return 2
    out = args.out or _default_out(args.suite, args.model)
    if args.samples > 1 and not args.temperature and args.model != "reference":
        print(
            "note: --samples > 1 with greedy decoding (no --temperature > 0) repeats the same episode; "
            "Avg@k then equals Avg@1",
            file=sys.stderr,
        )
    try:
        config = EvalConfig(
            model=args.model,
            suite=args.suite,
            out=out,
            size=args.size,
            limit=args.limit,
            samples=args.samples,
            concurrency=args.concurrency,
            judge=args.judge,
            judge_concurrency=args.judge_concurrency,
            seed=args.seed,
            data=args.data,
            max_turns=args.max_turns,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            max_pixels=args.max_pixels,
            trajectories=args.trajectories,
            progress=not args.quiet,
            label=args.label,
            preset=args.preset,
        )
        outcome = evaluate(config)
    except (ValueError, FileNotFoundError, ImportError) as e:
        print(f"cv-bench eval: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"\ncv-bench eval: interrupted; finished episodes are saved in {out}/results.jsonl. "
            "Rerun the same command to resume.",
            file=sys.stderr,
        )
        return 130
    _print_summary(outcome.summary, outcome.run_dir)
    if outcome.skipped:
        print(f"resumed: {outcome.skipped} episodes were already done, {outcome.new} new")
    if outcome.failed:
        print(
            f"{outcome.failed} episodes failed in the harness (see {outcome.run_dir / 'errors.jsonl'}); "
            "rerun the same command to retry them. First errors:",
            file=sys.stderr,
        )
        for msg in list(dict.fromkeys(e.split(": ", 1)[-1] for e in outcome.errors))[:3]:
            print(f"  {msg}", file=sys.stderr)
        return 1
    return 0


def _distill(args: argparse.Namespace) -> int:
    from .distill import DistillConfig, distill

    try:
        config = DistillConfig(
            model=args.model,
            out=args.out,
            suite=args.suite,
            data=args.data,
            size=args.size,
            limit=args.limit,
            samples=args.samples,
            concurrency=args.concurrency,
            judge=args.judge,
            seed=args.seed,
            max_turns=args.max_turns,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            max_pixels=args.max_pixels,
            formats=[f.strip() for f in args.formats.split(",") if f.strip()],
            progress=not args.quiet,
            preset=args.preset,
        )
        outcome = distill(config)
    except (ValueError, FileNotFoundError, ImportError) as e:
        print(f"cv-bench distill: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"\ncv-bench distill: interrupted; finished episodes are saved in {Path(args.out) / 'run'}. "
            "Rerun the same command to resume.",
            file=sys.stderr,
        )
        return 130
    rep = outcome.report
    print(
        f"kept {rep.ok}/{rep.total} verified teacher trajectories in {outcome.out} "
        f"(report: {outcome.paths['report']}; episodes: {config.run_dir / 'report.html'})"
    )
    if outcome.evaluation is not None and outcome.evaluation.failed:
        print(
            f"{outcome.evaluation.failed} episodes failed in the harness (see {config.run_dir / 'errors.jsonl'}); "
            "rerun the same command to retry them",
            file=sys.stderr,
        )
        return 1
    return 0


def _default_out(suite: str, model: str) -> str:
    """``runs/<suite>-<model name>``: the served model's name for an endpoint, else the whole spec."""
    try:
        spec = parse_model_spec(model)
    except ValueError:  # "reference" (or a bad spec, which EvalConfig reports next)
        name = model
    else:
        name = spec.model or str(spec)
    return f"runs/{suite}-{name.replace('/', '_').replace(':', '_')}"


if __name__ == "__main__":
    raise SystemExit(main())
