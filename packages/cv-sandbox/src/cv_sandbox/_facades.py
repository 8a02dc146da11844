"""Curated namespaces user code sees instead of the real ``numpy``/``PIL``/``cv2``/``math`` modules.

Real modules reach the OS without a single underscore (``Image.os``, ``np.ctypeslib``, ``cv2.imwrite``,
``np.fromfile``). A facade exposes only named, image-relevant functions (wrapped so they are traced) and
constants; it has no module attributes and cannot be modified.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import Any

import cv2
import numpy as np
import PIL
from PIL import Image, ImageChops, ImageDraw, ImageEnhance, ImageFilter, ImageOps, ImageStat

from . import geometry as A
from ._forbid import forbid
from ._trace import STATE, TracedArray, depth, geo_of, hw_size, same, set_geo, then


class Facade:
    """Read-only namespace; unknown names raise an AttributeError that says why."""

    __slots__ = ("_cvs_name", "_cvs_attrs", "_cvs_real")

    def __init__(self, name: str, attrs: dict[str, Any], real: Any = None) -> None:
        object.__setattr__(self, "_cvs_name", name)
        object.__setattr__(self, "_cvs_attrs", dict(attrs))
        object.__setattr__(self, "_cvs_real", real)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._cvs_attrs[name]
        except KeyError:
            if self._cvs_real is not None and hasattr(self._cvs_real, name):
                forbid(
                    f"'{self._cvs_name}.{name}' is not available in the sandbox (only image functions are; "
                    "file, network and process access is not)"
                )
            raise AttributeError(
                f"'{self._cvs_name}' has no attribute '{name}' in the sandbox (only image functions are "
                "available; file, network and process access is not)"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"'{self._cvs_name}' is read-only in the sandbox")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"'{self._cvs_name}' is read-only in the sandbox")

    def __dir__(self) -> list[str]:
        return sorted(self._cvs_attrs)

    def __repr__(self) -> str:
        return f"<module '{self._cvs_name}' (sandboxed)>"


class _InstanceOf(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, cls._cvs_real)  # type: ignore[attr-defined]

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, cls._cvs_real)  # type: ignore[attr-defined]


def _isinstance_only(real: type, name: str) -> type:
    """A stand-in usable in ``isinstance`` checks that cannot construct or reach the real type."""
    return _InstanceOf(name, (), {"_cvs_real": real, "__slots__": ()})


# ------------------------------------------------------------------------------------------------- NumPy


def _first_image(args: Iterable[Any]) -> Any:
    for a in args:
        if isinstance(a, Image.Image) or (isinstance(a, TracedArray) and geo_of(a) is not None):
            return a
        if isinstance(a, list | tuple):
            for x in a:
                if isinstance(x, Image.Image) or (isinstance(x, TracedArray) and geo_of(x) is not None):
                    return x
    return None


def _np_pixel(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Shape-preserving function: the output keeps the geometry of the first image argument."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        src = _first_image(args) if args else _first_image(kwargs.values())
        out = fn(*args, **kwargs)
        if src is None or not isinstance(out, np.ndarray):
            return out
        g = geo_of(src)
        if g is not None and hw_size(out) == g.size:
            return set_geo(out, g.affine)
        return set_geo(out, None) if out.ndim >= 2 else out

    return wrapper


def _np_drop(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Function with no pixel correspondence: image-shaped outputs lose their source map."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = fn(*args, **kwargs)
        if isinstance(out, TracedArray) and out.ndim >= 2:
            return set_geo(out, None)
        return out

    return wrapper


def _norm_axis(axis: int, ndim: int) -> int:
    return axis + ndim if axis < 0 else axis


def _np_rot90(m: Any, k: int = 1, axes: tuple[int, int] = (0, 1)) -> Any:
    arr = _as_traced(m)
    g = geo_of(arr)
    out = np.rot90(arr, k, axes)
    ax = tuple(_norm_axis(a, arr.ndim) for a in axes)
    kk = int(k) % 4
    if ax == (1, 0):
        kk = (4 - kk) % 4
    elif ax != (0, 1):
        return set_geo(out, None) if out.ndim >= 2 else out
    if arr.ndim < 2:
        return out
    h, w = arr.shape[:2]
    op = (A.IDENTITY, A.rotate_90(w, h), A.rotate_180(w, h), A.rotate_270(w, h))[kk]
    if kk:
        STATE.record(f"rotate_{kk * 90}", "numpy.rot90", {"k": int(k)})
    return set_geo(out, then(g, op))


def _flip_axes(axis: Any, ndim: int) -> set[int]:
    if axis is None:
        return set(range(ndim))
    if isinstance(axis, int | np.integer):
        return {_norm_axis(int(axis), ndim)}
    return {_norm_axis(int(a), ndim) for a in axis}


def _record_flip(arr: np.ndarray, axes: set[int], api: str) -> A.Affine | None:
    h, w = arr.shape[:2]
    fy, fx = 0 in axes, 1 in axes
    if fx and fy:
        STATE.record("rotate_180", api, {})
        return A.rotate_180(w, h)
    if fx:
        STATE.record("flip_horizontal", api, {})
        return A.flip_horizontal(w)
    if fy:
        STATE.record("flip_vertical", api, {})
        return A.flip_vertical(h)
    return A.IDENTITY


def _np_flip(m: Any, axis: Any = None) -> Any:
    arr = _as_traced(m)
    out = np.flip(arr, axis)
    if arr.ndim < 2:
        return out
    return set_geo(out, then(geo_of(arr), _record_flip(arr, _flip_axes(axis, arr.ndim), "numpy.flip")))


def _np_fliplr(m: Any) -> Any:
    arr = _as_traced(m)
    out = np.fliplr(arr)
    return set_geo(out, then(geo_of(arr), _record_flip(arr, {1}, "numpy.fliplr")))


def _np_flipud(m: Any) -> Any:
    arr = _as_traced(m)
    out = np.flipud(arr)
    if arr.ndim < 2:
        return out
    return set_geo(out, then(geo_of(arr), _record_flip(arr, {0}, "numpy.flipud")))


def _np_transpose(a: Any, axes: Any = None) -> Any:
    arr = _as_traced(a)
    out = np.transpose(arr, axes)
    if arr.ndim < 2:
        return out
    perm = tuple(range(arr.ndim))[::-1] if axes is None else tuple(_norm_axis(int(x), arr.ndim) for x in axes)
    if perm[:2] == (1, 0) and perm[2:] == tuple(range(2, arr.ndim)):
        STATE.record("transpose", "numpy.transpose", {})
        return set_geo(out, then(geo_of(arr), A.transpose()))
    return set_geo(out, None)


def _np_swapaxes(a: Any, axis1: int, axis2: int) -> Any:
    arr = _as_traced(a)
    out = np.swapaxes(arr, axis1, axis2)
    if arr.ndim >= 2 and {_norm_axis(axis1, arr.ndim), _norm_axis(axis2, arr.ndim)} == {0, 1}:
        STATE.record("transpose", "numpy.swapaxes", {})
        return set_geo(out, then(geo_of(arr), A.transpose()))
    return set_geo(out, None) if out.ndim >= 2 else out


def _np_pad(array: Any, pad_width: Any, *args: Any, **kwargs: Any) -> Any:
    arr = _as_traced(array)
    out = np.pad(arr, pad_width, *args, **kwargs)
    if arr.ndim < 2:
        return out
    pw = np.broadcast_to(
        np.asarray(pad_width, dtype=np.int64).reshape(-1, 2)
        if np.ndim(pad_width)
        else np.full((1, 2), int(pad_width)),
        (arr.ndim, 2),
    )
    top, left = int(pw[0][0]), int(pw[1][0])
    STATE.record(
        "pad", "numpy.pad", {"top": top, "left": left, "bottom": int(pw[0][1]), "right": int(pw[1][1])}
    )
    return set_geo(out, then(geo_of(arr), A.translate(-left, -top)))


def _np_roll(a: Any, *args: Any, **kwargs: Any) -> Any:
    arr = _as_traced(a)
    out = np.roll(arr, *args, **kwargs)
    if arr.ndim >= 2 and geo_of(arr) is not None:
        STATE.record("warp", "numpy.roll", {})
    return set_geo(out, None) if out.ndim >= 2 else out


def _as_traced(x: Any) -> Any:
    """PIL images become arrays that keep the image's geometry."""
    if isinstance(x, Image.Image):
        g = geo_of(x)
        return set_geo(np.asarray(x), g.affine if g else None)
    return x


def _np_from_image(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(obj: Any, *args: Any, **kwargs: Any) -> Any:
        src = obj if isinstance(obj, Image.Image) or isinstance(obj, TracedArray) else None
        out = fn(obj, *args, **kwargs)
        if src is None or not isinstance(out, np.ndarray) or out.ndim < 2:
            return out
        g = geo_of(src)
        return set_geo(out, g.affine if g is not None and g.size == hw_size(out) else None)

    return wrapper


_NP_PIXEL = """clip where abs absolute sqrt square exp log log2 log10 log1p power maximum minimum fmax fmin
round around rint floor ceil trunc add subtract multiply divide true_divide floor_divide mod remainder negative
invert bitwise_and bitwise_or bitwise_xor bitwise_not logical_and logical_or logical_not logical_xor greater
greater_equal less less_equal equal not_equal isnan isfinite isinf nan_to_num sin cos tan arcsin arccos arctan
arctan2 hypot tanh sign interp dstack zeros_like ones_like full_like squeeze expand_dims atleast_3d
ascontiguousarray copy astype""".split()

_NP_DROP = """mean median std var sum prod min max amin amax argmin argmax argsort sort percentile quantile
histogram histogram2d bincount cumsum cumprod diff dot matmul outer inner count_nonzero nonzero argwhere
flatnonzero unique any all isclose allclose array_equal linspace arange zeros ones full eye identity meshgrid
indices tile repeat reshape ravel concatenate stack vstack hstack column_stack convolve correlate gradient
cross einsum tril triu polyfit polyval deg2rad rad2deg radians degrees cov corrcoef searchsorted digitize
ndim shape size average ptp split array_split hsplit vsplit dsplit partition unravel_index ravel_multi_index
isin setdiff1d union1d intersect1d lexsort nanmean nanmedian nanmax nanmin nansum nanstd cbrt trace
issubdtype iinfo finfo result_type promote_types can_cast moveaxis atleast_1d atleast_2d block fix
floor_divide frexp ldexp log2 exp2 expm1 real imag conj angle unwrap sinc mgrid ogrid vectorize
apply_along_axis frompyfunc select piecewise choose compress extract place copyto fill_diagonal
histogram_bin_edges array_equiv diag diagonal take take_along_axis put_along_axis logspace geomspace
trapezoid rollaxis broadcast_to broadcast_arrays""".split()

_NP_VALUES = """uint8 uint16 uint32 uint64 int8 int16 int32 int64 float16 float32 float64 complex64 complex128
bool_ intp uintp integer floating number signedinteger unsignedinteger complexfloating generic dtype
pi e inf nan newaxis euler_gamma""".split()


def _safe_empty(shape: Any, dtype: Any = float, order: str = "C", **kwargs: Any) -> np.ndarray:
    # np.empty would hand out recycled memory of earlier requests in the worker.
    return np.zeros(shape, dtype=dtype, order=order, **kwargs)


def _safe_empty_like(a: Any, dtype: Any = None, *args: Any, **kwargs: Any) -> np.ndarray:
    return np.zeros_like(a, dtype, *args, **kwargs)


def build_numpy() -> Facade:
    attrs: dict[str, Any] = {}
    for name in _NP_VALUES:
        if hasattr(np, name):
            attrs[name] = getattr(np, name)
    attrs["bool"] = np.bool_
    for name in _NP_DROP:
        if hasattr(np, name) and callable(getattr(np, name)):
            attrs[name] = _np_drop(getattr(np, name))
        elif hasattr(np, name):
            attrs[name] = getattr(np, name)
    for name in _NP_PIXEL:
        if hasattr(np, name):
            attrs[name] = _np_pixel(getattr(np, name))
    attrs["array"] = _np_from_image(np.array)
    attrs["asarray"] = _np_from_image(np.asarray)
    attrs["asanyarray"] = _np_from_image(np.asarray)
    attrs["empty"] = _np_drop(_safe_empty)
    attrs["empty_like"] = _np_pixel(_safe_empty_like)
    attrs["rot90"] = _np_rot90
    attrs["flip"] = _np_flip
    attrs["fliplr"] = _np_fliplr
    attrs["flipud"] = _np_flipud
    attrs["transpose"] = _np_transpose
    attrs["swapaxes"] = _np_swapaxes
    attrs["pad"] = _np_pad
    attrs["roll"] = _np_roll
    attrs["ndarray"] = _isinstance_only(np.ndarray, "ndarray")
    rnd = np.random
    attrs["random"] = Facade(
        "numpy.random",
        real=np.random,
        attrs={
            n: _np_drop(getattr(rnd, n))
            for n in (
                "default_rng",
                "seed",
                "rand",
                "randn",
                "randint",
                "random",
                "normal",
                "uniform",
                "choice",
                "shuffle",
                "permutation",
                "random_sample",
                "integers",
                "poisson",
                "binomial",
                "standard_normal",
            )
            if hasattr(rnd, n)
        },
    )
    attrs["linalg"] = Facade(
        "numpy.linalg",
        real=np.linalg,
        attrs={
            n: getattr(np.linalg, n)
            for n in (
                "norm",
                "inv",
                "pinv",
                "det",
                "svd",
                "eig",
                "eigh",
                "solve",
                "lstsq",
                "matrix_rank",
                "qr",
                "LinAlgError",
            )
        },
    )
    attrs["fft"] = Facade(
        "numpy.fft",
        real=np.fft,
        attrs={
            n: _np_drop(getattr(np.fft, n))
            for n in (
                "fft",
                "ifft",
                "fft2",
                "ifft2",
                "fftn",
                "ifftn",
                "rfft",
                "irfft",
                "rfft2",
                "irfft2",
                "fftshift",
                "ifftshift",
                "fftfreq",
            )
        },
    )
    return Facade("numpy", attrs, np)


# ------------------------------------------------------------------------------------------------- OpenCV


def _cv_image_arg(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    for key in ("src", "image", "img", "src1"):
        if key in kwargs:
            return kwargs[key]
    return args[0] if args else None


def _attach(out: Any, g_aff: A.Affine | None, size: tuple[int, int] | None) -> Any:
    """Give image outputs of an OpenCV call the right geometry (tuples: each image-shaped item)."""
    if isinstance(out, np.ndarray):
        if out.ndim < 2:
            return out
        return set_geo(out, g_aff if size is not None and hw_size(out) == size else None)
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
    return set_geo(out, then(geo_of(src), _record_flip(src, axes, "cv2.flip")))


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
        STATE.record("resize", api, {"size": [int(ow), int(oh)]})
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
        out = fn(*args, **kwargs)
        STATE.record("warp", api, {})
        return set_geo(out, None) if isinstance(out, np.ndarray) and out.ndim >= 2 else out

    return wrapper


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


# ------------------------------------------------------------------------------------------------- PIL


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


def _image_new(mode: str, size: Any, color: Any = 0) -> Image.Image:
    # color=None would hand out uninitialised memory (earlier images' pixels).
    return Image.new(mode, size, 0 if color is None else color)


def build_pil() -> dict[str, Facade]:
    image_attrs: dict[str, Any] = {
        "new": _image_new,
        "fromarray": Image.fromarray,
        "frombytes": Image.frombytes,
        "merge": Image.merge,
        "blend": Image.blend,
        "composite": Image.composite,
        "alpha_composite": Image.alpha_composite,
        "eval": Image.eval,
        "linear_gradient": Image.linear_gradient,
        "radial_gradient": Image.radial_gradient,
        "Image": _isinstance_only(Image.Image, "Image"),
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
        n: _np_like_chops(getattr(ImageChops, n))
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
    out = {
        "Image": Facade("PIL.Image", image_attrs, Image),
        "ImageOps": Facade("PIL.ImageOps", ops, ImageOps),
        "ImageFilter": Facade("PIL.ImageFilter", filt, ImageFilter),
        "ImageEnhance": Facade("PIL.ImageEnhance", enh, ImageEnhance),
        "ImageDraw": Facade("PIL.ImageDraw", draw, ImageDraw),
        "ImageChops": Facade("PIL.ImageChops", chops),
        "ImageStat": Facade("PIL.ImageStat", stat),
    }
    out["PIL"] = Facade("PIL", dict(out), PIL)
    return out


def _np_like_chops(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g = geo_of(args[0]) if args else None
        out = fn(*args, **kwargs)
        if isinstance(out, Image.Image):
            return set_geo(out, g.affine if g is not None and g.size == out.size else None)
        return out

    return wrapper


def build_math() -> Facade:
    return Facade("math", {n: getattr(math, n) for n in dir(math) if not n.startswith("_")})
