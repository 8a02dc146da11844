"""The wire format: tool schema, how a call is written, how a tool response is wrapped and read back."""

from __future__ import annotations

import json

from cv_protocol import (
    TOOL_NAME,
    TOOL_SCHEMA,
    completion_to_text,
    extract_answer,
    parse_tool_calls,
    render_tool_call,
    strip_tool_responses,
    tool_schema,
    wrap_tool_response,
    wrap_tool_response_parts,
)
from hypothesis import assume, given
from hypothesis import strategies as st


def test_schema_names_the_tool_and_its_arguments() -> None:
    fn = TOOL_SCHEMA["function"]
    assert TOOL_SCHEMA["type"] == "function" and fn["name"] == TOOL_NAME == "code_image_tool"
    assert (
        list(fn["parameters"]["properties"])
        == fn["parameters"]["required"]
        == ["code", "description", "image_index"]
    )
    assert fn["parameters"]["properties"]["image_index"]["type"] == "integer"


def test_schema_copies_are_independent() -> None:
    a = tool_schema("x")
    a["function"]["parameters"]["required"].append("bogus")
    assert tool_schema("x")["function"]["parameters"]["required"] == ["code", "description", "image_index"]


def test_rendered_call_is_one_json_line_between_tags() -> None:
    text = render_tool_call("a = 'ü'\nresult = image", "unicode", 3)
    head, body, tail = text.split("\n")
    assert (head, tail) == ("<tool_call>", "</tool_call>")
    assert json.loads(body) == {
        "name": TOOL_NAME,
        "arguments": {"code": "a = 'ü'\nresult = image", "description": "unicode", "image_index": 3},
    }
    assert "ü" in body  # not escaped: the model emits the characters themselves


def test_wrapped_parts_render_like_wrapped_text() -> None:
    parts = [
        {"type": "image"},
        {"type": "text", "text": "Execution succeeded."},
        {"type": "text", "text": "!"},
    ]
    wrapped = wrap_tool_response_parts(parts)
    assert [p["type"] for p in wrapped] == ["text", "image", "text"]
    assert "".join(p.get("text", "<image>") for p in wrapped) == wrap_tool_response(
        "<image>Execution succeeded.!"
    )
    assert parts[1] == {"type": "text", "text": "Execution succeeded."}  # the input is not modified


@given(st.text(max_size=60))
def test_a_wrapped_response_is_stripped_again(text: str) -> None:
    assume("</tool_response>" not in text)
    assert strip_tool_responses("before" + wrap_tool_response(text) + "after") == "beforeafter"
    # An answer inside a tool response is never the model's.
    assert extract_answer(wrap_tool_response(f"<answer>{text}</answer>")) is None


def test_written_and_read_in_one_format() -> None:
    call = render_tool_call("result = image.rotate(90, expand=True)", "rotate", 0)
    rollout = completion_to_text(
        [
            {"role": "assistant", "content": f"<think>tilted</think>\n{call}"},
            {"role": "tool", "content": [{"type": "image"}, {"type": "text", "text": "<answer>no</answer>"}]},
            {"role": "assistant", "content": "<think>upright</think>\n<answer>7</answer>"},
        ],
        sep="\n",
    )
    assert parse_tool_calls(rollout).code == "result = image.rotate(90, expand=True)"
    assert extract_answer(rollout) == "7"
    assert "<tool_response>\n<image><answer>no</answer>\n</tool_response>" in rollout


def test_closed_only_stripping_keeps_an_unclosed_response() -> None:
    # The public release's reward removes closed blocks only (cv_rewards.release reads text this way).
    cut = "<think>a</think>" + wrap_tool_response("ok") + "<tool_response>\n<answer>X</answer>"
    assert strip_tool_responses(cut) == "<think>a</think>"
    assert (
        strip_tool_responses(cut, strip_unclosed=False)
        == "<think>a</think><tool_response>\n<answer>X</answer>"
    )
    assert extract_answer(cut) is None
    assert extract_answer(cut, strip_unclosed=False) == "X"
    closed = wrap_tool_response("<answer>no</answer>") + "<answer>yes</answer>"
    assert extract_answer(closed, strip_unclosed=False) == extract_answer(closed) == "yes"


def test_tools_block_is_the_hermes_template_text() -> None:
    from cv_protocol import SYSTEM_PROMPT, render_tools_block, system_with_tools

    block = render_tools_block([TOOL_SCHEMA])
    assert block.startswith("# Tools\n\nYou may call one or more functions")
    assert "\n<tools>\n" + json.dumps(TOOL_SCHEMA, ensure_ascii=False) + "\n</tools>\n" in block
    assert block.endswith(
        '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
    )
    assert system_with_tools(SYSTEM_PROMPT, [TOOL_SCHEMA]) == SYSTEM_PROMPT + "\n\n" + block
    assert system_with_tools(None, [TOOL_SCHEMA]) == block
    assert system_with_tools("s", []) == "s"
