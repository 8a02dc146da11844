"""CodeVisionEnv: tool results as content blocks, per-call traces, crop boxes chained into the input frame.

The call itself is cv_sandbox.ImageWorkspace (tested in cv-sandbox); the geometry is cv_sandbox.geometry.
"""

from __future__ import annotations

import inspect
from typing import Any

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
