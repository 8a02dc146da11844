"""The ``PIL`` facades (``Image``, ``ImageOps``, ``ImageFilter``, ``ImageEnhance``, ``ImageDraw``,
``ImageChops``, ``ImageStat``): image methods are traced by :mod:`cv_sandbox._trace_pil`; the module
functions here record their own op or hand the geometry on."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import PIL
from PIL import Image, ImageChops, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps, ImageStat

from . import geometry as A
from ._facade import Facade, isinstance_only
from ._forbid import forbid
from ._trace import STATE, combined, depth, geo_of, same, set_geo, then


def _ops_wrapper(
    fn: Callable[..., Any], name: str | None, api: str, geo_fn: Callable[..., A.Affine | None] | None = None
) -> Callable[..., Any]:
    """An ``ImageOps`` function recorded under its own name; inner calls still carry the geometry."""

    @functools.wraps(fn)
    def wrapper(image: Any, *args: Any, **kwargs: Any) -> Any:
        g = geo_of(image)
        with depth():
            out = fn(image, *args, **kwargs)
        if name:
            STATE.record(name, api, {})
        if geo_fn is not None and isinstance(out, Image.Image):
            try:
                op = geo_fn(image, *args, **kwargs)
            except Exception:  # noqa: BLE001 - unknown argument shapes only lose the source map
                op = None
            return set_geo(out, then(g, op))
        if isinstance(out, Image.Image):  # the map the inner calls gave it, plus this op's lineage
            return set_geo(out, same(geo_of(out)))
        return out

    return wrapper


def _expand_geo(image: Any, border: Any = 0, *a: Any, **k: Any) -> A.Affine:
    if isinstance(border, tuple | list):
        left, top = (border[0], border[1]) if len(border) in (2, 4) else (border[0], border[0])
    else:
        left = top = border
    return A.translate(-int(left), -int(top))


def _ops_crop(image: Any, border: Any = 0) -> Any:
    # ImageOps.crop calls image.crop: the crop op (with its box) is recorded there.
    return ImageOps.crop(image, border)


def _frombytes(mode: str, size: Any, data: Any, decoder_name: str = "raw", *args: Any) -> Image.Image:
    """``Image.frombytes`` with the plain raw layout only (Pillow's other decoders trust their input)."""
    from ._guards import check_raw_codec

    check_raw_codec(decoder_name, args, _Mode(mode))
    return Image.frombytes(mode, size, data)


class _Mode:
    __slots__ = ("mode",)

    def __init__(self, mode: str) -> None:
        self.mode = mode


def _load_default(size: float | None = None) -> Any:
    """``ImageFont.load_default``: Pillow's built-in font (no file is opened)."""
    return ImageFont.load_default(size)


def _truetype(*_a: Any, **_k: Any) -> Any:
    forbid("font files cannot be opened in the sandbox; use ImageFont.load_default(size=...) instead")


def _image_new(mode: str, size: Any, color: Any = 0) -> Image.Image:
    # color=None would hand out uninitialised memory (earlier images' pixels).
    return Image.new(mode, size, 0 if color is None else color)


def build_pil() -> dict[str, Facade]:
    image_attrs: dict[str, Any] = {
        "new": _image_new,
        "fromarray": Image.fromarray,
        "frombytes": _frombytes,
        "merge": Image.merge,
        "blend": Image.blend,
        "composite": Image.composite,
        "alpha_composite": Image.alpha_composite,
        "eval": Image.eval,
        "linear_gradient": Image.linear_gradient,
        "radial_gradient": Image.radial_gradient,
        "Image": isinstance_only(Image.Image, "Image", "PIL.Image"),
        "Transpose": Image.Transpose,
        "Resampling": Image.Resampling,
        "Transform": Image.Transform,
        "Dither": Image.Dither,
        "Palette": Image.Palette,
        "Quantize": Image.Quantize,
    }
    for n in (
        "ROTATE_90",
        "ROTATE_180",
        "ROTATE_270",
        "FLIP_LEFT_RIGHT",
        "FLIP_TOP_BOTTOM",
        "TRANSPOSE",
        "TRANSVERSE",
        "NEAREST",
        "BILINEAR",
        "BICUBIC",
        "LANCZOS",
        "BOX",
        "HAMMING",
        "AFFINE",
        "EXTENT",
        "PERSPECTIVE",
        "QUAD",
        "MESH",
        "ANTIALIAS",
        "LINEAR",
        "CUBIC",
    ):
        if hasattr(Image, n):
            image_attrs[n] = getattr(Image, n)
    ops = {
        "mirror": _ops_wrapper(ImageOps.mirror, "flip_horizontal", "PIL.ImageOps.mirror"),
        "flip": _ops_wrapper(ImageOps.flip, "flip_vertical", "PIL.ImageOps.flip"),
        "grayscale": _ops_wrapper(ImageOps.grayscale, "grayscale", "PIL.ImageOps.grayscale"),
        "equalize": _ops_wrapper(ImageOps.equalize, "equalize", "PIL.ImageOps.equalize"),
        "autocontrast": _ops_wrapper(ImageOps.autocontrast, "autocontrast", "PIL.ImageOps.autocontrast"),
        "invert": _ops_wrapper(ImageOps.invert, "invert", "PIL.ImageOps.invert"),
        "posterize": _ops_wrapper(ImageOps.posterize, "posterize", "PIL.ImageOps.posterize"),
        "solarize": _ops_wrapper(ImageOps.solarize, "solarize", "PIL.ImageOps.solarize"),
        "colorize": _ops_wrapper(ImageOps.colorize, "colorize", "PIL.ImageOps.colorize"),
        "expand": _ops_wrapper(ImageOps.expand, "pad", "PIL.ImageOps.expand", _expand_geo),
        "pad": _ops_wrapper(ImageOps.pad, "pad", "PIL.ImageOps.pad", lambda *a, **k: None),
        "deform": _ops_wrapper(ImageOps.deform, "warp", "PIL.ImageOps.deform", lambda *a, **k: None),
        # these are compositions of traced Image methods (crop/resize/transpose) and need no wrapper
        "crop": _ops_crop,
        "scale": ImageOps.scale,
        "fit": ImageOps.fit,
        "contain": ImageOps.contain,
        "cover": ImageOps.cover,
        "exif_transpose": ImageOps.exif_transpose,
    }
    filt = {
        n: getattr(ImageFilter, n)
        for n in (
            "BLUR",
            "CONTOUR",
            "DETAIL",
            "EDGE_ENHANCE",
            "EDGE_ENHANCE_MORE",
            "EMBOSS",
            "FIND_EDGES",
            "SHARPEN",
            "SMOOTH",
            "SMOOTH_MORE",
            "GaussianBlur",
            "BoxBlur",
            "UnsharpMask",
            "Kernel",
            "RankFilter",
            "MedianFilter",
            "MinFilter",
            "MaxFilter",
            "ModeFilter",
            "Color3DLUT",
        )
        if hasattr(ImageFilter, n)
    }
    enh = {n: getattr(ImageEnhance, n) for n in ("Brightness", "Contrast", "Sharpness", "Color")}
    draw = {"Draw": ImageDraw.Draw}
    chops = {
        n: _traced_chops(getattr(ImageChops, n))
        for n in (
            "add",
            "add_modulo",
            "subtract",
            "subtract_modulo",
            "multiply",
            "screen",
            "difference",
            "darker",
            "lighter",
            "invert",
            "logical_and",
            "logical_or",
            "logical_xor",
            "overlay",
            "soft_light",
            "hard_light",
            "constant",
            "duplicate",
            "blend",
            "composite",
        )
    }
    chops["offset"] = ImageChops.offset  # a roll: its output carries no source map
    stat = {"Stat": ImageStat.Stat}
    font = {"load_default": _load_default, "truetype": _truetype, "load": _truetype, "load_path": _truetype}
    out = {
        "Image": Facade("PIL.Image", image_attrs, Image),
        "ImageOps": Facade("PIL.ImageOps", ops, ImageOps),
        "ImageFilter": Facade("PIL.ImageFilter", filt, ImageFilter),
        "ImageEnhance": Facade("PIL.ImageEnhance", enh, ImageEnhance),
        "ImageDraw": Facade("PIL.ImageDraw", draw, ImageDraw),
        "ImageChops": Facade("PIL.ImageChops", chops),
        "ImageStat": Facade("PIL.ImageStat", stat),
        "ImageFont": Facade("PIL.ImageFont", font, ImageFont),
    }
    out["PIL"] = Facade("PIL", dict(out), PIL)
    return out


def _traced_chops(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g = geo_of(args[0]) if args else None
        out = fn(*args, **kwargs)
        if isinstance(out, Image.Image):
            keep = g is not None and g.size == out.size
            return set_geo(out, combined(g.affine if keep and g is not None else None, *args))
        return out

    return wrapper
