"""Presets: everything the model is shown of the protocol, as one object.

A :class:`Preset` bundles the system prompt, the tool description, the texts of tool responses (success,
failure, an unreadable call) and the code length limit. The wire format (tool name, arguments, tags) is
fixed (:mod:`cv_protocol.tool`), so every preset is read by the same parser. Presets live in one registry
(:data:`PRESETS`, looked up with :func:`get_preset`); a new prompt style is one more entry there, and
whoever builds prompts (agent, data, training, benchmarks) takes a preset instead of loose strings.

``"default"`` is this project's prompt; the module-level :data:`SYSTEM_PROMPT`, :data:`TOOL_SCHEMA`,
:func:`tool_response_text` and :func:`parse_error_text` are its values.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from .tool import TOOL_NAME, tool_schema

__all__ = [
    "DEFAULT_PRESET",
    "NO_TOOL_PROMPT",
    "PRESETS",
    "SYSTEM_PROMPT",
    "TOOL_SCHEMA",
    "ExecOutcome",
    "Preset",
    "ToolCallError",
    "get_preset",
    "parse_error_text",
    "tool_response_text",
]


class _Sized(Protocol):
    @property
    def size(self) -> tuple[int, int]: ...


class ExecOutcome(Protocol):
    """What a tool response is written from: the result of one sandboxed execution.

    ``cv_sandbox.ExecResult`` is one; any object with these attributes will do.
    """

    @property
    def ok(self) -> bool: ...
    @property
    def image(self) -> _Sized | None: ...
    @property
    def stdout(self) -> str: ...
    @property
    def error(self) -> str | None: ...
    @property
    def error_kind(self) -> str | None: ...


class ToolCallError(Protocol):
    """A tool call that could not be read (``cv_protocol.ParseError`` is one)."""

    @property
    def message(self) -> str: ...


#: The system prompt of a run without the tool (a no-tool baseline): same answer format, no tool.
NO_TOOL_PROMPT = """You are a visual reasoning assistant. No tools are available: look at the image and answer the question.

Answer format:
1. Start your reply with your reasoning inside <think>...</think>.
2. Then give the final answer once, at the end: <answer>...</answer>"""

# Placeholders each text template may use; a template without its required ones is rejected.
_TEMPLATE_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # name: (allowed, required)
    "success_template": (frozenset({"index", "width", "height"}), frozenset({"index"})),
    "stdout_template": (frozenset({"stdout"}), frozenset({"stdout"})),
    "failure_template": (frozenset({"kind", "error"}), frozenset({"error"})),
    "parse_error_template": (frozenset({"message"}), frozenset({"message"})),
}


@dataclass(frozen=True)
class Preset:
    """What the model is shown of the protocol.

    Attributes:
        name: Registry key, e.g. ``"default"``.
        system_prompt: The system message that explains the tool and the answer format.
        tool_description: The ``description`` of the tool in its function schema (:meth:`tool_schema`).
        success_template: Tool response after a successful call; ``{index}`` is the new image's index,
            ``{width}``/``{height}`` its size in pixels.
        stdout_template: Appended to the success text when the code printed something; ``{stdout}``.
        failure_template: Tool response after a failed call (no image); ``{kind}`` is the error kind
            (``"error"`` when unknown), ``{error}`` the sandbox's message.
        parse_error_template: Tool response to a call that could not be read; ``{message}`` is the
            parser's explanation.
        max_code_chars: Longest code the tool accepts (the sandbox's limit to configure).
        no_tool_prompt: The system message when the tool is disabled (a no-tool baseline such as
            ``cv-bench eval --no-tools``): the same answer format, no tool.

    Example:
        >>> p = get_preset("default")
        >>> p.parse_error_text(type("E", (), {"message": "bad JSON"})())
        'Tool call error: bad JSON'
    """

    name: str
    system_prompt: str
    tool_description: str
    success_template: str
    stdout_template: str
    failure_template: str
    parse_error_template: str
    max_code_chars: int
    no_tool_prompt: str = NO_TOOL_PROMPT

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("Preset.name is empty: give the preset a registry name such as 'default'")
        if (
            not self.system_prompt.strip()
            or not self.tool_description.strip()
            or not self.no_tool_prompt.strip()
        ):
            raise ValueError(
                f"Preset {self.name!r}: set a non-empty system_prompt, tool_description and no_tool_prompt"
            )
        for attr, (allowed, required) in _TEMPLATE_FIELDS.items():
            used = {f for _, f, _, _ in string.Formatter().parse(getattr(self, attr)) if f is not None}
            if used - allowed or required - used:
                raise ValueError(
                    f"Preset {self.name!r}: {attr} may use the placeholders {sorted(allowed)} and must use "
                    f"{sorted(required)}; it uses {sorted(used)}"
                )
        if self.max_code_chars < 1:
            raise ValueError(f"Preset {self.name!r}: max_code_chars must be >= 1, got {self.max_code_chars}")

    def tool_schema(self) -> dict[str, Any]:
        """The tool's function schema with this preset's description (a fresh dict each call).

        Example:
            >>> DEFAULT_PRESET.tool_schema()["function"]["parameters"]["required"]
            ['code', 'description', 'image_index']
        """
        return tool_schema(self.tool_description)

    def tool_response_text(self, result: ExecOutcome, new_index: int | None) -> str:
        """The text part of a tool message; on success the new image is attached beside it.

        Args:
            result: The execution's outcome (``cv_sandbox.ExecResult`` or alike).
            new_index: Index the output image gets in the conversation (``None`` on failure).

        Example:
            >>> from types import SimpleNamespace as NS
            >>> ok = NS(ok=True, image=NS(size=(4, 2)), stdout="", error=None, error_kind=None)
            >>> DEFAULT_PRESET.tool_response_text(ok, 1)
            'Execution succeeded. The result is image 1 (4x2 pixels).'
        """
        if result.ok and result.image is not None:
            w, h = result.image.size
            text = self.success_template.format(index=new_index, width=w, height=h)
            if result.stdout.strip():
                text += self.stdout_template.format(stdout=result.stdout.rstrip())
            return text
        return self.failure_template.format(kind=result.error_kind or "error", error=result.error)

    def parse_error_text(self, error: ToolCallError) -> str:
        """The text of the tool message that answers a call the parser could not read."""
        return self.parse_error_template.format(message=error.message)


DEFAULT_PRESET = Preset(
    name="default",
    system_prompt=f"""You are a visual reasoning assistant that can think with images by writing Python code.
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
3. When you are sure, give the final answer once, at the end: <answer>...</answer>""",
    tool_description=(
        "Run Python code on one of the conversation's images and get the resulting image back. "
        "The code sees `image` (alias `img`, the image with index `image_index`) and the modules "
        "`Image, ImageEnhance, ImageFilter, ImageOps, ImageDraw, np, cv2, math`, and must assign a PIL "
        "image to `result` (alias `output`). Example: `result = image.rotate(90, expand=True)`."
    ),
    success_template="Execution succeeded. The result is image {index} ({width}x{height} pixels).",
    stdout_template="\nstdout:\n{stdout}",
    failure_template="Execution failed ({kind}): {error}\nNo image was produced; fix the code and try again.",
    parse_error_template="Tool call error: {message}",
    max_code_chars=20_000,  # cv_sandbox.SandboxConfig's default
)

#: Every preset by name. Add a prompt style by adding an entry here.
PRESETS: Mapping[str, Preset] = MappingProxyType({p.name: p for p in (DEFAULT_PRESET,)})


def get_preset(name: str) -> Preset:
    """The preset registered as ``name``.

    Example:
        >>> get_preset("default") is DEFAULT_PRESET
        True
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None


#: The default preset's system prompt.
SYSTEM_PROMPT: str = DEFAULT_PRESET.system_prompt
#: The default preset's tool schema (OpenAI/hermes function format), as chat templates receive it.
TOOL_SCHEMA: dict[str, Any] = DEFAULT_PRESET.tool_schema()


def tool_response_text(result: ExecOutcome, new_index: int | None) -> str:
    """:meth:`Preset.tool_response_text` of the default preset.

    Example:
        >>> from types import SimpleNamespace as NS
        >>> bad = NS(ok=False, image=None, stdout="", error="name 'x' is not defined", error_kind="exception")
        >>> print(tool_response_text(bad, None))
        Execution failed (exception): name 'x' is not defined
        No image was produced; fix the code and try again.
    """
    return DEFAULT_PRESET.tool_response_text(result, new_index)


def parse_error_text(error: ToolCallError) -> str:
    """:meth:`Preset.parse_error_text` of the default preset.

    Example:
        >>> from cv_protocol.parsing import parse_tool_calls
        >>> parse_error_text(parse_tool_calls("<tool_call>{oops</tool_call>")).startswith("Tool call error: ")
        True
    """
    return DEFAULT_PRESET.parse_error_text(error)
