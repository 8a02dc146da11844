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
    "render_tools_block",
    "strip_tool_responses",
    "system_with_tools",
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


# What the hermes chat templates (Qwen2.5, Qwen3, Qwen2.5-VL/Qwen3-VL and ours in cv_agent/chat_templates) write
# around the tool schemas in the system turn.
_TOOLS_HEAD = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
_TOOLS_TAIL = (
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": '
    "<args-json-object>}\n</tool_call>"
)


def render_tools_block(tools: list[dict[str, Any]]) -> str:
    """The ``# Tools`` block a hermes chat template renders for ``tools``, character for character.

    Each schema is written as transformers' ``tojson`` filter writes it (``json.dumps`` with
    ``ensure_ascii=False``, default separators, keys in order).

    Example:
        >>> print(render_tools_block([{"name": "f"}]).splitlines()[6])
        {"name": "f"}
    """
    if not tools:
        raise ValueError("render_tools_block needs at least one tool schema")
    body = "".join("\n" + json.dumps(t, ensure_ascii=False) for t in tools)
    return _TOOLS_HEAD + body + _TOOLS_TAIL


def system_with_tools(system: str | None, tools: list[dict[str, Any]] | None) -> str | None:
    """The text of the system turn as a hermes chat template renders ``system`` with ``tools``.

    Sending this as the system message (and no ``tools``) makes any chat template that renders a system
    message verbatim produce the same prompt as the hermes template given ``tools``: how the
    OpenAI-compatible backend shows the model the same tokens as the local backends and training. With no
    ``system`` the block stands alone (Qwen3 templates; Qwen2.5 ones would add their default system prompt).

    Example:
        >>> system_with_tools("Be brief.", [{"name": "f"}]).startswith("Be brief.\\n\\n# Tools\\n")
        True
        >>> system_with_tools("Be brief.", None)
        'Be brief.'
    """
    if not tools:
        return system
    block = render_tools_block(tools)
    return f"{system}\n\n{block}" if system else block


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
