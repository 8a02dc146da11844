"""``cv-rewards score rollouts.jsonl``: per-item reward components and a summary table."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from .judge import Judge, JudgeConfig
from .process import (
    COMPONENTS,
    FORMAT_CHECKS,
    MATCHERS,
    VARIANTS,
    ProcessRewardConfig,
    RewardBreakdown,
    score_group,
)
from .records import RolloutRecord

__all__ = ["main", "read_rollouts"]

_SHORT = {
    "accuracy": "acc",
    "format": "fmt",
    "must_use": "must",
    "exact_path": "exact",
    "emergent": "emerg",
    "penalty_turns": "p_turn",
    "penalty_reasoning": "p_reas",
    "penalty_tool_use": "p_tool",
}


def read_rollouts(path: str | Path) -> list[RolloutRecord]:
    """Read a JSONL file of :meth:`RolloutRecord.to_dict` objects (blank lines skipped).

    Raises:
        ValueError: A line is not valid JSON or not a valid record; the message names the line.
    """
    records = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                records.append(RolloutRecord.from_dict(json.loads(line)))
            except (json.JSONDecodeError, ValueError, TypeError) as exc:
                raise ValueError(f"{path}:{lineno}: {exc}") from exc
    return records


#: Allowed values of the string fields of ProcessRewardConfig.
_CHOICES: dict[str, tuple[str, ...]] = {
    "variant": VARIANTS,
    "matcher": MATCHERS,
    "format_check": FORMAT_CHECKS,
}


def _config_args(parser: argparse.ArgumentParser) -> None:
    # Built from the dataclass so the CLI can never drift from ProcessRewardConfig.
    for f in dataclasses.fields(ProcessRewardConfig):
        if f.name in _CHOICES:
            parser.add_argument(
                f"--{f.name.replace('_', '-')}",
                choices=_CHOICES[f.name],
                default=None,
                dest=f.name,
                help=f"ProcessRewardConfig.{f.name} (default {f.default})",
            )
            continue
        parser.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=float,
            default=None,
            dest=f.name,
            help=f"ProcessRewardConfig.{f.name} (default {f.default})",
        )


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cv-rewards", description="CodeVision rewards.")
    sub = parser.add_subparsers(dest="command", required=True)
    score = sub.add_parser("score", help="score rollouts from a JSONL file (one RolloutRecord per line)")
    score.add_argument("rollouts", help="JSONL file, one RolloutRecord.to_dict() object per line")
    score.add_argument(
        "--group-key",
        default="prompt_id",
        help="record field whose equal values form a group of K rollouts ('none': no groups)",
    )
    score.add_argument("--out", default=None, help="write per-item breakdowns as JSONL here")
    score.add_argument("--no-items", action="store_true", help="print only the summary table")
    score.add_argument(
        "--judge-url",
        default=None,
        help="OpenAI-compatible base URL of an LLM judge, e.g. http://127.0.0.1:8000/v1",
    )
    score.add_argument("--judge-model", default=None, help="judge model name (required with --judge-url)")
    score.add_argument("--judge-cache", default=None, help="JSONL cache of judge verdicts")
    _config_args(score)
    return parser


def _groups(records: list[RolloutRecord], key: str) -> list[list[int]]:
    if key == "none":
        return [[i] for i in range(len(records))]
    by_key: dict[Any, list[int]] = {}
    singles: list[list[int]] = []
    for i, r in enumerate(records):
        value = getattr(r, key)
        if value in ("", None):
            singles.append([i])
        else:
            by_key.setdefault(json.dumps(value, sort_keys=True), []).append(i)
    return list(by_key.values()) + singles


def _fmt(x: float) -> str:
    return f"{x:+.3f}" if x else "  0   "


def _print_items(records: list[RolloutRecord], results: list[RewardBreakdown], out: TextIO) -> None:
    head = f"{'#':>4} {'prompt_id':<14} {'ok':<3} {'method':<14} {'total':>7} " + " ".join(
        f"{_SHORT[c]:>7}" for c in COMPONENTS
    )
    print(head, file=out)
    for i, (r, b) in enumerate(zip(records, results, strict=True)):
        cols = " ".join(f"{_fmt(b.components[c]):>7}" for c in COMPONENTS)
        print(
            f"{i:>4} {r.prompt_id[:14]:<14} {'Y' if b.correct else 'n':<3} {b.match_method[:14]:<14} {b.total:>7.3f} {cols}",
            file=out,
        )


def _print_summary(records: list[RolloutRecord], results: list[RewardBreakdown], out: TextIO) -> None:
    n = len(results)
    rows: list[tuple[str, str]] = [
        ("rollouts", str(n)),
        ("groups/prompts", str(len({r.prompt_id for r in records if r.prompt_id}))),
    ]
    if n:
        mean = lambda xs: sum(xs) / n  # noqa: E731
        turns = [b.details["tool_turns"] for b in results]
        calls = sum(turns)
        rows += [
            ("accuracy", f"{mean([float(b.correct) for b in results]):.4f}"),
            ("format rate", f"{mean([b.details['format'] for b in results]):.4f}"),
            ("mean total", f"{mean([b.total for b in results]):.4f}"),
        ]
        rows += [(f"mean {c}", f"{mean([b.components[c] for b in results]):+.4f}") for c in COMPONENTS]
        rows += [
            ("tool-call rate", f"{mean([float(t > 0) for t in turns]):.4f}"),
            ("tool calls / rollout", f"{mean(turns):.3f}"),
            (
                "tool error rate",
                f"{sum(b.details['failed_calls'] for b in results) / calls:.4f}" if calls else "n/a",
            ),
            (
                "match methods",
                ", ".join(f"{k}={v}" for k, v in Counter(b.match_method for b in results).most_common()),
            ),
        ]
    width = max(len(k) for k, _ in rows)
    print("\n" + "-" * (width + 30), file=out)
    for k, v in rows:
        print(f"{k:<{width}}  {v}", file=out)


def _score(args: argparse.Namespace) -> int:
    try:
        records = read_rollouts(args.rollouts)
    except FileNotFoundError:
        print(f"error: no such file {args.rollouts}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not records:
        print(f"error: {args.rollouts} holds no rollout records", file=sys.stderr)
        return 2
    if args.group_key != "none" and args.group_key not in {f.name for f in dataclasses.fields(RolloutRecord)}:
        print(
            f"error: --group-key {args.group_key!r} is not a RolloutRecord field (or 'none')", file=sys.stderr
        )
        return 2
    overrides = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(ProcessRewardConfig)
        if getattr(args, f.name) is not None
    }
    judge = None
    try:
        config = ProcessRewardConfig(**overrides)
        if args.judge_url or args.judge_model:
            if not (args.judge_url and args.judge_model):
                raise ValueError("--judge-url and --judge-model go together")
            judge = Judge(
                JudgeConfig(base_url=args.judge_url, model=args.judge_model, cache_path=args.judge_cache)
            )
        results: list[RewardBreakdown | None] = [None] * len(records)
        groups = _groups(records, args.group_key)
        progress = _progress(len(groups))
        for idx in groups:
            for i, b in zip(idx, score_group([records[i] for i in idx], config, judge=judge), strict=True):
                results[i] = b
            progress(1)
        progress(None)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    done = [b for b in results if b is not None]
    if not args.no_items:
        _print_items(records, done, sys.stdout)
    _print_summary(records, done, sys.stdout)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as f:
            for i, (r, b) in enumerate(zip(records, done, strict=True)):
                f.write(json.dumps({"index": i, "prompt_id": r.prompt_id, **b.to_dict()}) + "\n")
    return 0


def _progress(total: int) -> Callable[[int | None], None]:
    """A tqdm bar on stderr when tqdm is installed (it is optional: this package is stdlib-only)."""
    try:
        from tqdm import tqdm
    except ImportError:
        return lambda n: None
    bar = tqdm(total=total, desc="scoring groups", unit="group", file=sys.stderr, disable=total < 50)

    def step(n: int | None) -> None:
        if n is None:
            bar.close()
        else:
            bar.update(n)

    return step


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``cv-rewards`` / ``python -m cv_rewards``.

    Example:
        >>> main(["score", "/nonexistent.jsonl"])
        2
    """
    args = _build_parser().parse_args(argv)
    if args.command == "score":
        return _score(args)
    return 2  # pragma: no cover - argparse enforces the subcommand
