"""What cv-sandbox owes cv-protocol: results the tool-response text can describe, trace names from the op
vocabulary, and the default preset's code limit."""

from __future__ import annotations

import pytest
from cv_protocol import DEFAULT_PRESET, GEOMETRIC_OPS, ExecOutcome, tool_response_text
from cv_sandbox import ExecResult, Sandbox, SandboxConfig
from PIL import Image


def test_results_are_described_to_the_model(sandbox: Sandbox, src: Image.Image) -> None:
    ok: ExecOutcome = sandbox.run("print('sum', 3)\nresult = image.crop((0, 0, 10, 6))", [src])
    assert tool_response_text(ok, 1) == (
        "Execution succeeded. The result is image 1 (10x6 pixels).\nstdout:\nsum 3"
    )
    bad = sandbox.run("result = undefined_name", [src])
    text = tool_response_text(bad, None)
    assert text.startswith(f"Execution failed (exception): {bad.error}") and bad.error_kind == "exception"
    assert tool_response_text(ExecResult(image=Image.new("RGB", (4, 2))), 1) == (
        "Execution succeeded. The result is image 1 (4x2 pixels)."
    )


@pytest.mark.parametrize(
    ("code", "op"),
    [
        ("result = image.rotate(90, expand=True)", "rotate_90"),
        ("result = image.rotate(-90, expand=True)", "rotate_270"),
        ("result = image.rotate(180)", "rotate_180"),
        ("result = ImageOps.mirror(image)", "flip_horizontal"),
        ("result = ImageOps.flip(image)", "flip_vertical"),
        ("result = image.crop((1, 2, 20, 30))", "crop"),
    ],
)
def test_trace_names_are_the_protocols_ops(sandbox: Sandbox, src: Image.Image, code: str, op: str) -> None:
    res = sandbox.run(code, [src])
    assert res.ops == [op] and op in GEOMETRIC_OPS


def test_default_preset_code_limit_is_the_sandbox_default() -> None:
    assert DEFAULT_PRESET.max_code_chars == SandboxConfig().max_code_chars
