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
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from . import geometry as A

GEO_ATTR = "_cvs_geo"


@dataclass(frozen=True)
class Geo:
    """Where an image's pixels come from: ``affine`` (output -> source) or None, for an image of ``size``."""

    affine: A.Affine | None
    size: tuple[int, int]


class TraceState:
    """Per-execution trace; reset before each run (one run per forked child)."""

    def __init__(self) -> None:
        self.reset((0, 0))

    def reset(self, source_size: tuple[int, int]) -> None:
        self.ops: list[dict[str, Any]] = []
        self.depth = 0
        self.source_size = source_size
        self.max_ops = 10_000

    def record(
        self,
        name: str,
        api: str,
        params: dict[str, Any] | None = None,
        geo_in: Geo | None = None,
        box: tuple[float, float, float, float] | None = None,
    ) -> None:
        if self.depth != 0 or len(self.ops) >= self.max_ops:
            return
        src_box = None
        if box is not None and geo_in is not None and geo_in.affine is not None:
            src_box = list(A.map_box(geo_in.affine, box, self.source_size))
        self.ops.append({"name": name, "box": src_box, "params": _jsonable(params or {}), "api": api})


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
        if isinstance(g, Geo) and g.size == obj.size:
            return g
        return Geo(None, obj.size)
    if isinstance(obj, np.ndarray):
        size = hw_size(obj)
        if size is None:
            return None
        g = getattr(obj, GEO_ATTR, None)
        if isinstance(g, Geo):
            return g if g.size == size else Geo(None, size)
        return None
    return None


def set_geo(obj: Any, affine: A.Affine | None) -> Any:
    """Attach geometry to an output image/array (arrays come back as :class:`TracedArray` views)."""
    size = hw_size(obj)
    if size is None:
        return obj
    g = Geo(A.clean(affine) if affine is not None else None, size)
    if isinstance(obj, Image.Image):
        obj.__dict__[GEO_ATTR] = g
        return obj
    if isinstance(obj, np.ndarray):
        if not isinstance(obj, TracedArray):
            obj = obj.view(TracedArray)
        obj._cvs_geo = g
    return obj


def then(geo: Geo | None, op_affine: A.Affine | None) -> A.Affine | None:
    """Source map of an op output, given the input geometry and the op's own output->input map."""
    if geo is None or geo.affine is None or op_affine is None:
        return None
    return A.compose(geo.affine, op_affine)


def same(geo: Geo | None) -> A.Affine | None:
    return geo.affine if geo is not None else None


class depth:
    """Context manager: calls inside it are internal (not recorded)."""

    def __enter__(self) -> None:
        STATE.depth += 1

    def __exit__(self, *exc: object) -> None:
        STATE.depth -= 1
