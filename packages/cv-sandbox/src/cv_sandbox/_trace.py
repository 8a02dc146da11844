"""The op tracer: records every image operation user code executes, and where its pixels come from.

Each image object carries a :class:`Geo`: the affine map from its pixels to the source image (or ``None``
once an untrackable op ran) and the size it describes. PIL images keep it in their instance dict, NumPy
arrays are viewed as :class:`TracedArray`, a thin ``ndarray`` subclass that hands it on through ufuncs and
views. Library functions call each other (``ImageOps.mirror`` calls ``Image.transpose``), so an op is
recorded only at call depth 0 while every level still updates the geometry.

This module is the tracer's state and geometry bookkeeping; :mod:`cv_sandbox._trace_pil` patches Pillow's
image methods with it, and the facades (``_facade_*``) wrap the library functions user code can call.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from . import geometry as A

GEO_ATTR = "_cvs_geo"
#: Filename of compiled user code (frames with it are user code).
CODE_FILENAME = "<tool code>"
#: ``__name__`` of the globals user code runs in (classes it defines carry it as ``__module__``).
USER_MODULE = "tool_code"
_NO_OPS: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Geo:
    """Where an image's pixels come from: ``affine`` (output -> source) or None, for an image of ``size``;
    ``lineage``: the indices of the recorded ops whose effect its pixels carry."""

    affine: A.Affine | None
    size: tuple[int, int]
    lineage: frozenset[int] = _NO_OPS


class Carry:
    """An output's source map together with the lineage it inherits (what :func:`then`/:func:`same` give
    :func:`set_geo`)."""

    __slots__ = ("affine", "lineage")

    def __init__(self, affine: A.Affine | None, lineage: frozenset[int]) -> None:
        self.affine = affine
        self.lineage = lineage


class TraceState:
    """Per-execution trace; reset before each run (one run per forked child)."""

    def __init__(self) -> None:
        self.reset((0, 0))

    def reset(self, source_size: tuple[int, int]) -> None:
        self.ops: list[dict[str, Any]] = []
        self.depth = 0
        self.entries: list[Any] = []  # frames of the library wrappers that entered each depth level
        self.pending: list[int] = []  # ops recorded whose output has not been tagged yet
        self.source_size = source_size
        self.max_ops = 10_000

    def record(
        self,
        name: str,
        api: str,
        params: dict[str, Any] | None = None,
        geo_in: Geo | None = None,
        box: tuple[float, float, float, float] | None = None,
        effective: bool = True,
    ) -> None:
        """Log one op (at call depth 0, or from user code a library called back); the next
        :func:`then`/:func:`same` hands it to the op's output as lineage."""
        if (self.depth != 0 and not self._in_user_callback()) or len(self.ops) >= self.max_ops:
            return
        src_box = None
        if box is not None and geo_in is not None and geo_in.affine is not None:
            src_box = list(A.map_box(geo_in.affine, box, self.source_size))
        self.pending.append(len(self.ops))
        self.ops.append(
            {
                "name": name,
                "box": src_box,
                "params": _jsonable(params or {}),
                "api": api,
                "effective": bool(effective),
            }
        )

    def _in_user_callback(self) -> bool:
        """Whether user code runs between here and the library wrapper that entered the current depth
        (e.g. a function it passed to ``Image.point`` or ``ImageOps.deform``): its ops are its own."""
        entry = self.entries[-1] if self.entries else None
        f = sys._getframe(2)
        while f is not None and f is not entry:
            if f.f_code.co_filename == CODE_FILENAME:
                return True
            f = f.f_back
        return False

    def take_pending(self) -> frozenset[int]:
        if not self.pending:
            return _NO_OPS
        out = frozenset(self.pending)
        self.pending.clear()
        return out


STATE = TraceState()


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, bool | int | str) or v is None:
            out[k] = v
        elif isinstance(v, float):
            out[k] = v if math.isfinite(v) else str(v)
        elif isinstance(v, np.integer):
            out[k] = int(v)
        elif isinstance(v, np.floating):
            out[k] = float(v)
        elif isinstance(v, tuple | list):
            out[k] = [_jsonable({"v": x})["v"] for x in v][:16]
        else:
            out[k] = type(v).__name__
    return out


class TracedArray(np.ndarray):
    """``ndarray`` that remembers which source pixels it holds (see :class:`Geo`)."""

    _cvs_geo: Geo | None

    def __array_finalize__(self, obj: Any) -> None:
        self._cvs_geo = getattr(obj, GEO_ATTR, None)


# Reprs read like plain NumPy arrays for the model.
TracedArray.__name__ = "array"
TracedArray.__qualname__ = "array"


def hw_size(obj: Any) -> tuple[int, int] | None:
    """(width, height) of a PIL image or an image-shaped array, else None."""
    if isinstance(obj, Image.Image):
        return obj.size
    if isinstance(obj, np.ndarray) and obj.ndim >= 2:
        return int(obj.shape[1]), int(obj.shape[0])
    return None


def geo_of(obj: Any) -> Geo | None:
    """The object's geometry; ``Geo(None, size)`` for images of unknown origin; None for non-images."""
    if isinstance(obj, Image.Image):
        g = obj.__dict__.get(GEO_ATTR)
        if isinstance(g, Geo):
            return g if g.size == obj.size else Geo(None, obj.size, g.lineage)
        return Geo(None, obj.size)
    if isinstance(obj, np.ndarray):
        size = hw_size(obj)
        if size is None:
            return None
        g = getattr(obj, GEO_ATTR, None)
        if isinstance(g, Geo):
            return g if g.size == size else Geo(None, size, g.lineage)
        return None
    return None


def set_geo(obj: Any, affine: A.Affine | Carry | None) -> Any:
    """Attach geometry to an output image/array (arrays come back as :class:`TracedArray` views).

    A :class:`Carry` brings the lineage of the op's input; a bare affine (or None) only the ops just
    recorded.
    """
    size = hw_size(obj)
    if size is None:
        return obj
    if isinstance(affine, Carry):
        lineage = affine.lineage | STATE.take_pending()
        affine = affine.affine
    else:
        lineage = STATE.take_pending()
    g = Geo(A.clean(affine) if affine is not None else None, size, lineage)
    if isinstance(obj, Image.Image):
        obj.__dict__[GEO_ATTR] = g
        return obj
    if isinstance(obj, np.ndarray):
        if not isinstance(obj, TracedArray):
            obj = obj.view(TracedArray)
        obj._cvs_geo = g
    return obj


def then(geo: Geo | None, op_affine: A.Affine | None) -> Carry:
    """Source map of an op output, given the input geometry and the op's own output->input map (None:
    untrackable), with the input's lineage and the ops just recorded."""
    lineage = (geo.lineage if geo is not None else _NO_OPS) | STATE.take_pending()
    if geo is None or geo.affine is None or op_affine is None:
        return Carry(None, lineage)
    return Carry(A.compose(geo.affine, op_affine), lineage)


def same(geo: Geo | None) -> Carry:
    """An output with the same pixel positions as its input (a pixel-wise op)."""
    return Carry(
        geo.affine if geo is not None else None,
        (geo.lineage if geo is not None else _NO_OPS) | STATE.take_pending(),
    )


def lineage_of(*objs: Any) -> frozenset[int]:
    """Union of the lineages of the images/arrays among ``objs`` (lists and tuples looked into)."""
    out: frozenset[int] = _NO_OPS
    for o in objs:
        if isinstance(o, list | tuple):
            out = out | lineage_of(*o[:64])
        else:
            g = geo_of(o) if isinstance(o, Image.Image | np.ndarray) else None
            if g is not None:
                out = out | g.lineage
    return out


def combined(affine: A.Affine | None, *objs: Any) -> Carry:
    """An output made from several inputs (``objs``, their lineages combined) with source map ``affine``."""
    return Carry(affine, lineage_of(*objs) | STATE.take_pending())


def mixed(*objs: Any) -> Carry:
    """An output of unknown pixel positions made from ``objs`` (their lineages combined)."""
    return combined(None, *objs)


class depth:
    """Context manager: calls inside it are internal (not recorded), except from user callbacks."""

    def __enter__(self) -> None:
        if STATE.depth == 0:
            STATE.pending.clear()  # a new top-level op: nothing recorded before belongs to its output
        STATE.depth += 1
        STATE.entries.append(sys._getframe(1))

    def __exit__(self, *exc: object) -> None:
        STATE.depth -= 1
        STATE.entries.pop()
