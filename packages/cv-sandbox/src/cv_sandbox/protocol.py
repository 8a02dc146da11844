"""The contract of the code tool shared by data generation, the agent loop and training.

One place for the tool schema, the system prompt, how a call is written (hermes ``<tool_call>`` JSON, as
Qwen2.5-VL / Qwen3-VL emit it) and read back (:func:`parse_tool_calls`, tolerant of real model mistakes;
:func:`extract_final_answer`), and how a sandbox result or an unreadable call is described back to the
model, so SFT data, teacher trajectories, RL rollouts and evaluation all speak exactly the same format.
"""

from __future__ import annotations

import json
from typing import Any

from .result import ExecResult

TOOL_NAME = "code_image_tool"

TOOL_SCHEMA: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": TOOL_NAME,
        "description": (
            "Run Python code on one of the conversation's images and get the resulting image back. "
            "The code sees `image` (alias `img`, the image with index `image_index`) and the modules "
            "`Image, ImageEnhance, ImageFilter, ImageOps, ImageDraw, np, cv2, math`, and must assign a PIL "
            "image to `result` (alias `output`). Example: `result = image.rotate(90, expand=True)`."
        ),
        "parameters": {
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
        },
    },
}

SYSTEM_PROMPT = f"""You are a visual reasoning assistant that can think with images by writing Python code.
The user's image may be rotated, flipped, low-contrast, noisy, or too small to read; fix it with code before answering.

Answer format:
1. Start every reply with your reasoning inside <think>...</think>.
2. To transform an image, call the tool after your thinking:
<tool_call>
{{"name": "{TOOL_NAME}", "arguments": {{"code": "result = image.rotate(90, expand=True)", "description": "Rotate the image upright.", "image_index": 0}}}}
</tool_call>
   The code sees `image` (alias `img`: the image with index `image_index`) and `Image, ImageEnhance, ImageFilter,
   ImageOps, ImageDraw, np, cv2, math`, and must assign a PIL image to `result`. Image 0 is the input; each tool
   output image gets the next index. Crop boxes are pixel coordinates of the image you operate on.
3. When you are sure, give the final answer once, at the end: <answer>...</answer>"""


def render_tool_call(code: str, description: str, image_index: int = 0) -> str:
    """Write one tool call exactly as the model is trained to emit it.

    Example:
        >>> render_tool_call("result = image", "noop", 0).splitlines()[0]
        '<tool_call>'
    """
    payload = {
        "name": TOOL_NAME,
        "arguments": {"code": code, "description": description, "image_index": image_index},
    }
    return "<tool_call>\n" + json.dumps(payload, ensure_ascii=False) + "\n</tool_call>"


def tool_response_text(result: ExecResult, new_index: int | None) -> str:
    """The text part of a tool message; on success the new image is attached beside it.

    Example:
        >>> from PIL import Image
        >>> tool_response_text(ExecResult(image=Image.new("RGB", (4, 2))), 1)
        'Execution succeeded. The result is image 1 (4x2 pixels).'
    """
    if result.ok and result.image is not None:
        w, h = result.image.size
        text = f"Execution succeeded. The result is image {new_index} ({w}x{h} pixels)."
        if result.stdout.strip():
            text += f"\nstdout:\n{result.stdout.rstrip()}"
        return text
    return f"Execution failed ({result.error_kind or 'error'}): {result.error}\nNo image was produced; fix the code and try again."


def parse_error_text(error: ParseError) -> str:
    """The text of the tool message that answers a call :func:`parse_tool_calls` could not read.

    Example:
        >>> parse_error_text(parse_tool_calls("<tool_call>{oops</tool_call>")).startswith("Tool call error: ")
        True
    """
    return f"Tool call error: {error.message}"


# The parser lives in its own module and needs TOOL_NAME from above, hence the import at the end.
from ._parsing import ParsedCall, ParseError, extract_final_answer, parse_tool_calls  # noqa: E402

__all__ = [
    "SYSTEM_PROMPT",
    "TOOL_NAME",
    "TOOL_SCHEMA",
    "ParseError",
    "ParsedCall",
    "extract_final_answer",
    "parse_error_text",
    "parse_tool_calls",
    "render_tool_call",
    "tool_response_text",
]
