"""The CodeVision RL environment: one instance per rollout, its one tool runs model code in cv-sandbox."""

from __future__ import annotations

import atexit
import threading
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

Affine = tuple[float, float, float, float, float, float]
_IDENTITY: Affine = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def compose_affine(outer: Affine | None, inner: Affine | None) -> Affine | None:
    """``outer ∘ inner``: first map with ``inner``, then with ``outer`` (``None`` if either is unknown).

    Example:
        >>> compose_affine((1, 0, 10, 0, 1, 20), (2, 0, 0, 0, 2, 0))
        (2.0, 0.0, 10.0, 0.0, 2.0, 20.0)
    """
    if outer is None or inner is None:
        return None
    a, b, c, d, e, f = outer
    a2, b2, c2, d2, e2, f2 = inner
    return (float(a * a2 + b * d2), float(a * b2 + b * e2), float(a * c2 + b * f2 + c),
            float(d * a2 + e * d2), float(d * b2 + e * e2), float(d * c2 + e * f2 + f))


def map_box(affine: Affine | None, box: tuple[float, float, float, float]) -> tuple[float, float, float, float] | None:
    """Map an axis-aligned box through an affine map (bounding box of the mapped corners).

    Example:
        >>> map_box((1, 0, 5, 0, 1, 5), (0, 0, 10, 10))
        (5.0, 5.0, 15.0, 15.0)
    """
    if affine is None:
        return None
    a, b, c, d, e, f = affine
    xs, ys = [], []
    for x, y in ((box[0], box[1]), (box[2], box[1]), (box[0], box[3]), (box[2], box[3])):
        xs.append(a * x + b * y + c)
        ys.append(d * x + e * y + f)
    return (float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys)))


@dataclass
class ToolCallTrace:
    """What one ``code_image_tool`` call did (for the reward and the logs).

    Attributes:
        code: The code the model wrote.
        image_index: Which image it ran on.
        ok: Whether it produced an image.
        error: Error text on failure.
        error_kind: cv-sandbox error kind on failure.
        ops: ``(name, box)`` per traced op; crop boxes mapped into the frame of input image 0 (``None`` when the
            chain of ``to_source`` maps is unknown).
        output_index: Index of the produced image, or ``None``.
        duration_s: Sandbox wall-clock seconds.
    """

    code: str
    image_index: int
    ok: bool
    error: str | None = None
    error_kind: str | None = None
    ops: list[tuple[str, tuple[float, float, float, float] | None]] = field(default_factory=list)
    output_index: int | None = None
    duration_s: float = 0.0


@dataclass
class CodeVisionEnvConfig:
    """Settings of :class:`CodeVisionEnv`.

    Attributes:
        timeout_s: Wall-clock limit of one tool call in the sandbox.
        max_images: Refuse further calls once a rollout holds this many images (bounds memory and tokens).
    """

    timeout_s: float = 10.0
    max_images: int = 16

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s={self.timeout_s}: set a positive tool timeout in seconds")
        if self.max_images < 2:
            raise ValueError(f"max_images={self.max_images}: set at least 2 (the input and one tool output)")


_SANDBOXES: dict[float, Any] = {}
_LOCK = threading.Lock()


def shared_sandbox(timeout_s: float = 10.0) -> Any:
    """One cv-sandbox per process and timeout, shared by all environments (the pool is the expensive part)."""
    with _LOCK:
        if timeout_s not in _SANDBOXES:
            from cv_sandbox import Sandbox, SandboxConfig

            sandbox = Sandbox(SandboxConfig(timeout_s=timeout_s))
            atexit.register(sandbox.close)
            _SANDBOXES[timeout_s] = sandbox
        return _SANDBOXES[timeout_s]


class CodeVisionEnv:
    """GRPO environment (``environment_factory``): holds a rollout's images and the trace of its tool calls.

    TRL calls :meth:`reset` with the dataset row before each rollout and exposes every public method except
    ``reset`` as a tool, so :meth:`code_image_tool` is the model's only tool. Its result is a list of content
    blocks (the new image and a short text, or only an error text), which TRL feeds back to the model and
    into the training forward pass.

    Example:
        >>> from PIL import Image
        >>> env = CodeVisionEnv()
        >>> env.reset(images=[Image.new("RGB", (8, 4))], answer="A")
        >>> [b["type"] for b in env.code_image_tool("result = image.rotate(90, expand=True)", "rotate", 0)]
        ['image', 'text']
        >>> env.trace[0].ok, env.images[1].size
        (True, (4, 8))
    """

    def __init__(self, config: CodeVisionEnvConfig | None = None, sandbox: Any | None = None) -> None:
        self.config = config or CodeVisionEnvConfig()
        self._sandbox = sandbox
        self.images: list[Image.Image] = []
        self.row: dict[str, Any] = {}
        self.trace: list[ToolCallTrace] = []
        self._to_input: list[Affine | None] = []

    @property
    def sandbox(self) -> Any:
        if self._sandbox is None:
            self._sandbox = shared_sandbox(self.config.timeout_s)
        return self._sandbox

    def reset(self, **row: Any) -> None:
        """Start a rollout for one dataset row (its ``images`` are the full-resolution inputs)."""
        images = row.get("images") or ([row["image"]] if row.get("image") is not None else [])
        self.images = [im if isinstance(im, Image.Image) else Image.open(im) for im in images]
        self.row = {k: v for k, v in row.items() if k not in ("images", "image", "prompt")}
        self.trace = []
        # Input images are their own frame; only image 0's frame matters for the crop reward.
        self._to_input = [_IDENTITY] + [None] * (len(self.images) - 1)
        return None

    # No return annotation and a docstring generated from cv_sandbox.TOOL_SCHEMA (below the class): TRL renders
    # the tool schema from this signature with transformers' get_json_schema, and it must be byte-identical to
    # the schema SFT data and the agent render, or RL prompts would differ from everything else.
    def code_image_tool(self, code: str, description: str, image_index: int):
        # Returns content blocks: [{"type": "image", "image": PIL}, {"type": "text", ...}] or only a text block.
        from cv_sandbox import tool_response_text

        try:
            index = int(image_index)
        except (TypeError, ValueError):
            index = -1
        if not isinstance(code, str):
            code = str(code)
        if not 0 <= index < len(self.images):
            msg = f"Execution failed (bad_input): image_index {image_index!r} does not exist; valid indices are 0..{len(self.images) - 1}."
            self.trace.append(ToolCallTrace(code=code, image_index=index, ok=False, error=msg, error_kind="bad_input"))
            return [{"type": "text", "text": msg}]
        if len(self.images) >= self.config.max_images:
            msg = f"Execution failed (bad_input): this conversation already holds {len(self.images)} images; answer now."
            self.trace.append(ToolCallTrace(code=code, image_index=index, ok=False, error=msg, error_kind="bad_input"))
            return [{"type": "text", "text": msg}]
        try:
            result = self.sandbox.run(code, self.images, index)
        except Exception as e:  # noqa: BLE001 - a sandbox crash is the model's tool error, not the trainer's
            msg = f"Execution failed (crash): the sandbox could not run the code ({type(e).__name__}: {e})."
            self.trace.append(ToolCallTrace(code=code, image_index=index, ok=False, error=msg, error_kind="crash"))
            return [{"type": "text", "text": msg}]
        source_map = self._to_input[index]
        ops = []
        for op in result.trace:
            box = map_box(source_map, op.box) if (op.name == "crop" and op.box is not None) else None
            ops.append((op.name, box))
        if result.ok and result.image is not None:
            self.images.append(result.image)
            self._to_input.append(compose_affine(source_map, result.to_source))
            new_index = len(self.images) - 1
            self.trace.append(ToolCallTrace(code=code, image_index=index, ok=True, ops=ops, output_index=new_index,
                                            duration_s=result.duration_s))
            return [{"type": "image", "image": result.image},
                    {"type": "text", "text": tool_response_text(result, new_index)}]
        self.trace.append(ToolCallTrace(code=code, image_index=index, ok=False, error=result.error,
                                        error_kind=result.error_kind, ops=ops, duration_s=result.duration_s))
        return [{"type": "text", "text": tool_response_text(result, None)}]


def _tool_docstring() -> str:
    from cv_sandbox import TOOL_SCHEMA

    fn = TOOL_SCHEMA["function"]
    args = "\n".join(f"    {name}: {spec['description']}" for name, spec in fn["parameters"]["properties"].items())
    return f"{fn['description']}\n\nArgs:\n{args}\n"


CodeVisionEnv.code_image_tool.__doc__ = _tool_docstring()
