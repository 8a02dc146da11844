"""A deterministic fake sandbox with exact traces and affine maps (independent of cv-sandbox's progress)."""

from __future__ import annotations

from collections.abc import Sequence

from cv_sandbox import ExecResult, TraceOp
from PIL import Image


class FakeSandbox:
    """Understands three one-line programs: ``rotate90``, ``crop x1 y1 x2 y2``, ``fail``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []

    async def arun(self, code: str, images: Sequence[Image.Image], image_index: int = 0) -> ExecResult:
        return self.run(code, images, image_index)

    def run(self, code: str, images: Sequence[Image.Image], image_index: int = 0) -> ExecResult:
        self.calls.append((code, image_index, len(images)))
        src = images[image_index]
        w, h = src.size
        if code == "rotate90":
            # PIL rotate(90, expand=True) is counter-clockwise: output (x, y) <- source (w - y, x)
            out = src.rotate(90, expand=True)
            return ExecResult(
                image=out,
                trace=[TraceOp("rotate_90", api="PIL.Image.rotate")],
                to_source=(0, -1, w, 1, 0, 0),
                duration_s=0.001,
            )
        if code.startswith("crop "):
            x1, y1, x2, y2 = (int(v) for v in code.split()[1:])
            out = src.crop((x1, y1, x2, y2))
            return ExecResult(
                image=out,
                trace=[TraceOp("crop", box=(x1, y1, x2, y2))],
                to_source=(1, 0, x1, 0, 1, y1),
                duration_s=0.001,
            )
        if code == "untracked":
            return ExecResult(image=src.copy(), trace=[TraceOp("warp")], to_source=None)
        if code == "raise":
            raise RuntimeError("worker died")
        return ExecResult(
            error="NameError: name 'fail' is not defined", error_kind="exception", duration_s=0.001
        )

    def close(self) -> None:
        pass
