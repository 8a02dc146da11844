"""Presets: the default is today's exact texts; the object validates what a new preset must provide."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from types import SimpleNamespace as NS

import pytest
from cv_protocol import (
    DEFAULT_PRESET,
    PRESETS,
    SYSTEM_PROMPT,
    TOOL_SCHEMA,
    Preset,
    get_preset,
    parse_error_text,
    parse_tool_calls,
    tool_response_text,
)

# The default preset is what every model trained or evaluated so far has seen: it must not drift.
# A different prompt is a new registry entry, never an edit of this one.
PINNED = {
    "system_prompt": "b58a9dc6ff637f3d31c42f5b692227aa8606c8f33370bd22f7fb0a4be98b6041",
    "tool_schema": "25d65d149a4e67e2ddc3aff46b904dfa23a69d1f51ff4c5333c23d4eda8a1698",
}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_default_texts_are_pinned() -> None:
    assert _sha(SYSTEM_PROMPT) == PINNED["system_prompt"], "the default system prompt changed"
    assert _sha(json.dumps(TOOL_SCHEMA)) == PINNED["tool_schema"], "the default tool schema changed"
    assert SYSTEM_PROMPT is DEFAULT_PRESET.system_prompt and TOOL_SCHEMA == DEFAULT_PRESET.tool_schema()
    assert DEFAULT_PRESET.max_code_chars == 20_000


def _ok(size=(4, 2), stdout=""):
    return NS(ok=True, image=NS(size=size), stdout=stdout, error=None, error_kind=None)


def test_default_tool_response_texts() -> None:
    assert tool_response_text(_ok(), 1) == "Execution succeeded. The result is image 1 (4x2 pixels)."
    assert tool_response_text(_ok((640, 480), "  total: {3}\n\n"), 2) == (
        "Execution succeeded. The result is image 2 (640x480 pixels).\nstdout:\n  total: {3}"
    )
    assert tool_response_text(_ok(stdout=" \n"), 1).endswith("pixels).")  # blank stdout is not shown
    failed = NS(ok=False, image=None, stdout="x", error="bad {braces}", error_kind=None)
    assert tool_response_text(failed, None) == (
        "Execution failed (error): bad {braces}\nNo image was produced; fix the code and try again."
    )
    # ok without an image (a broken result object) is a failure, not a crash.
    assert tool_response_text(
        NS(ok=True, image=None, stdout="", error=None, error_kind="crash"), 3
    ).startswith("Execution failed (crash): None")
    err = parse_tool_calls("<tool_call>{oops</tool_call>")
    assert parse_error_text(err) == "Tool call error: " + err.message


def test_registry() -> None:
    assert dict(PRESETS) == {"default": DEFAULT_PRESET} and get_preset("default") is DEFAULT_PRESET
    with pytest.raises(ValueError, match=r"unknown preset 'release'; choose one of \['default'\]"):
        get_preset("release")
    with pytest.raises(TypeError):
        PRESETS["mine"] = DEFAULT_PRESET  # type: ignore[index]


def test_a_new_preset_is_just_data() -> None:
    short = dataclasses.replace(
        DEFAULT_PRESET,
        name="short",
        tool_description="Run code on an image.",
        success_template="OK: image {index}.",
        failure_template="Failed: {error}",
        parse_error_template="Bad call: {message}",
        max_code_chars=2048,
    )
    assert short.tool_schema()["function"]["description"] == "Run code on an image."
    assert short.tool_schema()["function"]["parameters"] == TOOL_SCHEMA["function"]["parameters"]
    assert short.tool_response_text(_ok(stdout="hi"), 5) == "OK: image 5.\nstdout:\nhi"
    assert short.parse_error_text(NS(message="x")) == "Bad call: x"


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("name", "", "registry name"),
        ("system_prompt", " ", "non-empty system_prompt"),
        ("no_tool_prompt", "", "no_tool_prompt"),
        ("success_template", "Done.", r"must use \['index'\]"),
        (
            "success_template",
            "image {index} {path}",
            r"may use the placeholders \['height', 'index', 'width'\]",
        ),
        ("failure_template", "Failed ({kind}).", r"must use \['error'\]"),
        ("parse_error_template", "Bad call.", "parse_error_template"),
        ("max_code_chars", 0, "max_code_chars must be >= 1"),
    ],
)
def test_bad_presets_say_what_to_set(field: str, value: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(DEFAULT_PRESET, **{field: value})


def test_preset_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_PRESET.system_prompt = "x"  # type: ignore[misc]
    assert isinstance(DEFAULT_PRESET, Preset)


def test_no_tool_prompt_keeps_the_answer_format_and_drops_the_tool() -> None:
    p = DEFAULT_PRESET.no_tool_prompt
    assert "<answer>" in p and "<think>" in p
    assert "tool_call" not in p and "code_image_tool" not in p
