"""Compile and run one piece of user code on one image; the body of every sandbox child process.

Returns a JSON-able header and the result image (in a transferable mode); never raises for anything user
code does.

Names user code sees (:data:`GLOBAL_NAMES`): ours (``image``, ``img``, ``Image``, ``ImageEnhance``,
``ImageFilter``, ``ImageOps``, ``ImageDraw``, ``np``, ``cv2``, ``math``) and the public CodeVision release's
(``draw``: an ``ImageDraw.Draw`` on the input, made on first use; ``PIL``, ``numpy``, ``cv``, ``ImageFont``
with the built-in font only, ``PI``, ``E``). The result is the first of :data:`RESULT_NAMES` the code
assigned; failing that, the input image if the code drew on it.
"""

from __future__ import annotations

import math
import traceback
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image
from RestrictedPython import compile_restricted_exec
from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence

from . import geometry as A
from ._exchange import error_reply, ok_reply
from ._facade_cv2 import build_cv2
from ._facade_math import build_math
from ._facade_numpy import build_numpy
from ._facade_pil import build_pil
from ._forbid import GUARD, ForbiddenError
from ._guards import (
    BoundedPrint,
    guarded_getattr,
    guarded_getitem,
    guarded_write,
    inplacevar,
    make_builtins,
    make_import,
)
from ._policy import ImagePolicy
from ._trace import CODE_FILENAME, STATE, USER_MODULE, TracedArray, depth, geo_of, same, set_geo
from ._trace_pil import patch_pil
from ._wire import normalize_mode


@dataclass
class Limits:
    """What one execution may produce (mirrors :class:`cv_sandbox.SandboxConfig`)."""

    max_code_chars: int = 20_000
    max_output_pixels: int = 64_000_000
    max_stdout_chars: int = 4_000
    max_aspect_ratio: float = 200.0
    max_error_chars: int = 2_000


class Namespaces:
    """Facades are built once per worker; they are immutable, so every run can share them."""

    def __init__(self) -> None:
        patch_pil()
        pil = build_pil()
        self.np = build_numpy()
        self.cv2 = build_cv2()
        self.math = build_math()
        self.pil = pil
        self.modules: dict[str, Any] = {
            "numpy": self.np,
            "cv2": self.cv2,
            "math": self.math,
            "PIL": pil["PIL"],
        }
        for sub in ("random", "linalg", "fft"):
            self.modules["numpy." + sub] = getattr(self.np, sub)
        for k, v in pil.items():
            if k != "PIL":
                self.modules["PIL." + k] = v
        self.builtins = make_builtins(make_import(self.modules))

    def globals_for(self, image: Image.Image, printer: BoundedPrint) -> dict[str, Any]:
        return {
            **self._names(image),
            "__builtins__": self.builtins,
            "__name__": USER_MODULE,
            "__metaclass__": type,
            "_getattr_": guarded_getattr,
            "_getitem_": guarded_getitem,
            "_write_": guarded_write,
            "_getiter_": iter,
            "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
            "_unpack_sequence_": guarded_unpack_sequence,
            "_inplacevar_": inplacevar,
            "_apply_": _apply,
            "_print_": lambda *_a: printer,
        }

    def _names(self, image: Image.Image) -> dict[str, Any]:
        return {
            "image": image,
            "img": image,
            "Image": self.pil["Image"],
            "ImageEnhance": self.pil["ImageEnhance"],
            "ImageFilter": self.pil["ImageFilter"],
            "ImageOps": self.pil["ImageOps"],
            "ImageDraw": self.pil["ImageDraw"],
            "np": self.np,
            "cv2": self.cv2,
            "math": self.math,
            # the public release's names
            "draw": LazyDraw(image),
            "PIL": self.pil["PIL"],
            "numpy": self.np,
            "cv": self.cv2,
            "ImageFont": self.pil["ImageFont"],
            "PI": math.pi,
            "E": math.e,
        }


def _apply(f: Any, *args: Any, **kwargs: Any) -> Any:
    return f(*args, **kwargs)


#: Where the result is looked for, in order (the release's order); a name counts only if the code bound it.
RESULT_NAMES = ("result", "output", "processed_image", "img", "image")


class LazyDraw:
    """The release's ``draw`` global: an ``ImageDraw.Draw`` on the input image, made on first use (making
    it copies the shared input, which most calls never need)."""

    __slots__ = ("_cvs_image", "_cvs_draw")

    def __init__(self, image: Image.Image) -> None:
        self._cvs_image = image
        self._cvs_draw: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._cvs_draw is None:
            from PIL import ImageDraw

            self._cvs_draw = ImageDraw.Draw(self._cvs_image)
        return getattr(self._cvs_draw, name)

    def __repr__(self) -> str:
        return "<ImageDraw.Draw of the input image>"


def _find_result(glb: dict[str, Any], image: Image.Image, core: Any) -> Any:
    """The first of :data:`RESULT_NAMES` the code bound (not the input the name started as); else the
    input image if the code changed it in place (e.g. drew on it with ``draw``); else None."""
    for name in RESULT_NAMES:
        if name in glb and not (name in ("img", "image") and glb[name] is image):
            return glb[name]
    return image if image.im is not core else None


def _user_line(exc: BaseException) -> int | None:
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == CODE_FILENAME:
            line = lineno
    return line


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + " ...[truncated]"


def _is_memory_error(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    if isinstance(exc, cv2.error):
        msg = str(exc).lower()
        return "insufficient memory" in msg or "failed to allocate" in msg or "out of memory" in msg
    return False


def _error(kind: str, msg: str, printer: BoundedPrint | None = None) -> tuple[dict[str, Any], None]:
    return error_reply(kind, msg, printer.text() if printer else "", list(STATE.ops)), None


def _to_image(value: Any) -> Image.Image | str:
    """Convert ``result`` to a PIL image, or return an error message."""
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, np.ndarray):
        arr = value
        g = geo_of(arr)
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
            return (
                f"`result` is an array of shape {tuple(value.shape)}; an image array must be HxW, HxWx3 "
                "or HxWx4"
            )
        if arr.dtype == np.bool_:
            arr = arr.astype(np.uint8) * 255
        if arr.dtype != np.uint8:
            return (
                f"`result` is a {arr.dtype} array; convert it to uint8 first, e.g. "
                "`result = np.clip(arr, 0, 255).astype(np.uint8)`"
            )
        im = Image.fromarray(np.ascontiguousarray(arr.view(np.ndarray)))
        if g is not None:
            set_geo(im, same(g))
        return im
    if value is None:
        return "the code did not assign an image to `result` (or `output`)"
    return f"`result` must be a PIL image (or a uint8 image array), got {type(value).__name__}"


class Executor:
    """Runs user code against a worker's shared :class:`Namespaces`."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.ns = Namespaces()
        self._cache: dict[str, Any] = {}

    def _compile(self, code: str) -> Any:
        # Models repeat snippets verbatim; code objects are immutable, so a child may reuse them.
        hit = self._cache.get(code)
        if hit is None:
            hit = compile_restricted_exec(code, filename=CODE_FILENAME, policy=ImagePolicy)
            if len(self._cache) >= 256:
                self._cache.clear()
            self._cache[code] = hit
        return hit

    def run(self, code: str, image: Image.Image) -> tuple[dict[str, Any], Image.Image | None]:
        lim = self.limits
        STATE.reset(image.size)
        GUARD.forbidden = None
        if len(code) > lim.max_code_chars:
            return _error(
                "code_too_long", f"code is {len(code)} characters; the limit is {lim.max_code_chars}"
            )
        try:
            compiled = self._compile(code)
        except (MemoryError, RecursionError):
            return _error("syntax", "code is too deeply nested or too large to compile")
        except Exception as exc:  # noqa: BLE001 - anything the compiler throws is the code's fault
            return _error("syntax", _clip(f"{type(exc).__name__}: {exc}", lim.max_error_chars))
        if compiled.errors:
            msg = "; ".join(compiled.errors)
            kind = (
                "syntax"
                if "SyntaxError" in msg or "IndentationError" in msg or "TabError" in msg
                else "forbidden"
            )
            return _error(kind, _clip(msg, lim.max_error_chars))
        # Reproducible, and calls sharing a child (calls_per_child > 1) do not see each other's RNG state.
        np.random.seed(0)
        cv2.setRNGSeed(0)
        printer = BoundedPrint(lim.max_stdout_chars)
        set_geo(image, A.IDENTITY)
        core = image.im
        glb = self.ns.globals_for(image, printer)
        try:
            exec(compiled.code, glb)  # noqa: S102 - RestrictedPython-compiled, guarded globals
        except ForbiddenError as exc:
            return _error("forbidden", _clip(str(exc), lim.max_error_chars), printer)
        except BaseException as exc:  # noqa: BLE001 - user code may raise anything, SystemExit included
            if GUARD.forbidden is not None:
                return _error("forbidden", _clip(GUARD.forbidden, lim.max_error_chars), printer)
            if _is_memory_error(exc):
                return _error("memory", "memory limit exceeded (the code allocated too much memory)", printer)
            line = _user_line(exc)
            where = f" (line {line})" if line is not None else ""
            text = _clip(f"{type(exc).__name__}: {exc}{where}", lim.max_error_chars)
            return _error("exception", text, printer)
        if GUARD.forbidden is not None:
            return _error("forbidden", _clip(GUARD.forbidden, lim.max_error_chars), printer)
        value = _find_result(glb, image, core)
        try:
            out = _to_image(value)
        except MemoryError:
            return _error("memory", "memory limit exceeded while converting `result`", printer)
        if isinstance(out, str):
            return _error("bad_result", out, printer)
        w, h = out.size
        if w == 0 or h == 0:
            return _error("empty_result", f"`result` is empty ({w}x{h} pixels); check the crop box", printer)
        if max(w, h) / min(w, h) > lim.max_aspect_ratio:
            return _error(
                "empty_result",
                f"`result` has an extreme aspect ratio ({w}x{h} pixels; at most "
                f"{lim.max_aspect_ratio:g}:1 is allowed)",
                printer,
            )
        if w * h > lim.max_output_pixels:
            return _error(
                "output_too_large",
                f"`result` has {w * h} pixels ({w}x{h}); the limit is {lim.max_output_pixels}",
                printer,
            )
        g = geo_of(out)
        to_source = None
        if (
            g is not None
            and g.affine is not None
            and A.is_axis_aligned(g.affine)
            and all(math.isfinite(v) for v in g.affine)
        ):
            to_source = list(A.clean(g.affine))
        lineage = g.lineage if g is not None else frozenset()
        try:
            with depth():  # the sandbox's own conversion is no op of the code's
                out = normalize_mode(out)
        except MemoryError:
            return _error("memory", "memory limit exceeded while returning `result`", printer)
        credited = [op for i, op in enumerate(STATE.ops) if i in lineage]
        discarded = [op for i, op in enumerate(STATE.ops) if i not in lineage]
        return ok_reply(printer.text(), credited, to_source, discarded), out


_ = TracedArray  # re-exported for tests that inspect arrays
