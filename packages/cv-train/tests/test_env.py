"""CodeVisionEnv: tool results as content blocks, per-call traces, crop boxes chained into the input frame.

The call itself is cv_sandbox.ImageWorkspace (tested in cv-sandbox); the geometry is cv_sandbox.geometry.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from cv_protocol import TOOL_SCHEMA
from cv_sandbox import ExecResult, TraceOp
from cv_train.env import CodeVisionEnv, CodeVisionEnvConfig
from PIL import Image


class FakeSandbox:
    """Replays scripted ExecResults (the real sandbox's traces are tested in cv-sandbox)."""

    def __init__(self, results: list[ExecResult]) -> None:
        self.results = list(results)
        self.calls: list[tuple[str, int, int]] = []

    def run(self, code: str, images: list[Image.Image], image_index: int = 0) -> ExecResult:
        self.calls.append((code, len(images), image_index))
        return self.results.pop(0)


def test_tool_schema_is_what_trl_exposes() -> None:
    from transformers.utils import get_json_schema

    public = [
        n for n, _ in inspect.getmembers(CodeVisionEnv, predicate=inspect.isfunction) if not n.startswith("_")
    ]
    assert sorted(public) == [
        "code_image_tool",
        "reset",
    ]  # TRL exposes every public method but reset as a tool
    schema = get_json_schema(CodeVisionEnv(sandbox=FakeSandbox([])).code_image_tool)
    # Byte-identical to the schema SFT data and the agent render, so RL prompts match SFT and inference.
    assert schema == TOOL_SCHEMA


def test_reset_success_failure_and_bad_index() -> None:
    w, h = 100, 50
    rotated = Image.new("RGB", (h, w))
    sandbox = FakeSandbox(
        [
            ExecResult(image=rotated, trace=[TraceOp("rotate_90")], to_source=(0, -1, w, 1, 0, 0)),
            ExecResult(error="NameError: name 'foo' is not defined", error_kind="exception"),
        ]
    )
    env = CodeVisionEnv(sandbox=sandbox)
    env.reset(
        images=[Image.new("RGB", (w, h))], answer="A", prompt=[{"role": "user"}], transform=["rotate_270"]
    )
    assert env.row == {"answer": "A", "transform": ["rotate_270"]} and env.trace == []
    out = env.code_image_tool("result = image.rotate(90, expand=True)", "upright", 0)
    assert [b["type"] for b in out] == ["image", "text"] and out[0]["image"] is rotated
    assert "image 1" in out[1]["text"]
    out = env.code_image_tool("result = foo", "oops", 1)
    assert [b["type"] for b in out] == ["text"] and "NameError" in out[0]["text"]
    out = env.code_image_tool("result = image", "bad", 5)
    assert "image_index 5 does not exist" in out[0]["text"]
    assert [(c.ok, c.error_kind) for c in env.trace] == [
        (True, None),
        (False, "exception"),
        (False, "bad_index"),
    ]
    assert env.trace[0].op_names == ["rotate_90"] and env.trace[0].ops[0]["box_input"] is None
    assert env.trace[0].output_index == 1 and [c.turn for c in env.trace] == [0, 1, 2]
    assert len(sandbox.calls) == 2  # the bad index never reached the sandbox
    env.reset(images=[Image.new("RGB", (8, 8))])
    assert env.trace == [] and len(env.images) == 1


def test_crop_box_is_mapped_through_chained_to_source_maps() -> None:
    w, h = 100, 50
    # Call 1: rotate 90 ccw on image 0 -> 50x100; output (x, y) -> source (w - y, x)
    rot = ExecResult(
        image=Image.new("RGB", (h, w)), trace=[TraceOp("rotate_90")], to_source=(0, -1, w, 1, 0, 0)
    )
    # Call 2: crop (10, 20, 30, 60) of image 1 -> 20x40, crop box reported in image-1 pixels.
    crop = ExecResult(
        image=Image.new("RGB", (20, 40)),
        trace=[TraceOp("crop", box=(10, 20, 30, 60))],
        to_source=(1, 0, 10, 0, 1, 20),
    )
    # Call 3: crop (0, 0, 10, 10) of image 2.
    crop2 = ExecResult(
        image=Image.new("RGB", (10, 10)),
        trace=[TraceOp("crop", box=(0, 0, 10, 10))],
        to_source=(1, 0, 0, 0, 1, 0),
    )
    env = CodeVisionEnv(sandbox=FakeSandbox([rot, crop, crop2]))
    env.reset(images=[Image.new("RGB", (w, h))])
    env.code_image_tool("rotate", "", 0)
    env.code_image_tool("crop", "", 1)
    env.code_image_tool("crop", "", 2)
    # Image-1 box (10,20)-(30,60) in image 0: x = w - y in [40, 80], y = x in [10, 30].
    assert [(op["name"], op["box_input"]) for op in env.trace[1].ops] == [("crop", [40.0, 10.0, 80.0, 30.0])]
    # Image-2 box (0,0)-(10,10) -> image 1 (10,20)-(20,30) -> image 0 x in [70, 80], y in [10, 20].
    assert [(op["name"], op["box_input"]) for op in env.trace[2].ops] == [("crop", [70.0, 10.0, 80.0, 20.0])]


def test_untrackable_output_gives_no_box_and_limits_images() -> None:
    warp = ExecResult(image=Image.new("RGB", (10, 10)), trace=[TraceOp("warp")], to_source=None)
    crop = ExecResult(
        image=Image.new("RGB", (5, 5)),
        trace=[TraceOp("crop", box=(0, 0, 5, 5))],
        to_source=(1, 0, 0, 0, 1, 0),
    )
    env = CodeVisionEnv(CodeVisionEnvConfig(max_images=3), sandbox=FakeSandbox([warp, crop]))
    env.reset(images=[Image.new("RGB", (10, 10))])
    env.code_image_tool("warp", "", 0)
    env.code_image_tool("crop", "", 1)
    assert [(op["name"], op["box_input"]) for op in env.trace[1].ops] == [("crop", None)]
    out = env.code_image_tool("again", "", 0)
    assert "already holds 3 images" in out[0]["text"]


def test_real_sandbox_round_trip() -> None:
    env = CodeVisionEnv()
    env.reset(images=[Image.new("RGB", (30, 20), "red")])
    out = env.code_image_tool("result = image.rotate(90, expand=True)", "rotate", 0)
    assert out[0]["image"].size == (20, 30) and env.images[1].size == (20, 30)
    out = env.code_image_tool("result = undefined_name", "fail", 1)
    assert out[0]["type"] == "text" and not env.trace[-1].ok


def test_sandbox_crash_becomes_a_tool_error() -> None:
    class Crashing:
        def run(self, *args: Any, **kwargs: Any) -> ExecResult:
            raise ConnectionError("worker died")

    env = CodeVisionEnv(sandbox=Crashing())
    env.reset(images=[Image.new("RGB", (4, 4))])
    out = env.code_image_tool("result = image", "noop", 0)
    assert out[0]["type"] == "text" and "worker died" in out[0]["text"]
    assert env.trace[0].error_kind == "crash" and not env.trace[0].ok


def test_the_env_answers_in_its_presets_words_and_enforces_its_code_limit() -> None:
    from cv_protocol import RELEASE_PRESET

    sb = FakeSandbox([ExecResult(image=Image.new("RGB", (4, 4)), trace=[TraceOp("rotate_90")])])
    env = CodeVisionEnv(CodeVisionEnvConfig(preset="release"), sandbox=sb)
    env.reset(images=[Image.new("RGB", (4, 4))])
    out = env.code_image_tool("result = image.rotate(90)", "r", 0)
    assert out[1]["text"] == RELEASE_PRESET.success_template
    long = env.code_image_tool("x" * 2049, "r", 0)
    assert long[0]["text"].startswith(
        "Error: Code validation failed: Code too long. Maximum allowed length: 2048."
    )
    assert len(sb.calls) == 1 and env.trace[-1].error_kind == "code_too_long"


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_rl_template_shows_the_presets_schema_byte_for_byte(family: str) -> None:
    """TRL renders the environment's methods through transformers' get_json_schema, which joins the release's
    multi-line `code` description onto one line; the RL template fixes `tools` to the preset's own."""
    import dataclasses

    from cv_agent.templates import load_chat_template
    from cv_protocol import DEFAULT_PRESET, RELEASE_PRESET
    from cv_train.rl import with_preset_tools
    from transformers.utils.chat_template_utils import render_jinja_template

    base = load_chat_template(family, training=False)
    env_tool = CodeVisionEnv(sandbox=FakeSandbox([])).code_image_tool
    conv = [
        {"role": "system", "content": [{"type": "text", "text": "SYS"}]},
        {"role": "user", "content": [{"type": "text", "text": "Q?"}]},
    ]

    def render(template: str, tools: list) -> str:
        out = render_jinja_template([conv], tools=tools, chat_template=template, add_generation_prompt=True)
        return out[0][0] if isinstance(out, tuple) else out[0]

    minimal = dataclasses.replace(DEFAULT_PRESET, name="minimal", tools_in_prompt=False)
    for preset in (DEFAULT_PRESET, RELEASE_PRESET, minimal):
        fixed = with_preset_tools(base, preset)
        want = render(base, preset.tools() or None)
        assert render(fixed, [env_tool]) == want  # what TRL hands it makes no difference
        assert render(fixed, None) == want
    assert "# Tools" not in render(with_preset_tools(base, minimal), [env_tool])
    release = render(with_preset_tools(base, RELEASE_PRESET), [env_tool])
    assert (
        RELEASE_PRESET.tool_schema()["function"]["parameters"]["properties"]["code"]["description"].replace(
            "\n", "\\n"
        )
        in release
    )
    # without the fix, TRL would show the schema of the method (the default preset's description, one-line args)
    assert render(base, [env_tool]) != render(base, RELEASE_PRESET.tools())
