"""The ``reference`` policy: a scripted model backend that validates the harness end to end.

For each item it writes the corrective code the item's metadata calls for (crop the answer box when the
transform has ``crop``, undo rotations and flips, clean up corruptions), sends it through the real agent
loop and sandbox, checks that every image it is shown is exactly what its planned calls produce, and only
then answers the ground truth. The expected outputs come from the one tool-call executor: the planned calls
run through :class:`cv_sandbox.ImageWorkspace` on the full-resolution input, then through the agent's
resize for the model. A harness bug between the executor and the model (lost image, wrong index, wrong
lineage, a corrupted or mis-resized image, scoring error) therefore shows up as a wrong answer: the policy
must reach 100 % on the built-in suites.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from cv_agent import ModelBackend
from cv_data import orientation_code
from cv_protocol import ORIENTATION_OPS, corrective_ops, render_tool_call
from cv_sandbox import ImageWorkspace, SandboxConfig, shared_sandbox
from PIL import Image

#: Clean-up code for corruption transforms, matched by substring of the transform name.
CORRUPTION_CODE: tuple[tuple[str, str], ...] = (
    ("noise", "result = image.filter(ImageFilter.MedianFilter(3))"),
    ("jpeg", "result = image.filter(ImageFilter.SMOOTH)"),
    ("blur", "result = image.filter(ImageFilter.SHARPEN)"),
    ("bright", "result = ImageOps.autocontrast(image.convert('RGB'))"),
    ("dark", "result = ImageOps.autocontrast(image.convert('RGB'))"),
    ("contrast", "result = ImageOps.autocontrast(image.convert('RGB'))"),
)

#: Wrong-on-purpose answer given when a harness check fails (never equal to a real ground truth).
CHECK_FAILED = "REFERENCE-CHECK-FAILED"


@dataclass(frozen=True)
class PlannedCall:
    """One scripted tool call.

    Attributes:
        code: Python code for the sandbox.
        description: The call's one-line description.
        image_index: Image the code operates on.
    """

    code: str
    description: str
    image_index: int


def _op_name(t: str) -> str:
    return t.split(":", 1)[0].strip().lower()


def plan_calls(
    transform: Sequence[str], bbox: Sequence[float] | None, corruptions: Sequence[str] = ()
) -> list[PlannedCall]:
    """The corrective tool calls for an item, in order.

    Crop first (``bbox`` is in the frame of the received image 0), then undo orientation ops in reverse
    order of application in one call, then clean up corruptions (from ``transform`` or ``corruptions``).

    Example:
        >>> [c.code for c in plan_calls(["crop", "rotate_90"], [1, 2, 30, 40])]
        ['result = image.crop((1, 2, 30, 40))', 'result = image.rotate(270, expand=True)']
    """
    ops = [_op_name(t) for t in transform]
    calls: list[PlannedCall] = []
    idx = 0
    if "crop" in ops:
        if bbox is None:
            raise ValueError("transform has 'crop' but the item has no bbox: the reference policy needs it")
        x1, y1, x2, y2 = (int(round(float(v))) for v in bbox)
        calls.append(
            PlannedCall(f"result = image.crop(({x1}, {y1}, {x2}, {y2}))", "Zoom into the answer region.", idx)
        )
        idx += 1
    # Transform names and sandbox op names are one vocabulary (cv_protocol), which also says which op undoes each.
    orient = [o for o in ops if o in ORIENTATION_OPS]
    if orient:
        lines = []
        for k, fix in enumerate(corrective_ops(orient)):
            code = orientation_code(fix, "pil")
            lines.append(code.replace("image", "result", 1) if k else code)
        calls.append(PlannedCall("\n".join(lines), "Undo the rotation/flip so the content is upright.", idx))
        idx += 1
    for o in [*ops, *(_op_name(c) for c in corruptions)]:
        if o == "crop" or o in ORIENTATION_OPS:
            continue
        for key, code in CORRUPTION_CODE:
            if key in o:
                calls.append(PlannedCall(code, f"Reduce the {o} corruption.", idx))
                idx += 1
                break
    return calls


async def _run_calls(
    sandbox: Any, images: Sequence[Image.Image], calls: Sequence[PlannedCall]
) -> list[Image.Image] | str:
    """``images`` followed by the outputs of ``calls``, executed by the one executor; or why one failed."""
    ws = ImageWorkspace(list(images))
    for c in calls:
        out = await ws.aexecute(sandbox, c.code, c.description, c.image_index)
        if not out.call.ok:
            return f"planned call failed in the sandbox ({out.call.error_kind}: {out.call.error})"
    return ws.images


def _same_pixels(a: Image.Image, b: Image.Image) -> bool:
    if a.size != b.size:
        return False
    return np.array_equal(np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB")))


def _count_assistant(messages: Sequence[dict[str, Any]]) -> int:
    return sum(1 for m in messages if m.get("role") == "assistant")


class ReferencePolicy(ModelBackend):
    """Scripted ``cv_agent`` backend for one item: corrective calls, exact output checks, then the answer.

    Args:
        answer: Ground-truth answer to give once every call verified.
        transform: The item's ``transform`` list.
        bbox: The item's answer box in the received image's pixels, needed when ``transform`` has ``crop``.
        corruptions: Corruption kinds applied to the image (``noise``, ``blur``, ...), cleaned up by a call.
        image: The item's full-resolution input image. With it, the policy computes the exact expected
            full-resolution output of every call locally and requires the image the model is shown to be
            exactly that output resized by ``resize`` (pixel for pixel).
        resize: The agent's full-resolution -> model-image function (e.g. ``cv_agent``'s
            ``resize_for_model`` with the agent's pixel budget); ``None`` = identity.
        verify: Check the tool outputs at all.
        sandbox: Executes the planned calls for the expected outputs (the run's sandbox); ``None``: the
            process's shared one-worker sandbox (``cv_sandbox.shared_sandbox``).

    Example:
        >>> import asyncio
        >>> from PIL import Image
        >>> p = ReferencePolicy("42", [], None)
        >>> asyncio.run(p.generate([{"role": "user", "content": "q"}], [Image.new("RGB", (4, 4))]))
        '<think>The image needs no correction.</think>\\n<answer>42</answer>'
    """

    name = "reference"

    def __init__(
        self,
        answer: str,
        transform: Sequence[str],
        bbox: Sequence[float] | None,
        *,
        corruptions: Sequence[str] = (),
        image: Image.Image | None = None,
        resize: Callable[[Image.Image], Image.Image] | None = None,
        verify: bool = True,
        sandbox: Any = None,
    ) -> None:
        self.answer = str(answer)
        self.calls = plan_calls(transform, bbox, corruptions)
        self.verify = verify
        self.resize = resize
        self.image = image
        self.sandbox = sandbox
        self.failures: list[str] = []
        self._expected: list[Image.Image] | str | None = None

    @classmethod
    def for_item(cls, item: Any, agent_config: Any = None, **kw: Any) -> ReferencePolicy:
        """Build from a ``cv_data.Item`` (``answer``, ``transform``, ``bbox``, ``meta["corruption"]``, image 0).

        Args:
            item: The item.
            agent_config: The ``cv_agent.AgentConfig`` of the run, whose pixel budget the checks reproduce
                (default: ``AgentConfig()``).
            **kw: Passed to the constructor (e.g. ``sandbox``, the run's).
        """
        meta = getattr(item, "meta", None) or {}
        corr = meta.get("corruption") or meta.get("corruptions") or []
        if isinstance(corr, str | dict):
            corr = [corr]
        names = [c.get("kind", "") if isinstance(c, dict) else str(c) for c in corr]
        from cv_agent import AgentConfig
        from cv_agent.images import resize_for_model

        ac = agent_config if agent_config is not None else AgentConfig()
        rkw = {"factor": ac.resize_factor, "min_pixels": ac.min_pixels, "max_pixels": ac.max_pixels}

        def resize(im: Image.Image) -> Image.Image:
            return resize_for_model(im, **rkw)

        return cls(
            item.answer,
            list(item.transform or []),
            item.bbox,
            corruptions=names,
            image=item.images[0],
            resize=resize,
            **kw,
        )

    async def _expected_outputs(self) -> list[Image.Image] | str:
        """The full-resolution input and the outputs of the planned calls (computed once), or an error."""
        if self._expected is None:
            assert self.image is not None
            self._expected = await _run_calls(
                self.sandbox or shared_sandbox(SandboxConfig(workers=1)), [self.image], self.calls
            )
        return self._expected

    async def _check(self, step: int, images: Sequence[Image.Image]) -> str | None:
        """Verify the output of call ``step - 1``; returns a failure message or None."""
        if len(images) != step + 1:
            return f"after {step} calls expected {step + 1} images, got {len(images)} (a tool call failed or an image was lost)"
        if not self.verify:
            return None
        got = images[step]
        if self.image is not None:
            expected = await self._expected_outputs()
            if isinstance(expected, str):
                return expected
            want = expected[step]
            if self.resize is not None:
                want = self.resize(want)
            if not _same_pixels(want, got):
                return f"tool output {step} ({got.size}) differs from the expected {want.size} pixels"
            return None
        # Without the full-resolution input: the call again, on the image the model was shown.
        prev = self.calls[step - 1]
        shown = await _run_calls(
            self.sandbox or shared_sandbox(SandboxConfig(workers=1)),
            [images[prev.image_index]],
            [PlannedCall(prev.code, prev.description, 0)],
        )
        if isinstance(shown, str):
            return shown
        expected = shown[1]
        if expected.size == got.size:
            if not _same_pixels(expected, got):
                return f"tool output {step} differs from the expected pixels"
        else:
            # A model copy is resized: only the aspect ratio can be checked.
            ra, rb = expected.width / expected.height, got.width / got.height
            if abs(ra - rb) > 0.05 * ra:
                return f"tool output {step} has size {got.size}, expected aspect of {expected.size}"
        return None

    async def generate(self, messages: list[dict[str, Any]], images: list[Image.Image], **_: Any) -> str:
        step = _count_assistant(messages)
        if step > 0 and self.calls:
            err = await self._check(min(step, len(self.calls)), images)
            if err:
                self.failures.append(err)
                return f"<think>Harness check failed: {err}</think>\n<answer>{CHECK_FAILED}</answer>"
        if step < len(self.calls):
            c = self.calls[step]
            return f"<think>{c.description}</think>\n" + render_tool_call(
                c.code, c.description, c.image_index
            )
        why = "The image needs no correction." if not self.calls else "The corrected image shows the answer."
        return f"<think>{why}</think>\n<answer>{self.answer}</answer>"
