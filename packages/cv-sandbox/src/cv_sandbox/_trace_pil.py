"""The PIL half of the op tracer: Pillow's classes, patched inside the worker process only (never in the
caller's), record each op user code runs and hand each image's :class:`~cv_sandbox._trace.Geo` on.

:func:`patch_pil` wraps five groups: geometric ``Image`` methods (record the op, map the pixels),
pixel-wise ones (record the op, keep the source map), the ``PIL.Image`` functions that combine images,
``ImageEnhance`` and ``ImageDraw``. Library code calls itself (``ImageOps.mirror`` calls
``Image.transpose``), so every wrapper runs the original inside :class:`~cv_sandbox._trace.depth`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from . import geometry as A
from ._trace import STATE, combined, depth, geo_of, same, set_geo, then

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


def _filter_classes(names: str) -> frozenset[type]:
    return frozenset(getattr(ImageFilter, n) for n in names.split() if hasattr(ImageFilter, n))


#: Pillow's own filter classes by identity: a user class that shares a name (or subclasses one and
#: overrides what it does) is a plain "filter", never a library op.
_FILTER_OPS: tuple[tuple[frozenset[type], str], ...] = (
    (_filter_classes("GaussianBlur BoxBlur BLUR SMOOTH SMOOTH_MORE MedianFilter"), "blur"),
    (_filter_classes("SHARPEN UnsharpMask DETAIL EDGE_ENHANCE EDGE_ENHANCE_MORE"), "sharpen"),
    (_filter_classes("FIND_EDGES CONTOUR EMBOSS"), "edges"),
    (_filter_classes("MinFilter MaxFilter ModeFilter RankFilter"), "rank_filter"),
)


def _filter_name(f: Any) -> str:
    cls = f if isinstance(f, type) else type(f)
    for classes, name in _FILTER_OPS:
        if cls in classes:
            return name
    return "filter"


def _convert_name(mode: str | None) -> str:
    if mode in ("L", "LA", "I", "F"):
        return "grayscale"
    if mode == "1":
        return "binarize"
    return "convert"


# ------------------------------------------------------------------------------------------- patching

_orig: dict[str, Callable[..., Any]] = {}
_patched = False


def patch_pil() -> None:
    """Wrap the PIL methods user code reaches so they record ops and carry geometry. Idempotent."""
    global _patched
    if _patched:
        return
    _patched = True
    _keep_originals()
    _patch_geometric_methods()  # rotate, crop, resize, ...: record the op and map the pixels
    _patch_pixelwise_methods()  # convert, filter, point, ...: record the op, keep the pixels' source
    _patch_module_functions()  # Image.merge, Image.blend, ...: hand the first image's source on
    _patch_enhancers()  # ImageEnhance.*.enhance records brightness, contrast, ...
    _patch_drawing()  # ImageDraw shapes and text record "draw"


def _keep_originals() -> None:
    """The unwrapped functions, which the wrappers call (looked up at call time, by name)."""
    for name in (*_GEOMETRIC, *_PIXELWISE):
        _orig[name] = getattr(Image.Image, name)
    for name in _MODULE_FUNCTIONS:
        _orig["Image." + name] = getattr(Image, name)
    _orig["enhance"] = ImageEnhance._Enhance.enhance


def _patch_geometric_methods() -> None:
    for name, traced in _GEOMETRIC.items():
        setattr(Image.Image, name, traced)


def _patch_pixelwise_methods() -> None:
    for name, namer in _PIXELWISE.items():
        setattr(Image.Image, name, _pixelwise(name, f"PIL.Image.{name}", namer))


def _patch_module_functions() -> None:
    for name, (op, first) in _MODULE_FUNCTIONS.items():
        setattr(Image, name, _module_pixelwise("Image." + name, f"PIL.Image.{name}", op, first))


def _patch_enhancers() -> None:
    ImageEnhance._Enhance.enhance = _enhance  # type: ignore[method-assign]
    for cls in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Sharpness, ImageEnhance.Color):
        cls.__init__ = _internal(cls.__init__)  # type: ignore[method-assign]


def _patch_drawing() -> None:
    draw_cls = ImageDraw.ImageDraw
    for meth in _DRAW_METHODS:
        if hasattr(draw_cls, meth):
            setattr(draw_cls, meth, _draw_wrapper(getattr(draw_cls, meth), meth))
    _ = ImageFilter  # imported so filters' classes exist before user code runs


# ------------------------------------------------------------------------------------------- geometric methods


def _rotate(
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
    unchanged = a == 0.0 and not translate and out.size == self.size
    STATE.record(
        name, "PIL.Image.rotate", {"angle": float(angle), "expand": bool(expand)}, effective=not unchanged
    )
    return set_geo(out, then(g, op))


def _transpose(self: Image.Image, method: Any) -> Image.Image:
    g = geo_of(self)
    with depth():
        out = _orig["transpose"](self, method)
    w, h = self.size
    STATE.record(_TRANSPOSE_NAMES[Image.Transpose(method)], "PIL.Image.transpose", {"method": int(method)})
    return set_geo(out, then(g, transpose_affine(method, w, h)))


def _crop(self: Image.Image, box: Any = None) -> Image.Image:
    g = geo_of(self)
    with depth():
        out = _orig["crop"](self, box)
    b = tuple(float(v) for v in box) if box is not None else (0.0, 0.0, float(self.width), float(self.height))
    whole = b == (0.0, 0.0, float(self.width), float(self.height))
    STATE.record("crop", "PIL.Image.crop", {"box": list(b)}, g, b, effective=not whole)  # type: ignore[arg-type]
    return set_geo(out, then(g, A.translate(b[0], b[1])))


def _resize(
    self: Image.Image, size: Any, resample: Any = None, box: Any = None, reducing_gap: Any = None
) -> Image.Image:
    g = geo_of(self)
    with depth():
        out = _orig["resize"](self, size, resample, box, reducing_gap)
    w, h = self.size
    b = tuple(float(v) for v in box) if box is not None else (0.0, 0.0, float(w), float(h))
    if b != (0.0, 0.0, float(w), float(h)):
        STATE.record("crop", "PIL.Image.resize", {"box": list(b)}, g, b)  # type: ignore[arg-type]
    STATE.record("resize", "PIL.Image.resize", {"size": list(out.size)}, effective=out.size != self.size)
    return set_geo(out, then(g, A.resize(w, h, out.width, out.height, b)))


def _reduce(self: Image.Image, factor: Any, box: Any = None) -> Image.Image:
    g = geo_of(self)
    with depth():
        out = _orig["reduce"](self, factor, box)
    fx, fy = (factor, factor) if isinstance(factor, int) else factor
    b = tuple(box) if box is not None else (0, 0, self.width, self.height)
    if tuple(b) != (0, 0, self.width, self.height):
        STATE.record("crop", "PIL.Image.reduce", {"box": list(b)}, g, b)  # type: ignore[arg-type]
    STATE.record("resize", "PIL.Image.reduce", {"size": list(out.size)})
    return set_geo(out, then(g, A.scale(fx, fy, b[0], b[1])))


def _thumbnail(self: Image.Image, size: Any, *args: Any, **kwargs: Any) -> None:
    g = geo_of(self)
    w, h = self.size
    with depth():
        _orig["thumbnail"](self, size, *args, **kwargs)
    if self.size != (w, h):
        STATE.record("resize", "PIL.Image.thumbnail", {"size": list(self.size)})
    set_geo(self, then(g, A.resize(w, h, self.width, self.height)))


def _transform(
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
    return set_geo(out, then(g, None))


def _effect_spread(self: Image.Image, distance: int) -> Image.Image:
    g = geo_of(self)
    with depth():
        out = _orig["effect_spread"](self, distance)
    STATE.record("warp", "PIL.Image.effect_spread", {"distance": distance})
    return set_geo(out, then(g, None))


#: Image methods that move pixels, with their traced versions.
_GEOMETRIC: dict[str, Callable[..., Any]] = {
    "rotate": _rotate,
    "transpose": _transpose,
    "crop": _crop,
    "resize": _resize,
    "reduce": _reduce,
    "thumbnail": _thumbnail,
    "transform": _transform,
    "effect_spread": _effect_spread,
}


# ------------------------------------------------------------------------------------------- pixel-wise ops


def _unnamed(*_a: Any, **_k: Any) -> None:
    return None


#: Image methods that keep every pixel where it is, with the op name for their arguments (None: no op).
_PIXELWISE: dict[str, Callable[..., str | None]] = {
    "convert": lambda mode=None, *a, **k: _convert_name(mode),
    "filter": lambda f, *a, **k: _filter_name(f),
    "point": lambda *a, **k: "point",
    "quantize": lambda *a, **k: "quantize",
    "paste": lambda *a, **k: "paste",
    "copy": _unnamed,
    "split": _unnamed,
    "getchannel": _unnamed,
}


def _first_arg(a: Any, *_r: Any, **_k: Any) -> Any:
    return a


#: ``PIL.Image`` functions that combine images: op name (None: no op) and which image the result follows.
_MODULE_FUNCTIONS: dict[str, tuple[str | None, Callable[..., Any]]] = {
    "merge": (None, lambda mode, bands, *a, **k: bands[0] if bands else None),
    "blend": ("blend", _first_arg),
    "composite": ("composite", _first_arg),
    "alpha_composite": ("composite", _first_arg),
    "eval": ("point", _first_arg),
    "fromarray": (None, _first_arg),
}


def _pixelwise(key: str, api: str, namer: Callable[..., str | None]) -> Callable[..., Any]:
    orig = _orig[key]

    @functools.wraps(orig)
    def wrapper(self: Image.Image, *args: Any, **kwargs: Any) -> Any:
        g = geo_of(self)
        with depth():
            out = orig(self, *args, **kwargs)
        name = namer(*args, **kwargs)
        if name:
            effective = not (key == "convert" and args and args[0] == self.mode)
            STATE.record(
                name, api, _params_for(name, args, kwargs), effective=effective and _filter_changes(args)
            )
        if isinstance(out, Image.Image):
            return set_geo(out, same(g))
        if isinstance(out, tuple):
            carry = same(g)
            return tuple(set_geo(o, carry) if isinstance(o, Image.Image) else o for o in out)
        if out is None:  # in place
            set_geo(self, _pasted(self, g, args, kwargs) if key == "paste" else same(g))
        return out

    return wrapper


def _pasted(target: Image.Image, g: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The target's geometry after ``paste``: the pasted image's if it covers all of it, else unknown
    (mixed content); the lineage of both."""
    src = args[0] if args else kwargs.get("im")
    box = args[1] if len(args) > 1 else kwargs.get("box")
    if isinstance(src, Image.Image) and src.size == target.size and box in (None, (0, 0), [0, 0]):
        return combined(geo_of(src).affine, src)
    return combined(None, target, src)


def _filter_changes(args: tuple[Any, ...]) -> bool:
    """False for filters that leave every pixel as it was (a blur of radius 0, a 1x1 rank filter)."""
    if not args:
        return True
    f = args[0]
    radius = getattr(f, "radius", None)
    if type(f) in (ImageFilter.GaussianBlur, ImageFilter.BoxBlur) and radius in (0, (0, 0), 0.0):
        return False
    return not (isinstance(f, ImageFilter.RankFilter) and getattr(f, "size", None) == 1)


def _module_pixelwise(key: str, api: str, name: str | None, first: Callable[..., Any]) -> Callable[..., Any]:
    orig = _orig[key]

    @functools.wraps(orig)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        src = first(*args, **kwargs)
        g = geo_of(src) if src is not None else None
        with depth():
            out = orig(*args, **kwargs)
        if name:
            STATE.record(name, api, {})
        keep = g is not None and g.size == out.size
        return set_geo(out, combined(g.affine if keep and g is not None else None, *args, *kwargs.values()))

    return wrapper


#: By class identity: a user class that merely shares a name is never logged as a library op.
_ENHANCER_OPS: dict[type, str] = {
    ImageEnhance.Brightness: "brightness",
    ImageEnhance.Contrast: "contrast",
    ImageEnhance.Sharpness: "sharpen",
    ImageEnhance.Color: "saturation",
}


def _enhance(self: Any, factor: float) -> Image.Image:
    g = geo_of(self.image)
    with depth():
        out = _orig["enhance"](self, factor)
    STATE.record(
        _ENHANCER_OPS.get(type(self), "enhance"),
        f"PIL.ImageEnhance.{type(self).__name__}",
        {"factor": float(factor)},
        effective=float(factor) != 1.0,
    )
    return set_geo(out, same(g))


_DRAW_METHODS = (
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
)


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
        target = getattr(self, "_image", None)  # drawing changes that image in place
        if isinstance(target, Image.Image):
            set_geo(target, same(geo_of(target)))
        else:
            STATE.take_pending()
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
