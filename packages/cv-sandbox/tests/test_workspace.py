"""ImageWorkspace: the one executor of code_image_tool calls (the agent loop, cv-train's RL env, cv-data's SFT
writer and replay, cv-bench's reference policy use it)."""

from __future__ import annotations

import doctest
from typing import Any

import cv_sandbox.workspace
import pytest
from cv_sandbox import ImageWorkspace, Sandbox, ToolCall
from cv_sandbox.testing import FakeSandbox
from PIL import Image


def test_docstring_examples() -> None:
    result = doctest.testmod(cv_sandbox.workspace, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_sync_and_async_record_lineage_and_input_frame_boxes() -> None:
    sb = FakeSandbox()
    images = [Image.new("RGB", (200, 100))]
    ws = ImageWorkspace(images, max_images=8)
    assert ws.images is images and ws.parents == [None] and ws.to_parent == [None]
    out = ws.execute(sb, "rotate90", "upright", 0, turn=3)
    assert isinstance(out.call, ToolCall) and out.call.ok and out.call.turn == 3 and out.index == 1
    assert out.image is images[1] and out.text.startswith("Execution succeeded. The result is image 1")
    import asyncio

    out = asyncio.run(ws.aexecute(sb, "crop 10 20 50 80", "zoom", "1"))  # indices from JSON may be strings
    assert out.call.image_index == 1 and out.index == 2 and ws.parents == [None, 0, 1]
    assert out.call.ops[0]["box"] == [10, 20, 50, 80] and out.call.ops[0]["box_input"] == [
        120.0,
        10.0,
        180.0,
        50.0,
    ]
    assert ws.to_input(0) == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def test_refusals_never_reach_the_sandbox() -> None:
    sb = FakeSandbox()
    ws = ImageWorkspace([Image.new("RGB", (8, 8))], max_images=2)
    out = ws.execute(sb, "rotate90", "", 4)
    assert out.call.error_kind == "bad_index" and "valid indices are 0..0" in out.text and out.index is None
    assert ws.execute(sb, "rotate90", "", None).call.error_kind == "bad_index"
    assert ws.execute(sb, "rotate90", "", 0).call.ok
    out = ws.execute(sb, "rotate90", "", 0)
    assert out.call.error_kind == "output_too_large" and "already holds 2 images (the limit)" in out.text
    assert len(sb.calls) == 1 and len(ws.images) == 2


def test_failures_and_crashes_are_tool_errors() -> None:
    ws = ImageWorkspace([Image.new("RGB", (8, 8))])
    out = ws.execute(FakeSandbox(), "fail", "", 0)
    assert not out.call.ok and out.call.error_kind == "exception" and "NameError" in out.text
    out = ws.execute(FakeSandbox(), "raise", "", 0)
    assert (
        out.call.error_kind == "crash"
        and "worker died" in out.text
        and out.call.error.startswith("sandbox failure")
    )
    assert len(ws.images) == 1


def test_lineage_lists_are_used_in_place_and_padded() -> None:
    parents: list[Any] = []
    to_parent: list[Any] = []
    ws = ImageWorkspace([Image.new("RGB", (4, 4)), Image.new("RGB", (4, 4))], parents, to_parent)
    assert parents == [None, None] and to_parent == [None, None] and ws.parents is parents
    with pytest.raises(ValueError, match="max_images"):
        ImageWorkspace(max_images=0)


def test_real_sandbox_maps_a_crop_after_a_rotation_into_the_input_frame(sandbox: Sandbox) -> None:
    ws = ImageWorkspace([Image.new("RGB", (200, 100))])
    turned = ws.execute(sandbox, "result = image.rotate(90, expand=True)", "upright", 0)
    assert turned.call.ok and turned.call.op_names == ["rotate_90"] and ws.images[1].size == (100, 200)
    out = ws.execute(sandbox, "result = image.crop((10, 20, 50, 80))", "zoom", 1, turn=1)
    assert out.call.ok and out.index == 2 and ws.parents == [None, 0, 1]
    assert out.call.ops[0]["box"] == [10, 20, 50, 80]
    assert out.call.ops[0]["box_input"] == [120.0, 10.0, 180.0, 50.0]
    failed = ws.execute(sandbox, "result = image.nope()", "bad", 2)
    assert not failed.call.ok and failed.call.error_kind == "exception" and failed.index is None
    assert failed.text.startswith("Execution failed") and len(ws.images) == 3


def test_shared_sandbox_is_one_per_configuration() -> None:
    from cv_sandbox import SandboxConfig, shared_sandbox

    one = shared_sandbox(SandboxConfig(workers=1))
    assert shared_sandbox(SandboxConfig(workers=1)) is one
    other = shared_sandbox(SandboxConfig(workers=1, timeout_s=3.0))
    assert other is not one and other.config.timeout_s == 3.0
    out = ImageWorkspace([Image.new("RGB", (4, 2))]).execute(
        other, "result = image.rotate(90, expand=True)", "", 0
    )
    assert out.call.ok and out.image.size == (2, 4)


def test_op_records_carry_the_effective_flag_that_rewards_read() -> None:
    # cv-rewards pays no optional-tool credit for an op that changed no pixel (it reads "effective" from
    # these dicts, see cv_rewards.OpRecord.from_dict): the flag must survive the workspace's op records.
    ws = ImageWorkspace([Image.new("RGB", (32, 16), "gray")])
    with Sandbox() as sb:
        noop = ws.execute(sb, "result = ImageEnhance.Contrast(image).enhance(1.0)", "no-op", 0)
        real = ws.execute(sb, "result = ImageEnhance.Contrast(image).enhance(1.8)", "contrast", 0)
    assert noop.call.ok and real.call.ok
    assert [op["effective"] for op in noop.call.ops] == [False]
    assert [op["effective"] for op in real.call.ops] == [True]


def test_the_preset_writes_every_tool_text_and_sets_the_code_limit() -> None:
    from cv_protocol import RELEASE_PRESET

    keep = (
        "Please keep thinking step-by-step inside the <think></think> tags to determine the next action. "
        "If additional tools are required, call them inside the <tool_calls></tool_calls> tags. "
        "Otherwise, provide your final answer within the <answer></answer> tags."
    )
    sb = FakeSandbox()
    ws = ImageWorkspace([Image.new("RGB", (8, 8))], max_images=3, preset="release")
    assert ws.preset is RELEASE_PRESET
    ok = ws.execute(sb, "rotate90", "", 0)
    assert ok.call.ok and ok.text == "Here is the processed image. Now, analyze the returned results. " + keep
    failed = ws.execute(sb, "fail", "", 0)
    assert failed.text.startswith("Error: Code execution error: NameError") and failed.text.endswith(keep)
    bad = ws.execute(sb, "rotate90", "", 7)
    assert bad.call.error_kind == "bad_index"
    assert bad.text == "Error: image_index 7 is out of range. Available images: 0 to 1. " + keep
    # The release's limit is 2,048 characters: longer code is refused before it reaches the sandbox.
    n = len(sb.calls)
    long = ws.execute(sb, "rotate90" + " " * (2049 - 8), "", 0)
    assert long.call.error_kind == "code_too_long" and len(sb.calls) == n and len(ws.images) == 2
    assert long.call.error == "code is 2049 characters; the limit is 2048"
    assert long.text == "Error: Code validation failed: Code too long. Maximum allowed length: 2048. " + keep
    assert ws.execute(sb, "crop 0 0 4 4".ljust(2048), "", 0).call.ok  # 2,048 itself is allowed
    assert (
        ws.execute(sb, "rotate90", "", 0).text
        == "Error: this conversation already holds 3 images (the limit); answer without further tool calls."
    )
    # The default preset keeps the sandbox's limit and its texts.
    default = ImageWorkspace([Image.new("RGB", (8, 8))])
    assert default.preset.max_code_chars == 20_000
    assert default.execute(sb, "crop 0 0 4 4".ljust(3000), "", 0).call.ok
    out = default.execute(sb, "x" * 20_001, "", 0)
    assert out.text == (
        "Execution failed (code_too_long): code is 20001 characters; the limit is 20000\n"
        "No image was produced; fix the code and try again."
    )
    with pytest.raises(ValueError, match=r"unknown preset 'nope'; choose one of \[.*'release'.*\]"):
        ImageWorkspace(preset="nope")
