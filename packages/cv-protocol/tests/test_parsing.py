"""Parsing corpus: real model mistakes are repaired, everything else is a clear error, nothing raises."""

from __future__ import annotations

import json

import pytest
from cv_protocol import (
    TOOL_NAME,
    ParsedCall,
    ParseError,
    extract_answer,
    parse_error_text,
    parse_tool_calls,
    render_tool_call,
)
from hypothesis import given, settings
from hypothesis import strategies as st

CODE = "result = image.rotate(90, expand=True)"
ARGS = {"code": CODE, "description": "rotate", "image_index": 1}
GOOD_JSON = json.dumps({"name": TOOL_NAME, "arguments": ARGS})


def tc(payload: str) -> str:
    return f"<think>I should rotate.</think>\n<tool_call>\n{payload}\n</tool_call>"


# (reply, expected code, expected image_index, a warning substring or None)
OK_CASES: list[tuple[str, str, int, str | None]] = [
    (render_tool_call(CODE, "rotate", 1), CODE, 1, None),
    # tags inside the call's strings do not end the call
    (render_tool_call(CODE, "<tool_call>", 1), CODE, 1, None),
    (
        render_tool_call('print("</tool_call> <answer>")\nresult = image', "x", 0),
        'print("</tool_call> <answer>")\nresult = image',
        0,
        None,
    ),
    (
        f'<tool_call>{{"name": "{TOOL_NAME}", "arguments": {{"code": "result = image", "description": "</tool_call>", '
        '"image_index": 0}}\n<answer>A</answer>',
        "result = image",
        0,
        "closing",
    ),
    (tc(GOOD_JSON), CODE, 1, None),
    (f"<tool_call>{GOOD_JSON}</tool_call>", CODE, 1, None),  # no newlines
    (tc(f"```json\n{GOOD_JSON}\n```"), CODE, 1, "code fence"),
    (tc(f"```\n{GOOD_JSON}\n```"), CODE, 1, "code fence"),
    (tc(GOOD_JSON) + "\nI will now wait for the result.", CODE, 1, None),  # trailing text after the tag
    (tc(GOOD_JSON + " and then I will read it"), CODE, 1, "after the JSON"),  # trailing text inside the tag
    (tc("Here is the call: " + GOOD_JSON), CODE, 1, "before the JSON"),
    (tc(str({"name": TOOL_NAME, "arguments": ARGS})), CODE, 1, "Python-style"),  # python dict repr
    (
        tc(
            "{'name': 'code_image_tool', 'arguments': {'code': 'result = image', 'description': 'x', 'image_index': 0,}}"
        ),
        "result = image",
        0,
        "Python-style",
    ),
    (
        tc(
            '{"name": "code_image_tool", "arguments": {"code": "w, h = image.size\nresult = image.crop((0, 0, w // 2, h))", "description": "crop", "image_index": 0}}'
        ),
        "w, h = image.size\nresult = image.crop((0, 0, w // 2, h))",
        0,
        None,
    ),  # raw newline in the code string
    (
        tc(
            "{'name': 'code_image_tool', 'arguments': {'code': 'a = 1\nresult = image', 'image_index': 0, 'description': 'd'}}"
        ),
        "a = 1\nresult = image",
        0,
        "Python-style",
    ),
    (
        tc('{"name": "code_image_tool", "arguments": {"code": "result = image", "image_index": 2}}'),
        "result = image",
        2,
        "description",
    ),
    (
        tc('{"name": "code_image_tool", "arguments": {"code": "result = image", "description": "d"}}'),
        "result = image",
        0,
        "image_index",
    ),
    (
        tc(
            '{"name": "code_image_tool", "arguments": {"code": "result = image", "description": "d", "image_index": "3"}}'
        ),
        "result = image",
        3,
        "converted",
    ),
    (
        tc(
            '{"name": "code_image_tool", "arguments": {"code": "result = image", "description": "d", "image_index": 1.0}}'
        ),
        "result = image",
        1,
        "converted",
    ),
    (
        tc(json.dumps({"name": TOOL_NAME, "arguments": json.dumps(ARGS)})),
        CODE,
        1,
        "JSON string",
    ),  # arguments as string
    (tc(json.dumps({"name": TOOL_NAME, "parameters": ARGS})), CODE, 1, "parameters"),
    (tc(json.dumps(ARGS)), CODE, 1, "top level"),  # flat call without name/arguments
    (tc(json.dumps({"function": {"name": TOOL_NAME, "arguments": ARGS}})), CODE, 1, None),  # OpenAI nesting
    (
        tc(json.dumps({"name": TOOL_NAME, "arguments": {**ARGS, "code": f"```python\n{CODE}\n```"}})),
        CODE,
        1,
        "code fence",
    ),
    ("<think>rotate</think>\n<tool_call>\n" + GOOD_JSON, CODE, 1, "closing"),  # missing closing tag
    ("<tool_call>\n" + GOOD_JSON + "\n<|im_end|>", CODE, 1, "closing"),
    (
        tc(GOOD_JSON) + tc(json.dumps({"name": TOOL_NAME, "arguments": {**ARGS, "code": "result = image"}})),
        CODE,
        1,
        "2 tool calls",
    ),
    ("<tool_call>" + GOOD_JSON + "<tool_call>" + GOOD_JSON + "</tool_call>", CODE, 1, "2 tool calls"),
    (f"```json\n{GOOD_JSON}\n```", CODE, 1, "without <tool_call> tags"),  # fence only, no tags
    (f"I'll call the tool: {GOOD_JSON}", CODE, 1, "no <tool_call> tags"),  # bare JSON naming the tool
    (
        tc(
            json.dumps(
                {
                    "name": TOOL_NAME,
                    "arguments": {
                        "code": 'print("</tool>")\nresult = image',
                        "description": "d",
                        "image_index": 0,
                    },
                }
            )
        ),
        'print("</tool>")\nresult = image',
        0,
        None,
    ),
    (
        tc(
            '{"name": "code_image_tool", "arguments": {"code": "result = image.point(lambda p: 255 if p > 128 else 0)", "description": "binarize", "image_index": 0}}'
        ),
        "result = image.point(lambda p: 255 if p > 128 else 0)",
        0,
        None,
    ),
    (
        tc(
            "{'name': 'code_image_tool', 'arguments': {'code': '''w, h = image.size\nresult = image.crop((0, 0, w, h // 2))''', 'description': 'top half', 'image_index': 0}}"
        ),
        "w, h = image.size\nresult = image.crop((0, 0, w, h // 2))",
        0,
        "Python-style",
    ),
    (
        tc(
            '{"name": "code_image_tool", "arguments": {"code": "s = \\"a\\\\nb\\"\\nresult = image", "description": "d", "image_index": 0}}'
        ),
        's = "a\\nb"\nresult = image',
        0,
        None,
    ),  # properly escaped quotes and backslashes
    (tc(json.dumps({"name": TOOL_NAME, "arguments": {**ARGS, "image_index": None}})), CODE, 0, "image_index"),
    (
        tc(
            '{"name": "code_image_tool", "arguments": {"code": "result = image", "description": "d", "image_index": 0}} </tool_call> <answer>B</answer>'
        ),
        "result = image",
        0,
        None,
    ),
]

ERROR_CASES: list[tuple[str, str, str]] = [
    (tc("{"), "malformed", "not valid JSON"),
    (tc("not json at all"), "malformed", "not valid JSON"),
    (
        tc('{"name": "code_image_tool", "arguments": {"code": "result = image"'),
        "malformed",
        "not valid JSON",
    ),  # truncated
    (tc(json.dumps({"name": "zoom_in", "arguments": {"bbox": [0, 0, 1, 1]}})), "wrong_tool", "only tool"),
    (
        tc(json.dumps({"name": TOOL_NAME, "arguments": {"description": "no code", "image_index": 0}})),
        "bad_arguments",
        "'code'",
    ),
    (
        tc(json.dumps({"name": TOOL_NAME, "arguments": {"code": "   ", "image_index": 0}})),
        "bad_arguments",
        "non-empty",
    ),
    (tc(json.dumps({"name": TOOL_NAME, "arguments": {"code": 5}})), "bad_arguments", "'code'"),
    (
        tc(json.dumps({"name": TOOL_NAME, "arguments": {"code": "x", "image_index": "first"}})),
        "bad_arguments",
        "image_index",
    ),
    (tc(json.dumps({"name": TOOL_NAME, "arguments": [1, 2]})), "bad_arguments", "object"),
    (tc(json.dumps({"name": TOOL_NAME, "arguments": "{broken"})), "malformed", "string"),
    (tc(json.dumps({"foo": 1})), "malformed", "no 'name' and no 'arguments'"),
    (tc(json.dumps({"name": TOOL_NAME})), "bad_arguments", "must be an object"),
    ("I will use code_image_tool to rotate the image.", "malformed", "expected format"),
    ("<tool_call></tool_call>", "malformed", "not valid JSON"),
]

NO_CALL_CASES = [
    "<think>The text reads STOP.</think>\n<answer>STOP</answer>",
    "The answer is B.",
    "",
    "<think>hmm</think>",
]


@pytest.mark.parametrize(("reply", "code", "index", "warning"), OK_CASES)
def test_repairable_calls(reply: str, code: str, index: int, warning: str | None) -> None:
    parsed = parse_tool_calls(reply)
    assert isinstance(parsed, ParsedCall), getattr(parsed, "message", parsed)
    assert parsed.code == code
    assert parsed.image_index == index
    if warning is None:
        assert not any("description" in w or "image_index" in w for w in parsed.warnings)
    else:
        assert any(warning in w for w in parsed.warnings), parsed.warnings


@pytest.mark.parametrize(("reply", "kind", "fragment"), ERROR_CASES)
def test_malformed_calls_give_model_readable_errors(reply: str, kind: str, fragment: str) -> None:
    parsed = parse_tool_calls(reply)
    assert isinstance(parsed, ParseError)
    assert parsed.kind == kind
    assert fragment in parsed.message
    if kind != "no_call":
        assert "<tool_call>" in parsed.message  # tells the model the exact format to use


@pytest.mark.parametrize("reply", NO_CALL_CASES)
def test_replies_without_calls(reply: str) -> None:
    parsed = parse_tool_calls(reply)
    assert isinstance(parsed, ParseError) and parsed.kind == "no_call"


def test_multiple_calls_counted() -> None:
    parsed = parse_tool_calls(tc(GOOD_JSON) * 3)
    assert isinstance(parsed, ParsedCall) and parsed.n_calls == 3


def test_exact_format_roundtrip() -> None:
    parsed = parse_tool_calls(render_tool_call("a = '\"quoted\"'\nresult = image", "quotes", 4))
    assert isinstance(parsed, ParsedCall)
    assert (parsed.code, parsed.description, parsed.image_index, parsed.warnings) == (
        "a = '\"quoted\"'\nresult = image",
        "quotes",
        4,
        [],
    )


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_never_raises_on_arbitrary_text(text: str) -> None:
    parsed = parse_tool_calls(text)
    assert isinstance(parsed, (ParsedCall, ParseError))


@settings(max_examples=200, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("<>{}[]\"':,\n tool_call/namecodeargumentsimage_index0123")),
        max_size=200,
    )
)
def test_never_raises_on_tag_soup(text: str) -> None:
    parsed = parse_tool_calls("<tool_call>" + text)
    assert isinstance(parsed, (ParsedCall, ParseError))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=80), st.text(max_size=40), st.integers(0, 50))
def test_roundtrip_any_code(code: str, desc: str, index: int) -> None:
    if not code.strip():
        return
    parsed = parse_tool_calls(render_tool_call(code, desc, index))
    assert isinstance(parsed, ParsedCall)
    assert parsed.image_index == index and parsed.description == desc
    assert parsed.code == code or parsed.code.strip() in code  # a fenced code string is unwrapped


def test_final_answer_and_error_text() -> None:
    assert extract_answer("<think>x</think><answer>A</answer> then <answer>\n B \n</answer>") == "B"
    assert extract_answer("<think>no answer</think>") is None
    err = parse_tool_calls(tc('{"name": "other_tool", "arguments": {}}'))
    assert isinstance(err, ParseError)
    assert parse_error_text(err) == f"Tool call error: {err.message}"


# ------------------------------------------------------------------------------ final answer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<answer>42</answer>", "42"),
        ("<think>x</think><answer> first </answer>then<answer>\n second \n</answer>", "second"),
        ("no tags at all", None),
        ("<answer>unclosed", None),
        ("<answer>real</answer><tool_response><answer>fake</answer></tool_response>", "real"),
        ("<tool_response><answer>only in tool</answer></tool_response>", None),
        ("<answer>x</answer><tool_response>unclosed <answer>y</answer>", "x"),
        ("<answer>multi\nline</answer>", "multi\nline"),
    ],
)
def test_extract_answer(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


def test_extract_answer_rejects_non_str() -> None:
    with pytest.raises(TypeError, match="expects a str"):
        extract_answer(None)  # type: ignore[arg-type]


def test_canonical_call_text_keeps_the_reasoning_and_only_the_executed_call() -> None:
    from cv_protocol import canonical_call_text, render_tool_call

    first = render_tool_call("result = image.rotate(90, expand=True)", "turn", 0)
    second = render_tool_call("result = image", "noop", 0)
    fenced = "<think>sideways</think>\n<tool_call>\n```json\n" + first.split("\n")[1] + "\n```\n</tool_call>"
    for text in (fenced + "\nI expect it upright now.", first + second, "<think>sideways</think>\n" + first):
        call = parse_tool_calls(text)
        out = canonical_call_text(text, call)
        assert out.endswith(first) and out.count("<tool_call>") == 1 and "expect" not in out
        assert parse_tool_calls(out).warnings == []
    assert canonical_call_text(fenced, parse_tool_calls(fenced)).startswith("<think>sideways</think>\n")


@pytest.mark.parametrize(
    "arguments",
    [
        {"code": "result = image", "description": "d", "image_index": 1},
        {"code": "```python\nresult = image\n```", "image_index": "2"},
        {"python": "result = image"},
        '{"code": "result = image", "image_index": 0}',
        {"description": "no code"},
        {"code": "result = image", "image_index": "first"},
        ["not", "an", "object"],
    ],
)
def test_decoded_arguments_are_read_by_the_same_rules(arguments) -> None:
    from cv_protocol import parse_tool_arguments

    text = (
        "<tool_call>\n" + json.dumps({"name": "code_image_tool", "arguments": arguments}) + "\n</tool_call>"
    )
    assert parse_tool_arguments(arguments) == parse_tool_calls(text)
    assert parse_tool_arguments(arguments, name="other").kind == "wrong_tool"
