"""GRPO reward: cv-rewards' dense process reward over each rollout's environment trace, with full logging."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from cv_protocol import TOOL_RESPONSE_END, TOOL_RESPONSE_START

from .env import CodeVisionEnv

# A tool turn as the Qwen templates render it: the wrapped response inside a user (or tool) turn.
_TOOL_TURN = re.compile(
    r"<\|im_start\|>(?:user|tool)\n"
    + re.escape(TOOL_RESPONSE_START)
    + ".*?"
    + re.escape(TOOL_RESPONSE_END)
    + r"<\|im_end\|>\n?",
    re.DOTALL,
)
_SPECIAL = re.compile(
    r"<\|im_start\|>assistant\n|<\|im_end\|>\n?|<\|endoftext\|>|<\|vision_start\|>|<\|vision_end\|>|<\|image_pad\|>"
)


def completion_text(token_ids: Sequence[int], tokenizer: Any) -> str:
    """The model-written text of a multi-turn completion: tool-response turns removed, chat markup stripped.

    Example:
        >>> class Tok:
        ...     def decode(self, ids, skip_special_tokens=False):
        ...         return ("<think>a</think><tool_call>{}</tool_call><|im_end|>\\n<|im_start|>user\\n<tool_response>\\n"
        ...                 "x\\n</tool_response><|im_end|>\\n<|im_start|>assistant\\n<answer>B</answer><|im_end|>")
        >>> completion_text([], Tok())
        '<think>a</think><tool_call>{}</tool_call><answer>B</answer>'
    """
    text = tokenizer.decode(list(token_ids), skip_special_tokens=False)
    text = _TOOL_TURN.sub("", text)
    return _SPECIAL.sub("", text)


def rollout_record(text: str, env: CodeVisionEnv | None, row: dict[str, Any]) -> Any:
    """Build a cv-rewards ``RolloutRecord`` from a completion text, its environment trace and the item labels."""
    return trace_record(text, [call.to_dict() for call in (env.trace if env is not None else [])], row)


def trace_record(text: str, calls: Sequence[dict[str, Any]], row: dict[str, Any]) -> Any:
    """Build a cv-rewards ``RolloutRecord`` from a completion text, its tool calls as ``cv_sandbox.ToolCall``
    dicts (``ToolCall.to_dict()``: the RL environment's trace, or the verl tool's, :mod:`cv_train.verl_tool`)
    and the item labels (``answer``, ``transform``, ``bbox``, ``choices``, ``task_type``, ``item_id``,
    ``question``).

    Example:
        >>> r = trace_record("<answer>A</answer>", [{"ok": True, "ops": [{"name": "rotate_90"}]}], {"answer": "A"})
        >>> r.tool_calls[0].op_names, r.gt_answer
        (['rotate_90'], 'A')
    """
    from cv_rewards import RolloutRecord, ToolCallRecord

    # cv-rewards reads ToolCall dicts as it reads agent trajectories (``ok``, ops with ``box_input`` mapped
    # into input image 0's frame).
    tool_calls = [ToolCallRecord.from_dict(call) for call in calls]
    bbox = row.get("bbox")
    return RolloutRecord(
        completion=text,
        tool_calls=tool_calls,
        transform=list(row.get("transform") or []),
        bbox=list(bbox) if bbox else None,
        gt_answer=str(row.get("answer", "")),
        choices=list(row["choices"]) if row.get("choices") else None,
        task_type=str(row.get("task_type") or "general"),
        prompt_id=str(row.get("item_id", "")),
        question=str(row.get("question") or ""),
    )


def tool_statistics(envs: Sequence[CodeVisionEnv | None]) -> dict[str, float]:
    """Per-batch tool statistics: calls per rollout, error rate, tool-call rate, recovery rate, op frequencies.

    Example:
        >>> tool_statistics([None, None])["tools/tool_call_rate"]
        0.0
    """
    n = max(len(envs), 1)
    calls = errors = used = recover_opportunities = recovered = 0
    op_counts: dict[str, int] = defaultdict(int)
    for env in envs:
        trace = env.trace if env is not None else []
        calls += len(trace)
        errors += sum(1 for c in trace if not c.ok)
        used += bool(trace)
        for i, c in enumerate(trace):
            if not c.ok:
                recover_opportunities += 1
                recovered += any(later.ok for later in trace[i + 1 :])
            for name in c.op_names:
                op_counts[name] += 1
    stats = {
        "tools/calls_per_rollout": calls / n,
        "tools/error_rate": errors / calls if calls else 0.0,
        "tools/tool_call_rate": used / n,
        "tools/recovery_rate": recovered / recover_opportunities if recover_opportunities else 0.0,
    }
    for name, count in sorted(op_counts.items()):
        stats[f"tools/op/{name}"] = count / n
    return stats


def make_process_reward(
    tokenizer: Any, *, variant: str = "paper", num_generations: int = 8, config: Any | None = None
) -> Callable[..., list[float]]:
    """The GRPO reward function: cv-rewards' TRL adapter over each rollout's decoded text and environment trace.

    Records are built here (the model-written text decoded from ``completion_ids``, the environment's trace,
    the dataset columns); grouping and ``score_group`` are cv-rewards' (:func:`cv_rewards.make_trl_reward_funcs`):
    group terms (suggested-tool necessity) use consecutive groups of ``num_generations``. TRL computes rewards
    per process before the gather, so groups must not straddle processes, which holds when
    ``per_device_train_batch_size * steps_per_generation`` is a multiple of ``num_generations``, as
    :class:`~cv_train.config.RLRecipe` enforces. Every reward component and tool statistic is logged.

    Example:
        >>> reward = make_process_reward(tokenizer, variant="paper", num_generations=8)  # doctest: +SKIP
        >>> GRPOTrainer(..., reward_funcs=[reward], environment_factory=CodeVisionEnv)  # doctest: +SKIP
    """
    from cv_rewards import ProcessRewardConfig, make_trl_reward_funcs

    cfg = config if config is not None else ProcessRewardConfig(variant=variant)

    def records_from(
        *,
        completion_ids: list[list[int]],
        environments: Sequence[CodeVisionEnv] | None = None,
        **columns: Any,
    ) -> list[Any]:
        n = len(completion_ids)
        envs = list(environments) if environments is not None else [None] * n
        rows = [
            {k: v[i] for k, v in columns.items() if isinstance(v, list) and len(v) == n} for i in range(n)
        ]
        return [
            rollout_record(completion_text(ids, tokenizer), env, row)
            for ids, env, row in zip(completion_ids, envs, rows, strict=True)
        ]

    total = make_trl_reward_funcs(
        cfg, records_from=records_from, num_generations=num_generations, components=False
    )[0]

    def codevision_reward(
        prompts: list[Any],
        completions: list[Any],
        completion_ids: list[list[int]],
        environments: Sequence[CodeVisionEnv] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        log_extra: Callable[[str, list[Any]], None] | None = None,
        **columns: Any,
    ) -> list[float]:
        n = len(completion_ids)
        breakdowns = total.breakdowns(
            prompts, completions, completion_ids=completion_ids, environments=environments, **columns
        )
        rewards = [float(b.total) if math.isfinite(b.total) else 0.0 for b in breakdowns]
        correct = [float(bool(b.correct)) for b in breakdowns]
        if log_metric is not None:
            log_metric("reward/process_total", sum(rewards) / max(n, 1))
            log_metric("reward/accuracy", sum(correct) / max(n, 1))
            for key in sorted({k for b in breakdowns for k in b.components}):
                values = [float(b.components[key]) for b in breakdowns if key in b.components]
                log_metric(f"reward/{key}", sum(values) / len(values))
            envs = list(environments) if environments is not None else [None] * n
            for key, value in tool_statistics(envs).items():
                log_metric(key, value)
        if log_extra is not None:
            log_extra("correct", correct)
            log_extra("tool_calls", [len(e.trace) for e in environments] if environments else [0] * n)
        return rewards

    return codevision_reward
