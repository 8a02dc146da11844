"""The loop: stop reasons, tool messages, image budget, lineage boxes, resume, concurrency, failures."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from cv_agent import Agent, AgentConfig, Trajectory, load_trajectories, run_episodes, save_trajectories
from cv_agent.backends import Generation
from cv_agent.testing import ScriptedPolicy
from cv_protocol import SYSTEM_PROMPT, render_tool_call
from cv_sandbox import Sandbox
from PIL import Image

from ._fakes import FakeSandbox

ANSWER = "<think>Now I can read it.</think>\n<answer>B</answer>"


def call(code: str, index: int = 0, desc: str = "step") -> str:
    return "<think>Fix the image.</think>\n" + render_tool_call(code, desc, index)


def gradient(w: int = 200, h: int = 100) -> Image.Image:
    x = np.linspace(0, 255, w, dtype=np.uint8)[None, :].repeat(h, 0)
    return Image.fromarray(np.stack([x, x[::-1, ::-1], np.full_like(x, 90)], -1))


def agent_with(replies, **cfg) -> tuple[Agent, FakeSandbox]:
    sb = FakeSandbox()
    return Agent(ScriptedPolicy(replies), AgentConfig(**cfg), sandbox=sb), sb  # type: ignore[arg-type]


async def test_answer_after_tool_calls_and_lineage_boxes() -> None:
    agent, sb = agent_with([call("rotate90"), call("crop 10 20 50 80", 1), ANSWER])
    traj = await agent.arun(gradient(200, 100), "What is written?", item_id="q1")
    assert traj.stop_reason == "answer" and traj.answer == "B" and traj.turns == 3
    assert [m["role"] for m in traj.messages] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
    ]
    assert traj.messages[0]["content"] == SYSTEM_PROMPT
    assert [im.size for im in traj.images] == [(200, 100), (100, 200), (40, 60)]
    assert traj.image_parents == [None, 0, 1]
    c0, c1 = traj.tool_calls
    assert c0.ok and c0.output_index == 1 and c0.op_names == ["rotate_90"]
    # crop (10,20)-(50,80) in the rotated image = (120,10)-(180,50) in the input image
    assert c1.ops[0]["box"] == [10, 20, 50, 80]
    assert c1.ops[0]["box_input"] == [120.0, 10.0, 180.0, 50.0]
    assert traj.crop_boxes_input() == [(120.0, 10.0, 180.0, 50.0)]
    # the rotated image's region really is the crop: check pixels
    assert np.array_equal(
        np.array(traj.images[0].crop((120, 10, 180, 50)).rotate(90, expand=True)), np.array(traj.images[2])
    )
    tool_msg = traj.messages[3]["content"]
    assert tool_msg[0] == {"type": "image", "image_index": 1}
    assert "image 1 (100x200 pixels)" in tool_msg[1]["text"]
    assert sb.calls == [("rotate90", 0, 1), ("crop 10 20 50 80", 1, 2)]
    assert traj.final_text.endswith("<answer>B</answer>")
    assert "<tool_response>" in traj.completion_text()


async def test_untrackable_link_gives_no_box_input() -> None:
    agent, _ = agent_with([call("untracked"), call("crop 0 0 10 10", 1), ANSWER])
    traj = await agent.arun(gradient(), "q")
    assert traj.tool_calls[1].ops[0]["box"] == [0, 0, 10, 10]
    assert traj.tool_calls[1].ops[0]["box_input"] is None


async def test_errors_are_reported_to_the_model_and_recovered() -> None:
    agent, _ = agent_with(
        [
            call("fail"),
            "<tool_call>{broken</tool_call>",
            call("rotate90", 7),
            call("raise"),
            call("rotate90"),
            ANSWER,
        ]
    )
    traj = await agent.arun(gradient(), "q")
    assert traj.stop_reason == "answer"
    kinds = [c.error_kind for c in traj.tool_calls]
    assert kinds == ["exception", "parse", "bad_index", "crash", None]
    tool_texts = [m["content"][-1]["text"] for m in traj.messages if m["role"] == "tool"]
    assert "NameError" in tool_texts[0] and "fix the code" in tool_texts[0]
    assert tool_texts[1].startswith("Tool call error:") and "<tool_call>" in tool_texts[1]
    assert "valid indices are 0..0" in tool_texts[2]
    assert "worker died" in tool_texts[3]
    assert traj.tool_calls[-1].output_index == 1  # failed calls produce no image index


@pytest.mark.parametrize(
    ("replies", "cfg", "reason", "turns"),
    [
        ([ANSWER], {}, "answer", 1),
        (["I think it is B."], {}, "no_tool_call", 1),
        ([call("rotate90")], {"max_turns": 3}, "max_turns", 3),
        ([Generation(call("rotate90"), completion_tokens=400)], {"token_budget": 1000}, "token_budget", 3),
    ],
)
async def test_stop_reasons(replies, cfg, reason, turns) -> None:
    agent, _ = agent_with(replies, **cfg)
    traj = await agent.arun(gradient(), "q")
    assert traj.stop_reason == reason and traj.turns == turns
    if reason != "answer":
        assert traj.answer is None


async def test_token_budget_caps_last_turn() -> None:
    seen: list[int | None] = []

    class Rec(ScriptedPolicy):
        async def complete(self, messages, images, *, max_new_tokens=None, temperature=None, tools=None):
            seen.append(max_new_tokens)
            return await super().complete(
                messages, images, max_new_tokens=max_new_tokens, temperature=temperature
            )

    agent = Agent(
        Rec([Generation(call("rotate90"), completion_tokens=700)]),
        AgentConfig(token_budget=1000, max_new_tokens=800),
        sandbox=FakeSandbox(),
    )  # type: ignore[arg-type]
    traj = await agent.arun(gradient(), "q")
    assert (
        seen == [800, 300] and traj.stop_reason == "token_budget" and traj.usage["completion_tokens"] == 1400
    )


async def test_backend_failure_is_recorded_not_raised() -> None:
    agent = Agent(ScriptedPolicy([call("rotate90"), ANSWER], fail_on_turns=[1]), sandbox=FakeSandbox())  # type: ignore[arg-type]
    traj = await agent.arun(gradient(), "q")
    assert traj.stop_reason == "error" and "scripted failure on turn 1" in traj.error
    assert traj.turns == 1 and len(traj.tool_calls) == 1


async def test_multiple_calls_first_executed_and_model_told() -> None:
    agent, sb = agent_with([call("rotate90") + call("fail"), ANSWER])
    traj = await agent.arun(gradient(), "q")
    assert len(sb.calls) == 1
    assert "only the first was executed" in traj.messages[3]["content"][-1]["text"]


async def test_model_images_respect_pixel_budget_and_originals_stay_full_res() -> None:
    policy = ScriptedPolicy([call("rotate90"), ANSWER])
    agent = Agent(policy, AgentConfig(max_pixels=64 * 28 * 28, min_pixels=4 * 28 * 28), sandbox=FakeSandbox())  # type: ignore[arg-type]
    traj = await agent.arun(gradient(1000, 700), "q")
    assert [im.size for im in traj.images] == [(1000, 700), (700, 1000)]
    for w, h in traj.model_image_sizes:
        assert w % 28 == 0 and h % 28 == 0 and 4 * 28 * 28 <= w * h <= 64 * 28 * 28
    assert policy.calls[1]["image_sizes"] == traj.model_image_sizes


async def test_max_images_limit() -> None:
    agent, _ = agent_with([call("rotate90"), call("rotate90"), ANSWER], max_images=2)
    traj = await agent.arun(gradient(), "q")
    assert [c.ok for c in traj.tool_calls] == [True, False]
    assert "limit" in traj.tool_calls[1].error and len(traj.images) == 2


async def test_multiple_input_images_and_paths(tmp_path: Path) -> None:
    p = tmp_path / "b.png"
    gradient(50, 40).save(p)
    agent, sb = agent_with([call("crop 0 0 10 10", 1), ANSWER])
    traj = await agent.arun([gradient(), str(p)], "compare")
    assert traj.n_input_images == 2 and traj.messages[1]["content"][:2] == [
        {"type": "image", "image_index": 0},
        {"type": "image", "image_index": 1},
    ]
    assert traj.tool_calls[0].output_index == 2
    assert traj.tool_calls[0].ops[0]["box_input"] is None  # image 1 is not in image 0's frame


def test_config_validation_messages() -> None:
    with pytest.raises(ValueError, match="max_turns"):
        AgentConfig(max_turns=0)
    with pytest.raises(ValueError, match="min_pixels"):
        AgentConfig(min_pixels=10, max_pixels=5)
    with pytest.raises(ValueError, match="at least one"):
        Agent(ScriptedPolicy([ANSWER])).run([], "q")


def test_sync_run_with_real_sandbox() -> None:
    with Sandbox() as sb:
        agent = Agent(ScriptedPolicy([call("result = image.rotate(90, expand=True)"), ANSWER]), sandbox=sb)
        traj = agent.run(gradient(200, 100), "q", item_id="sync")
    assert traj.stop_reason == "answer" and traj.images[1].size == (100, 200)
    assert np.array_equal(np.array(traj.images[1]), np.array(gradient(200, 100).rotate(90, expand=True)))


def _policy_fn(messages):
    turn = sum(m["role"] == "assistant" for m in messages)
    n_images = sum(
        1
        for m in messages
        if isinstance(m["content"], list)
        for p in m["content"]
        if p.get("type") == "image"
    )
    script = [call("rotate90"), call(f"crop 5 5 {30 + n_images} 40", 1), call("fail"), ANSWER]
    return script[min(turn, 3)]


async def test_resume_from_jsonl_continues_identically(tmp_path: Path) -> None:
    full = await Agent(ScriptedPolicy(_policy_fn), AgentConfig(max_turns=12), sandbox=FakeSandbox()).arun(
        gradient(), "q", item_id="a", meta={"k": 1}
    )  # type: ignore[arg-type]
    part = await Agent(ScriptedPolicy(_policy_fn), AgentConfig(max_turns=2), sandbox=FakeSandbox()).arun(
        gradient(), "q", item_id="a", meta={"k": 1}
    )  # type: ignore[arg-type]
    assert part.stop_reason == "max_turns" and part.turns == 2
    part.save(tmp_path)
    loaded = Trajectory.load(tmp_path, item_id="a")
    assert loaded.to_dict(image_paths=[])["messages"] == part.to_dict(image_paths=[])["messages"]
    resumed = await Agent(
        ScriptedPolicy(_policy_fn), AgentConfig(max_turns=12), sandbox=FakeSandbox()
    ).acontinue(loaded)  # type: ignore[arg-type]
    a, b = resumed.to_dict(), full.to_dict()
    for d in (a, b):
        d.pop("timings")
    assert a == b
    assert all(
        np.array_equal(np.array(x), np.array(y)) for x, y in zip(resumed.images, full.images, strict=True)
    )
    # a finished trajectory is returned unchanged
    assert (await Agent(ScriptedPolicy([call("rotate90")])).acontinue(resumed)) is resumed


async def test_save_load_many(tmp_path: Path) -> None:
    agent, _ = agent_with([call("rotate90"), ANSWER])
    trajs = [await agent.arun(gradient(), f"q{i}", item_id=f"i{i}") for i in range(3)]
    assert save_trajectories(trajs[:2], tmp_path) == [0, 1]
    assert trajs[2].save(tmp_path) == 2
    back = load_trajectories(tmp_path)
    assert [t.item_id for t in back] == ["i0", "i1", "i2"]
    assert back[1].images[1].size == (100, 200) and back[1].tool_calls[0].op_names == ["rotate_90"]
    assert (tmp_path / "images" / "000002" / "1.png").is_file()
    with pytest.raises(ValueError, match="item_id"):
        Trajectory.load(tmp_path)
    (tmp_path / "images" / "000000" / "0.png").unlink()
    with pytest.raises(FileNotFoundError, match="missing image"):
        load_trajectories(tmp_path)


async def test_run_episodes_concurrent_ordered_and_failures_captured() -> None:
    policy = ScriptedPolicy([call("rotate90"), ANSWER], latency_s=0.05)
    agent = Agent(policy, sandbox=FakeSandbox())  # type: ignore[arg-type]
    done: list[str] = []
    eps = [(gradient(), f"q{i}", f"id{i}") for i in range(40)] + [([], "bad", "broken")]
    t0 = time.perf_counter()
    trajs = await run_episodes(
        agent, eps, concurrency=64, progress=False, on_done=lambda t: done.append(t.item_id)
    )
    elapsed = time.perf_counter() - t0
    assert [t.item_id for t in trajs] == [f"id{i}" for i in range(40)] + ["broken"]
    assert all(t.stop_reason == "answer" for t in trajs[:40])
    assert trajs[-1].stop_reason == "error" and "at least one" in trajs[-1].error
    assert sorted(done) == sorted(t.item_id for t in trajs)
    assert elapsed < 1.0  # 40 episodes x 2 turns x 50 ms overlap instead of taking 4 s


async def test_run_episodes_respects_concurrency() -> None:
    active = peak = 0

    class Probe(ScriptedPolicy):
        async def complete(self, messages, images, **kw):
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.01)
            active -= 1
            return await super().complete(messages, images, **kw)

    agent = Agent(Probe([ANSWER]), sandbox=FakeSandbox())  # type: ignore[arg-type]
    await run_episodes(agent, [(gradient(), "q")] * 20, concurrency=5, progress=False)
    assert peak == 5


def test_box_input_with_the_real_sandbox_trace() -> None:
    replies = [
        call("result = image.rotate(90, expand=True)"),
        call("result = image.crop((10, 20, 50, 80))", 1),
        ANSWER,
    ]
    with Sandbox() as sb:
        traj = Agent(ScriptedPolicy(replies), sandbox=sb).run(gradient(200, 100), "q")
    assert traj.stop_reason == "answer"
    assert traj.tool_calls[0].op_names == ["rotate_90"]
    crop = traj.tool_calls[1].ops[0]
    assert crop["name"] == "crop" and crop["box"] == [10, 20, 50, 80]
    assert crop["box_input"] == [120.0, 10.0, 180.0, 50.0]  # same frame convention as the fake
    assert np.array_equal(
        np.array(traj.images[0].crop((120, 10, 180, 50)).rotate(90, expand=True)), np.array(traj.images[2])
    )


async def test_the_preset_decides_what_the_model_is_shown() -> None:
    from cv_protocol import TOOL_SCHEMA

    policy = ScriptedPolicy([ANSWER])
    traj = await Agent(policy, sandbox=FakeSandbox()).arun(gradient(), "q")  # type: ignore[arg-type]
    assert traj.messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert policy.calls[0]["tools"] == [TOOL_SCHEMA]
    with pytest.raises(ValueError, match=r"unknown preset 'nope'; choose one of \['default'"):
        AgentConfig(preset="nope")
    custom = await Agent(ScriptedPolicy([ANSWER]), AgentConfig(system_prompt=""), sandbox=FakeSandbox()).arun(  # type: ignore[arg-type]
        gradient(), "q"
    )
    assert custom.messages[0]["role"] == "user"


async def test_no_tools_is_one_reply_without_tool_schema_or_tool_prompt() -> None:
    from cv_protocol import DEFAULT_PRESET

    for reply, stop, answer in [
        (ANSWER, "answer", "B"),
        (call("rotate90"), "tools_disabled", None),
        ("<think>hmm</think>", "no_tool_call", None),
    ]:
        policy = ScriptedPolicy([reply, ANSWER])
        sb = FakeSandbox()
        traj = await Agent(policy, AgentConfig(tools=False), sandbox=sb).arun(gradient(), "q")  # type: ignore[arg-type]
        assert (traj.stop_reason, traj.answer, traj.turns) == (stop, answer, 1)
        assert traj.messages[0]["content"] == DEFAULT_PRESET.no_tool_prompt and policy.calls[0]["tools"] == []
        assert not traj.tool_calls and len(traj.images) == 1


async def test_unreadable_reply_is_answered_with_a_parse_error_and_the_episode_goes_on() -> None:
    agent, _ = agent_with(
        [Generation("", unreadable="HTTP 500 from the server: Internal Server Error"), ANSWER]
    )
    traj = await agent.arun(gradient(), "q")
    assert traj.stop_reason == "answer" and traj.answer == "B" and traj.turns == 2
    (c,) = traj.tool_calls
    assert (c.ok, c.error_kind, c.turn) == (False, "unreadable", 0)
    tool = traj.messages[3]
    assert tool["role"] == "tool" and "could not return your reply (HTTP 500" in tool["content"][0]["text"]
