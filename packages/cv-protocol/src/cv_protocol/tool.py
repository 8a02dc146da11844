"""The code tool's wire format: its name and arguments, how a call is written (hermes ``<tool_call>`` JSON,
as Qwen2.5-VL / Qwen3-VL emit it) and how a tool response is wrapped into text.

What the model is *told* about the tool (system prompt, tool description, response texts) varies by
preset and lives in :mod:`cv_protocol.presets`; what is written here is fixed, because the parser
(:mod:`cv_protocol.parsing`) reads it back.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "TOOL_CALL_END",
    "TOOL_CALL_START",
    "TOOL_NAME",
    "TOOL_PARAMETERS",
    "TOOL_RESPONSE_END",
    "TOOL_RESPONSE_START",
    "render_tool_call",
    "strip_tool_responses",
    "tool_schema",
    "wrap_tool_response",
    "wrap_tool_response_parts",
]

TOOL_NAME = "code_image_tool"

#: JSON schema of the tool's arguments (the ``parameters`` of the OpenAI/hermes tool schema).
TOOL_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {
            "type": "string",
            "description": "Python code that assigns a PIL image to `result`.",
        },
        "description": {"type": "string", "description": "One sentence: what the code does and why."},
        "image_index": {
            "type": "integer",
            "description": "Which image to operate on: 0 is the input, each tool output gets the next index.",
        },
    },
    "required": ["code", "description", "image_index"],
}

#: Tags around a tool call in a reply.
TOOL_CALL_START = "<tool_call>"
TOOL_CALL_END = "</tool_call>"
#: Tags around a tool response when it is rendered as text (Qwen chat templates' tool turn).
TOOL_RESPONSE_START = "<tool_response>"
TOOL_RESPONSE_END = "</tool_response>"
# The templates put the response on lines of its own; these two strings are the whole wrapping.
_OPEN = TOOL_RESPONSE_START + "\n"
_CLOSE = "\n" + TOOL_RESPONSE_END
# An unclosed response runs to the end of the text (a rollout cut off mid-response).
_TOOL_RESPONSE_RE = re.compile(
    re.escape(TOOL_RESPONSE_START) + r".*?(?:" + re.escape(TOOL_RESPONSE_END) + r"|\Z)", re.DOTALL
)
_CLOSED_TOOL_RESPONSE_RE = re.compile(
    re.escape(TOOL_RESPONSE_START) + r".*?" + re.escape(TOOL_RESPONSE_END), re.DOTALL
)


def tool_schema(description: str) -> dict[str, Any]:
    """The OpenAI/hermes function schema of the tool with the given description.

    Example:
        >>> tool_schema("Run code.")["function"]["name"]
        'code_image_tool'
    """
    return {
        "type": "function",
        "function": {
            "name": TOOL_NAME,
            "description": description,
            "parameters": json.loads(json.dumps(TOOL_PARAMETERS)),  # a copy callers may edit
        },
    }


def render_tool_call(code: str, description: str, image_index: int = 0) -> str:
    """Write one tool call exactly as the model is trained to emit it.

    Example:
        >>> print(render_tool_call("result = image", "noop", 0))
        <tool_call>
        {"name": "code_image_tool", "arguments": {"code": "result = image", "description": "noop", "image_index": 0}}
        </tool_call>
    """
    payload = {
        "name": TOOL_NAME,
        "arguments": {"code": code, "description": description, "image_index": image_index},
    }
    return f"{TOOL_CALL_START}\n{json.dumps(payload, ensure_ascii=False)}\n{TOOL_CALL_END}"


def wrap_tool_response(text: str) -> str:
    """A tool response as text, exactly as the Qwen chat templates render a tool turn.

    Example:
        >>> wrap_tool_response("ok")
        '<tool_response>\\nok\\n</tool_response>'
    """
    return _OPEN + text + _CLOSE


def wrap_tool_response_parts(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """:func:`wrap_tool_response` for a list of content parts (images stay parts between the tags).

    Adjacent text parts are merged, so the rendered text is byte-identical to the template's tool turn.

    Example:
        >>> wrap_tool_response_parts([{"type": "image"}, {"type": "text", "text": "ok"}])
        [{'type': 'text', 'text': '<tool_response>\\n'}, {'type': 'image'}, {'type': 'text', 'text': 'ok\\n</tool_response>'}]
    """
    merged: list[dict[str, Any]] = []
    for p in [{"type": "text", "text": _OPEN}, *parts, {"type": "text", "text": _CLOSE}]:
        if p.get("type") == "text" and merged and merged[-1].get("type") == "text":
            merged[-1] = {"type": "text", "text": merged[-1]["text"] + p.get("text", "")}
        else:
            merged.append(p)
    return merged


def strip_tool_responses(text: str, *, strip_unclosed: bool = True) -> str:
    """Remove tool responses from rendered text.

    Args:
        text: Rendered text (one reply or a whole rollout).
        strip_unclosed: Also remove an unclosed response, up to the end of the text (a rollout cut off
            mid-response). ``False`` removes closed blocks only and keeps the rest, as the public release's
            reward does (``cv_rewards.release``).

    Example:
        >>> strip_tool_responses("a<tool_response><answer>x</answer></tool_response>b")
        'ab'
        >>> cut = "a<tool_response>cut off"
        >>> strip_tool_responses(cut), strip_tool_responses(cut, strip_unclosed=False)
        ('a', 'a<tool_response>cut off')
    """
    return (_TOOL_RESPONSE_RE if strip_unclosed else _CLOSED_TOOL_RESPONSE_RE).sub("", text)
