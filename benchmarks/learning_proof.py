"""Learning proof: on two CPU cores, the pipeline learns a task where the tool is needed and the signal is visual.

The task is cv-data's toy task (``cv_data.toy``): a 56-pixel image of four quadrants, one image token each
(black marker top-left, three colours, a black band on top of every quadrant), shown upright or rotated by
90/180/270 degrees; the question asks the colour of the top-right square of the *upright* image. Correct
behaviour: call the tool with the corrective rotation (no call when upright) and answer from the tool's
image. Chance is 25 % for the op and for the colour. Evaluation items use 8 colour arrangements that training
never shows.

Every step is a subprocess of a public command line, as a user would run it:

1. ``cv-data build-sft --kinds toy=1`` (the expert), ``--kinds toy=0.4,toy_wrong_op=0.6`` (a deliberately
   noisy teacher that applies a wrong rotation 60 % of the time) and ``cv-data build-rl --sources toy``.
2. ``cv-train sft`` from the tiny random Qwen2.5-VL, three seeds (``minimal`` prompt preset, vision trainable).
3. ``cv-bench eval --suite toy`` (greedy) of the untrained model (chance) and of each SFT seed, and
   ``benchmarks/tool_image_probe.py`` on each SFT seed: the image shown for the tool's result is swapped for
   one with another top-right colour, so an answer that follows the swap is read from the tool-turn image.
4. The RL start: SFT seed 0 fine-tuned briefly on the noisy teacher, so its choice of rotation is noisy (about
   half right) while its format stays exact.
5. ``cv-train rl`` (GRPO with the process reward) from that start, two seeds.
6. ``cv-bench eval --suite toy --samples 4 --temperature 1`` of the RL start and of both RL results: the
   sampled rate of the corrective op estimates p(correct op); must-use and format rewards are scored with
   cv-rewards on the saved trajectories.

Criteria (issue 15), on held-out items with 95 % confidence intervals:
- SFT lifts the corrective-op rate from chance to >= 80 % for 3 of 3 seeds;
- SFT answer accuracy >= 60 % for 3 of 3 seeds, and the answer follows the swapped tool image >= 60 % of the
  time (the colour is read from the tool's image, not from the input image);
- GRPO raises p(correct op) by >= 0.15 and the must-use reward by >= 0.08 for 2 of 2 seeds, and the format
  reward stays at or above half its start;
- the whole proof runs in <= 15 minutes on 2 CPU cores (jobs run two at a time, one torch thread each).

Run: ``uv run python benchmarks/learning_proof.py [--out runs/learning-proof] [--jobs 2]``; it writes
``report.md`` (tables and curves), ``summary.json`` and ``curves.png`` under ``--out`` and exits 0 when every
criterion passes. ``--quick`` runs every step with tiny settings (a plumbing check, criteria not enforced).
Rerunning reuses finished steps (their logs say ``done``); ``--fresh`` starts over.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRESET = "minimal"
TOY_ROTATIONS = "rotate_90,rotate_180,rotate_270"


@dataclass(frozen=True)
class Settings:
    """The sizes of one proof run (the defaults are the proof; :data:`QUICK` checks the plumbing)."""

    sft_seeds: tuple[int, ...] = (0, 1, 2)
    rl_seeds: tuple[int, ...] = (0, 1)
    sft_num: int = 512
    sft_steps: int = 1200
    sft_lr: float = 2e-3
    noisy_num: int = 256
    noisy_steps: int = 40
    noisy_lr: float = 2e-4
    rl_num: int = 256
    rl_steps: int = 80
    rl_lr: float = 1e-4
    eval_size: int = 16  # base items; x4 orientations
    rl_samples: int = 4
    max_new_tokens: int = 128


QUICK = Settings(
    sft_seeds=(0,),
    rl_seeds=(0,),
    sft_num=16,
    sft_steps=8,
    noisy_num=8,
    noisy_steps=2,
    rl_num=8,
    rl_steps=2,
    eval_size=1,
    rl_samples=2,
    max_new_tokens=48,
)


# ----------------------------------------------------------------------------------------------- steps


@dataclass
class Step:
    """One command of the pipeline; ``done`` marks a finished step so reruns skip it."""

    name: str
    argv: list[str]
    after: tuple[str, ...] = ()
    marker: Path | None = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    skipped: bool = False


def _cli(module: str, *args: Any) -> list[str]:
    return [sys.executable, "-m", module, *(str(a) for a in args)]


def plan(out: Path, s: Settings) -> list[Step]:
    """Every command of the proof, with its dependencies."""
    d, r, e = out / "data", out / "runs", out / "eval"
    steps = [
        Step(
            "data-sft",
            _cli("cv_data", "build-sft", "--kinds", "toy=1", "--num", s.sft_num, "--seed", 1)
            + ["--preset", PRESET, "--out", str(d / "sft-clean"), "--no-progress"],
        ),
        Step(
            "data-noisy",
            _cli("cv_data", "build-sft", "--kinds", "toy=0.4,toy_wrong_op=0.6", "--num", s.noisy_num)
            + ["--seed", "2", "--preset", PRESET, "--out", str(d / "sft-noisy"), "--no-progress"],
        ),
        Step(
            "data-rl",
            _cli("cv_data", "build-rl", "--sources", "toy", "--transforms", TOY_ROTATIONS)
            + ["--p-identity", "0.25", "--p-compose", "0", "--num", str(s.rl_num), "--seed", "3"]
            + ["--out", str(d / "rl-items"), "--no-progress"],
        ),
        Step("tiny", _cli("cv_agent", "build-tiny", r / "tiny-s0", "--seed", 0)),
        Step("eval-chance", _eval(r / "tiny-s0", e / "chance", s), after=("tiny",)),
    ]
    for seed in s.sft_seeds:
        steps.append(
            Step(
                f"sft-s{seed}",
                _cli("cv_train", "sft", "--dataset", d / "sft-clean", "--output_dir", r / f"sft-s{seed}")
                + ["--seed", str(seed), "--max_steps", str(s.sft_steps), "--learning_rate", str(s.sft_lr)]
                + [
                    "--save_steps",
                    str(max(s.sft_steps, 1)),
                    "--logging_steps",
                    str(max(s.sft_steps // 24, 1)),
                ],
                after=("data-sft",),
            )
        )
        steps.append(
            Step(
                f"eval-sft-s{seed}", _eval(r / f"sft-s{seed}/final", e / f"sft-s{seed}", s), (f"sft-s{seed}",)
            )
        )
        steps.append(
            Step(
                f"probe-sft-s{seed}",
                [sys.executable, str(Path(__file__).with_name("tool_image_probe.py"))]
                + ["--model", str(r / f"sft-s{seed}/final"), "--size", str(s.eval_size)]
                + ["--max-new-tokens", str(s.max_new_tokens), "--out", str(e / f"probe-sft-s{seed}.json")],
                (f"sft-s{seed}",),
            )
        )
    steps.append(
        Step(
            "rl-start",
            _cli("cv_train", "sft", "--model", r / "sft-s0/final", "--dataset", d / "sft-noisy")
            + ["--output_dir", str(r / "rl-start"), "--max_steps", str(s.noisy_steps)]
            + ["--learning_rate", str(s.noisy_lr), "--save_steps", str(max(s.noisy_steps, 1))],
            after=("data-noisy", "sft-s0"),
        )
    )
    steps.append(
        Step("eval-rl-start", _eval(r / "rl-start/final", e / "rl-start", s, sampled=True), ("rl-start",))
    )
    for seed in s.rl_seeds:
        steps.append(
            Step(
                f"rl-s{seed}",
                _cli("cv_train", "rl", "--model", r / "rl-start/final", "--dataset", d / "rl-items")
                + [
                    "--output_dir",
                    str(r / f"rl-s{seed}"),
                    "--seed",
                    str(seed),
                    "--max_steps",
                    str(s.rl_steps),
                ]
                + ["--learning_rate", str(s.rl_lr), "--save_steps", str(max(s.rl_steps, 1))],
                after=("data-rl", "rl-start"),
            )
        )
        steps.append(
            Step(
                f"eval-rl-s{seed}",
                _eval(r / f"rl-s{seed}/final", e / f"rl-s{seed}", s, sampled=True),
                (f"rl-s{seed}",),
            )
        )
    for st in steps:
        st.marker = out / "logs" / f"{st.name}.done"
    return steps


def _eval(model: Path, out: Path, s: Settings, *, sampled: bool = False) -> list[str]:
    argv = _cli("cv_bench", "eval", "--model", f"hf:{model}", "--suite", "toy", "--size", s.eval_size)
    argv += ["--preset", PRESET, "--max-turns", "3", "--max-new-tokens", str(s.max_new_tokens)]
    argv += ["--out", str(out), "--quiet", "--concurrency", "4", "--trajectories", "page"]
    if sampled:
        argv += ["--samples", str(s.rl_samples), "--temperature", "1.0"]
    return argv


def run_steps(steps: list[Step], out: Path, jobs: int, log: Callable[[str], None]) -> None:
    """Run the steps, ``jobs`` at a time, each as soon as the steps it needs are done."""
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONUNBUFFERED"] = "1"
    done = {st.name for st in steps if st.marker is not None and st.marker.is_file()}
    for st in steps:
        if st.name in done:
            st.skipped = True
            saved = json.loads(st.marker.read_text())  # type: ignore[union-attr]
            st.seconds, st.cpu_seconds = float(saved["seconds"]), float(saved.get("cpu_seconds", 0.0))
    pending = [st for st in steps if st.name not in done]
    running: dict[Future[int], Step] = {}

    def launch(st: Step) -> int:
        t0 = time.perf_counter()
        with (logs / f"{st.name}.log").open("w") as f:
            f.write(" ".join(st.argv) + "\n")
            f.flush()
            proc = subprocess.Popen(st.argv, stdout=f, stderr=subprocess.STDOUT, env=env)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        st.seconds = time.perf_counter() - t0
        st.cpu_seconds = usage.ru_utime + usage.ru_stime
        return proc.returncode

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        while pending or running:
            for st in [p for p in pending if set(p.after) <= done][: max(jobs - len(running), 0)]:
                pending.remove(st)
                log(f"start {st.name}")
                running[pool.submit(launch, st)] = st
            if not running:
                missing = {a for p in pending for a in p.after} - done - {p.name for p in pending}
                raise RuntimeError(f"steps wait for unknown steps: {sorted(missing)}")
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in finished:
                st = running.pop(fut)
                rc = fut.result()
                if rc != 0:
                    tail = (logs / f"{st.name}.log").read_text(errors="replace").splitlines()[-15:]
                    raise RuntimeError(f"step {st.name} failed (exit {rc}); last lines:\n" + "\n".join(tail))
                saved = {"seconds": st.seconds, "cpu_seconds": st.cpu_seconds}
                st.marker.write_text(json.dumps(saved))  # type: ignore[union-attr]
                done.add(st.name)
                log(f"done  {st.name} in {st.seconds:.0f} s")


def critical_path(steps: list[Step]) -> float:
    """CPU seconds along the longest chain of steps that wait on each other (a bound no core count beats).

    Example:
        >>> a, b, c = Step("a", [], cpu_seconds=2), Step("b", [], ("a",), cpu_seconds=3), Step("c", [], cpu_seconds=4)
        >>> critical_path([a, b, c])
        5.0
    """
    by_name = {st.name: st for st in steps}
    done: dict[str, float] = {}

    def finish(name: str) -> float:
        if name not in done:
            st = by_name[name]
            done[name] = st.cpu_seconds + max((finish(a) for a in st.after), default=0.0)
        return done[name]

    return float(max((finish(st.name) for st in steps), default=0.0))


# ------------------------------------------------------------------------------------------ statistics


def wilson(k: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion ``k / n``.

    Example:
        >>> [round(x, 3) for x in wilson(8, 10)]
        [0.49, 0.943]
    """
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, mid - half), min(1.0, mid + half))


def bootstrap_diff(
    before: dict[str, list[float]], after: dict[str, list[float]], reps: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean(after) - mean(before) over items, with a 95 % bootstrap interval that resamples items.

    The samples of one item are correlated, so items (not episodes) are the unit that is resampled.

    Example:
        >>> d, lo, hi = bootstrap_diff({"a": [0.0], "b": [0.0]}, {"a": [1.0], "b": [1.0]})
        >>> (d, lo, hi)
        (1.0, 1.0, 1.0)
    """
    items = sorted(set(before) & set(after))

    def mean(xs: Sequence[float]) -> float:
        return sum(xs) / len(xs)

    per_item = [(mean(before[i]), mean(after[i])) for i in items]
    diff = mean([a for _, a in per_item]) - mean([b for b, _ in per_item])
    rng = random.Random(seed)
    stats = []
    for _ in range(reps):
        draw = [per_item[rng.randrange(len(per_item))] for _ in per_item]
        stats.append(mean([a for _, a in draw]) - mean([b for b, _ in draw]))
    stats.sort()
    return diff, stats[int(0.025 * reps)], stats[int(0.975 * reps) - 1]


# ------------------------------------------------------------------------------------------- analysis


@dataclass
class Episode:
    """What the proof reads of one evaluated episode."""

    item: str
    variant: str
    correct: bool
    op_correct: bool
    must_use: float
    format: float


@dataclass
class EvalResult:
    """The episodes of one ``cv-bench eval`` run and their rates."""

    name: str
    episodes: list[Episode] = field(default_factory=list)

    def rate(self, key: str) -> tuple[float, float, float, int]:
        """``(rate, ci_low, ci_high, n)`` of a boolean field over episodes."""
        n = len(self.episodes)
        k = sum(bool(getattr(ep, key)) for ep in self.episodes)
        lo, hi = wilson(k, n)
        return (k / n if n else 0.0, lo, hi, n)

    def mean(self, key: str) -> float:
        return sum(getattr(ep, key) for ep in self.episodes) / max(len(self.episodes), 1)

    def by_item(self, key: str) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for ep in self.episodes:
            out.setdefault(ep.item, []).append(float(getattr(ep, key)))
        return out


def read_eval(run_dir: Path, name: str) -> EvalResult:
    """Score a ``cv-bench eval`` run directory: answer, corrective op, must-use and format per episode.

    The op is right when the orientation ops that ran (successful calls, in order) are exactly the corrective
    ops of the item's transform: none for an upright image. Must-use and format rewards are cv-rewards'
    (``paper`` weights) over the saved trajectory, as RL scores a rollout.
    """
    from cv_protocol import ORIENTATION_OPS, corrective_ops
    from cv_rewards import ProcessRewardConfig, RolloutRecord, ToolCallRecord, score_rollout

    cfg = ProcessRewardConfig()
    res = EvalResult(name)
    for line in (run_dir / "results.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        ran = [op for call in r["tool_calls"] if call["ok"] for op in call["ops"] if op in ORIENTATION_OPS]
        op_ok = ran == [op for op in corrective_ops(r["transform"]) if op in ORIENTATION_OPS]
        traj_file = run_dir / (r["trajectory"] or "").replace(".html", ".json")
        traj = json.loads(traj_file.read_text()) if traj_file.is_file() else {}
        record = RolloutRecord(
            completion=traj.get("final_text", ""),
            tool_calls=[ToolCallRecord.from_dict(c) for c in traj.get("tool_calls", [])],
            transform=r["transform"],
            bbox=None,
            gt_answer=r["gt"],
            correct=bool(r["correct"]),
        )
        parts = score_rollout(record, cfg).components
        res.episodes.append(
            Episode(r["item_id"], r["variant"], bool(r["correct"]), op_ok, parts["must_use"], parts["format"])
        )
    if not res.episodes:
        raise RuntimeError(f"{run_dir} has no results")
    return res


def train_curves(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Logged training metrics per step from ``trainer_state.json`` of the run's last checkpoint."""
    states = sorted(
        run_dir.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[1])
    )
    if not states:
        return {}
    curves: dict[str, list[tuple[int, float]]] = {}
    for entry in json.loads(states[-1].read_text())["log_history"]:
        for k, v in entry.items():
            if k != "step" and isinstance(v, int | float) and "step" in entry:
                curves.setdefault(k, []).append((int(entry["step"]), float(v)))
    return curves


def _window_mean(points: list[tuple[int, float]], first: bool, n: int = 10) -> float:
    xs = [v for _, v in points]
    part = xs[:n] if first else xs[-n:]
    return sum(part) / max(len(part), 1)


def spark(values: Sequence[float]) -> str:
    """A one-line text curve.

    Example:
        >>> spark([0, 1, 2, 3])
        '▁▃▆█'
    """
    bars = "▁▂▃▄▅▆▇█"
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    return "".join(bars[min(int((v - lo) / span * (len(bars) - 1) + 0.5), len(bars) - 1)] for v in values)


def _downsample(points: list[tuple[int, float]], n: int = 40) -> list[float]:
    if len(points) <= n:
        return [v for _, v in points]
    step = len(points) / n
    return [points[int(i * step)][1] for i in range(n)]


# --------------------------------------------------------------------------------------------- report

CURVE_POINTS = 8


def curve_table(points: list[tuple[int, float]], n: int) -> list[tuple[int, float]]:
    """``n`` points of a logged curve: the first value, then the mean of each following ``1/(n-1)`` of it.

    Each point is ``(last step of its stretch, mean value)``.

    Example:
        >>> curve_table([(1, 0.0), (2, 1.0), (3, 2.0), (4, 3.0), (5, 4.0)], 3)
        [(1, 0.0), (3, 1.5), (5, 3.5)]
    """
    if len(points) <= n:
        return list(points)
    out = [points[0]]
    rest = points[1:]
    for i in range(n - 1):
        part = rest[i * len(rest) // (n - 1) : (i + 1) * len(rest) // (n - 1)]
        out.append((part[-1][0], sum(v for _, v in part) / len(part)))
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _pct_ci(v: Sequence[float]) -> str:
    """``(rate, low, high, ...)`` as ``"rate [low, high]"`` in percent."""
    return f"{_pct(v[0])} [{_pct(v[1])}, {_pct(v[2])}]"


def analyse(out: Path, s: Settings, steps: list[Step], wall_s: float, quick: bool) -> dict[str, Any]:
    e, r = out / "eval", out / "runs"
    chance = read_eval(e / "chance", "untrained")
    sft = {seed: read_eval(e / f"sft-s{seed}", f"sft-s{seed}") for seed in s.sft_seeds}
    start = read_eval(e / "rl-start", "rl-start")
    rl = {seed: read_eval(e / f"rl-s{seed}", f"rl-s{seed}") for seed in s.rl_seeds}
    curves = {f"sft-s{seed}": train_curves(r / f"sft-s{seed}") for seed in s.sft_seeds}
    curves |= {f"rl-s{seed}": train_curves(r / f"rl-s{seed}") for seed in s.rl_seeds}

    rows = []
    for res in (chance, *sft.values()):
        op, ans = res.rate("op_correct"), res.rate("correct")
        rows.append({"run": res.name, "op": op, "answer": ans})
    probes = []
    for seed in s.sft_seeds:
        pr = json.loads((e / f"probe-sft-s{seed}.json").read_text())
        k, n = pr["counts"], pr["n"]
        probes.append(
            {
                "run": f"sft-s{seed}",
                "n": n,
                "follows_tool": (pr["follows_tool"], *wilson(k["tool"], n)),
                "follows_input": (pr["follows_input"], *wilson(k["input"], n)),
            }
        )
    rl_rows = []
    for seed, res in rl.items():
        d_op = bootstrap_diff(start.by_item("op_correct"), res.by_item("op_correct"))
        d_mu = bootstrap_diff(start.by_item("must_use"), res.by_item("must_use"))
        rl_rows.append(
            {
                "seed": seed,
                "p_op": (start.rate("op_correct")[0], res.rate("op_correct")[0]),
                "d_op": d_op,
                "must_use": (start.mean("must_use"), res.mean("must_use")),
                "d_must_use": d_mu,
                "format": (start.mean("format"), res.mean("format")),
                "train_format": (
                    _window_mean(curves[f"rl-s{seed}"].get("reward/format", []), True),
                    _window_mean(curves[f"rl-s{seed}"].get("reward/format", []), False),
                ),
                "answer": (start.rate("correct")[0], res.rate("correct")[0]),
            }
        )
    criteria = {
        "sft_op_80": sum(row["op"][0] >= 0.8 for row in rows[1:]) == len(s.sft_seeds),
        "sft_answer_60": sum(row["answer"][0] >= 0.6 for row in rows[1:]) == len(s.sft_seeds),
        "sft_answer_reads_tool_image_60": all(p["follows_tool"][0] >= 0.6 for p in probes),
        "rl_op_015": all(x["d_op"][0] >= 0.15 for x in rl_rows),
        "rl_must_use_008": all(x["d_must_use"][0] >= 0.08 for x in rl_rows),
        "rl_format_half": all(x["format"][1] >= 0.5 * x["format"][0] for x in rl_rows),
        "wall_15_min": wall_s <= 15 * 60,
    }
    summary = {
        "settings": s.__dict__,
        "quick": quick,
        "wall_s": wall_s,
        "steps": {
            st.name: {
                "seconds": round(st.seconds, 1),
                "cpu_seconds": round(st.cpu_seconds, 1),
                "reused": st.skipped,
            }
            for st in steps
        },
        "cpu_s": sum(st.cpu_seconds for st in steps),
        "critical_path_cpu_s": critical_path(steps),
        "cpu_count": os.cpu_count(),
        "load_avg": os.getloadavg(),
        "sft": rows,
        "probe": probes,
        "rl": rl_rows,
        "criteria": criteria,
        "passed": all(criteria.values()),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=list))
    write_report(out, summary, curves)
    return summary


def write_report(
    out: Path, summary: dict[str, Any], curves: dict[str, dict[str, list[tuple[int, float]]]]
) -> None:
    lines = ["# Learning proof", ""]
    if summary["quick"]:
        lines += [
            "**Quick run: plumbing only, the sizes are too small for the criteria to mean anything.**",
            "",
        ]
    la = summary["load_avg"]
    lines += [
        f"Wall time {summary['wall_s'] / 60:.1f} min on {summary['cpu_count']} CPU cores "
        f"(load average at the end {la[0]:.1f} / {la[1]:.1f} / {la[2]:.1f} over 1 / 5 / 15 min). The commands "
        f"used {summary['cpu_s'] / 60:.1f} CPU-minutes in all and {summary['critical_path_cpu_s'] / 60:.1f} "
        "along the longest chain of steps that wait on each other: on two otherwise idle cores the proof needs "
        f"at least {max(summary['cpu_s'] / 120, summary['critical_path_cpu_s'] / 60):.1f} minutes.",
        "",
        "## SFT (held-out items, greedy; 95 % Wilson intervals)",
        "",
        "| run | corrective op % | answer % | n |",
        "|---|---|---|---|",
    ]
    for row in summary["sft"]:
        op, ans = row["op"], row["answer"]
        lines.append(f"| {row['run']} | {_pct_ci(op)} | {_pct_ci(ans)} | {op[3]} |")
    lines += [
        "",
        "## Is the answer read from the tool's image? (`tool_image_probe.py`: held-out rotated items; the image",
        "shown for the tool's result is swapped for one whose top-right square has the colour the item lacks)",
        "",
        "| run | episodes with the corrective call | answer = swapped tool image's colour % | answer = input "
        "image's colour % |",
        "|---|---|---|---|",
    ]
    for p in summary["probe"]:
        t, i = p["follows_tool"], p["follows_input"]
        lines.append(f"| {p['run']} | {p['n']} | {_pct_ci(t)} | {_pct_ci(i)} |")
    lines += [
        "",
        "## GRPO from the noisy start (held-out items, 4 samples each at temperature 1; differences with 95 %",
        "bootstrap intervals over items)",
        "",
        "| seed | p(correct op) start -> end | diff [CI] | must-use start -> end | diff [CI] | format start -> end | "
        "format in training (first -> last 10 steps) | answer % start -> end |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for x in summary["rl"]:
        lines.append(
            f"| {x['seed']} | {x['p_op'][0]:.3f} -> {x['p_op'][1]:.3f} | {x['d_op'][0]:+.3f} "
            f"[{x['d_op'][1]:+.3f}, {x['d_op'][2]:+.3f}] | {x['must_use'][0]:.3f} -> {x['must_use'][1]:.3f} | "
            f"{x['d_must_use'][0]:+.3f} [{x['d_must_use'][1]:+.3f}, {x['d_must_use'][2]:+.3f}] | "
            f"{x['format'][0]:.3f} -> {x['format'][1]:.3f} | {x['train_format'][0]:.3f} -> "
            f"{x['train_format'][1]:.3f} | {_pct(x['answer'][0])} -> {_pct(x['answer'][1])} |"
        )
    lines += ["", "## Criteria", ""]
    for k, v in summary["criteria"].items():
        lines.append(f"- {'PASS' if v else 'FAIL'} {k}")
    lines += ["", "## Curves", "", "![curves](curves.png)", ""]
    keys = ("loss", "reward", "reward/must_use", "reward/format", "tools/tool_call_rate")
    for run, metrics in curves.items():
        for key in keys:
            if metrics.get(key):
                pts = metrics[key]
                lines.append(
                    f"- {run} {key}: {spark(_downsample(pts))}  ({pts[0][1]:.3f} at step {pts[0][0]} -> "
                    f"{pts[-1][1]:.3f} at step {pts[-1][0]})"
                )
    lines += [
        "",
        f"Logged values at {CURVE_POINTS} points of each run, `value @step`: the first logged step, then the "
        "mean over each following stretch (single RL steps of 2 prompts x 4 rollouts are noisy).",
        "",
    ]
    lines += ["| run | metric | " + " | ".join(f"p{i}" for i in range(CURVE_POINTS)) + " |"]
    lines += ["|---|---|" + "---|" * CURVE_POINTS]
    for run, metrics in curves.items():
        for key in keys:
            if metrics.get(key):
                cells = [f"{v:.3f} @{st}" for st, v in curve_table(metrics[key], CURVE_POINTS)]
                lines.append(f"| {run} | {key} | " + " | ".join(cells) + " |")
    lines += ["", "## Step times (s, wall and CPU)", ""]
    lines += [
        f"- {k}: {v['seconds']} wall, {v['cpu_seconds']} CPU{' (reused)' if v['reused'] else ''}"
        for k, v in summary["steps"].items()
    ]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    _plot(out / "curves.png", curves)


def _plot(path: Path, curves: dict[str, dict[str, list[tuple[int, float]]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("loss", "SFT loss", "sft-"), ("reward/must_use", "RL must-use reward", "rl-")]
    panels += [
        ("reward/format", "RL format reward", "rl-"),
        ("tools/tool_call_rate", "RL tool-call rate", "rl-"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3))
    for ax, (key, title, prefix) in zip(axes, panels, strict=True):
        for run, metrics in curves.items():
            if run.startswith(prefix) and metrics.get(key):
                xs, ys = zip(*metrics[key], strict=True)
                ax.plot(xs, ys, label=run)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--out", default="runs/learning-proof", help="working folder (reruns reuse finished steps)"
    )
    p.add_argument("--jobs", type=int, default=2, help="commands run at once (one torch thread each)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: check the plumbing, not the criteria")
    p.add_argument("--fresh", action="store_true", help="delete --out first")
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    s = QUICK if args.quick else Settings()
    steps = plan(out, s)
    t0 = time.perf_counter()
    log = lambda msg: print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", flush=True)  # noqa: E731
    try:
        run_steps(steps, out, max(args.jobs, 1), log)
    except RuntimeError as e:
        print(f"learning proof: {e}", file=sys.stderr)
        return 2
    wall_file = out / "logs" / "wall.json"
    if any(not st.skipped for st in steps):  # a rerun adds its own time to the earlier runs' (if any)
        before = json.loads(wall_file.read_text())["seconds"] if wall_file.is_file() else 0.0
        wall_file.write_text(
            json.dumps(
                {"seconds": before + time.perf_counter() - t0, "reused": sum(st.skipped for st in steps)}
            )
        )
    wall = float(json.loads(wall_file.read_text())["seconds"])
    summary = analyse(out, s, steps, wall, args.quick)
    print((out / "report.md").read_text())
    return 0 if summary["passed"] or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
