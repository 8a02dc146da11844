"""PROVISIONAL in-process implementation so dependent packages can integrate. The cv-sandbox work replaces
this module with the isolated warm-pool implementation while keeping the same public API."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

from .result import ExecResult

ImageLike = Image.Image | np.ndarray | str | Path


@dataclass
class SandboxConfig:
    timeout_s: float = 10.0
    memory_mb: int = 2048
    workers: int = 2
    max_code_chars: int = 20_000
    max_output_pixels: int = 64_000_000
    max_stdout_chars: int = 4_000


class Sandbox:
    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()

    def run(self, code: str, images: Sequence[ImageLike], image_index: int = 0) -> ExecResult:
        t0 = time.perf_counter()
        imgs = [im if isinstance(im, Image.Image) else Image.open(im) for im in images]
        ns = {"image": imgs[image_index], "img": imgs[image_index], "Image": Image, "ImageEnhance": ImageEnhance,
              "ImageFilter": ImageFilter, "ImageOps": ImageOps, "ImageDraw": ImageDraw, "np": np, "cv2": cv2, "math": math}
        try:
            exec(compile(code, "<code>", "exec"), ns)
        except Exception as e:  # noqa: BLE001
            return ExecResult(error=f"{type(e).__name__}: {e}", error_kind="exception", duration_s=time.perf_counter() - t0)
        out = ns.get("result", ns.get("output"))
        if not isinstance(out, Image.Image):
            return ExecResult(error="`result` must be a PIL image", error_kind="bad_result", duration_s=time.perf_counter() - t0)
        return ExecResult(image=out, duration_s=time.perf_counter() - t0)

    async def arun(self, code: str, images: Sequence[ImageLike], image_index: int = 0) -> ExecResult:
        return await asyncio.to_thread(self.run, code, images, image_index)

    def close(self) -> None:
        pass

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
