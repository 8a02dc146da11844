"""The ``cv2`` facade: constants, pixel-wise functions that keep the geometry, geometric ones that record
their op, analysis functions that return plain arrays, and a traced ``createCLAHE``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from . import geometry as A
from ._facade import Facade, record_flip
from ._trace import STATE, Carry, TracedArray, depth, geo_of, hw_size, mixed, same, set_geo, then


def _cv_image_arg(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    for key in ("src", "image", "img", "src1"):
        if key in kwargs:
            return kwargs[key]
    return args[0] if args else None


def _attach(out: Any, g_aff: Carry, size: tuple[int, int] | None) -> Any:
    """Give image outputs of an OpenCV call the right geometry (tuples: each image-shaped item)."""
    if isinstance(out, np.ndarray):
        if out.ndim < 2:
            return out
        return set_geo(
            out, g_aff if size is not None and hw_size(out) == size else Carry(None, g_aff.lineage)
        )
    if isinstance(out, tuple):
        return tuple(_attach(o, g_aff, size) for o in out)
    return out


def _cv_named(
    fn: Callable[..., Any],
    api: str,
    name: str | Callable[..., str | None] | None,
    params: Callable[..., dict[str, Any]] | None = None,
) -> Callable[..., Any]:
    """Pixel-wise OpenCV op: records ``name`` (unless None) and keeps the input geometry."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        src = _cv_image_arg(args, kwargs)
        g = geo_of(src)
        with depth():
            out = fn(*args, **kwargs)
        n = name(*args, **kwargs) if callable(name) else name
        if n:
            p = {}
            if params is not None:
                try:
                    p = params(*args, **kwargs)
                except Exception:  # noqa: BLE001 - params are best effort, the op itself succeeded
                    p = {}
            STATE.record(n, api, p)
        return _attach(out, same(g), g.size if g is not None else hw_size(src))

    return wrapper


def _cv_analysis(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = fn(*args, **kwargs)
        if isinstance(out, TracedArray):
            return out.view(np.ndarray)
        return out

    return wrapper


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], i: int, key: str, default: Any = None) -> Any:
    if len(args) > i:
        return args[i]
    return kwargs.get(key, default)


def _cv_rotate(*args: Any, **kwargs: Any) -> Any:
    src = _cv_image_arg(args, kwargs)
    code = int(_arg(args, kwargs, 1, "rotateCode"))
    g = geo_of(src)
    out = cv2.rotate(*args, **kwargs)
    h, w = src.shape[:2]
    if code == cv2.ROTATE_90_CLOCKWISE:
        name, op = "rotate_270", A.rotate_270(w, h)
    elif code == cv2.ROTATE_90_COUNTERCLOCKWISE:
        name, op = "rotate_90", A.rotate_90(w, h)
    else:
        name, op = "rotate_180", A.rotate_180(w, h)
    STATE.record(name, "cv2.rotate", {"rotateCode": code})
    return set_geo(out, then(g, op))


def _cv_flip(*args: Any, **kwargs: Any) -> Any:
    src = _cv_image_arg(args, kwargs)
    code = int(_arg(args, kwargs, 1, "flipCode"))
    out = cv2.flip(*args, **kwargs)
    axes = {0, 1} if code < 0 else ({0} if code == 0 else {1})
    return set_geo(out, then(geo_of(src), record_flip(src, axes, "cv2.flip")))


def _cv_transpose(*args: Any, **kwargs: Any) -> Any:
    src = _cv_image_arg(args, kwargs)
    out = cv2.transpose(*args, **kwargs)
    STATE.record("transpose", "cv2.transpose", {})
    return set_geo(out, then(geo_of(src), A.transpose()))


def _cv_scale(fn: Callable[..., Any], api: str) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        src = _cv_image_arg(args, kwargs)
        g = geo_of(src)
        out = fn(*args, **kwargs)
        h, w = src.shape[:2]
        oh, ow = out.shape[:2]
        STATE.record("resize", api, {"size": [int(ow), int(oh)]}, effective=(ow, oh) != (w, h))
        return set_geo(out, then(g, A.resize(w, h, ow, oh)))

    return wrapper


def _cv_copy_make_border(*args: Any, **kwargs: Any) -> Any:
    src = _cv_image_arg(args, kwargs)
    top = int(_arg(args, kwargs, 1, "top", 0))
    left = int(_arg(args, kwargs, 3, "left", 0))
    out = cv2.copyMakeBorder(*args, **kwargs)
    STATE.record("pad", "cv2.copyMakeBorder", {"top": top, "left": left})
    return set_geo(out, then(geo_of(src), A.translate(-left, -top)))


def _cv_get_rect_sub_pix(*args: Any, **kwargs: Any) -> Any:
    src = _cv_image_arg(args, kwargs)
    pw, ph = (float(v) for v in _arg(args, kwargs, 1, "patchSize"))
    cx, cy = (float(v) for v in _arg(args, kwargs, 2, "center"))
    g = geo_of(src)
    out = cv2.getRectSubPix(*args, **kwargs)
    x0, y0 = cx - (pw - 1) / 2, cy - (ph - 1) / 2
    STATE.record(
        "crop", "cv2.getRectSubPix", {"box": [x0, y0, x0 + pw, y0 + ph]}, g, (x0, y0, x0 + pw, y0 + ph)
    )
    return set_geo(out, then(g, A.translate(x0, y0)))


def _cv_warp(fn: Callable[..., Any], api: str) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = fn(*_zeroed_transparent_dst(fn, args, kwargs), **kwargs)
        STATE.record("warp", api, {})
        src = _cv_image_arg(args, kwargs)
        return set_geo(out, mixed(src)) if isinstance(out, np.ndarray) and out.ndim >= 2 else out

    return wrapper


def _zeroed_transparent_dst(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """``BORDER_TRANSPARENT`` leaves uncovered pixels of a fresh output as whatever memory held (the
    result would depend on earlier allocations): give such calls a zeroed output array."""
    if kwargs.get("borderMode", args[5] if len(args) > 5 else None) != cv2.BORDER_TRANSPARENT:
        return args
    if "dst" in kwargs or (len(args) > 3 and args[3] is not None):
        return args
    src, dsize = args[0], (args[2] if len(args) > 2 else kwargs.get("dsize"))
    try:
        w, h = (int(v) for v in dsize)
        dst = np.zeros((h, w, *np.asarray(src).shape[2:]), np.asarray(src).dtype)
    except (TypeError, ValueError):
        return args
    if len(args) > 3:
        return (*args[:3], dst, *args[4:])
    kwargs["dst"] = dst
    return args


_GRAY_CODES = {getattr(cv2, n) for n in dir(cv2) if n.startswith("COLOR_") and n.endswith("2GRAY")}


class _CLAHE:
    """Traced stand-in for ``cv2.CLAHE`` (``apply`` records ``equalize``)."""

    __slots__ = ("_cvs_obj", "_cvs_clip")

    def __init__(self, obj: Any, clip: float) -> None:
        self._cvs_obj = obj
        self._cvs_clip = clip

    def apply(self, src: Any, dst: Any = None) -> Any:
        g = geo_of(src)
        out = self._cvs_obj.apply(src) if dst is None else self._cvs_obj.apply(src, dst)
        STATE.record("equalize", "cv2.CLAHE.apply", {"method": "clahe", "clipLimit": self._cvs_clip})
        return _attach(out, same(g), g.size if g is not None else hw_size(src))

    def setClipLimit(self, clip: float) -> None:  # noqa: N802 - OpenCV's name
        self._cvs_clip = float(clip)
        self._cvs_obj.setClipLimit(clip)

    def getClipLimit(self) -> float:  # noqa: N802 - OpenCV's name
        return float(self._cvs_obj.getClipLimit())

    def setTilesGridSize(self, size: Any) -> None:  # noqa: N802 - OpenCV's name
        self._cvs_obj.setTilesGridSize(size)


def _cv_create_clahe(clipLimit: float = 40.0, tileGridSize: Any = (8, 8)) -> _CLAHE:  # noqa: N803
    return _CLAHE(cv2.createCLAHE(clipLimit=clipLimit, tileGridSize=tileGridSize), float(clipLimit))


_CV_NAMED: dict[str, str | Callable[..., str | None] | None] = {
    "cvtColor": lambda src, code, *a, **k: "grayscale" if code in _GRAY_CODES else "color_convert",
    "threshold": "threshold",
    "adaptiveThreshold": "threshold",
    "inRange": "threshold",
    "equalizeHist": "equalize",
    "GaussianBlur": "blur",
    "blur": "blur",
    "medianBlur": "blur",
    "boxFilter": "blur",
    "stackBlur": "blur",
    "bilateralFilter": "denoise",
    "fastNlMeansDenoising": "denoise",
    "fastNlMeansDenoisingColored": "denoise",
    "filter2D": "filter",
    "sepFilter2D": "filter",
    "Sobel": "edges",
    "Scharr": "edges",
    "Laplacian": "edges",
    "Canny": "edges",
    "dilate": "morphology",
    "erode": "morphology",
    "morphologyEx": "morphology",
    "convertScaleAbs": "contrast",
    "normalize": "normalize",
    "LUT": "point",
    "bitwise_not": "invert",
    "detailEnhance": "sharpen",
    "edgePreservingFilter": "denoise",
    "addWeighted": "blend",
    "rectangle": "draw",
    "circle": "draw",
    "line": "draw",
    "arrowedLine": "draw",
    "putText": "draw",
    "polylines": "draw",
    "fillPoly": "draw",
    "fillConvexPoly": "draw",
    "drawContours": "draw",
    "ellipse": "draw",
    "drawMarker": "draw",
    "floodFill": "draw",
    # arithmetic keeps the geometry but is not an op worth logging
    "add": None,
    "subtract": None,
    "multiply": None,
    "divide": None,
    "absdiff": None,
    "bitwise_and": None,
    "bitwise_or": None,
    "bitwise_xor": None,
    "split": None,
    "merge": None,
    "max": None,
    "min": None,
    "magnitude": None,
    "pow": None,
    "sqrt": None,
    "exp": None,
    "log": None,
    "scaleAdd": None,
}

_CV_PARAMS: dict[str, Callable[..., dict[str, Any]]] = {
    "cvtColor": lambda src, code, *a, **k: {"code": int(code)},
    "threshold": lambda src, thresh, maxval, type, *a, **k: {"thresh": float(thresh), "type": int(type)},
    "GaussianBlur": lambda src, ksize, *a, **k: {"ksize": list(ksize)},
    "medianBlur": lambda src, ksize, *a, **k: {"ksize": int(ksize)},
    "convertScaleAbs": lambda src, *a, **k: {
        "alpha": float(a[1] if len(a) > 1 else k.get("alpha", 1.0)),
        "beta": float(a[2] if len(a) > 2 else k.get("beta", 0.0)),
    },
}

_CV_ANALYSIS = """findContours contourArea arcLength boundingRect minAreaRect boxPoints approxPolyDP convexHull
moments HuMoments HoughLines HoughLinesP HoughCircles connectedComponents connectedComponentsWithStats calcHist
minMaxLoc mean meanStdDev countNonZero getStructuringElement getRotationMatrix2D getAffineTransform
getPerspectiveTransform getTextSize integral findNonZero goodFeaturesToTrack cornerHarris matchTemplate
distanceTransform pointPolygonTest minEnclosingCircle fitEllipse fitLine isContourConvex norm sumElems
transform perspectiveTransform invertAffineTransform kmeans compare checkRange cartToPolar polarToCart phase
reduce sort sortIdx dft idft""".split()


def build_cv2() -> Facade:
    attrs: dict[str, Any] = {}
    for n in dir(cv2):
        if (
            n[:1].isalpha()
            and n[:1].isupper()
            and isinstance(getattr(cv2, n), int | float)
            and not callable(getattr(cv2, n))
        ):
            attrs[n] = getattr(cv2, n)
    for n, name in _CV_NAMED.items():
        if hasattr(cv2, n):
            attrs[n] = _cv_named(getattr(cv2, n), f"cv2.{n}", name, _CV_PARAMS.get(n))
    for n in _CV_ANALYSIS:
        if hasattr(cv2, n):
            attrs[n] = _cv_analysis(getattr(cv2, n))
    attrs["rotate"] = _cv_rotate
    attrs["flip"] = _cv_flip
    attrs["transpose"] = _cv_transpose
    attrs["resize"] = _cv_scale(cv2.resize, "cv2.resize")
    attrs["pyrDown"] = _cv_scale(cv2.pyrDown, "cv2.pyrDown")
    attrs["pyrUp"] = _cv_scale(cv2.pyrUp, "cv2.pyrUp")
    attrs["copyMakeBorder"] = _cv_copy_make_border
    attrs["getRectSubPix"] = _cv_get_rect_sub_pix
    for n in ("warpAffine", "warpPerspective", "remap", "warpPolar", "linearPolar", "logPolar"):
        if hasattr(cv2, n):
            attrs[n] = _cv_warp(getattr(cv2, n), f"cv2.{n}")
    attrs["createCLAHE"] = _cv_create_clahe
    attrs["error"] = cv2.error
    attrs["setNumThreads"] = lambda n: None  # threads cannot be started in the sandbox anyway
    return Facade("cv2", attrs, cv2)
