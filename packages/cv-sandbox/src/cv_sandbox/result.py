"""What one sandboxed execution returns: the output image, captured stdout, a clear error, the op trace."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image


@dataclass(frozen=True)
class TraceOp:
    """One image operation that actually executed inside the sandbox.

    Attributes:
        name: Canonical op name (:mod:`cv_protocol.ops`): ``rotate_90|rotate_180|rotate_270``
            (counter-clockwise), ``flip_horizontal``, ``flip_vertical``, ``crop`` or another op such as ``brightness``,
            ``contrast``, ``sharpen``, ``blur``, ``grayscale``, ``resize``, ``threshold``, ``equalize``.
        box: For ``crop``: ``(x1, y1, x2, y2)`` in pixels of the *source* image (the image selected by
            ``image_index``), clipped to it. ``None`` for other ops.
        params: Op parameters worth logging (angle, factor, size, ...); JSON-serialisable.
        api: The library call that produced it, e.g. ``"PIL.Image.rotate"`` or ``"cv2.flip"``.
        effective: False when the op provably left every pixel as it was (``rotate(0)``,
            ``enhance(1.0)``, a crop of the whole image, a resize to the same size, a conversion to the
            image's own mode, a blur of radius 0, a pad of 0). Rewards give such ops no credit
            (``cv_rewards.OpRecord.effective``).
    """

    name: str
    box: tuple[int, int, int, int] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    api: str = ""
    effective: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "box": list(self.box) if self.box else None,
            "params": dict(self.params),
            "api": self.api,
            "effective": self.effective,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TraceOp:
        box = d.get("box")
        return cls(
            name=d["name"],
            box=tuple(box) if box else None,
            params=dict(d.get("params") or {}),
            api=d.get("api", ""),
            effective=d.get("effective", True) is not False,
        )


#: Error kinds an :class:`ExecResult` can carry (``error_kind``).
ERROR_KINDS: frozenset[str] = frozenset(
    {
        "syntax",  # code does not compile (message has the line number)
        "exception",  # user code raised; message has type and text
        "timeout",  # wall-clock limit exceeded
        "memory",  # memory cap exceeded
        "forbidden",  # restricted access (imports, dunders, files, network, processes)
        "bad_result",  # `result`/`output` missing or not a PIL image / array convertible to one
        "empty_result",  # zero-size or extreme-aspect-ratio result
        "output_too_large",  # result exceeds the pixel cap
        "code_too_long",  # code longer than the configured maximum
        "bad_input",  # invalid images or image_index supplied by the caller
        "crash",  # worker died (signal, segfault, internal error)
        "busy",  # no worker became free within SandboxConfig.acquire_timeout_s
        "closed",  # the Sandbox was closed while the call waited or ran
    }
)


@dataclass
class ExecResult:
    """Outcome of :meth:`cv_sandbox.Sandbox.run` (a :class:`cv_protocol.ExecOutcome`: what
    :func:`cv_protocol.tool_response_text` describes to the model).

    Attributes:
        image: The output image (``result``/``output``) on success, else ``None``.
        stdout: Captured ``print`` output, truncated to the configured maximum.
        error: A clear, model-readable error message on failure, else ``None``.
        error_kind: One of :data:`ERROR_KINDS` on failure, else ``None``.
        duration_s: Wall-clock seconds for the whole call, as seen by the caller.
        run_s: Seconds the sandbox child spent compiling, running and checking the code (``None`` when
            it never got that far: a rejected input, a crash or a timeout). ``duration_s - run_s`` is the
            cost of the isolation itself: moving pixels in and out and the round trip to the child.
        trace: The image operations that took effect on the returned image, in execution order (an op
            whose output was discarded, overwritten or never reached ``result`` is not here but in
            ``discarded``). On failure: every op that ran before it.
        discarded: Ops that ran but whose output the returned image does not carry (never credited).
        to_source: Axis-aligned affine map from output-image pixel coordinates to source-image pixel
            coordinates, as ``(a, b, c, d, e, f)`` with ``x_src = a*x + b*y + c`` and
            ``y_src = d*x + e*y + f``; ``None`` when the output is not an exactly trackable composition of
            rotations by multiples of 90, flips, crops, resizes and pixel-wise ops. Callers chain it across
            calls to express later crops in the frame of the original input image.
    """

    image: Image.Image | None = None
    stdout: str = ""
    error: str | None = None
    error_kind: str | None = None
    duration_s: float = 0.0
    run_s: float | None = None
    trace: list[TraceOp] = field(default_factory=list)
    to_source: tuple[float, float, float, float, float, float] | None = None
    discarded: list[TraceOp] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and self.image is not None

    @property
    def ops(self) -> list[str]:
        """Canonical op names in execution order."""
        return [op.name for op in self.trace]

    @property
    def crop_boxes(self) -> list[tuple[int, int, int, int]]:
        return [op.box for op in self.trace if op.name == "crop" and op.box is not None]

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable summary (no pixels)."""
        return {
            "ok": self.ok,
            "size": list(self.image.size) if self.image is not None else None,
            "mode": self.image.mode if self.image is not None else None,
            "stdout": self.stdout,
            "error": self.error,
            "error_kind": self.error_kind,
            "duration_s": round(self.duration_s, 6),
            "run_s": round(self.run_s, 6) if self.run_s is not None else None,
            "trace": [op.to_dict() for op in self.trace],
            "discarded": [op.to_dict() for op in self.discarded],
            "to_source": list(self.to_source) if self.to_source is not None else None,
        }
