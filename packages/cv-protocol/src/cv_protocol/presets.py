"""Presets: everything the model is shown of the protocol, as one object.

A :class:`Preset` bundles the system prompt, the tool description, the texts of tool responses (success,
failure, an unreadable call) and the code length limit. The wire format (tool name, arguments, tags) is
fixed (:mod:`cv_protocol.tool`), so every preset is read by the same parser. Presets live in one registry
(:data:`PRESETS`, looked up with :func:`get_preset`); a new prompt style is one more entry there, and
whoever builds prompts (agent, data, training, benchmarks) takes a preset instead of loose strings.

``"default"`` is this project's prompt; the module-level :data:`SYSTEM_PROMPT`, :data:`TOOL_SCHEMA`,
:func:`tool_response_text` and :func:`parse_error_text` are its values. ``"release"`` is what the public
CodeVision release (github ByteDance-BandAI/CodeVision @ e098588) shows its model: its system prompt, tool
schema, tool-response texts and 2,048-character code limit, so a release-trained model sees the tokens it
was trained on.
"""

from __future__ import annotations

import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from .tool import TOOL_NAME, TOOL_PARAMETERS, tool_schema

__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "RELEASE_PRESET",
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


class _FrozenMap(Mapping[str, str]):
    """A read-only, hashable, picklable ``str -> str`` mapping (a preset's per-key texts)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        self._items: dict[str, str] = dict(items or {})

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._items.items())))

    def __repr__(self) -> str:
        return repr(self._items)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_FrozenMap, (self._items,))


def _fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}


# Placeholders each text may use, and those it must use ("" is allowed where noted in Preset's docstring).
_TEMPLATE_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # name: (allowed, required)
    "success_template": (frozenset({"index", "width", "height"}), frozenset()),
    "stdout_template": (frozenset({"stdout"}), frozenset({"stdout"})),
    "failure_template": (frozenset({"kind", "error", "limit"}), frozenset({"error"})),
    "parse_error_template": (frozenset({"message"}), frozenset({"message"})),
    "extra_calls_note": (frozenset({"n_calls"}), frozenset()),
    "default_index_note": (frozenset({"index"}), frozenset()),
}
# Texts that may be empty: nothing is shown then.
_MAY_BE_EMPTY = frozenset({"stdout_template", "extra_calls_note", "default_index_note"})
# Placeholders of failure_templates entries; "bad_index" also gets the requested index and the last valid one.
_FAILURE_FIELDS = frozenset({"kind", "error", "limit"})
_BAD_INDEX_FIELDS = _FAILURE_FIELDS | {"index", "last"}


@dataclass(frozen=True)
class Preset:
    """What the model is shown of the protocol.

    Attributes:
        name: Registry key, e.g. ``"default"``.
        system_prompt: The system message that explains the tool and the answer format.
        tool_description: The ``description`` of the tool in its function schema (:meth:`tool_schema`).
        success_template: Tool response after a successful call; may use ``{index}`` (the new image's
            index) and ``{width}``/``{height}`` (its size in pixels).
        stdout_template: Appended to the success text when the code printed something; ``{stdout}``.
            ``""``: printed output is not shown.
        failure_template: Tool response after a failed call (no image) whose kind has no entry in
            ``failure_templates``; ``{kind}`` is the error kind (``"error"`` when unknown), ``{error}`` the
            executor's message, ``{limit}`` :attr:`max_code_chars`.
        parse_error_template: Tool response to a call that could not be read; ``{message}`` is the
            parser's explanation.
        max_code_chars: Longest code the tool accepts; longer code is refused (error kind
            ``code_too_long``) before it runs.
        argument_descriptions: The ``description`` of each tool argument in the schema, by argument name
            (``code``, ``description``, ``image_index``); an argument without an entry keeps
            :data:`cv_protocol.TOOL_PARAMETERS`' text. Names, types and ``required`` are the wire format,
            the same for every preset.
        failure_templates: Tool responses for particular failures, by error kind (``cv_sandbox.ERROR_KINDS``,
            ``"bad_index"`` for an ``image_index`` that does not exist, ``"image_limit"`` for a call refused
            because the conversation holds the most images it may); placeholders as ``failure_template``,
            and ``"bad_index"`` may also use ``{index}`` (the requested index) and ``{last}`` (the highest
            valid one).
        extra_calls_note: Line appended to a tool response when the reply held several calls and only the
            first ran; ``{n_calls}``. ``""``: nothing is said.
        default_index_note: Line appended when the call gave no valid ``image_index`` and a default was
            used; ``{index}``. ``""``: nothing is said.
        tools_in_prompt: Render the tool schema into the prompt (the chat template's ``# Tools`` block) for
            inference, SFT and RL. ``False``: the system prompt alone describes the tool.

    Example:
        >>> p = get_preset("default")
        >>> p.parse_error_text(type("E", (), {"message": "bad JSON"})())
        'Tool call error: bad JSON'
        >>> p.failure_text("bad_index", "image_index 3 does not exist; valid indices are 0..1.", index=3, last=1)
        'Execution failed (bad_index): image_index 3 does not exist; valid indices are 0..1.\\nNo image was produced; fix the call and try again.'
    """

    name: str
    system_prompt: str
    tool_description: str
    success_template: str
    stdout_template: str
    failure_template: str
    parse_error_template: str
    max_code_chars: int
    argument_descriptions: Mapping[str, str] = field(default_factory=_FrozenMap)
    failure_templates: Mapping[str, str] = field(default_factory=_FrozenMap)
    extra_calls_note: str = ""
    default_index_note: str = ""
    tools_in_prompt: bool = True

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("Preset.name is empty: give the preset a registry name such as 'default'")
        if not self.system_prompt.strip() or not self.tool_description.strip():
            raise ValueError(f"Preset {self.name!r}: set a non-empty system_prompt and tool_description")
        for attr, (allowed, required) in _TEMPLATE_FIELDS.items():
            text = getattr(self, attr)
            if not isinstance(text, str):
                raise ValueError(f"Preset {self.name!r}: {attr} must be a string, got {type(text).__name__}")
            if attr in _MAY_BE_EMPTY and not text:
                continue
            used = _fields(text)
            if used - allowed or required - used:
                raise ValueError(
                    f"Preset {self.name!r}: {attr} may use the placeholders {sorted(allowed)} and must use "
                    f"{sorted(required)}; it uses {sorted(used)}"
                )
        unknown = set(self.argument_descriptions) - set(TOOL_PARAMETERS["properties"])
        if unknown:
            raise ValueError(
                f"Preset {self.name!r}: argument_descriptions has {sorted(unknown)}; the tool's arguments are "
                f"{sorted(TOOL_PARAMETERS['properties'])}"
            )
        for key, text in self.failure_templates.items():
            allowed = _BAD_INDEX_FIELDS if key == "bad_index" else _FAILURE_FIELDS
            if _fields(text) - allowed:
                raise ValueError(
                    f"Preset {self.name!r}: failure_templates[{key!r}] may use the placeholders "
                    f"{sorted(allowed)}; it uses {sorted(_fields(text))}"
                )
        # Read-only and hashable whatever mapping was given (a preset is shared by every caller).
        object.__setattr__(self, "argument_descriptions", _FrozenMap(self.argument_descriptions))
        object.__setattr__(self, "failure_templates", _FrozenMap(self.failure_templates))
        if self.max_code_chars < 1:
            raise ValueError(f"Preset {self.name!r}: max_code_chars must be >= 1, got {self.max_code_chars}")

    def tool_schema(self) -> dict[str, Any]:
        """The tool's function schema with this preset's descriptions (a fresh dict each call).

        Example:
            >>> DEFAULT_PRESET.tool_schema()["function"]["parameters"]["required"]
            ['code', 'description', 'image_index']
        """
        schema = tool_schema(self.tool_description)
        for arg, text in self.argument_descriptions.items():
            schema["function"]["parameters"]["properties"][arg]["description"] = text
        return schema

    def tools(self) -> list[dict[str, Any]]:
        """The ``tools`` list a chat template renders: ``[tool_schema()]``, or ``[]`` when the schema is not
        in the prompt (:attr:`tools_in_prompt`).

        Example:
            >>> [t["function"]["name"] for t in DEFAULT_PRESET.tools()]
            ['code_image_tool']
        """
        return [self.tool_schema()] if self.tools_in_prompt else []

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
            if self.stdout_template and result.stdout.strip():
                text += self.stdout_template.format(stdout=result.stdout.rstrip())
            return text
        return self.failure_text(result.error_kind or "error", result.error)

    def failure_text(
        self, kind: str, error: str | None, *, index: Any = None, last: int | None = None
    ) -> str:
        """The tool response to a failed or refused call of error ``kind``.

        Args:
            kind: The error kind (a key of :attr:`failure_templates`, else :attr:`failure_template` is used).
            error: The executor's message.
            index: ``"bad_index"`` only: the index the call asked for.
            last: ``"bad_index"`` only: the highest valid index.
        """
        template = self.failure_templates.get(kind, self.failure_template)
        return template.format(kind=kind, error=error, limit=self.max_code_chars, index=index, last=last)

    def parse_error_text(self, error: ToolCallError) -> str:
        """The text of the tool message that answers a call the parser could not read."""
        return self.parse_error_template.format(message=error.message)

    def call_notes(self, n_calls: int, default_index: int | None) -> list[str]:
        """Lines appended to a tool response about how the call was read.

        Args:
            n_calls: Tool calls in the reply (only the first runs).
            default_index: The index used when the call gave no valid one, else ``None``.

        Example:
            >>> DEFAULT_PRESET.call_notes(2, None)
            ['Note: your reply contained 2 tool calls; only the first was executed.']
        """
        notes = []
        if n_calls > 1 and self.extra_calls_note:
            notes.append(self.extra_calls_note.format(n_calls=n_calls))
        if default_index is not None and self.default_index_note:
            notes.append(self.default_index_note.format(index=default_index))
        return notes


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
    failure_templates={
        "bad_index": "Execution failed (bad_index): {error}\nNo image was produced; fix the call and try again.",
        "image_limit": "Execution failed (output_too_large): {error}",
    },
    extra_calls_note="Note: your reply contained {n_calls} tool calls; only the first was executed.",
    default_index_note="Note: no valid image_index was given; image {index} was used.",
)

# The public release (github ByteDance-BandAI/CodeVision @ e098588) as its model sees it; each text is quoted
# from the file named beside it (packages/cv-protocol/tests/test_presets.py pins them with file and line).
# Its tool responses end with this sentence (verl/tools/code_image_tool.py, lines 395-474; "<tool_calls>" sic).
_RELEASE_NEXT = (
    "Please keep thinking step-by-step inside the <think></think> tags to determine the next action. "
    "If additional tools are required, call them inside the <tool_calls></tool_calls> tags. "
    "Otherwise, provide your final answer within the <answer></answer> tags."
)
_RELEASE_VALIDATION = "Error: Code validation failed: {error}. " + _RELEASE_NEXT

RELEASE_PRESET = Preset(
    name="release",
    # recipe/codevision/config/sp.txt, read whole (no trailing newline; its typos kept: "f the image").
    system_prompt=(
        "You are an advanced MLLM that can solve complex problems with powerful image processing and analysis "
        "capabilities. You have access to tools that allow you to process, analyze, and manipulate images. You "
        "must think step-by-step inside the <think></think> tags first to determine the next action. If tools "
        "are needed to process the image, call them inside the <tool_call></tool_call>. Otherwise, provide your "
        "final answer within the <answer></answer> tag.\n"
        "\n"
        "## Analysis Chain\n"
        "\n"
        "**Think and Analysis** \u2192 **Validate** \u2192 **Iterate when needed** \u2192 **Answer**\n"
        "\n"
        "1. **Think and Analyze**: Examine the image and question, identify key features, objects, text, or "
        "patterns. Analyze the image carefully and call tools if needed. f the image is misoriented, use tools "
        "to rotate or flip it so it displays correctly before proceeding. Crop or zoom into regions of interest "
        "to reveal fine details, or do other image processing operations.\n"
        "2. **Validate**: Analyze the tool returns and think further.\n"
        "3. **Iterate step 1 when needed or initial hypotheses are wrong**: For example, when the tool "
        "invocation fails, you should analyze the reason, recall it or call another tool. Cross-check findings "
        "with additional tools if needed.\n"
        "4. **Answer**: If you can reach the answer according to the tool returns and analysis, provide the "
        "answer inside the <answer></answer> tag.\n"
        "\n"
        "**Key Principles**: Be systematic, iterate when needed, focus on the task, use tools proactively to "
        "enhance understanding beyond surface-level observation."
    ),
    # recipe/codevision/config/code_image_tool_config.yaml, line 14.
    tool_description=(
        "A unified tool for image processing using executable Python code. Supports basic operations (zoom in, "
        "resize, rotate, flip, brightness, contrast), mathematical visualizations (auxiliary lines, bounding "
        "boxes, coordinate systems, function graphs). The 'draw' variable provides drawing capabilities."
    ),
    # The same file, lines 20-34, as verl hands it to the chat template: the YAML block scalar keeps its
    # newlines and a final one; image_index's "minimum: 0" is dropped by verl's OpenAIFunctionPropertySchema
    # (verl/tools/schemas.py, lines 21-26, has no such field), so the model never saw it.
    argument_descriptions={
        "code": (
            "Python code to process the image. Use 'image' or 'img' for input, 'draw' for drawing. Important: "
            "Do not read image from file or URL, directly use the 'image' or 'img' variable. Return PIL Image "
            "object and save the result to 'result' or 'output' variable. Examples:\n"
            "- Zoom in: result = image.crop((x_min, y_min, x_max, y_max))\n"
            "- Rotate: result = image.rotate(90/180/270, expand=True), expand=True must be set to True\n"
            "- Flip: result = image.transpose(Image.FLIP_LEFT_RIGHT) or image.transpose(Image.FLIP_TOP_BOTTOM)\n"
            "- Brightness: result = ImageEnhance.Brightness(image).enhance(factor)\n"
            "- Contrast: result = ImageEnhance.Contrast(image).enhance(factor)\n"
            "You can also use other operations from PIL, NumPy, OpenCV, and math libraries. You should observe "
            "the image carefully and determine the best operation to perform. If the image has a wrong direction "
            "(usually happens), you should consider flipping or rotating the image to the correct direction "
            "before answering the question. Important Hint: Zoom in, Rotate and Flip are the most common "
            "operations to solve the question and should be prioritized.\n"
        ),
        "description": (
            "Clear description of what the code does. For example, 'Draw a line from (10, 20) to (30, 40)', "
            "'Flip the image horizontally'"
        ),
        "image_index": "Index of the image in the trajectory to process (0-based).",
    },
    # verl/tools/code_image_tool.py, line 460: no index, no size.
    success_template=("Here is the processed image. Now, analyze the returned results. " + _RELEASE_NEXT),
    stdout_template="",  # the release never shows printed output (print goes to its worker's stdout)
    # Line 474's frame around line 331's runtime message ("Code execution error: {e}").
    failure_template="Error: Code execution error: {error}. " + _RELEASE_NEXT,
    # No release text: its hermes parser drops an unreadable call (verl/experimental/agent_loop/
    # tool_parser.py, lines 96-101) and the episode ends; we answer in its agent loop's own frame for a call
    # that fails outside the tool (verl/experimental/agent_loop/tool_agent_loop.py, line 566).
    parse_error_template="Error when executing tool: {message}",
    # recipe/codevision/config/code_image_tool_config.yaml, line 8 (max_code_length: 2048).
    max_code_chars=2048,
    failure_templates={
        # _validate_code (lines 187-233) rejects before running: length, syntax, dangerous names; line 305
        # prefixes "Code validation failed: " and line 436 frames it. Line 192 is the length message.
        "code_too_long": "Error: Code validation failed: Code too long. Maximum allowed length: {limit}. "
        + _RELEASE_NEXT,
        "syntax": _RELEASE_VALIDATION,
        "forbidden": _RELEASE_VALIDATION,
        # Line 446: a result that is not an image.
        "bad_result": "Error: Code must return a PIL Image object.",
        # Line 455: an empty or extreme-aspect result.
        "empty_result": "Error: {error}",
        # Line 420: an index past the last image.
        "bad_index": "Error: image_index {index} is out of range. Available images: 0 to {last}. "
        + _RELEASE_NEXT,
        # No release counterpart (it has no image limit); no advice to call again.
        "image_limit": "Error: {error}",
    },
    # The release runs one call per turn (qwen3_vl.sh: max_parallel_calls=1) and defaults image_index to 0
    # (code_image_tool.py, line 391), both silently.
    extra_calls_note="",
    default_index_note="",
)

#: Every preset by name. Add a prompt style by adding an entry here.
PRESETS: Mapping[str, Preset] = MappingProxyType({p.name: p for p in (DEFAULT_PRESET, RELEASE_PRESET)})


def get_preset(preset: str | Preset) -> Preset:
    """The preset registered as ``preset`` (a :class:`Preset` is returned as it is).

    Every layer that builds prompts takes a ``preset`` setting (a registry name or a :class:`Preset`) and
    resolves it here, so an unknown name fails the same way everywhere.

    Raises:
        ValueError: ``preset`` names no registered preset (the message lists them).

    Example:
        >>> get_preset("default") is DEFAULT_PRESET, get_preset(RELEASE_PRESET).max_code_chars
        (True, 2048)
    """
    if isinstance(preset, Preset):
        return preset
    try:
        return PRESETS[preset]
    except (KeyError, TypeError):
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}") from None


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
