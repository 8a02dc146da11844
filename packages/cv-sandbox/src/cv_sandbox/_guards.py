"""RestrictedPython policy: the guard functions and builtins that compiled user code runs against."""

from __future__ import annotations

import builtins
import operator
import sys
import types
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from . import geometry as A
from ._facade import Facade
from ._forbid import forbid
from ._trace import STATE, TracedArray, geo_of, set_geo, then

CODE_FILENAME = "<tool code>"


# Attributes that reach files, processes, raw memory or interpreter internals without an underscore.
DENY_ATTRS = frozenset(
    """
save show fp filename im getim unsafe_ptrs ptr toqimage toqpixmap tofile dump dumps ctypes cffi
gi_frame gi_code gi_yieldfrom cr_frame cr_code cr_await ag_frame ag_code ag_await f_globals f_locals
f_builtins f_back f_code f_trace tb_frame tb_next co_code func_globals func_code mro memmap fromfile
fromregex loadtxt savetxt genfromtxt load_library imread imwrite imdecode imencode VideoCapture VideoWriter
system popen environ getenv putenv modules builtins globals locals getframe settrace setprofile
open register_open register_save register_extension registered_extensions core bit_generator
font_variant truetype load_path set_printoptions seterr seterrcall setbufsize
""".split()
)

_FORBIDDEN_VALUE_TYPES = (types.ModuleType, types.FrameType, types.CodeType, types.TracebackType)

_ARRAY_PIXEL_METHODS = frozenset({"astype", "copy", "clip", "round", "view", "fill", "conj"})
_ARRAY_TRANSPOSE = frozenset({"transpose", "swapaxes"})


def guarded_getattr(obj: Any, name: str, *default: Any) -> Any:
    """``getattr`` for user code: no private names, no OS reach, traced array methods."""
    if not isinstance(name, str):
        raise TypeError("attribute name must be a string")
    if name.startswith("_") or name in DENY_ATTRS:
        forbid(f"access to attribute '{name}' is not allowed in the sandbox")
    if name in ("format", "format_map") and (isinstance(obj, str | bytes) or obj in (str, bytes)):
        forbid("str.format is not allowed in the sandbox; use f-strings or %-formatting")
    try:
        value = getattr(obj, name)
    except AttributeError:
        if default:
            return default[0]
        raise
    if isinstance(value, _FORBIDDEN_VALUE_TYPES):
        forbid(f"access to '{name}' is not allowed in the sandbox")
    if isinstance(obj, TracedArray) and obj.ndim >= 2:
        if name == "T":
            return _array_transpose(obj, lambda: obj.T, "ndarray.T", (1, 0) + tuple(range(2, obj.ndim))[::-1])
        if callable(value) and not isinstance(value, type):
            return _wrap_array_method(obj, name, value)
    return value


def guarded_hasattr(obj: Any, name: str) -> bool:
    try:
        guarded_getattr(obj, name)
    except AttributeError:
        return False
    return True


def _array_transpose(arr: TracedArray, call: Callable[[], Any], api: str, perm: tuple[int, ...]) -> Any:
    out = call()
    if perm[:2] == (1, 0) and perm[2:] == tuple(range(2, arr.ndim)):
        STATE.record("transpose", api, {})
        return set_geo(out, then(geo_of(arr), A.transpose()))
    return set_geo(out, None) if isinstance(out, np.ndarray) and out.ndim >= 2 else out


def _wrap_array_method(arr: TracedArray, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        if name in _ARRAY_TRANSPOSE:
            if name == "swapaxes":
                a1, a2 = (int(x) % arr.ndim for x in args[:2])
                perm = tuple(range(arr.ndim))
                perm_l = list(perm)
                perm_l[a1], perm_l[a2] = perm_l[a2], perm_l[a1]
                perm = tuple(perm_l)
            elif not args or args[0] is None:
                perm = tuple(range(arr.ndim))[::-1]
            else:
                axes = args[0] if isinstance(args[0], tuple | list) else args
                perm = tuple(int(x) % arr.ndim for x in axes)
            return _array_transpose(arr, lambda: method(*args, **kwargs), f"ndarray.{name}", perm)
        out = method(*args, **kwargs)
        if isinstance(out, TracedArray) and out.ndim >= 2:
            g = geo_of(arr)
            keep = name in _ARRAY_PIXEL_METHODS and g is not None and out.shape[:2] == arr.shape[:2]
            return set_geo(out, g.affine if keep and g is not None else None)
        return out

    return call


def guarded_getitem(ob: Any, index: Any) -> Any:
    if isinstance(ob, TracedArray) and ob.ndim >= 2:
        g = geo_of(ob)
        if g is not None:
            return _traced_slice(ob, index, g)
    return ob[index]


def _traced_slice(arr: TracedArray, index: Any, g: Any) -> Any:
    out = arr[index]
    if not isinstance(out, np.ndarray) or out.ndim < 2:
        return out
    idx = index if isinstance(index, tuple) else (index,)
    if (
        any(not isinstance(i, slice | int | np.integer) and i is not Ellipsis for i in idx)
        or sum(i is Ellipsis for i in idx) > 1
    ):
        return set_geo(out, None)  # advanced indexing or new axes: no pixel correspondence
    explicit = [i for i in idx if i is not Ellipsis]
    if Ellipsis in idx:
        pos = idx.index(Ellipsis)
        fill = [slice(None)] * (arr.ndim - len(explicit))
        full = list(idx[:pos]) + fill + list(idx[pos + 1 :])
    else:
        full = explicit + [slice(None)] * (arr.ndim - len(explicit))
    sy, sx = full[0], full[1]
    if not isinstance(sy, slice) or not isinstance(sx, slice):
        return set_geo(out, None)
    h, w = arr.shape[:2]
    y0, y1, ys = sy.indices(h)
    x0, x1, xs = sx.indices(w)
    ny, nx = len(range(y0, y1, ys)), len(range(x0, x1, xs))
    if nx == 0 or ny == 0:
        return out
    # The requested range (not just the sampled pixels), so a[::2] is a resize, not a crop.
    lo_x, hi_x = (x0, max(x1, x0)) if xs > 0 else (max(x1 + 1, 0), x0 + 1)
    lo_y, hi_y = (y0, max(y1, y0)) if ys > 0 else (max(y1 + 1, 0), y0 + 1)
    if (lo_x, lo_y, hi_x, hi_y) != (0, 0, w, h):
        STATE.record("crop", "ndarray[...]", {"box": [lo_x, lo_y, hi_x, hi_y]}, g, (lo_x, lo_y, hi_x, hi_y))
    if xs < 0 and ys < 0:
        STATE.record("rotate_180", "ndarray[::-1, ::-1]", {})
    elif xs < 0:
        STATE.record("flip_horizontal", "ndarray[:, ::-1]", {})
    elif ys < 0:
        STATE.record("flip_vertical", "ndarray[::-1]", {})
    if abs(xs) > 1 or abs(ys) > 1:
        STATE.record("resize", "ndarray[::step]", {"size": [nx, ny]})
    op = (float(xs), 0.0, x0 + 0.5 - 0.5 * xs, 0.0, float(ys), y0 + 0.5 - 0.5 * ys)
    return set_geo(out, then(g, op))


class _ItemWriter:
    """What ``_write_`` hands back for arrays and pixel-access objects: item writes only."""

    __slots__ = ("_cvs_ob",)

    def __init__(self, ob: Any) -> None:
        object.__setattr__(self, "_cvs_ob", ob)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._cvs_ob[key] = value

    def __delitem__(self, key: Any) -> None:
        del self._cvs_ob[key]

    def __setattr__(self, name: str, value: Any) -> None:
        forbid(f"setting attribute '{name}' of {type(self._cvs_ob).__name__} is not allowed in the sandbox")


_PIXEL_ACCESS_TYPE = type(Image.new("L", (1, 1)).load())
_WRITABLE = (list, dict, set, bytearray)


def guarded_write(ob: Any) -> Any:
    if isinstance(ob, _WRITABLE):
        return ob
    if isinstance(ob, np.ndarray | _PIXEL_ACCESS_TYPE):
        return _ItemWriter(ob)
    if isinstance(ob, tuple | str | bytes | int | float | frozenset):
        raise TypeError(f"'{type(ob).__name__}' object does not support item or attribute assignment")
    if isinstance(ob, Facade) or isinstance(ob, types.ModuleType):
        forbid("modules are read-only in the sandbox")
    forbid(f"modifying attributes of {type(ob).__name__} objects is not allowed in the sandbox")


_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": operator.ipow,
    "<<=": operator.ilshift,
    ">>=": operator.irshift,
    "&=": operator.iand,
    "^=": operator.ixor,
    "|=": operator.ior,
    "@=": operator.imatmul,
}


def inplacevar(op: str, x: Any, y: Any) -> Any:
    fn = _INPLACE.get(op)
    if fn is None:
        forbid(f"in-place operator {op} is not allowed")
    return fn(x, y)  # type: ignore[misc]


class BoundedPrint:
    """Shared ``print`` target for all scopes; keeps at most ``limit`` characters."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0
        self.truncated = False

    def write(self, text: str) -> None:
        if self.size >= self.limit:
            self.truncated = True
            return
        room = self.limit - self.size
        if len(text) > room:
            text = text[:room]
            self.truncated = True
        self.parts.append(text)
        self.size += len(text)

    def __call__(self) -> str:
        return "".join(self.parts)

    def _call_print(self, *objects: Any, **kwargs: Any) -> None:
        kwargs.pop("file", None)
        kwargs.pop("flush", None)
        sep = kwargs.get("sep", " ")
        end = kwargs.get("end", "\n")
        if not isinstance(sep, str | type(None)) or not isinstance(end, str | type(None)):
            raise TypeError("print: sep and end must be strings")
        sep = " " if sep is None else sep
        end = "\n" if end is None else end
        # Bound the work for huge objects: str() of a big array is already summarised by NumPy.
        self.write(sep.join(str(o) for o in objects) + end)

    def text(self) -> str:
        out = "".join(self.parts)
        if self.truncated:
            out += "\n[stdout truncated]"
        return out


_SAFE_BUILTIN_NAMES = """abs all any ascii bin bool bytearray bytes callable chr complex dict divmod enumerate
filter float format frozenset hash hex int isinstance issubclass iter len list map max min next oct ord pow
range repr reversed round set slice sorted str sum tuple zip True False None NotImplemented Ellipsis
ArithmeticError AssertionError AttributeError Exception IndexError KeyError LookupError NameError
OverflowError RecursionError RuntimeError StopIteration TypeError ValueError ZeroDivisionError ImportError
NotImplementedError MemoryError FloatingPointError UnicodeError""".split()


def make_import(modules: dict[str, Any]) -> Callable[..., Any]:
    def guarded_import(
        name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
    ) -> Any:
        if isinstance(fromlist, list) and level == 0:
            # C code (e.g. NumPy's lazy ``numpy._core._methods``) imports through the builtins of the
            # running frame, i.e. through us, and always passes a list; an ``import`` statement passes
            # None or a tuple. Library internals may have modules that are already loaded, nothing new.
            mod = sys.modules.get(name)
            if mod is None:
                raise ImportError(f"module '{name}' is not available in the sandbox")
            return mod
        if level != 0:
            forbid("relative imports are not allowed in the sandbox")
        if name not in modules:
            forbid(
                f"import of '{name}' is not allowed in the sandbox; available: numpy, cv2, PIL, math "
                "(already imported as np, cv2, Image, ImageOps, ImageEnhance, ImageFilter, ImageDraw, math)"
            )
        return modules[name] if fromlist else modules[name.split(".")[0]]

    return guarded_import


def make_builtins(import_fn: Callable[..., Any]) -> dict[str, Any]:
    b: dict[str, Any] = {n: getattr(builtins, n) for n in _SAFE_BUILTIN_NAMES}
    b["getattr"] = guarded_getattr
    b["hasattr"] = guarded_hasattr
    b["__import__"] = import_fn
    b["__build_class__"] = builtins.__build_class__  # class bodies are still restricted (no dunders)
    return b
