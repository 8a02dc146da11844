"""Chat messages as text: the text of a message's content, and a whole completion flattened into the
rollout text that answer extraction and the format reward read.

Messages are OpenAI-style dicts whose ``content`` is a string or a list of parts (``{"type": "text",
"text": ...}``, ``{"type": "image", ...}`` or ``{"type": "image_url", ...}``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .tool import TOOL_CALL_END, TOOL_CALL_START, wrap_tool_response

__all__ = ["IMAGE_TOKEN", "completion_to_text", "content_text"]

#: What an image part becomes in flattened text (ShareGPT/LLaMA-Factory convention).
IMAGE_TOKEN = "<image>"

_IMAGE_PARTS = ("image", "image_url")


def content_text(content: Any, image_token: str = "") -> str:
    """The text of a message's content: text parts joined, each image part replaced by ``image_token``.

    Example:
        >>> content_text([{"type": "image"}, {"type": "text", "text": "What is "}, {"type": "text", "text": "it?"}])
        'What is it?'
        >>> content_text([{"type": "image"}, {"type": "text", "text": "x"}], image_token=IMAGE_TOKEN)
        '<image>x'
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return str(content)
    out: list[str] = []
    for part in content:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, dict):
            out.append(image_token if part.get("type") in _IMAGE_PARTS else str(part.get("text") or ""))
    return "".join(out)


def completion_to_text(
    completion: str | dict[str, Any] | Sequence[dict[str, Any]],
    *,
    sep: str = "",
    image_token: str = IMAGE_TOKEN,
) -> str:
    """Flatten a completion (a string, one message or a list of messages) into rollout text.

    Assistant ``reasoning_content`` becomes ``<think>...</think>``, structured ``tool_calls`` become hermes
    ``<tool_call>{...}</tool_call>`` blocks and tool messages are wrapped as tool responses (which answer
    extraction and the format reward ignore).

    Args:
        completion: TRL's completion (text or conversational) or a trajectory's messages.
        sep: Put between messages (``"\\n"`` separates turns as the chat templates do).
        image_token: What an image part becomes.

    Example:
        >>> completion_to_text([
        ...     {"role": "assistant", "reasoning_content": "tilted", "content": "",
        ...      "tool_calls": [{"type": "function", "function": {"name": "code_image_tool", "arguments": {"code": "x"}}}]},
        ...     {"role": "tool", "name": "code_image_tool", "content": [{"type": "text", "text": "ok"}]},
        ...     {"role": "assistant", "content": "<think>fine</think><answer>7</answer>"}])
        '<think>tilted</think><tool_call>{"name": "code_image_tool", "arguments": {"code": "x"}}</tool_call><tool_response>\\nok\\n</tool_response><think>fine</think><answer>7</answer>'
    """
    if isinstance(completion, str):
        return completion
    messages = [completion] if isinstance(completion, dict) else list(completion)
    return sep.join(_message_text(msg, image_token) for msg in messages)


def _message_text(msg: Any, image_token: str) -> str:
    if not isinstance(msg, dict):
        raise ValueError(
            f"a conversational completion must be a list of message dicts, got {type(msg).__name__}"
        )
    text = content_text(msg.get("content"), image_token)
    if msg.get("role", "assistant") == "tool":
        return wrap_tool_response(text)
    out: list[str] = []
    reasoning = msg.get("reasoning_content") or msg.get("reasoning") or msg.get("thinking")
    if reasoning:
        out.append(f"<think>{reasoning}</think>")
    out.append(text)
    for call in msg.get("tool_calls") or []:
        fn = call.get("function", call) if isinstance(call, dict) else {}
        args = fn.get("arguments", {})
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                pass
        out.append(TOOL_CALL_START + json.dumps({"name": fn.get("name"), "arguments": args}) + TOOL_CALL_END)
    return "".join(out)
