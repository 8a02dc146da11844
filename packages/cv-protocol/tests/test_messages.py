"""Messages as text: content parts joined, completions flattened into rollout text."""

from __future__ import annotations

import pytest
from cv_protocol import completion_to_text, content_text, extract_answer, wrap_tool_response


def test_content_text() -> None:
    parts = [
        "raw ",
        {"type": "text", "text": "a"},
        {"type": "image", "image_index": 0},
        {"type": "image_url", "image_url": {"url": "data:"}},
        {"type": "text", "text": None},
        {"type": "text", "text": "b"},
    ]
    assert content_text(parts) == "raw ab"
    assert content_text(parts, image_token="<image>") == "raw a<image><image>b"
    assert content_text("plain") == "plain" and content_text(None) == ""


def test_completion_to_text_variants() -> None:
    assert completion_to_text("plain") == "plain"
    assert (
        completion_to_text(
            {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "image"}]}
        )
        == "a<image>"
    )
    text = completion_to_text(
        [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "type": "function",
                        "function": {"name": "code_image_tool", "arguments": '{"code": "x"}'},
                    }
                ],
            }
        ]
    )
    assert text == '<tool_call>{"name": "code_image_tool", "arguments": {"code": "x"}}</tool_call>'
    with pytest.raises(ValueError, match="message dicts"):
        completion_to_text(["not a message"])  # type: ignore[list-item]


def test_tool_turns_are_wrapped_once_and_turns_joined() -> None:
    msgs = [
        {"role": "assistant", "content": "<think>a</think><tool_call>{}</tool_call>"},
        {"role": "tool", "content": [{"type": "image", "image_index": 1}, {"type": "text", "text": "done"}]},
        {"role": "assistant", "content": "<answer>B</answer>"},
    ]
    assert completion_to_text(msgs, sep="\n") == (
        "<think>a</think><tool_call>{}</tool_call>\n"
        + wrap_tool_response("<image>done")
        + "\n<answer>B</answer>"
    )
    assert extract_answer(completion_to_text(msgs)) == "B"
    with pytest.raises(ValueError, match="message dicts"):
        completion_to_text([{"role": "assistant", "content": "x"}, 3])  # type: ignore[list-item]
