"""The CodeVision RL environment: one instance per rollout, its one tool runs model code in cv-sandbox."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cv_protocol import Preset, get_preset
from cv_sandbox import ImageWorkspace, SandboxConfig, ToolCall, shared_sandbox
from PIL import Image


@dataclass
class CodeVisionEnvConfig:
    """Settings of :class:`CodeVisionEnv`.

    Attributes:
        timeout_s: Wall-clock limit of one tool call in the sandbox.
        max_images: Refuse further calls once a rollout holds this many images (bounds memory and tokens).
        preset: What the model is shown (a ``cv_protocol.PRESETS`` name or a :class:`cv_protocol.Preset`):
            the tool-response texts and the code limit of the tool. The tool schema in RL prompts is the
            preset's too, put there by the chat template (:func:`cv_train.rl.prepare_rl_processor`).
    """

    timeout_s: float = 10.0
    max_images: int = 16
    preset: Preset | str = "default"

    def __post_init__(self) -> None:
        self.preset = get_preset(self.preset)
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s={self.timeout_s}: set a positive tool timeout in seconds")
        if self.max_images < 2:
            raise ValueError(f"max_images={self.max_images}: set at least 2 (the input and one tool output)")


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
        self.row: dict[str, Any] = {}
        #: One ``cv_sandbox.ToolCall`` per tool call (``turn`` counts the calls), as the agent records them.
        self.trace: list[ToolCall] = []
        self.workspace = ImageWorkspace(max_images=self.config.max_images, preset=self.config.preset)

    @property
    def sandbox(self) -> Any:
        if self._sandbox is None:
            # One sandbox per process and timeout, shared by all environments (the pool is the expensive part).
            self._sandbox = shared_sandbox(SandboxConfig(timeout_s=self.config.timeout_s))
        return self._sandbox

    @property
    def images(self) -> list[Image.Image]:
        """The rollout's full-resolution images: the inputs, then every tool output."""
        return self.workspace.images

    def reset(self, **row: Any) -> None:
        """Start a rollout for one dataset row (its ``images`` are the full-resolution inputs)."""
        images = row.get("images") or ([row["image"]] if row.get("image") is not None else [])
        images = [im if isinstance(im, Image.Image) else Image.open(im) for im in images]
        self.row = {k: v for k, v in row.items() if k not in ("images", "image", "prompt")}
        self.trace = []
        # Inputs are their own frames; crop boxes are mapped into image 0's frame for the crop reward.
        self.workspace = ImageWorkspace(images, max_images=self.config.max_images, preset=self.config.preset)
        return None

    # No return annotation and a docstring generated from cv_protocol.TOOL_SCHEMA (below the class): TRL reads
    # the tool's name and arguments from this signature with transformers' get_json_schema, which renders the
    # default preset's schema byte-identically. cv-train's RL chat template shows the run's preset's schema
    # exactly instead (transformers would join a multi-line argument description onto one line).
    def code_image_tool(self, code: str, description: str, image_index: int):
        # Returns content blocks: [{"type": "image", "image": PIL}, {"type": "text", ...}] or only a text block.
        out = self.workspace.execute(self.sandbox, code, description, image_index, turn=len(self.trace))
        self.trace.append(out.call)
        if out.image is not None:
            return [{"type": "image", "image": out.image}, {"type": "text", "text": out.text}]
        return [{"type": "text", "text": out.text}]


def _tool_docstring() -> str:
    from cv_protocol import TOOL_SCHEMA

    fn = TOOL_SCHEMA["function"]
    args = "\n".join(
        f"    {name}: {spec['description']}" for name, spec in fn["parameters"]["properties"].items()
    )
    return f"{fn['description']}\n\nArgs:\n{args}\n"


CodeVisionEnv.code_image_tool.__doc__ = _tool_docstring()
