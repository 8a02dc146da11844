"""Writing an SFT conversation while executing each of its tool calls for real.

Calls run through :class:`cv_sandbox.ImageWorkspace`, the one tool-call executor (the agent loop and RL use
it too), with the same preset (system prompt, tool-response texts, code limit), so the tool messages of SFT
data are exactly what a model sees at inference time.
"""

from __future__ import annotations

from typing import Any

from cv_protocol import DEFAULT_PRESET, Preset, get_preset, render_tool_call
from cv_sandbox import ImageWorkspace, ToolOutcome
from PIL import Image

from .record import sft_record

__all__ = ["Conversation", "TrajectoryError"]

#: Error kinds that say nothing about the code (a worker killed or starved on a loaded machine).
_INFRASTRUCTURE = ("timeout", "crash")


class TrajectoryError(RuntimeError):
    """A scripted step did not behave as planned in the sandbox (the trajectory is reported, not kept)."""


def _text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


class Conversation:
    """Builds a scripted conversation's messages while executing each tool call in the sandbox.

    Args:
        sandbox: Executes the calls.
        image: The input image (image 0).
        question: The user question.
        preset: What the model is shown (:class:`cv_protocol.Preset` or a registry name): the system prompt
            and the tool-response texts.

    Example:
        >>> from cv_sandbox import shared_sandbox
        >>> conv = Conversation(shared_sandbox(), Image.new("RGB", (8, 4)), "Which?")
        >>> conv.call("It is on its side.", "result = image.rotate(90, expand=True)", "rotate", 0).index
        1
        >>> conv.answer("Now it is upright.", "A")
        >>> [m["role"] for m in conv.messages], conv.ops
        (['system', 'user', 'assistant', 'tool', 'assistant'], [['rotate_90']])
    """

    def __init__(
        self, sandbox: Any, image: Image.Image, question: str, preset: Preset | str = DEFAULT_PRESET
    ) -> None:
        self.sandbox = sandbox
        self.preset = get_preset(preset)
        self.workspace = ImageWorkspace([image], preset=self.preset)
        self.messages: list[dict[str, Any]] = [
            {"role": "system", "content": [_text(self.preset.system_prompt)]},
            {"role": "user", "content": [{"type": "image"}, _text(question)]},
        ]
        #: Per tool call, the op names the sandbox traced.
        self.ops: list[list[str]] = []

    @property
    def images(self) -> list[Image.Image]:
        """The input, then every tool output (full resolution)."""
        return self.workspace.images

    def call(
        self, think: str, code: str, description: str, image_index: int, *, expect_ok: bool = True
    ) -> ToolOutcome:
        """Write an assistant turn with the call, execute it and write the tool message.

        Raises:
            TrajectoryError: When the call succeeded or failed against the plan (``expect_ok``).
        """
        turn = sum(1 for m in self.messages if m["role"] == "assistant")
        self.messages.append(
            {
                "role": "assistant",
                "content": [
                    _text(f"<think>{think}</think>\n{render_tool_call(code, description, image_index)}")
                ],
            }
        )
        out = self.workspace.execute(self.sandbox, code, description, image_index, turn=turn)
        for _ in range(2):
            # An infrastructure failure is not the code's: run it again rather than write a spurious error.
            if out.call.ok or out.call.error_kind not in _INFRASTRUCTURE:
                break
            out = self.workspace.execute(self.sandbox, code, description, image_index, turn=turn)
        if out.call.ok != expect_ok:
            raise TrajectoryError(
                f"planned {'success' if expect_ok else 'failure'} but sandbox gave "
                f"ok={out.call.ok} ({out.call.error_kind}: {out.call.error}) for code:\n{code}"
            )
        content = [{"type": "image"}] if out.index is not None else []
        self.messages.append({"role": "tool", "content": [*content, _text(out.text)]})
        self.ops.append(out.call.op_names)
        return out

    def answer(self, think: str, answer: str) -> None:
        """Write the final assistant turn."""
        self.messages.append(
            {"role": "assistant", "content": [_text(f"<think>{think}</think>\n<answer>{answer}</answer>")]}
        )

    def record(self, **fields: Any) -> dict[str, Any]:
        """The SFT record of this conversation (:func:`cv_data.sft.sft_record`; ``fields`` are its metadata).

        Raises:
            TrajectoryError: When placeholders and images disagree.
        """
        try:
            return sft_record(self.messages, self.images, tool_ops=self.ops, **fields)
        except ValueError as e:
            raise TrajectoryError(str(e)) from e
