"""The ``numpy`` facade: array functions wrapped so image-shaped results keep (or drop) their source map,
and the geometric ones (``rot90``, ``flip``, ``transpose``, ``pad``, ...) record their op."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from PIL import Image

from . import geometry as A
from ._facade import Facade, isinstance_only, record_flip
from ._trace import STATE, TracedArray, combined, geo_of, hw_size, mixed, same, set_geo, then


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
            return set_geo(out, combined(g.affine, *args, *kwargs.values()))
        return set_geo(out, mixed(*args, *kwargs.values())) if out.ndim >= 2 else out

    return wrapper


def _np_drop(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Function with no pixel correspondence: image-shaped outputs lose their source map."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = fn(*args, **kwargs)
        if isinstance(out, np.ndarray) and out.ndim >= 2:
            # Traced even when made from scratch (np.zeros): later in-place writes can then tag it.
            return set_geo(out, mixed(*args, *kwargs.values()))
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
        return set_geo(out, then(g, None)) if out.ndim >= 2 else out
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


def _np_flip(m: Any, axis: Any = None) -> Any:
    arr = _as_traced(m)
    out = np.flip(arr, axis)
    if arr.ndim < 2:
        return out
    return set_geo(out, then(geo_of(arr), record_flip(arr, _flip_axes(axis, arr.ndim), "numpy.flip")))


def _np_fliplr(m: Any) -> Any:
    arr = _as_traced(m)
    out = np.fliplr(arr)
    return set_geo(out, then(geo_of(arr), record_flip(arr, {1}, "numpy.fliplr")))


def _np_flipud(m: Any) -> Any:
    arr = _as_traced(m)
    out = np.flipud(arr)
    if arr.ndim < 2:
        return out
    return set_geo(out, then(geo_of(arr), record_flip(arr, {0}, "numpy.flipud")))


def _np_transpose(a: Any, axes: Any = None) -> Any:
    arr = _as_traced(a)
    out = np.transpose(arr, axes)
    if arr.ndim < 2:
        return out
    perm = tuple(range(arr.ndim))[::-1] if axes is None else tuple(_norm_axis(int(x), arr.ndim) for x in axes)
    if perm[:2] == (1, 0) and perm[2:] == tuple(range(2, arr.ndim)):
        STATE.record("transpose", "numpy.transpose", {})
        return set_geo(out, then(geo_of(arr), A.transpose()))
    return set_geo(out, then(geo_of(arr), None))


def _np_swapaxes(a: Any, axis1: int, axis2: int) -> Any:
    arr = _as_traced(a)
    out = np.swapaxes(arr, axis1, axis2)
    if arr.ndim >= 2 and {_norm_axis(axis1, arr.ndim), _norm_axis(axis2, arr.ndim)} == {0, 1}:
        STATE.record("transpose", "numpy.swapaxes", {})
        return set_geo(out, then(geo_of(arr), A.transpose()))
    return set_geo(out, then(geo_of(arr), None)) if out.ndim >= 2 else out


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
        "pad",
        "numpy.pad",
        {"top": top, "left": left, "bottom": int(pw[0][1]), "right": int(pw[1][1])},
        effective=out.shape[:2] != arr.shape[:2],
    )
    return set_geo(out, then(geo_of(arr), A.translate(-left, -top)))


def _np_roll(a: Any, *args: Any, **kwargs: Any) -> Any:
    arr = _as_traced(a)
    out = np.roll(arr, *args, **kwargs)
    if arr.ndim >= 2 and geo_of(arr) is not None:
        STATE.record("warp", "numpy.roll", {})
    return set_geo(out, then(geo_of(arr), None)) if out.ndim >= 2 else out


def _as_traced(x: Any) -> Any:
    """PIL images become arrays that keep the image's geometry."""
    if isinstance(x, Image.Image):
        return set_geo(np.asarray(x), same(geo_of(x)))
    return x


def _np_from_image(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(obj: Any, *args: Any, **kwargs: Any) -> Any:
        src = obj if isinstance(obj, Image.Image) or isinstance(obj, TracedArray) else None
        out = fn(obj, *args, **kwargs)
        if src is None or not isinstance(out, np.ndarray) or out.ndim < 2:
            return out
        g = geo_of(src)
        return set_geo(out, same(g) if g is not None and g.size == hw_size(out) else then(g, None))

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


def _default_rng(seed: Any = 0) -> Any:
    """``np.random.default_rng`` seeded with 0 when no seed is given: the same code on the same image
    gives the same result (the sandbox's determinism rule; pass a seed for other streams)."""
    return np.random.default_rng(0 if seed is None else seed)


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
    attrs["ndarray"] = isinstance_only(np.ndarray, "ndarray", "numpy")
    rnd = np.random
    random_attrs: dict[str, Any] = {"default_rng": _np_drop(_default_rng)}
    attrs["random"] = Facade(
        "numpy.random",
        real=np.random,
        attrs=random_attrs
        | {
            n: _np_drop(getattr(rnd, n))
            for n in (
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
