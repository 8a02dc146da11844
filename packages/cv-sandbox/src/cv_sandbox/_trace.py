"""The op tracer: records every image operation user code executes, and where its pixels come from.

Each image object carries a :class:`Geo`: the affine map from its pixels to the source image (or ``None``
once an untrackable op ran) and the size it describes. PIL images keep it in their instance dict, NumPy
arrays are viewed as :class:`TracedArray`, a thin ``ndarray`` subclass that hands it on through ufuncs and
views. Library functions call each other (``ImageOps.mirror`` calls ``Image.transpose``), so an op is
recorded only at call depth 0 while every level still updates the geometry.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

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


# ---------------------------------------------------------------------------------------------------------
# PIL: patch the classes inside the worker process only (never in the caller's process).

_TRANSPOSE_NAMES = {
    Image.Transpose.FLIP_LEFT_RIGHT: "flip_horizontal",
    Image.Transpose.FLIP_TOP_BOTTOM: "flip_vertical",
    Image.Transpose.ROTATE_90: "rotate_90",
    Image.Transpose.ROTATE_180: "rotate_180",
    Image.Transpose.ROTATE_270: "rotate_270",
    Image.Transpose.TRANSPOSE: "transpose",
    Image.Transpose.TRANSVERSE: "transverse",
}


def transpose_affine(method: int, w: int, h: int) -> A.Affine:
    return {
        Image.Transpose.FLIP_LEFT_RIGHT: A.flip_horizontal(w),
        Image.Transpose.FLIP_TOP_BOTTOM: A.flip_vertical(h),
        Image.Transpose.ROTATE_90: A.rotate_90(w, h),
        Image.Transpose.ROTATE_180: A.rotate_180(w, h),
        Image.Transpose.ROTATE_270: A.rotate_270(w, h),
        Image.Transpose.TRANSPOSE: A.transpose(),
        Image.Transpose.TRANSVERSE: A.transverse(w, h),
    }[Image.Transpose(method)]


def _pil_rotate_matrix(
    w: int, h: int, angle: float, expand: bool, center: Any, translate: Any
) -> tuple[A.Affine, tuple[int, int]]:
    """Pillow's own output->input matrix for ``Image.rotate`` (same formula as Pillow 10-13)."""
    post = translate if translate is not None else (0, 0)
    cx, cy = center if center is not None else (w / 2, h / 2)
    a = -math.radians(angle)
    m = [
        round(math.cos(a), 15),
        round(math.sin(a), 15),
        0.0,
        round(-math.sin(a), 15),
        round(math.cos(a), 15),
        0.0,
    ]

    def tf(x: float, y: float) -> tuple[float, float]:
        return m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]

    m[2], m[5] = tf(-cx - post[0], -cy - post[1])
    m[2] += cx
    m[5] += cy
    nw, nh = w, h
    if expand:
        xs, ys = zip(*(tf(x, y) for x, y in ((0, 0), (w, 0), (w, h), (0, h))), strict=True)
        nw = math.ceil(max(xs)) - math.floor(min(xs))
        nh = math.ceil(max(ys)) - math.floor(min(ys))
        m[2], m[5] = tf(-(nw - w) / 2.0, -(nh - h) / 2.0)
    return (m[0], m[1], m[2], m[3], m[4], m[5]), (nw, nh)


def _filter_name(f: Any) -> str:
    cls = f if isinstance(f, type) else type(f)
    n = cls.__name__
    if n in {"GaussianBlur", "BoxBlur", "BLUR", "SMOOTH", "SMOOTH_MORE", "MedianFilter"}:
        return "blur"
    if n in {"SHARPEN", "UnsharpMask", "DETAIL", "EDGE_ENHANCE", "EDGE_ENHANCE_MORE"}:
        return "sharpen"
    if n in {"FIND_EDGES", "CONTOUR", "EMBOSS"}:
        return "edges"
    if n in {"MinFilter", "MaxFilter", "ModeFilter", "RankFilter"}:
        return "rank_filter"
    return "filter"


def _convert_name(mode: str | None) -> str:
    if mode in ("L", "LA", "I", "F"):
        return "grayscale"
    if mode == "1":
        return "binarize"
    return "convert"


_orig: dict[str, Callable[..., Any]] = {}
_patched = False


def patch_pil() -> None:
    """Wrap the PIL methods user code reaches so they record ops and carry geometry. Idempotent."""
    global _patched
    if _patched:
        return
    _patched = True
    I = Image.Image  # noqa: E741
    for name in (
        "rotate",
        "transpose",
        "crop",
        "resize",
        "reduce",
        "thumbnail",
        "convert",
        "filter",
        "point",
        "copy",
        "split",
        "getchannel",
        "paste",
        "transform",
        "quantize",
        "effect_spread",
    ):
        _orig[name] = getattr(I, name)
    for name in ("merge", "blend", "composite", "alpha_composite", "fromarray", "eval"):
        _orig["Image." + name] = getattr(Image, name)
    _orig["enhance"] = ImageEnhance._Enhance.enhance

    def w_rotate(
        self: Image.Image,
        angle: float,
        resample: Any = Image.Resampling.NEAREST,
        expand: Any = 0,
        center: Any = None,
        translate: Any = None,
        fillcolor: Any = None,
    ) -> Image.Image:
        g = geo_of(self)
        with depth():
            out = _orig["rotate"](self, angle, resample, expand, center, translate, fillcolor)
        a = float(angle) % 360.0
        w, h = self.size
        op: A.Affine | None = None
        if a % 90 == 0:
            k = int(a // 90)
            if not (center or translate) and (k in (0, 2) or expand or w == h):
                op = (A.IDENTITY, A.rotate_90(w, h), A.rotate_180(w, h), A.rotate_270(w, h))[k]
            else:
                op, _ = _pil_rotate_matrix(w, h, a, bool(expand), center, translate)
            name = "rotate" if k == 0 else f"rotate_{k * 90}"
        else:
            name = "rotate"
        STATE.record(name, "PIL.Image.rotate", {"angle": float(angle), "expand": bool(expand)})
        return set_geo(out, then(g, op))

    def w_transpose(self: Image.Image, method: Any) -> Image.Image:
        g = geo_of(self)
        with depth():
            out = _orig["transpose"](self, method)
        w, h = self.size
        STATE.record(
            _TRANSPOSE_NAMES[Image.Transpose(method)], "PIL.Image.transpose", {"method": int(method)}
        )
        return set_geo(out, then(g, transpose_affine(method, w, h)))

    def w_crop(self: Image.Image, box: Any = None) -> Image.Image:
        g = geo_of(self)
        with depth():
            out = _orig["crop"](self, box)
        b = (
            tuple(float(v) for v in box)
            if box is not None
            else (0.0, 0.0, float(self.width), float(self.height))
        )
        STATE.record("crop", "PIL.Image.crop", {"box": list(b)}, g, b)  # type: ignore[arg-type]
        return set_geo(out, then(g, A.translate(b[0], b[1])))

    def w_resize(
        self: Image.Image, size: Any, resample: Any = None, box: Any = None, reducing_gap: Any = None
    ) -> Image.Image:
        g = geo_of(self)
        with depth():
            out = _orig["resize"](self, size, resample, box, reducing_gap)
        w, h = self.size
        b = tuple(float(v) for v in box) if box is not None else (0.0, 0.0, float(w), float(h))
        if b != (0.0, 0.0, float(w), float(h)):
            STATE.record("crop", "PIL.Image.resize", {"box": list(b)}, g, b)  # type: ignore[arg-type]
        STATE.record("resize", "PIL.Image.resize", {"size": list(out.size)})
        return set_geo(out, then(g, A.resize(w, h, out.width, out.height, b)))

    def w_reduce(self: Image.Image, factor: Any, box: Any = None) -> Image.Image:
        g = geo_of(self)
        with depth():
            out = _orig["reduce"](self, factor, box)
        fx, fy = (factor, factor) if isinstance(factor, int) else factor
        b = tuple(box) if box is not None else (0, 0, self.width, self.height)
        if tuple(b) != (0, 0, self.width, self.height):
            STATE.record("crop", "PIL.Image.reduce", {"box": list(b)}, g, b)  # type: ignore[arg-type]
        STATE.record("resize", "PIL.Image.reduce", {"size": list(out.size)})
        return set_geo(out, then(g, A.scale(fx, fy, b[0], b[1])))

    def w_thumbnail(self: Image.Image, size: Any, *args: Any, **kwargs: Any) -> None:
        g = geo_of(self)
        w, h = self.size
        with depth():
            _orig["thumbnail"](self, size, *args, **kwargs)
        if self.size != (w, h):
            STATE.record("resize", "PIL.Image.thumbnail", {"size": list(self.size)})
        set_geo(self, then(g, A.resize(w, h, self.width, self.height)))

    def pixelwise(key: str, api: str, namer: Callable[..., str | None]) -> Callable[..., Any]:
        orig = _orig[key]

        @functools.wraps(orig)
        def wrapper(self: Image.Image, *args: Any, **kwargs: Any) -> Any:
            g = geo_of(self)
            with depth():
                out = orig(self, *args, **kwargs)
            name = namer(*args, **kwargs)
            if name:
                STATE.record(name, api, _params_for(name, args, kwargs))
            if isinstance(out, Image.Image):
                return set_geo(out, same(g))
            if isinstance(out, tuple):
                return tuple(set_geo(o, same(g)) if isinstance(o, Image.Image) else o for o in out)
            if out is None:  # in place
                set_geo(self, same(g))
            return out

        return wrapper

    def w_transform(
        self: Image.Image, size: Any, method: Any, data: Any = None, *args: Any, **kwargs: Any
    ) -> Image.Image:
        g = geo_of(self)
        with depth():
            out = _orig["transform"](self, size, method, data, *args, **kwargs)
        if method == Image.Transform.EXTENT and data is not None and len(data) == 4:
            b = tuple(float(v) for v in data)
            STATE.record("crop", "PIL.Image.transform", {"box": list(b)}, g, b)  # type: ignore[arg-type]
            STATE.record("resize", "PIL.Image.transform", {"size": list(out.size)})
            return set_geo(out, then(g, A.resize(self.width, self.height, out.width, out.height, b)))
        STATE.record(
            "warp", "PIL.Image.transform", {"method": int(method) if isinstance(method, int) else str(method)}
        )
        return set_geo(out, None)

    def w_effect_spread(self: Image.Image, distance: int) -> Image.Image:
        with depth():
            out = _orig["effect_spread"](self, distance)
        STATE.record("warp", "PIL.Image.effect_spread", {"distance": distance})
        return set_geo(out, None)

    I.rotate = w_rotate  # type: ignore[method-assign]
    I.transpose = w_transpose  # type: ignore[method-assign]
    I.crop = w_crop  # type: ignore[method-assign]
    I.resize = w_resize  # type: ignore[method-assign]
    I.reduce = w_reduce  # type: ignore[method-assign]
    I.thumbnail = w_thumbnail  # type: ignore[method-assign]
    I.transform = w_transform  # type: ignore[method-assign]
    I.effect_spread = w_effect_spread  # type: ignore[method-assign]
    I.convert = pixelwise("convert", "PIL.Image.convert", lambda mode=None, *a, **k: _convert_name(mode))  # type: ignore[method-assign]
    I.filter = pixelwise("filter", "PIL.Image.filter", lambda f, *a, **k: _filter_name(f))  # type: ignore[method-assign]
    I.point = pixelwise("point", "PIL.Image.point", lambda *a, **k: "point")  # type: ignore[method-assign]
    I.quantize = pixelwise("quantize", "PIL.Image.quantize", lambda *a, **k: "quantize")  # type: ignore[method-assign]
    I.paste = pixelwise("paste", "PIL.Image.paste", lambda *a, **k: "paste")  # type: ignore[method-assign]
    I.copy = pixelwise("copy", "PIL.Image.copy", lambda *a, **k: None)  # type: ignore[method-assign]
    I.split = pixelwise("split", "PIL.Image.split", lambda *a, **k: None)  # type: ignore[method-assign]
    I.getchannel = pixelwise("getchannel", "PIL.Image.getchannel", lambda *a, **k: None)  # type: ignore[method-assign]

    def module_pixelwise(
        key: str, api: str, name: str | None, first: Callable[..., Any]
    ) -> Callable[..., Any]:
        orig = _orig[key]

        @functools.wraps(orig)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            src = first(*args, **kwargs)
            g = geo_of(src) if src is not None else None
            with depth():
                out = orig(*args, **kwargs)
            if name:
                STATE.record(name, api, {})
            if g is not None and g.size == out.size:
                return set_geo(out, same(g))
            return set_geo(out, None)

        return wrapper

    Image.merge = module_pixelwise(
        "Image.merge", "PIL.Image.merge", None, lambda mode, bands, *a, **k: bands[0] if bands else None
    )
    Image.blend = module_pixelwise("Image.blend", "PIL.Image.blend", "blend", lambda a, *r, **k: a)
    Image.composite = module_pixelwise(
        "Image.composite", "PIL.Image.composite", "composite", lambda a, *r, **k: a
    )
    Image.alpha_composite = module_pixelwise(
        "Image.alpha_composite", "PIL.Image.alpha_composite", "composite", lambda a, *r, **k: a
    )
    Image.eval = module_pixelwise("Image.eval", "PIL.Image.eval", "point", lambda a, *r, **k: a)
    Image.fromarray = module_pixelwise("Image.fromarray", "PIL.Image.fromarray", None, lambda a, *r, **k: a)

    _enh_names = {
        "Brightness": "brightness",
        "Contrast": "contrast",
        "Sharpness": "sharpen",
        "Color": "saturation",
    }

    def w_enhance(self: Any, factor: float) -> Image.Image:
        g = geo_of(self.image)
        with depth():
            out = _orig["enhance"](self, factor)
        STATE.record(
            _enh_names.get(type(self).__name__, "enhance"),
            f"PIL.ImageEnhance.{type(self).__name__}",
            {"factor": float(factor)},
        )
        return set_geo(out, same(g))

    ImageEnhance._Enhance.enhance = w_enhance  # type: ignore[method-assign]
    for cls in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Sharpness, ImageEnhance.Color):
        cls.__init__ = _internal(cls.__init__)  # type: ignore[method-assign]

    draw_cls = ImageDraw.ImageDraw
    for meth in (
        "rectangle",
        "rounded_rectangle",
        "ellipse",
        "circle",
        "line",
        "polygon",
        "regular_polygon",
        "text",
        "multiline_text",
        "point",
        "arc",
        "chord",
        "pieslice",
    ):
        if hasattr(draw_cls, meth):
            setattr(draw_cls, meth, _draw_wrapper(getattr(draw_cls, meth), meth))
    _ = ImageFilter  # imported so filters' classes exist before user code runs


def _internal(orig: Callable[..., Any]) -> Callable[..., Any]:
    """Helpers such as ``ImageEnhance.Contrast(...)`` call image methods that are not user ops."""

    @functools.wraps(orig)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with depth():
            return orig(*args, **kwargs)

    return wrapper


def _draw_wrapper(orig: Callable[..., Any], meth: str) -> Callable[..., Any]:
    @functools.wraps(orig)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with depth():
            out = orig(self, *args, **kwargs)
        STATE.record("draw", f"PIL.ImageDraw.{meth}", {"shape": meth})
        return out

    return wrapper


def _params_for(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    if name in ("grayscale", "binarize", "convert") and args:
        return {"mode": args[0] if isinstance(args[0], str) else str(args[0])}
    if name in ("blur", "sharpen", "edges", "rank_filter", "filter") and args:
        f = args[0]
        p: dict[str, Any] = {"filter": (f if isinstance(f, type) else type(f)).__name__}
        for attr in ("radius", "size", "percent", "threshold"):
            v = getattr(f, attr, None)
            if isinstance(v, int | float) or (
                isinstance(v, tuple) and all(isinstance(x, int | float) for x in v)
            ):
                p[attr] = v
        return p
    return {}
