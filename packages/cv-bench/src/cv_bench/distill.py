"""``cv-bench distill``: SFT data from a teacher model, by running the one agent loop and keeping what it solves.

Distillation is evaluation with a different product: the teacher (any model spec; an OpenAI-compatible
endpoint serving a large VLM in practice) plays every item through ``cv_agent.Agent`` and cv-sandbox, exactly
as ``cv-bench eval`` runs a model, and each answer is verified by :func:`cv_bench.score_answer` (cv-rewards'
matcher). The verified-correct trajectories become SFT records built by cv-data's one record writer
(:func:`cv_data.sft_record`), their calls rewritten in the canonical format the parser reads without repairs
(:func:`cv_protocol.canonical_call_text`).

It lives here because it needs both the agent loop (cv-agent) and the SFT record layout (cv-data), which do
not import each other; cv-bench already runs the agent over items with concurrency, resume and scoring.

Output directory::

    <out>/run/          the evaluation run (run.json, results.jsonl, errors.jsonl, trajectories/, report.html);
                        a rerun of the same command resumes it
    <out>/sft.parquet, <out>/sharegpt.json, <out>/images/, <out>/dataset_info.json   (cv_data.save_sft)
    <out>/report.json   kept / total, and why each episode was not kept
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cv_agent import Trajectory, call_notes
from cv_data import BuildReport, save_sft, sft_record
from cv_protocol import (
    ParsedCall,
    Preset,
    canonical_call_text,
    content_text,
    parse_model_spec,
    parse_tool_calls,
)

from .results import load_results
from .runner import EvalConfig, EvalOutcome, _suite_items, aevaluate, episode_name

__all__ = ["DistillConfig", "DistillOutcome", "distill", "kept_records", "trajectory_to_sft"]

#: The evaluation run inside a distillation's output directory.
RUN_DIR = "run"
_FORMATS = ("parquet", "sharegpt")


@dataclass
class DistillConfig:
    """Settings of one distillation (the flags of ``cv-bench distill``).

    Attributes:
        model: The teacher: ``openai:URL#MODEL`` (any OpenAI-compatible endpoint), ``hf:PATH``,
            ``vllm:PATH`` or ``reference`` (the scripted policy; a check of the pipeline).
        out: Output directory: the SFT files, and the evaluation run under ``run/`` (a rerun resumes it).
        suite: Items to solve: a suite name (``cv-bench list``); with only ``data`` set, ``items``.
        data: A file of items (``cv-data build-rl --out items.parquet``) or an external benchmark's copy.
        size: Base items of a built-in suite; ``None`` = the suite's default.
        limit: Use at most this many items; ``None`` = all.
        samples: Attempts per item (use a temperature > 0); each verified attempt becomes a record.
        concurrency: Episodes in flight at once.
        judge: Optional LLM judge ``openai:URL#MODEL`` for answers the rules cannot decide.
        seed: Seed of the built-in suites' generators.
        max_turns: Assistant turns per episode.
        max_new_tokens: Tokens per assistant turn.
        temperature: The teacher's sampling temperature; ``None`` = the backend's default.
        max_pixels: Pixel budget of the images the teacher sees; ``None`` = the agent's default.
        formats: SFT files to write: ``parquet`` and/or ``sharegpt``.
        sandbox_workers: Worker processes of the shared sandbox.
        progress: Show a progress bar.
        preset: What the teacher is shown (a ``cv_protocol.PRESETS`` name); the records carry the same
            system prompt and tool texts, so train with the same preset.
    """

    model: str = ""
    out: str | Path = "data/sft"
    suite: str | None = None
    data: str | None = None
    size: int | None = None
    limit: int | None = None
    samples: int = 1
    concurrency: int = 8
    judge: str | None = None
    seed: int = 0
    max_turns: int = 6
    max_new_tokens: int = 1024
    temperature: float | None = 0.7
    max_pixels: int | None = None
    formats: Sequence[str] = _FORMATS
    sandbox_workers: int = 2
    progress: bool = True
    preset: str = "default"

    def __post_init__(self) -> None:
        if self.model != "reference":
            parse_model_spec(self.model)  # its message names the accepted forms
        if self.suite is None and self.data is None:
            raise ValueError("give the items to distil on: --suite NAME, or --data items.parquet")
        if self.suite is None:
            self.suite = "items"
        self.formats = tuple(self.formats)
        bad = sorted(set(self.formats) - set(_FORMATS))
        if bad or not self.formats:
            raise ValueError(f"formats must be among {_FORMATS}, got {list(self.formats)}")
        self.out = Path(self.out)
        self.eval_config()  # the evaluation's own checks (model spec, sizes, limits) say what to set

    @property
    def run_dir(self) -> Path:
        """The evaluation run inside :attr:`out`."""
        return Path(self.out) / RUN_DIR

    def eval_config(self) -> EvalConfig:
        """The ``cv-bench eval`` run that plays the teacher (full trajectories kept for the records)."""
        return EvalConfig(
            model=self.model,
            suite=str(self.suite),
            out=self.run_dir,
            size=self.size,
            limit=self.limit,
            samples=self.samples,
            concurrency=self.concurrency,
            judge=self.judge,
            seed=self.seed,
            data=self.data,
            max_turns=self.max_turns,
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            max_pixels=self.max_pixels,
            trajectories="full",
            sandbox_workers=self.sandbox_workers,
            progress=self.progress,
            label=f"distill {self.model}",
            preset=self.preset,
        )


@dataclass
class DistillOutcome:
    """What :func:`distill` did.

    Attributes:
        out: The output directory.
        records: The SFT records written (verified-correct trajectories, in item order).
        report: Kept / total, with a reason per episode not kept (``verify``: wrong answer; ``teacher``: the
            episode failed in the harness, e.g. the endpoint was down; rerun to retry it).
        paths: The files written (:func:`cv_data.save_sft`).
        evaluation: The evaluation run's outcome.
    """

    out: Path
    records: list[dict[str, Any]]
    report: BuildReport
    paths: dict[str, Path] = field(default_factory=dict)
    evaluation: EvalOutcome | None = None


def _strip_notes(text: str, notes: list[str]) -> str:
    suffix = "\n" + "\n".join(notes)
    return text[: -len(suffix)] if notes and text.endswith(suffix) else text


def trajectory_to_sft(
    traj: Trajectory, *, record_id: str, item: Any, preset: Preset | str = "default", **extra: Any
) -> dict[str, Any]:
    """The SFT record of a trajectory of the agent (:func:`cv_data.sft_record`).

    Each executed call is rewritten in the canonical format (:func:`cv_protocol.canonical_call_text`), and
    the agent's notes about how it read a sloppy call (extra calls ignored, a default image used) are
    dropped from the tool response, since the rewritten call has nothing left to note. Unreadable calls
    keep their text and the parser's message, so the data also teaches recovering from them.

    Args:
        traj: The trajectory (full-resolution images).
        record_id: The record's id.
        item: The item it solved (``id``, ``answer``, ``data_source``, ``transform``).
        preset: The preset the episode ran with (its notes are the ones dropped).
        **extra: Further record fields.

    Example:
        >>> from cv_data.testing import tiny_item
        >>> t = Trajectory("x", "q", messages=[{"role": "user", "content": [{"type": "image", "image_index": 0}]},
        ...                                   {"role": "assistant", "content": "<answer>A</answer>"}],
        ...                images=[tiny_item().images[0]])
        >>> rec = trajectory_to_sft(t, record_id="teacher-x", item=tiny_item())
        >>> rec["kind"], rec["messages"][1]["content"]
        ('no_tool', [{'type': 'text', 'text': '<answer>A</answer>'}])
    """
    messages: list[dict[str, Any]] = []
    notes: list[str] = []
    for m in traj.messages:
        content = m["content"]
        if m["role"] == "assistant":
            text = content_text(content)
            call = parse_tool_calls(text)
            notes = call_notes(call, preset) if isinstance(call, ParsedCall) else []
            content = canonical_call_text(text, call) if isinstance(call, ParsedCall) else text
        elif m["role"] == "tool" and notes:
            content = [
                dict(p, text=_strip_notes(p["text"], notes)) if p.get("type") == "text" else p
                for p in content
            ]
            notes = []
        messages.append({"role": m["role"], "content": content})
    return sft_record(
        messages,
        traj.images,
        id=record_id,
        kind="teacher" if any(m["role"] == "tool" for m in messages) else "no_tool",
        data_source=getattr(item, "data_source", ""),
        item_id=item.id,
        answer=str(item.answer),
        transform=list(getattr(item, "transform", None) or []),
        tool_ops=[c.op_names for c in traj.tool_calls],
        **extra,
    )


def kept_records(
    run_dir: str | Path, items: Sequence[Any], samples: int = 1, preset: Preset | str = "default"
) -> tuple[list[dict[str, Any]], BuildReport]:
    """SFT records of the verified-correct episodes of an evaluation run (``trajectories="full"``).

    Args:
        run_dir: The run directory.
        items: The run's items, in the order the records should have.
        samples: Episodes per item in the run.
        preset: The run's preset.

    Returns:
        The records and a report: every finished episode counted, the wrong ones as ``verify`` errors, the
        ones with a reply the server could not return (its text is lost) as ``unreadable``.
    """
    run_dir = Path(run_dir)
    results = {(r.item_id, r.sample): r for r in load_results(run_dir)}
    records: list[dict[str, Any]] = []
    report = BuildReport()
    for i, it in enumerate(items):
        for s in range(samples):
            r = results.get((it.id, s))
            if r is None:
                continue  # failed in the harness: reported by the caller, retried by a rerun
            report.total += 1
            if not r.correct:
                report.add_error(i, it.id, "verify", f"teacher answer {r.pred!r} != {r.gt!r}")
                continue
            if any(c.error_kind == "unreadable" for c in r.tool_calls):
                # The server lost one of the teacher's replies (HTTP 500): its text is not in the trajectory.
                report.add_error(i, it.id, "unreadable", "the server could not return a teacher reply")
                continue
            traj = Trajectory.load(run_dir / "trajectories" / episode_name(it.id, s))
            rid = f"teacher-{it.id}" + (f"-s{s}" if samples > 1 else "")
            rec = trajectory_to_sft(
                traj, record_id=rid, item=it, preset=preset, correct=True, teacher_answer=r.pred
            )
            records.append(rec)
            report.ok += 1
            report.stats[f"kind:{rec['kind']}"] = report.stats.get(f"kind:{rec['kind']}", 0) + 1
    return records, report


async def adistill(config: DistillConfig, *, items: Sequence[Any] | None = None) -> DistillOutcome:
    """Async :func:`distill`."""
    eval_config = config.eval_config()
    items = _suite_items(eval_config, items)
    evaluation = await aevaluate(eval_config, items=items)
    records, report = kept_records(config.run_dir, items, config.samples, config.preset)
    position = {it.id: i for i, it in enumerate(items)}
    for msg in evaluation.errors:  # "<item id>#s<sample>: <error>"
        item_id = msg.split("#s", 1)[0]
        report.total += 1
        report.add_error(position.get(item_id, -1), item_id, "teacher", msg)
    paths = save_sft(records, config.out, formats=config.formats, report=report, preset=config.preset)
    return DistillOutcome(Path(config.out), records, report, paths, evaluation)


def distill(config: DistillConfig, *, items: Sequence[Any] | None = None) -> DistillOutcome:
    """Run the teacher over the items and write its verified-correct trajectories as SFT data.

    Args:
        config: What to run and where to write.
        items: Items to use instead of ``config.suite`` / ``config.data``.

    Returns:
        The records written, the report and the files.

    Example:
        >>> out = distill(DistillConfig(model="openai:http://localhost:8000/v1#Qwen/Qwen3-VL-32B",
        ...                             data="rl.parquet", out="data/sft"))  # doctest: +SKIP
        >>> out.report.summary()  # doctest: +SKIP
    """
    return asyncio.run(adistill(config, items=items))
