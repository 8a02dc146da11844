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
    RELEASE_PRESET,
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
    assert dict(PRESETS) == {"default": DEFAULT_PRESET, "release": RELEASE_PRESET}
    assert get_preset("default") is DEFAULT_PRESET and get_preset(RELEASE_PRESET) is RELEASE_PRESET
    with pytest.raises(ValueError, match=r"unknown preset 'mine'; choose one of \['default', 'release'\]"):
        get_preset("mine")
    with pytest.raises(ValueError, match="unknown preset None"):
        get_preset(None)  # type: ignore[arg-type]
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


# ------------------------------------------------------------------------------------------ the release preset
# What the public release (github ByteDance-BandAI/CodeVision @ e098588) shows its model, read from its files.
_NEXT = (
    "Please keep thinking step-by-step inside the <think></think> tags to determine the next action. "
    "If additional tools are required, call them inside the <tool_calls></tool_calls> tags. "
    "Otherwise, provide your final answer within the <answer></answer> tags."
)


def test_release_system_prompt_is_sp_txt() -> None:
    # recipe/codevision/config/sp.txt, the whole file (1,507 characters, 1,513 bytes, no final newline),
    # read verbatim by recipe/codevision/uvtr.py lines 87-88 (`self.new_sp = f.read()`).
    sp = RELEASE_PRESET.system_prompt
    assert len(sp) == 1507 and len(sp.encode()) == 1513 and not sp.endswith("\n")
    assert _sha(sp) == "1c85d1588ffb799cf97644a646cd1c97b3cbee5237c24c8cd9e457a883c2edcf"
    # sp.txt line 1 (opening) and line 7 (its typo "f the image", kept: it is what the model saw).
    assert sp.startswith("You are an advanced MLLM that can solve complex problems with powerful image")
    assert "call tools if needed. f the image is misoriented, use tools to rotate or flip it" in sp
    # line 5: the arrows are U+2192
    assert "\n**Think and Analysis** → **Validate** → **Iterate when needed** → **Answer**\n" in sp
    assert sp.endswith("use tools proactively to enhance understanding beyond surface-level observation.")


def test_release_tool_schema_is_the_yaml_as_verl_renders_it() -> None:
    schema = RELEASE_PRESET.tool_schema()
    fn = schema["function"]
    assert schema["type"] == "function" and fn["name"] == "code_image_tool"  # yaml lines 11, 13
    # recipe/codevision/config/code_image_tool_config.yaml line 14
    assert fn["description"] == (
        "A unified tool for image processing using executable Python code. Supports basic operations (zoom "
        "in, resize, rotate, flip, brightness, contrast), mathematical visualizations (auxiliary lines, "
        "bounding boxes, coordinate systems, function graphs). The 'draw' variable provides drawing "
        "capabilities."
    )
    props = fn["parameters"]["properties"]
    # lines 20-27: a `|` block scalar, so its lines keep their newlines and the text ends with one.
    code = props["code"]["description"]
    assert code.startswith(
        "Python code to process the image. Use 'image' or 'img' for input, 'draw' for drawing. Important: Do "
        "not read image from file or URL, directly use the 'image' or 'img' variable. Return PIL Image object "
        "and save the result to 'result' or 'output' variable. Examples:\n- Zoom in: result = "
        "image.crop((x_min, y_min, x_max, y_max))\n- Rotate: result = image.rotate(90/180/270, expand=True), "
        "expand=True must be set to True\n"
    )
    assert code.endswith(
        "Zoom in, Rotate and Flip are the most common operations to solve the question and should be prioritized.\n"
    )
    # sha256 of the block scalar as PyYAML (OmegaConf, verl's loader) reads it from the file
    assert (
        code.count("\n") == 7
        and _sha(code) == "b0ed288780089642798e9c8b64f21c2532ce44b753fd86baeeb03adb24172aac"
    )
    # line 30
    assert props["description"]["description"] == (
        "Clear description of what the code does. For example, 'Draw a line from (10, 20) to (30, 40)', "
        "'Flip the image horizontally'"
    )
    # lines 32-34: "minimum: 0" is not in what the model saw: verl validates the schema into
    # OpenAIFunctionPropertySchema (verl/tools/schemas.py lines 21-26: type, description, enum), which drops
    # it, and dumps it with exclude_unset (verl/experimental/agent_loop/tool_agent_loop.py line 133).
    assert props["image_index"] == {
        "type": "integer",
        "description": "Index of the image in the trajectory to process (0-based).",
    }
    assert fn["parameters"]["required"] == ["code", "description", "image_index"]  # line 35
    assert list(fn) == ["name", "description", "parameters"]  # pydantic's field order, as rendered
    # The wire format is the same as every preset's: one parser reads them all.
    assert {k: v["type"] for k, v in props.items()} == {
        k: v["type"] for k, v in TOOL_SCHEMA["function"]["parameters"]["properties"].items()
    }


def test_release_tool_response_texts() -> None:
    r = RELEASE_PRESET
    # verl/tools/code_image_tool.py line 460: the text beside a processed image; no index, no size, and
    # printed output is never shown (print goes to the worker's stdout).
    assert r.tool_response_text(_ok((640, 480), "hello"), 3) == (
        "Here is the processed image. Now, analyze the returned results. " + _NEXT
    )
    # line 331's message in line 436's frame: a runtime error.
    failed = NS(ok=False, image=None, stdout="", error="name 'x' is not defined", error_kind="exception")
    assert (
        r.tool_response_text(failed, None) == "Error: Code execution error: name 'x' is not defined. " + _NEXT
    )
    # lines 190-192 + 305 + 436: code over max_code_length (2048: code_image_tool_config.yaml line 8)
    assert r.max_code_chars == 2048
    assert r.failure_text("code_too_long", "code is 2049 characters; the limit is 2048") == (
        "Error: Code validation failed: Code too long. Maximum allowed length: 2048. " + _NEXT
    )
    # lines 230-231 + 305 + 436: a syntax error is a validation failure
    assert r.failure_text("syntax", "invalid syntax (line 1)") == (
        "Error: Code validation failed: invalid syntax (line 1). " + _NEXT
    )
    # line 420: an index past the last image
    assert r.failure_text("bad_index", "...", index=2, last=0) == (
        "Error: image_index 2 is out of range. Available images: 0 to 0. " + _NEXT
    )
    # line 446: a result that is not an image (no "keep thinking" sentence there)
    assert (
        r.failure_text("bad_result", "result is not an image")
        == "Error: Code must return a PIL Image object."
    )
    # line 455: an empty or extreme-aspect image
    assert r.failure_text("empty_result", "zero-size result") == "Error: zero-size result"
    # The release's loop answers a call that fails outside the tool with "Error when executing tool: {e}"
    # (tool_agent_loop.py line 566); an unreadable call gets that frame here (the release drops it instead).
    assert r.parse_error_text(NS(message="bad JSON")) == "Error when executing tool: bad JSON"
    # One call per turn (qwen3_vl.sh line 147, max_parallel_calls=1) and a default image_index of 0
    # (code_image_tool.py line 391), both silent.
    assert r.call_notes(3, 0) == []
    assert DEFAULT_PRESET.call_notes(3, 0) == [
        "Note: your reply contained 3 tool calls; only the first was executed.",
        "Note: no valid image_index was given; image 0 was used.",
    ]


def test_default_refusal_texts_are_unchanged() -> None:
    # The texts the executor wrote before they moved into the preset.
    d = DEFAULT_PRESET
    assert d.failure_text(
        "bad_index", "image_index 5 does not exist; valid indices are 0..1.", index=5, last=1
    ) == (
        "Execution failed (bad_index): image_index 5 does not exist; valid indices are 0..1.\n"
        "No image was produced; fix the call and try again."
    )
    assert d.failure_text("image_limit", "too many") == "Execution failed (output_too_large): too many"
    assert d.failure_text("code_too_long", "code is 9 characters; the limit is 8") == (
        "Execution failed (code_too_long): code is 9 characters; the limit is 8\n"
        "No image was produced; fix the code and try again."
    )


def test_presets_pickle_hash_and_stay_read_only() -> None:
    import pickle

    for p in PRESETS.values():
        back = pickle.loads(pickle.dumps(p))
        assert back == p and hash(back) == hash(p) and back.tool_schema() == p.tool_schema()
    with pytest.raises(TypeError):
        RELEASE_PRESET.failure_templates["syntax"] = "x"  # type: ignore[index]
    # a mapping given by the caller is copied, so editing it later changes nothing
    mine = {"bad_result": "No image."}
    p = dataclasses.replace(DEFAULT_PRESET, name="mine", failure_templates=mine)
    mine["bad_result"] = "changed"
    assert p.failure_text("bad_result", "x") == "No image."


def test_adding_a_preset_is_one_entry() -> None:
    # e.g. a system prompt that describes the tool itself, without the chat template's tool block
    minimal = dataclasses.replace(
        DEFAULT_PRESET, name="minimal", system_prompt="Fix the image.", tools_in_prompt=False
    )
    assert minimal.tools() == [] and DEFAULT_PRESET.tools() == [TOOL_SCHEMA]
    assert minimal.tool_response_text(_ok(), 1) == DEFAULT_PRESET.tool_response_text(_ok(), 1)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"argument_descriptions": {"path": "x"}}, r"argument_descriptions has \['path'\]"),
        ({"failure_templates": {"syntax": "{index}"}}, r"failure_templates\['syntax'\] may use"),
        ({"failure_templates": {"bad_index": "{path}"}}, r"failure_templates\['bad_index'\] may use"),
        ({"extra_calls_note": "{index}"}, "extra_calls_note may use"),
        ({"stdout_template": "printed"}, r"stdout_template .* must use \['stdout'\]"),
    ],
)
def test_bad_preset_parts_say_what_to_set(changes: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(DEFAULT_PRESET, name="bad", **changes)
