"""``cv-agent`` command line: run one episode, render saved trajectories, build a tiny test model."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from cv_protocol import PRESETS

from .agent import Agent, AgentConfig
from .backends.factory import make_backend
from .trajectory import Trajectory, load_trajectories, save_trajectories
from .viewer import render_trajectory_html, write_html_report


def format_trajectory(traj: Trajectory) -> str:
    """Plain-text transcript of a trajectory for the terminal.

    Example:
        >>> print(format_trajectory(Trajectory("q1", "What?", stop_reason="answer", answer="A")).splitlines()[0])
        == q1: What?
    """
    lines = [f"== {traj.item_id or 'episode'}: {traj.question}"]
    calls = {c.turn: c for c in traj.tool_calls}
    turn = 0
    for m in traj.messages:
        if m["role"] == "assistant":
            lines.append(f"-- assistant (turn {turn})")
            lines.append(m["content"])
            call = calls.get(turn)
            if call is not None:
                status = (
                    f"ok -> image {call.output_index}"
                    if call.ok
                    else f"FAILED ({call.error_kind}): {call.error}"
                )
                ops = ", ".join(op["name"] for op in call.ops)
                lines.append(f"-- tool: {status}" + (f" [ops: {ops}]" if ops else ""))
            turn += 1
    t = traj.timings
    lines.append(
        f"== stop={traj.stop_reason} answer={traj.answer!r} turns={traj.turns} calls={len(traj.tool_calls)} "
        f"time={t.get('total_s', 0):.2f}s (model {t.get('model_s', 0):.2f}s, sandbox {t.get('sandbox_s', 0):.2f}s)"
    )
    if traj.error:
        lines.append(f"== error: {traj.error}")
    return "\n".join(lines)


def _cmd_run(args: argparse.Namespace) -> int:
    for p in args.image:
        if not Path(p).is_file():
            print(f"error: image not found: {p}", file=sys.stderr)
            return 2
    try:
        config = AgentConfig(
            max_turns=args.max_turns,
            max_new_tokens=args.max_new_tokens,
            token_budget=args.token_budget,
            max_pixels=args.max_pixels,
            resize_factor=args.resize_factor,
            temperature=args.temperature,
            preset=args.preset,
        )
        backend = make_backend(args.model)
    except (ValueError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    agent = Agent(backend, config)

    async def go() -> Trajectory:
        try:
            return await agent.arun(args.image, args.question, item_id=args.item_id)
        finally:
            await backend.aclose()

    try:
        traj = asyncio.run(go())
    finally:
        agent.close()
    print(format_trajectory(traj))
    out = Path(args.out)
    save_trajectories([traj], out)
    page = render_trajectory_html(traj, out / f"{args.item_id or 'episode'}.html")
    print(f"wrote {out / 'trajectories.jsonl'} and {page}")
    return 0 if traj.stop_reason != "error" else 1


def _cmd_view(args: argparse.Namespace) -> int:
    try:
        trajs = load_trajectories(args.dir)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    index = write_html_report(trajs, Path(args.out) if args.out else Path(args.dir) / "html")
    print(f"wrote {index} ({len(trajs)} trajectories)")
    return 0


def _cmd_tiny(args: argparse.Namespace) -> int:
    from .tiny import build_tiny_vlm

    print(build_tiny_vlm(args.out, args.family, args.seed))
    return 0


def build_parser() -> argparse.ArgumentParser:
    d = AgentConfig()
    p = argparse.ArgumentParser(
        prog="cv-agent", description="CodeVision agent loop: code as the universal image tool."
    )
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run one episode and print the trajectory")
    r.add_argument("question", help="the question about the image")
    r.add_argument("--model", required=True, help="openai:URL#MODEL | hf:PATH | vllm:PATH")
    r.add_argument("--image", required=True, action="append", help="input image (repeat for several)")
    r.add_argument(
        "--out", default="cv_agent_runs", help="directory for trajectories.jsonl, images and the HTML page"
    )
    r.add_argument("--item-id", default="episode", help="id recorded in the trajectory")
    r.add_argument("--max-turns", type=int, default=d.max_turns)
    r.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens)
    r.add_argument("--token-budget", type=int, default=d.token_budget)
    r.add_argument("--max-pixels", type=int, default=d.max_pixels)
    r.add_argument(
        "--resize-factor", type=int, default=d.resize_factor, help="28 for Qwen2.5-VL, 32 for Qwen3-VL"
    )
    r.add_argument("--temperature", type=float, default=None)
    r.add_argument(
        "--preset",
        default="default",
        help=f"what the model is shown: system prompt, tool schema and texts, code limit (one of {sorted(PRESETS)})",
    )
    r.set_defaults(fn=_cmd_run)
    v = sub.add_parser("view", help="write HTML pages for a directory of saved trajectories")
    v.add_argument("dir", help="directory holding trajectories.jsonl")
    v.add_argument("--out", default=None, help="output directory (default: DIR/html)")
    v.set_defaults(fn=_cmd_view)
    t = sub.add_parser("build-tiny", help="build a tiny random Qwen-VL model for tests")
    t.add_argument("out")
    t.add_argument("--family", default="qwen2_5_vl", choices=["qwen2_5_vl", "qwen3_vl"])
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(fn=_cmd_tiny)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``cv-agent`` / ``python -m cv_agent``.

    Example:
        >>> main(["run", "--model", "openai:http://localhost:8000/v1#qwen", "--image", "x.png", "What?"])  # doctest: +SKIP
    """
    args = build_parser().parse_args(argv)
    return int(args.fn(args))
