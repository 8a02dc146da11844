"""The public entry point: a pool of warm, hardened workers that run model-written image code.

Each worker is a separate Python process started with a scrubbed environment; it imports PIL, NumPy and
OpenCV once, then forks hardened children that run the calls (:mod:`cv_sandbox._pool` is the caller's side,
:mod:`cv_sandbox._zygote` the workers' and children's, :mod:`cv_sandbox._exchange` every message between
them). Calls are thread-safe and can be awaited; a worker that dies or hangs is killed and replaced.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ._harden import ISOLATION_LEVELS, isolation_level, missing_for
from ._pool import WorkerPool
from ._wire import normalize_mode
from .result import ExecResult, TraceOp

ImageLike = Image.Image | np.ndarray | str | Path


@dataclass
class SandboxConfig:
    """Limits and pool settings of a :class:`Sandbox`.

    Attributes:
        timeout_s: Wall-clock limit for one execution (the child is killed at this point); at most 3600.
        memory_mb: Address-space allowance for user code on top of the preloaded libraries (64 to 1048576).
        workers: Number of warm worker processes, i.e. how many calls run in parallel (1 to 256).
        max_code_chars: Longest accepted code string.
        max_output_pixels: Largest accepted ``result`` (width * height; at most 2**30).
        max_input_pixels: Largest accepted input image (width * height; at most 2**30).
        max_stdout_chars: Captured ``print`` output is truncated to this many characters.
        max_aspect_ratio: ``result`` images more elongated than this are rejected (``empty_result``).
        start_timeout_s: How long to wait for a worker to import its libraries and report ready.
        calls_per_child: How many calls one hardened child may serve. 1 (the default) gives every call a
            brand-new process, forked and hardened ahead of time: nothing of an earlier call (its code,
            pixels, results, heap) exists anywhere a later call could look. Larger values let calls of this
            ``Sandbox`` share a process (a little faster) and so see traces of each other: use them only
            when every call comes from one trusted source. A child is retired early after any timeout,
            memory error, crash or forbidden access.
        acquire_timeout_s: How long a call may wait for a free worker (calls are served first come,
            first served); after it the call fails with ``error_kind="busy"``.
        min_isolation: The weakest OS isolation this caller accepts: ``"none"``, ``"basic"`` (seccomp
            allow-list, ``no_new_privs``, rlimits) or ``"strict"`` (also no network, no filesystem, no
            other processes visible, no privileges: namespaces as root or through unprivileged user
            namespaces, chroot or Landlock). Below it ``Sandbox()`` refuses to start and says what is
            missing and how to enable it. ``Sandbox.isolation`` tells what a machine gives.
        harden: Apply OS hardening to every child. Turn off only to debug (then ``min_isolation`` must be
            ``"none"``); the RestrictedPython layer and facades stay on either way.
    """

    timeout_s: float = 10.0
    memory_mb: int = 2048
    workers: int = 2
    max_code_chars: int = 20_000
    max_output_pixels: int = 64_000_000
    max_input_pixels: int = 100_000_000
    max_stdout_chars: int = 4_000
    max_aspect_ratio: float = 200.0
    start_timeout_s: float = 120.0
    harden: bool = True
    calls_per_child: int = 1
    acquire_timeout_s: float = 300.0
    min_isolation: str = "basic"

    def __post_init__(self) -> None:
        _number("timeout_s", self.timeout_s, 0, 3600, "e.g. timeout_s=10")
        _integer("memory_mb", self.memory_mb, 64, 1 << 20, "e.g. memory_mb=2048")
        _integer("workers", self.workers, 1, MAX_WORKERS, "the number of calls you need in parallel")
        _integer("max_code_chars", self.max_code_chars, 1, 10_000_000, "e.g. max_code_chars=20000")
        _integer("max_output_pixels", self.max_output_pixels, 1, 1 << 30, "e.g. max_output_pixels=64000000")
        _integer("max_input_pixels", self.max_input_pixels, 1, 1 << 30, "e.g. max_input_pixels=100000000")
        _integer("max_stdout_chars", self.max_stdout_chars, 0, 10_000_000, "e.g. max_stdout_chars=4000")
        _number("max_aspect_ratio", self.max_aspect_ratio, 1, 1e6, "e.g. max_aspect_ratio=200", low_ok=True)
        _number("start_timeout_s", self.start_timeout_s, 0, 3600, "e.g. start_timeout_s=120")
        _integer("calls_per_child", self.calls_per_child, 1, 10_000, "1 forks a fresh process per call")
        _number("acquire_timeout_s", self.acquire_timeout_s, 0, 86_400, "e.g. acquire_timeout_s=300")
        if not isinstance(self.harden, bool):
            raise ValueError(f"harden must be True or False, got {self.harden!r}")
        if self.min_isolation not in ISOLATION_LEVELS:
            raise ValueError(
                f"min_isolation must be one of {', '.join(ISOLATION_LEVELS)}, got {self.min_isolation!r}"
            )
        if not self.harden and self.min_isolation != "none":
            raise ValueError(
                f"harden=False gives no OS isolation, but min_isolation is {self.min_isolation!r}; "
                "set min_isolation='none' to debug without hardening"
            )


#: Upper bound of ``SandboxConfig.workers`` (each worker is a process with the libraries loaded).
MAX_WORKERS = 256


def _number(name: str, value: Any, low: float, high: float, hint: str, low_ok: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}; set {hint}")
    if value < low or (value == low and not low_ok) or value > high:
        bound = f">= {low:g}" if low_ok else f"> {low:g}"
        raise ValueError(f"{name} must be {bound} and <= {high:g}, got {value!r}; set {hint}")


def _integer(name: str, value: Any, low: int, high: int, hint: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}; set {hint}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}; set {hint}")


class IsolationError(RuntimeError):
    """This machine cannot give the OS isolation ``SandboxConfig.min_isolation`` requires."""


class Sandbox:
    """Run model-written image code safely and fast.

    Two layers: the code is compiled with RestrictedPython and sees only curated facades of
    PIL/NumPy/OpenCV/math; it runs in a forked child of a warm worker process that is hardened at the OS
    level (empty network namespace, chroot into an empty directory, rlimits, uid ``nobody``,
    ``no_new_privs``, seccomp) and killed at the deadline.

    Example:
        >>> from PIL import Image
        >>> with Sandbox(SandboxConfig(workers=1)) as sb:
        ...     r = sb.run("result = image.rotate(90, expand=True)", [Image.new("RGB", (4, 2))])
        >>> r.ok, r.image.size, r.ops
        (True, (2, 4), ['rotate_90'])
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._pid = os.getpid()
        self._closed = False
        self._lock = threading.Lock()
        self._pool = WorkerPool(self.config)
        if self.config.min_isolation != "none":
            self._require(self.config.min_isolation)

    def _require(self, level: str) -> None:
        report = self.hardening
        got = isolation_level(report)
        if ISOLATION_LEVELS.index(got) >= ISOLATION_LEVELS.index(level):
            return
        self.close()
        missing = "; ".join(missing_for(level, report)) or "the workers did not start"
        raise IsolationError(
            f"cv-sandbox needs isolation {level!r} (SandboxConfig.min_isolation) but this machine gives "
            f"{got!r}. Missing: {missing}. Or accept less with SandboxConfig(min_isolation={got!r})."
        )

    # ------------------------------------------------------------------ public API

    def run(self, code: str, images: Sequence[ImageLike], image_index: int = 0) -> ExecResult:
        """Execute ``code`` on ``images[image_index]`` and return the outcome (never raises for bad code).

        Args:
            code: Python source that assigns a PIL image (or uint8 array) to ``result`` / ``output``.
            images: The conversation's images (PIL images, HxW[xC] uint8 arrays in RGB order, or paths,
                which are opened here, never by the sandboxed code).
            image_index: Which image the code sees as ``image`` / ``img``.

        Returns:
            An :class:`ExecResult`; on failure ``error``/``error_kind`` say what went wrong.

        Example:
            >>> from PIL import Image
            >>> with Sandbox(SandboxConfig(workers=1)) as sb:
            ...     sb.run("result = image.crop((0, 0, 2, 2))", [Image.new("L", (4, 4))]).crop_boxes
            [(0, 0, 2, 2)]
        """
        t0 = time.perf_counter()
        if self._closed:
            raise RuntimeError("Sandbox is closed; create a new Sandbox")
        if os.getpid() != self._pid:
            raise RuntimeError(
                "this Sandbox belongs to the process that created it; create a new Sandbox "
                "in each forked process"
            )
        if not isinstance(code, str):
            return self._fail("bad_input", f"code must be a string, got {type(code).__name__}", t0)
        if len(code) > self.config.max_code_chars:
            return self._fail(
                "code_too_long",
                f"code is {len(code)} characters; the limit is {self.config.max_code_chars}",
                t0,
            )
        try:
            im = self._prepare(images, image_index)
        except ValueError as exc:
            return self._fail("bad_input", str(exc), t0)
        header, image = self._pool.call(code, im)
        return self._to_result(header, image, t0)

    async def arun(self, code: str, images: Sequence[ImageLike], image_index: int = 0) -> ExecResult:
        """Async :meth:`run`; many calls may be awaited concurrently (they queue for workers).

        Example:
            >>> import asyncio
            >>> from PIL import Image
            >>> with Sandbox(SandboxConfig(workers=1)) as sb:
            ...     asyncio.run(sb.arun("result = image", [Image.new("L", (3, 3))])).ok
            True
        """
        return await asyncio.to_thread(self.run, code, images, image_index)

    @property
    def hardening(self) -> dict[str, bool]:
        """What OS hardening worked on this machine (from the workers' start-up probe)."""
        return self._pool.hardening()

    @property
    def isolation(self) -> str:
        """The OS isolation level this machine gives (one of ``"none"``, ``"basic"``, ``"strict"``).

        Example:
            >>> with Sandbox(SandboxConfig(workers=1)) as sb:
            ...     sb.isolation in ("basic", "strict")
            True
        """
        return isolation_level(self.hardening)

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for monitoring and tests)."""
        return self._pool.pids()

    def close(self) -> None:
        """Kill all workers; calls still waiting or running return ``error_kind="closed"``. Idempotent."""
        if os.getpid() != self._pid:
            return  # a forked copy must not kill the parent's workers
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._pool.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # ------------------------------------------------------------------ internals

    def _prepare(self, images: Sequence[ImageLike], image_index: int) -> Image.Image:
        if isinstance(images, Image.Image | np.ndarray | str | Path):
            images = [images]
        if not isinstance(images, Sequence):
            raise ValueError(
                f"images must be a list of PIL images, arrays or paths, got {type(images).__name__}"
            )
        if isinstance(image_index, bool) or not isinstance(image_index, int | np.integer):
            raise ValueError(f"image_index must be an integer, got {type(image_index).__name__}")
        if not 0 <= image_index < len(images):
            raise ValueError(
                f"image_index {image_index} is out of range: there are {len(images)} image(s) "
                f"(valid: 0..{len(images) - 1})"
            )
        im = load_image(images[int(image_index)], self.config.max_input_pixels)
        if im.width * im.height > self.config.max_input_pixels:
            raise ValueError(
                f"input image has {im.width * im.height} pixels; the limit is {self.config.max_input_pixels}"
            )
        if im.width == 0 or im.height == 0:
            raise ValueError("input image is empty")
        return im

    def _fail(self, kind: str, msg: str, t0: float) -> ExecResult:
        return ExecResult(error=msg, error_kind=kind, duration_s=time.perf_counter() - t0)

    def _to_result(self, header: dict[str, Any], image: Image.Image | None, t0: float) -> ExecResult:
        trace = _ops(header.get("trace"))
        discarded = _ops(header.get("discarded"))
        ts = header.get("to_source")
        to_source = tuple(float(v) for v in ts) if isinstance(ts, list) and len(ts) == 6 else None
        cs = header.get("child_s")
        run = cs.get("run") if isinstance(cs, dict) else None
        run_s = (
            float(run) if isinstance(run, int | float) and not isinstance(run, bool) and run >= 0 else None
        )
        if not header.get("ok") or image is None:
            kind = header.get("error_kind") or "crash"
            return ExecResult(
                stdout=str(header.get("stdout") or ""),
                error=str(header.get("error") or "unknown error"),
                error_kind=kind,
                duration_s=time.perf_counter() - t0,
                run_s=run_s,
                trace=trace,
            )
        return ExecResult(
            image=image,
            stdout=str(header.get("stdout") or ""),
            duration_s=time.perf_counter() - t0,
            run_s=run_s,
            trace=trace,
            to_source=to_source,  # type: ignore[arg-type]
            discarded=discarded,
        )


def _ops(raw: Any) -> list[TraceOp]:
    if not isinstance(raw, list):
        return []
    return [TraceOp.from_dict(op) for op in raw if isinstance(op, dict) and isinstance(op.get("name"), str)]


def load_image(obj: ImageLike, max_pixels: int | None = None) -> Image.Image:
    """Turn a caller-supplied image (PIL, array, path) into a PIL image with a transferable mode.

    A file larger than ``max_pixels`` (width * height) is refused before its pixels are decoded.

    Example:
        >>> import numpy as np
        >>> load_image(np.zeros((2, 3, 3), np.uint8)).size
        (3, 2)
    """
    if isinstance(obj, Image.Image):
        try:
            obj.load()
        except Exception as exc:  # noqa: BLE001 - truncated or broken files surface here
            raise ValueError(f"cannot read image: {exc}") from exc
        return normalize_mode(obj)
    if isinstance(obj, np.ndarray):
        arr = obj
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
            raise ValueError(f"image array must be HxW, HxWx3 or HxWx4, got shape {obj.shape}")
        if arr.dtype == np.bool_:
            arr = arr.astype(np.uint8) * 255
        if arr.dtype != np.uint8:
            raise ValueError(f"image array must be uint8, got {arr.dtype}")
        return Image.fromarray(np.ascontiguousarray(arr))
    if isinstance(obj, str | Path):
        p = Path(obj)
        if not p.is_file():
            raise ValueError(f"image file not found: {p}")
        try:
            with Image.open(p) as im:
                if max_pixels is not None and im.width * im.height > max_pixels:
                    raise ValueError(
                        f"image {p} has {im.width * im.height} pixels ({im.width}x{im.height}); the limit is "
                        f"{max_pixels}"
                    )
                im.load()
                return normalize_mode(im.copy())
        except ValueError:
            raise
        except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad files
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(f"cannot open image {p}: {first}") from exc
    raise ValueError(
        f"unsupported image type {type(obj).__name__}; pass a PIL image, a uint8 array or a path"
    )
