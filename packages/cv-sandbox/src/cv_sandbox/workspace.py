"""Executing one ``code_image_tool`` call against a conversation's images: the one tool-call executor.

Everything that runs a model's (or a script's) tool call goes through :class:`ImageWorkspace`: the agent loop
(``cv_agent.Agent``), cv-train's RL environment, cv-data's SFT conversation writer and its replay check, and
cv-bench's reference policy. So a call is checked, executed, recorded (:class:`ToolCall`, with the image
lineage and crop boxes mapped into input image 0's frame) and answered (the texts of a
:class:`cv_protocol.Preset`) the same way everywhere.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cv_protocol import DEFAULT_PRESET, Preset, get_preset
from PIL import Image

from .geometry import chain_to_input, map_box
from .result import ExecResult

__all__ = ["ImageWorkspace", "ToolCall", "ToolOutcome"]


@dataclass
class ToolCall:
    """One executed (or rejected) tool call.

    Attributes:
        turn: Index of the assistant turn (0-based) that made the call.
        code: The code as parsed (``""`` when the call could not be parsed).
        description: The model's description.
        image_index: The image it operated on.
        ok: Whether it produced an image.
        error: Error text sent back to the model, else ``None``.
        error_kind: A sandbox error kind (``cv_sandbox.ERROR_KINDS``), ``"parse"`` for unreadable calls or
            ``"bad_index"`` for an ``image_index`` that does not exist; ``None`` on success.
        ops: Traced operations, each ``{"name", "box", "box_input", "params"}``: ``box`` in pixels of the
            operated image, ``box_input`` mapped into input image 0's frame (``None`` when not a crop or not
            trackable).
        output_index: Index of the produced image, else ``None``.
        duration_s: Sandbox wall time.
        warnings: Parser repairs (code fence removed, default index used, extra calls ignored, ...).
        stdout: Captured print output.
    """

    turn: int
    code: str
    description: str = ""
    image_index: int = 0
    ok: bool = False
    error: str | None = None
    error_kind: str | None = None
    ops: list[dict[str, Any]] = field(default_factory=list)
    output_index: int | None = None
    duration_s: float = 0.0
    warnings: list[str] = field(default_factory=list)
    stdout: str = ""

    @property
    def op_names(self) -> list[str]:
        return [op["name"] for op in self.ops]

    def to_dict(self) -> dict[str, Any]:
        return {
            "turn": self.turn,
            "code": self.code,
            "description": self.description,
            "image_index": self.image_index,
            "ok": self.ok,
            "error": self.error,
            "error_kind": self.error_kind,
            "ops": [dict(op) for op in self.ops],
            "output_index": self.output_index,
            "duration_s": self.duration_s,
            "warnings": list(self.warnings),
            "stdout": self.stdout,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ToolCall:
        return cls(
            turn=d["turn"],
            code=d.get("code", ""),
            description=d.get("description", ""),
            image_index=d.get("image_index", 0),
            ok=d.get("ok", False),
            error=d.get("error"),
            error_kind=d.get("error_kind"),
            ops=[dict(op) for op in d.get("ops", [])],
            output_index=d.get("output_index"),
            duration_s=d.get("duration_s", 0.0),
            warnings=list(d.get("warnings", [])),
            stdout=d.get("stdout", ""),
        )


@dataclass
class ToolOutcome:
    """What one tool call did.

    Attributes:
        call: The record of the call (also for failed and refused calls).
        text: The text of the tool response for the model (the workspace's preset's
            :meth:`~cv_protocol.Preset.tool_response_text`, or its refusal text).
        index: Index of the new image in the workspace, else ``None``.
        image: The new full-resolution image, else ``None``.
        elapsed_s: Wall-clock seconds spent in the sandbox (0 when the call was refused before running).
    """

    call: ToolCall
    text: str
    index: int | None = None
    image: Image.Image | None = None
    elapsed_s: float = 0.0


class ImageWorkspace:
    """The full-resolution images of one conversation with their lineage, and the tool that adds to them.

    A call is checked (``image_index`` must exist; at most ``max_images`` images; code no longer than the
    preset's ``max_code_chars``; each refused before running, error kinds ``bad_index``, ``output_too_large``,
    ``code_too_long``), run in the sandbox (a sandbox crash becomes a ``crash`` tool error, never an exception), and on success
    its output image is appended with its parent index and ``to_source`` map. Crop boxes are recorded both in
    the operated image's pixels (``box``) and mapped into input image 0's frame (``box_input``) through the
    chained lineage maps (:func:`cv_sandbox.geometry.chain_to_input`). Every tool-response text is the
    preset's (:class:`cv_protocol.Preset`), so one preset choice decides what the model reads.

    Args:
        images: Images, index ``k`` as the model addresses it (inputs first). A list is used in place: new
            images are appended to it (so ``cv_agent.Trajectory`` can hand over its own lists).
        parents: ``parents[k]``: the image that image ``k`` was computed from (``None`` for inputs); used in
            place like ``images``, padded with ``None`` for images without an entry.
        to_parent: ``to_parent[k]``: image ``k``'s ``ExecResult.to_source`` as a list (``None``: an input or
            untrackable); used in place, padded like ``parents``.
        max_images: Most images the workspace may hold; further calls are refused.
        preset: What the model is shown: tool-response texts and the code length limit (a
            :class:`cv_protocol.Preset` or a registry name such as ``"release"``).

    Example:
        >>> from cv_sandbox import Sandbox
        >>> ws = ImageWorkspace([Image.new("RGB", (8, 4))])
        >>> with Sandbox() as sb:
        ...     out = ws.execute(sb, "result = image.rotate(90, expand=True)", "rotate", 0)
        >>> out.call.ok, out.index, ws.images[1].size, out.text
        (True, 1, (4, 8), 'Execution succeeded. The result is image 1 (4x8 pixels).')
    """

    def __init__(
        self,
        images: Sequence[Image.Image] = (),
        parents: list[int | None] | None = None,
        to_parent: list[list[float] | None] | None = None,
        *,
        max_images: int = 32,
        preset: Preset | str = DEFAULT_PRESET,
    ) -> None:
        self.preset = get_preset(preset)
        if max_images < 1:
            raise ValueError(f"max_images must be >= 1, got {max_images}")
        self.images: list[Image.Image] = images if isinstance(images, list) else list(images)
        self.parents: list[int | None] = parents if parents is not None else []
        self.to_parent: list[list[float] | None] = to_parent if to_parent is not None else []
        for lineage in (self.parents, self.to_parent):
            lineage.extend([None] * (len(self.images) - len(lineage)))
        self.max_images = max_images

    def execute(
        self, sandbox: Any, code: str, description: str, image_index: Any, *, turn: int = 0
    ) -> ToolOutcome:
        """Run one call with ``sandbox.run`` (any object with cv-sandbox's ``run(code, images, image_index=)``).

        Args:
            sandbox: The sandbox.
            code: The model's code (non-strings are converted).
            description: The model's description of the call.
            image_index: The image to operate on (converted with ``int``; anything else is a bad index).
            turn: Assistant turn that made the call, kept in the record.

        Returns:
            The :class:`ToolOutcome`; the workspace holds the new image when one was produced.
        """
        call, index, refused = self._check(code, description, image_index, turn)
        if refused is not None:
            return refused
        t0 = time.perf_counter()
        try:
            result = sandbox.run(call.code, self.images, image_index=index)
        except Exception as e:  # noqa: BLE001 - a broken sandbox is the model's tool error, never raised
            result = _crash(e)
        return self._finish(call, index, result, time.perf_counter() - t0)

    async def aexecute(
        self, sandbox: Any, code: str, description: str, image_index: Any, *, turn: int = 0
    ) -> ToolOutcome:
        """:meth:`execute` with ``await sandbox.arun(...)``."""
        call, index, refused = self._check(code, description, image_index, turn)
        if refused is not None:
            return refused
        t0 = time.perf_counter()
        try:
            result = await sandbox.arun(call.code, self.images, image_index=index)
        except Exception as e:  # noqa: BLE001 - a broken sandbox is the model's tool error, never raised
            result = _crash(e)
        return self._finish(call, index, result, time.perf_counter() - t0)

    def to_input(self, index: int) -> tuple[float, float, float, float, float, float] | None:
        """Map from image ``index``'s pixels to input image 0's (``None`` when the lineage is untrackable)."""
        return chain_to_input(index, self.parents, self.to_parent)

    # -- steps -----------------------------------------------------------------------------------------
    def _check(
        self, code: Any, description: Any, image_index: Any, turn: int
    ) -> tuple[ToolCall, int, ToolOutcome | None]:
        try:
            index = int(image_index)
        except (TypeError, ValueError):
            index = -1
        call = ToolCall(
            turn=turn,
            code=code if isinstance(code, str) else str(code),
            description=description if isinstance(description, str) else str(description),
            image_index=index,
        )
        n = len(self.images)
        preset = self.preset
        if not 0 <= index < n:
            call.error = f"image_index {image_index!r} does not exist; valid indices are 0..{n - 1}."
            call.error_kind = "bad_index"
            text = preset.failure_text("bad_index", call.error, index=image_index, last=n - 1)
            return call, index, ToolOutcome(call, text)
        if n >= self.max_images:
            call.error = (
                f"this conversation already holds {n} images (the limit); answer without further tool calls."
            )
            call.error_kind = "output_too_large"
            return call, index, ToolOutcome(call, preset.failure_text("image_limit", call.error))
        if len(call.code) > preset.max_code_chars:
            # The preset's limit is what the model was told (the release's is 2,048); the sandbox's own
            # limit stays a safety bound behind it.
            call.error = f"code is {len(call.code)} characters; the limit is {preset.max_code_chars}"
            call.error_kind = "code_too_long"
            return call, index, ToolOutcome(call, preset.failure_text("code_too_long", call.error))
        return call, index, None

    def _finish(self, call: ToolCall, index: int, result: ExecResult, elapsed: float) -> ToolOutcome:
        call.duration_s = result.duration_s or elapsed
        call.stdout = result.stdout
        call.ops = self._ops(index, result)
        if result.ok and result.image is not None:
            k = len(self.images)
            self.images.append(result.image)
            self.parents.append(index)
            self.to_parent.append(list(result.to_source) if result.to_source is not None else None)
            call.ok = True
            call.output_index = k
            return ToolOutcome(call, self.preset.tool_response_text(result, k), k, result.image, elapsed)
        call.error = result.error or "no image was produced"
        call.error_kind = result.error_kind or "bad_result"
        return ToolOutcome(call, self.preset.tool_response_text(result, None), elapsed_s=elapsed)

    def _ops(self, index: int, result: ExecResult) -> list[dict[str, Any]]:
        to_input = self.to_input(index)
        ops = []
        for op in result.trace:
            box = list(op.box) if op.box is not None else None
            box_input = None
            if box is not None and to_input is not None:
                box_input = [round(v, 3) for v in map_box(to_input, box)]
            ops.append(
                {
                    "name": op.name,
                    "box": box,
                    "box_input": box_input,
                    "params": dict(op.params),
                    # cv-rewards' OpRecord reads this: an op that changed no pixel earns no optional credit.
                    "effective": op.effective,
                }
            )
        return ops


def _crash(e: Exception) -> ExecResult:
    return ExecResult(error=f"sandbox failure: {type(e).__name__}: {e}", error_kind="crash")
