"""The GRPO reward: cv-rewards' process reward over environment traces, grouped per prompt, fully logged."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv_rewards
import cv_rewards.trl_adapter
import pytest
from cv_agent import ToolCall
from cv_protocol import extract_answer
from cv_train.env import CodeVisionEnv
from cv_train.rewards import completion_text, make_process_reward, rollout_record, tool_statistics
from PIL import Image


@pytest.fixture(scope="module")
def tokenizer(runs_root: Path) -> Any:
    from cv_train.config import tiny_rl_recipe
    from cv_train.models import resolve_model_path
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(
        resolve_model_path(tiny_rl_recipe(output_dir=str(runs_root / "rw")))
    ).tokenizer


def call(ok: bool, *ops: tuple[str, list[float] | None], error: str | None = None) -> ToolCall:
    """A cv_agent.ToolCall as CodeVisionEnv records it (crop boxes mapped into image 0 as box_input)."""
    return ToolCall(
        turn=0,
        code="c",
        ok=ok,
        error=error,
        output_index=1 if ok else None,
        ops=[{"name": name, "box": box, "box_input": box, "params": {}} for name, box in ops],
    )


def env_with(trace: list[ToolCall]) -> CodeVisionEnv:
    env = CodeVisionEnv(sandbox=object())
    env.reset(images=[Image.new("RGB", (8, 8))])
    env.trace = trace
    return env


CALL = '<tool_call>\n{"name": "code_image_tool", "arguments": {"code": "result = image.rotate(90, expand=True)", "description": "d", "image_index": 0}}\n</tool_call>'


def test_completion_text_drops_tool_turns(tokenizer: Any) -> None:
    turn1 = "<think>rotated</think>\n" + CALL
    turn2 = "<think>upright</think>\n<answer>K</answer>"
    # The token layout GRPO builds: completion, tool suffix (masked), next completion.
    rendered = (
        turn1 + "<|im_end|>\n<|im_start|>user\n<tool_response>\n<|vision_start|><|image_pad|><|vision_end|>"
        "Execution succeeded. The result is image 1 (8x8 pixels).\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n" + turn2 + "<|im_end|>"
    )
    ids = tokenizer.encode(rendered, add_special_tokens=False)
    text = completion_text(ids, tokenizer)
    assert text == turn1 + turn2
    assert extract_answer(text) == "K"


def test_rollout_record_from_trace() -> None:
    trace = [call(False, error="NameError"), call(True, ("rotate_270", None), ("crop", [1.0, 2.0, 3.0, 4.0]))]
    rec = rollout_record(
        "<think>x</think><answer>A</answer>",
        env_with(trace),
        {
            "answer": "A",
            "transform": ["rotate_90", "crop"],
            "bbox": [0, 0, 4, 4],
            "item_id": "p1",
            "task_type": "ocr",
            "question": "q",
        },
    )
    assert [c.success for c in rec.tool_calls] == [False, True]
    assert [(o.name, o.box) for o in rec.tool_calls[1].ops] == [
        ("rotate_270", None),
        ("crop", (1.0, 2.0, 3.0, 4.0)),
    ]
    assert rec.prompt_id == "p1" and rec.gt_answer == "A" and rec.bbox == [0.0, 0.0, 4.0, 4.0]


def test_tool_statistics() -> None:
    envs = [
        env_with([call(False, error="e"), call(True, ("rotate_90", None))]),
        env_with([]),
        None,
        env_with([call(True, ("crop", None), ("contrast", None))]),
    ]
    s = tool_statistics(envs)
    assert s["tools/calls_per_rollout"] == 3 / 4 and s["tools/tool_call_rate"] == 2 / 4
    assert s["tools/error_rate"] == pytest.approx(1 / 3) and s["tools/recovery_rate"] == 1.0
    assert s["tools/op/rotate_90"] == s["tools/op/crop"] == s["tools/op/contrast"] == 1 / 4


def test_process_reward_groups_per_prompt_and_logs_everything(
    tokenizer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups: list[list[str]] = []
    real = cv_rewards.trl_adapter.score_group

    def spy(records: list[Any], config: Any, **kwargs: Any) -> Any:
        groups.append([r.prompt_id for r in records])
        return real(records, config, **kwargs)

    # Grouping and scoring are cv-rewards' TRL adapter's; spy where it calls score_group.
    monkeypatch.setattr(cv_rewards.trl_adapter, "score_group", spy)
    reward = make_process_reward(tokenizer, variant="paper", num_generations=2)
    right = "<think>it is rotated</think>\n" + CALL + "<think>upright</think>\n<answer>K</answer><|im_end|>"
    wrong = "<think>looks fine</think>\n<answer>Z</answer><|im_end|>"
    ok_call = [call(True, ("rotate_270", None))]
    envs = [env_with(ok_call), env_with([]), env_with(ok_call), env_with([])]
    metrics: dict[str, float] = {}
    extra: dict[str, list[Any]] = {}
    rewards = reward(
        prompts=[[]] * 4,
        completions=[[]] * 4,
        completion_ids=[tokenizer.encode(t, add_special_tokens=False) for t in (right, wrong, right, wrong)],
        environments=envs,
        log_metric=lambda k, v: metrics.__setitem__(k, v),
        log_extra=lambda k, v: extra.__setitem__(k, v),
        answer=["K", "K", "K", "K"],
        transform=[["rotate_90"]] * 4,
        bbox=[None] * 4,
        choices=[None] * 4,
        task_type=["ocr"] * 4,
        item_id=["a", "a", "b", "b"],
        question=["q"] * 4,
        trainer_state=None,
    )
    assert groups == [["a", "a"], ["b", "b"]]
    assert len(rewards) == 4 and all(math.isfinite(r) for r in rewards)
    assert rewards[0] > rewards[1] and rewards[0] == pytest.approx(rewards[2])
    assert metrics["reward/accuracy"] == 0.5 and metrics["tools/tool_call_rate"] == 0.5
    assert metrics["reward/process_total"] == pytest.approx(sum(rewards) / 4)
    component_keys = {k for k in metrics if k.startswith("reward/")} - {
        "reward/process_total",
        "reward/accuracy",
    }
    assert component_keys  # every cv-rewards component is logged
    assert extra["correct"] == [1.0, 0.0, 1.0, 0.0] and extra["tool_calls"] == [1, 0, 1, 0]
