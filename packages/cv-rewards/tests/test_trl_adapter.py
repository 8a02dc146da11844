"""TRL reward-function adapter, called exactly as TRL 1.16's GRPOTrainer._calculate_rewards calls it."""

import pickle

import pytest
from cv_protocol import completion_to_text
from cv_rewards import (
    COMPONENTS,
    ProcessRewardConfig,
    RolloutRecord,
    ToolCallRecord,
    make_trl_reward_funcs,
    records_from_trl,
    score_group,
    trl_reward_weights,
)
from cv_rewards.testing import make_record


class TrainerState:  # stands in for transformers.TrainerState
    global_step = 3


class Env:
    """Stands in for an environment_factory instance that keeps the sandbox trace."""

    def __init__(self, calls: list[ToolCallRecord]) -> None:
        self.tool_calls = calls


def call_like_trl(
    funcs, inputs: list[dict], completions: list, environments=None
) -> tuple[list[list[float]], dict]:
    """Mirror of GRPOTrainer._calculate_rewards (TRL 1.16): columns repeated per completion, extra kwargs."""
    keys = [k for k in inputs[0] if k not in ("prompt", "completion", "completion_ids")]
    reward_kwargs = {k: [ex[k] for ex in inputs] for k in keys}
    reward_kwargs["trainer_state"] = TrainerState()
    logged: dict = {"extra": {}, "metric": {}}
    reward_kwargs["log_extra"] = lambda column, values: logged["extra"].setdefault(column, []).extend(values)
    reward_kwargs["log_metric"] = lambda name, value: logged["metric"].__setitem__(name, value)
    if environments is not None:
        reward_kwargs["environments"] = environments
    prompts = [ex["prompt"] for ex in inputs]
    out = []
    for f in funcs:
        rewards = f(
            prompts=prompts, completions=completions, completion_ids=[[1, 2]] * len(prompts), **reward_kwargs
        )
        assert len(rewards) == len(prompts)
        out.append(rewards)
    return out, logged


def batch(k: int = 4):
    """Two prompts x k generations: a rotate_90 item and a no-tool item, conversational completions."""
    recs = []
    for pid, transform in (("p0", ["rotate_90"]), ("p1", [])):
        for j in range(k):
            calls = [["rotate_270"]] if (transform and j % 2 == 0) else ([["contrast"]] if j == 1 else [])
            recs.append(
                make_record("7" if j < k - 1 else "8", "7", calls, transform=transform, prompt_id=pid)
            )
    inputs = [
        {
            "prompt": [{"role": "user", "content": "q"}],
            "answer": r.gt_answer,
            "transform": r.transform,
            "bbox": None,
            "prompt_id": r.prompt_id,
        }
        for r in recs
    ]
    completions = [[{"role": "assistant", "content": r.completion}] for r in recs]
    envs = [Env(r.tool_calls) for r in recs]
    return recs, inputs, completions, envs


def test_names_weights_and_components() -> None:
    funcs = make_trl_reward_funcs(num_generations=4)
    assert [f.__name__ for f in funcs] == ["cv_total"] + [f"cv_{c}" for c in COMPONENTS]
    assert trl_reward_weights(funcs) == [1.0] + [0.0] * len(COMPONENTS)
    assert [f.__name__ for f in make_trl_reward_funcs(components=False, name="codevision")] == [
        "codevision_total"
    ]
    with pytest.raises(ValueError, match="unknown components"):
        make_trl_reward_funcs(components=["speed"])
    with pytest.raises(ValueError, match="num_generations"):
        make_trl_reward_funcs(num_generations=0)


def test_matches_score_group_per_consecutive_group() -> None:
    recs, inputs, completions, envs = batch()
    funcs = make_trl_reward_funcs(num_generations=4)
    out, logged = call_like_trl(funcs, inputs, completions, envs)
    expected = score_group(recs[:4]) + score_group(recs[4:])
    assert out[0] == pytest.approx([b.total for b in expected])
    for f, rewards in zip(funcs[1:], out[1:], strict=True):
        assert rewards == pytest.approx([b.components[f.component] for b in expected])
    # Components sum to the total, so weights [1, 0, ...] or [0, 1, 1, ...] give the same reward.
    assert [sum(col) for col in zip(*out[1:], strict=True)] == pytest.approx(out[0])
    assert logged["extra"]["match_method"] == ["numeric"] * 8
    assert logged["metric"]["tool_call_rate"] == pytest.approx(4 / 8)


def test_group_term_uses_num_generations_groups() -> None:
    # p1 has one correct contrast rollout and 2/3 correct plain ones: no necessity; regroup -> different.
    recs, inputs, completions, envs = batch()
    funcs = make_trl_reward_funcs(num_generations=4, components=["emergent"])
    out, _ = call_like_trl(funcs, inputs, completions, envs)
    assert out[1] == pytest.approx(
        [b.components["emergent"] for b in score_group(recs[:4]) + score_group(recs[4:])]
    )
    with pytest.raises(ValueError, match="whole number of groups"):
        call_like_trl(make_trl_reward_funcs(num_generations=3), inputs, completions, envs)


def test_group_by_prompt_id_without_num_generations() -> None:
    recs, inputs, completions, envs = batch()
    out, _ = call_like_trl(make_trl_reward_funcs(components=False), inputs, completions, envs)
    assert out[0] == pytest.approx([b.total for b in score_group(recs[:4]) + score_group(recs[4:])])
    for ex in inputs:
        del ex["prompt_id"]
    with pytest.raises(ValueError, match="pass num_generations"):
        call_like_trl(make_trl_reward_funcs(components=False), inputs, completions, envs)


def test_batch_is_scored_once_for_all_functions() -> None:
    recs, inputs, completions, envs = batch()
    calls = []

    def counting(**kwargs) -> list[RolloutRecord]:
        calls.append(1)
        return records_from_trl(**kwargs)

    funcs = make_trl_reward_funcs(records_from=counting, num_generations=4)
    call_like_trl(funcs, inputs, completions, envs)
    assert len(calls) == 1
    call_like_trl(funcs, inputs, list(completions), envs)  # a new batch (new list) is scored again
    assert len(calls) == 2


def test_custom_records_from_receives_trl_kwargs() -> None:
    seen = {}

    def records_from(
        *, prompts, completions, completion_ids, trainer_state, **columns
    ) -> list[RolloutRecord]:
        seen.update(columns)
        seen["step"] = trainer_state.global_step
        return [
            RolloutRecord(completion_to_text(c), [], [], None, a)
            for c, a in zip(completions, columns["answer"], strict=True)
        ]

    funcs = make_trl_reward_funcs(records_from=records_from, num_generations=2, components=False)
    out, _ = call_like_trl(
        funcs,
        [{"prompt": "q", "answer": "4"}] * 2,
        ["<think>a</think><answer>4</answer>", "<answer>5</answer>"],
    )
    assert out[0] == pytest.approx([1.1, 0.0])
    assert seen["step"] == 3 and seen["answer"] == ["4", "4"] and callable(seen["log_metric"])


def test_records_from_trl_columns_and_tool_sources() -> None:
    completions = [
        "<think>a</think><tool_call>{}</tool_call><tool_response>ok</tool_response><answer>B</answer>"
    ]
    agent_like = [{"ok": True, "ops": [{"name": "crop", "box_input": [0, 0, 10, 10]}], "error": None}]
    recs = records_from_trl(
        completions=completions,
        gt_answer=["B"],
        transform=[["crop"]],
        bbox=[[0, 0, 10, 10]],
        choices=[["a", "b"]],
        task_type=["ocr"],
        id=["item-1"],
        question=["q?"],
        tool_calls=[agent_like],
    )
    r = recs[0]
    assert (r.gt_answer, r.transform, r.bbox, r.choices, r.task_type, r.prompt_id, r.question) == (
        "B",
        ["crop"],
        [0.0, 0.0, 10.0, 10.0],
        ["a", "b"],
        "ocr",
        "item-1",
        "q?",
    )
    assert r.tool_calls[0].ops[0].box == (0.0, 0.0, 10.0, 10.0)
    # A rollout that called tools with no trace available must not be scored as tool-free.
    with pytest.raises(ValueError, match="no trace is available"):
        records_from_trl(completions=completions, answer=["B"])
    with pytest.raises(ValueError, match="ground-truth column"):
        records_from_trl(completions=["x"], transform=[[]])
    with pytest.raises(ValueError, match="has 2 values for 1"):
        records_from_trl(completions=["x"], answer=["a", "b"])
    with pytest.raises(ValueError, match="neither tool_call_records"):
        records_from_trl(completions=["x"], answer=["a"], environments=[object()])


def test_environment_with_tool_call_records_method_and_objects() -> None:
    class AgentToolCall:  # attribute-style, like cv_agent.ToolCall without to_dict
        ok = True
        ops = [{"name": "rotate_270", "box_input": None}]
        error = None

    class EnvWithMethod:
        def tool_call_records(self):
            return [AgentToolCall()]

    recs = records_from_trl(completions=["<answer>1</answer>"], answer=["1"], environments=[EnvWithMethod()])
    assert recs[0].tool_calls[0].op_names == ["rotate_270"]


def test_reference_variant_and_pickling() -> None:
    recs, inputs, completions, envs = batch()
    funcs = make_trl_reward_funcs(
        ProcessRewardConfig(variant="reference"), num_generations=4, components=["emergent"]
    )
    funcs = pickle.loads(pickle.dumps(funcs))
    assert funcs[0].__name__ == "cv_total"
    out, _ = call_like_trl(funcs, inputs, completions, envs)
    assert out[1] == pytest.approx(
        [
            0.2 if (r.tool_calls and r.tool_calls[0].op_names == ["contrast"] and i % 4 < 3) else 0.0
            for i, r in enumerate(recs)
        ]
    )


def test_breakdowns_are_the_scored_batch_behind_the_totals() -> None:
    recs, inputs, completions, envs = batch()
    total = make_trl_reward_funcs(num_generations=4, components=False)[0]
    out, _ = call_like_trl([total], inputs, completions, envs)
    keys = [k for k in inputs[0] if k not in ("prompt", "completion", "completion_ids")]
    kwargs = {k: [ex[k] for ex in inputs] for k in keys}
    got = total.breakdowns([ex["prompt"] for ex in inputs], completions, environments=envs, **kwargs)
    expected = score_group(recs[:4]) + score_group(recs[4:])
    assert [b.total for b in got] == pytest.approx(out[0])
    assert [b.total for b in got] == pytest.approx([b.total for b in expected])
    assert [b.components for b in got] == [b.components for b in expected]
