"""GRPO reward: cv-rewards' dense process reward over each rollout's environment trace, with full logging."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from .env import CodeVisionEnv

_TOOL_TURN = re.compile(
    r"<\|im_start\|>(?:user|tool)\n<tool_response>.*?</tool_response><\|im_end\|>\n?", re.DOTALL
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
    from cv_rewards import RolloutRecord, ToolCallRecord

    # The trace holds cv_agent.ToolCall records: cv-rewards reads them as it reads agent trajectories
    # (``ok``, ops with ``box_input`` mapped into input image 0's frame).
    calls = [ToolCallRecord.from_dict(call.to_dict()) for call in (env.trace if env is not None else [])]
    bbox = row.get("bbox")
    return RolloutRecord(
        completion=text,
        tool_calls=calls,
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


def _groups(item_ids: Sequence[str] | None, size: int, group_size: int) -> list[list[int]]:
    """Index groups: consecutive rollouts of one prompt, at most ``group_size`` long.

    TRL's sampler emits the ``num_generations`` rollouts of a prompt consecutively; splitting on the item id
    *and* the group size keeps two draws of the same item in one batch as two groups.

    Example:
        >>> _groups(["a", "a", "a", "a", "b", "b"], 6, 2)
        [[0, 1], [2, 3], [4, 5]]
    """
    if item_ids is None:
        return [list(range(i, min(i + group_size, size))) for i in range(0, size, group_size)]
    groups: list[list[int]] = []
    for i, pid in enumerate(item_ids):
        if groups and len(groups[-1]) < group_size and item_ids[groups[-1][0]] == pid:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def make_process_reward(
    tokenizer: Any, *, variant: str = "paper", num_generations: int = 8, config: Any | None = None
) -> Callable[..., list[float]]:
    """The GRPO reward function: cv-rewards ``score_group`` over the rollouts of each prompt.

    TRL passes the per-rollout environments (``environments=``), the dataset columns and ``log_metric``; group
    terms (suggested-tool necessity) are computed over the rollouts of one prompt present in this process
    (TRL computes rewards per process before the gather: groups must not straddle processes, which holds when
    ``per_device_train_batch_size * steps_per_generation`` is a multiple of ``num_generations``, as
    :class:`~cv_train.config.RLRecipe` enforces). Every reward component and tool statistic is logged.

    Example:
        >>> reward = make_process_reward(tokenizer, variant="paper", num_generations=8)  # doctest: +SKIP
        >>> GRPOTrainer(..., reward_funcs=[reward], environment_factory=CodeVisionEnv)  # doctest: +SKIP
    """
    from cv_rewards import ProcessRewardConfig, score_group

    cfg = config if config is not None else ProcessRewardConfig(variant=variant)

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
        envs: list[CodeVisionEnv | None] = list(environments) if environments is not None else [None] * n
        rows = [
            {k: v[i] for k, v in columns.items() if isinstance(v, list) and len(v) == n} for i in range(n)
        ]
        records = [
            rollout_record(completion_text(ids, tokenizer), env, row)
            for ids, env, row in zip(completion_ids, envs, rows, strict=True)
        ]
        rewards: list[float] = [0.0] * n
        components: dict[str, list[float]] = defaultdict(list)
        correct = [0.0] * n
        for group in _groups(columns.get("item_id"), n, num_generations):
            breakdowns = score_group([records[i] for i in group], cfg)
            for i, b in zip(group, breakdowns, strict=True):
                total = float(b.total)
                rewards[i] = total if math.isfinite(total) else 0.0
                correct[i] = float(bool(b.correct))
                for key, value in b.components.items():
                    components[key].append(float(value))
        if log_metric is not None:
            log_metric("reward/process_total", sum(rewards) / max(n, 1))
            log_metric("reward/accuracy", sum(correct) / max(n, 1))
            for key, values in sorted(components.items()):
                log_metric(f"reward/{key}", sum(values) / len(values))
            for key, value in tool_statistics(envs).items():
                log_metric(key, value)
        if log_extra is not None:
            log_extra("correct", correct)
            log_extra("tool_calls", [len(e.trace) if e is not None else 0 for e in envs])
        return rewards

    return codevision_reward
