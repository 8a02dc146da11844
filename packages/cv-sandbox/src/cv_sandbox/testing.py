"""Helpers for tests of code that uses the sandbox (here and in downstream packages)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from PIL import Image

from .result import ExecResult, TraceOp


def _stat(pid: str) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def children_of(pid: int) -> list[int]:
    """Live or zombie child process ids of ``pid`` (Linux ``/proc``).

    Example:
        >>> children_of(os.getpid()) == children_of(os.getpid())
        True
    """
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            fields = _stat(p)
            if fields is not None and int(fields[1]) == pid:
                out.append(int(p))
    return out


def child_zombies(pid: int | None = None) -> list[int]:
    """Zombie children of ``pid`` (default: this process): should be empty after any sandbox use.

    Example:
        >>> child_zombies()
        []
    """
    pid = os.getpid() if pid is None else pid
    return [c for c in children_of(pid) if (_stat(str(c)) or ["?"])[0] == "Z"]


class FakeSandbox:
    """A deterministic stand-in for :class:`~cv_sandbox.Sandbox` with exact traces and affine maps, for tests
    of callers (the workspace, the agent loop) that must not depend on the real sandbox's progress.

    Understands a few one-line programs: ``rotate90``, ``crop x1 y1 x2 y2``, ``untracked`` (an image without
    a frame map), ``raise`` (the sandbox itself fails) and anything else (a ``NameError`` tool error).
    ``calls`` records ``(code, image_index, number of images)`` per call.

    Example:
        >>> sb = FakeSandbox()
        >>> r = sb.run("crop 1 2 5 6", [Image.new("RGB", (8, 8))])
        >>> r.image.size, r.to_source, sb.calls
        ((4, 4), (1, 0, 1, 0, 1, 2), [('crop 1 2 5 6', 0, 1)])
    """

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
