"""One preset decides what the agent shows the model: system prompt, tool schema, tool texts, code limit."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from cv_agent import Agent, AgentConfig, call_notes
from cv_agent.backends import Generation
from cv_agent.backends.base import ModelBackend, takes_tools
from cv_agent.testing import ScriptedPolicy
from cv_protocol import DEFAULT_PRESET, RELEASE_PRESET, parse_tool_calls, render_tool_call
from PIL import Image

from ._fakes import FakeSandbox

# verl/tools/code_image_tool.py (CodeVision release @ e098588), line 460's sentence after a tool result.
NEXT = (
    "Please keep thinking step-by-step inside the <think></think> tags to determine the next action. "
    "If additional tools are required, call them inside the <tool_calls></tool_calls> tags. "
    "Otherwise, provide your final answer within the <answer></answer> tags."
)
RELEASE_OK = "Here is the processed image. Now, analyze the returned results. " + NEXT
ANSWER = "<think>done</think>\n<answer>B</answer>"


def _call(code: str, index: int = 0) -> str:
    return "<think>fix</think>\n" + render_tool_call(code, "step", index)


def _text(message: dict) -> str:
    c = message["content"]
    return c if isinstance(c, str) else "".join(p.get("text", "") for p in c)


async def test_release_episode_shows_the_release_texts() -> None:
    replies = [
        _call("rotate90") * 2,  # two calls: the release runs the first, silently
        "<think>x</think>\n<tool_call>\n{oops\n</tool_call>",  # unreadable
        _call("crop 0 0 4 4".ljust(2049)),  # over the release's 2,048-character limit
        _call("rotate90", 5),  # no image 5
        ANSWER,
    ]
    policy, sb = ScriptedPolicy(replies), FakeSandbox()
    traj = await Agent(policy, AgentConfig(preset="release"), sandbox=sb).arun(
        Image.new("RGB", (64, 32)), "q"
    )
    assert traj.stop_reason == "answer"
    assert traj.messages[0] == {"role": "system", "content": RELEASE_PRESET.system_prompt}
    # every turn's prompt carried the release's tool schema
    assert [c["tools"] for c in policy.calls] == [[RELEASE_PRESET.tool_schema()]] * 5
    tools = [m for m in traj.messages if m["role"] == "tool"]
    assert _text(tools[0]) == RELEASE_OK and tools[0]["content"][0] == {"type": "image", "image_index": 1}
    assert _text(tools[1]).startswith("Error when executing tool: ")
    assert (
        _text(tools[2])
        == "Error: Code validation failed: Code too long. Maximum allowed length: 2048. " + NEXT
    )
    assert _text(tools[3]) == "Error: image_index 5 is out of range. Available images: 0 to 1. " + NEXT
    assert [c[0] for c in sb.calls] == ["rotate90"]  # the long code never reached the sandbox
    assert [c.error_kind for c in traj.tool_calls] == [None, "parse", "code_too_long", "bad_index"]


async def test_default_preset_is_what_the_agent_always_showed() -> None:
    policy = ScriptedPolicy([_call("rotate90") * 2, ANSWER])
    traj = await Agent(policy, sandbox=FakeSandbox()).arun(Image.new("RGB", (64, 32)), "q")  # type: ignore[arg-type]
    assert traj.messages[0]["content"] == DEFAULT_PRESET.system_prompt
    assert policy.calls[0]["tools"] == [DEFAULT_PRESET.tool_schema()]
    assert _text(traj.messages[3]) == (
        "Execution succeeded. The result is image 1 (32x64 pixels).\n"
        "Note: your reply contained 2 tool calls; only the first was executed."
    )
    assert AgentConfig().preset is DEFAULT_PRESET


async def test_system_prompt_override_and_a_preset_without_the_tool_block() -> None:
    minimal = dataclasses.replace(
        DEFAULT_PRESET, name="minimal", system_prompt="Fix it.", tools_in_prompt=False
    )
    policy = ScriptedPolicy([ANSWER])
    traj = await Agent(policy, AgentConfig(preset=minimal)).arun(Image.new("RGB", (8, 8)), "q")
    assert traj.messages[0]["content"] == "Fix it." and policy.calls[0]["tools"] == []
    traj = await Agent(policy, AgentConfig(preset="release", system_prompt="")).arun(
        Image.new("RGB", (8, 8)), "q"
    )
    assert traj.messages[0]["role"] == "user"
    traj = await Agent(policy, AgentConfig(system_prompt="Mine.")).arun(Image.new("RGB", (8, 8)), "q")
    assert traj.messages[0]["content"] == "Mine."


def test_unknown_preset_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"unknown preset 'relase'; choose one of \[.*'release'.*\]"):
        AgentConfig(preset="relase")


async def test_backends_written_before_presets_still_work() -> None:
    class Old(ModelBackend):
        async def generate(self, messages, images, *, max_new_tokens=None, temperature=None):
            return ANSWER

    class OldComplete(ModelBackend):
        async def complete(self, messages, images, *, max_new_tokens=None, temperature=None):
            return Generation(ANSWER)

    assert takes_tools(Old()) and not takes_tools(OldComplete())
    for backend in (Old(), OldComplete()):
        traj = await Agent(backend, AgentConfig(preset="release")).arun(Image.new("RGB", (8, 8)), "q")
        assert traj.stop_reason == "answer"
    # the base class's generate() passes tools on only where complete() takes them
    assert await OldComplete().generate([], [], tools=[]) == ANSWER


def test_call_notes_are_the_presets() -> None:
    call = parse_tool_calls(render_tool_call("result = image", "noop", 0) * 2)
    assert call_notes(call) == ["Note: your reply contained 2 tool calls; only the first was executed."]
    assert call_notes(call, RELEASE_PRESET) == []


# ---------------------------------------------------------------------------- through the hf chat template
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


async def test_release_episode_renders_the_release_prompt_through_the_hf_template(tiny_qwen25: Path) -> None:
    """A release-preset episode, rendered by the transformers backend, is the prompt the release renders for
    the same conversation: `processor.apply_chat_template(messages, tools=[its tool schema])`
    (verl/experimental/agent_loop/tool_agent_loop.py lines 260-269), with sp.txt as the system message and
    the tool's texts in the tool turns (lines 422-430: image placeholders, then the text)."""
    from cv_agent import TransformersBackend, TransformersBackendConfig

    backend = TransformersBackend(TransformersBackendConfig(str(tiny_qwen25), device="cpu"))
    policy = ScriptedPolicy([_call("rotate90"), _call("nope"), ANSWER])
    cfg = AgentConfig(preset="release", max_pixels=64 * 28 * 28, min_pixels=4 * 28 * 28)
    traj = await Agent(policy, cfg, sandbox=FakeSandbox()).arun(Image.new("RGB", (112, 56), "red"), "Which?")
    assert traj.stop_reason == "answer"
    model_images = [im.resize(s) for im, s in zip(traj.images, traj.model_image_sizes, strict=True)]
    ours, ordered = backend.build_prompt(traj.messages, model_images, tools=policy.calls[-1]["tools"])
    assert len(ordered) == 2
    # The same conversation written the way the release's loop holds it.
    release_messages = [
        {"role": "system", "content": RELEASE_PRESET.system_prompt},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which?"}]},
        {"role": "assistant", "content": _call("rotate90")},
        {"role": "tool", "content": [{"type": "image"}, {"type": "text", "text": RELEASE_OK}]},
        {"role": "assistant", "content": _call("nope")},
        {
            "role": "tool",
            "content": "Error: Code execution error: NameError: name 'fail' is not defined. " + NEXT,
        },
        {"role": "assistant", "content": ANSWER},
    ]
    backend._load()
    theirs = backend._processor.apply_chat_template(
        release_messages,
        chat_template=backend._template,
        tools=[RELEASE_PRESET.tool_schema()],
        add_generation_prompt=True,
        tokenize=False,
    )
    assert ours == theirs
    assert ours.startswith("<|im_start|>system\n" + RELEASE_PRESET.system_prompt + "\n\n# Tools\n")
    assert json.dumps(RELEASE_PRESET.tool_schema(), ensure_ascii=False) in ours
    assert "<|vision_end|>" + RELEASE_OK + "\n</tool_response>" in ours
    # the default preset's prompt is not in it
    assert DEFAULT_PRESET.tool_description not in ours and DEFAULT_PRESET.system_prompt not in ours
    await backend.aclose()
