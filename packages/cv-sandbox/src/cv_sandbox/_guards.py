"""RestrictedPython policy: the guard functions and builtins that compiled user code runs against."""

from __future__ import annotations

import _string  # type: ignore[import-not-found]  # the format-string parser str.format itself uses
import builtins
import functools
import operator
import string
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import geometry as A
from ._facade import Facade, public_type
from ._forbid import forbid
from ._trace import STATE, Carry, TracedArray, combined, geo_of, hw_size, same, set_geo, then

# Attributes that reach files, processes, raw memory or interpreter internals without an underscore.
DENY_ATTRS = frozenset(
    """
save show fp filename im getim unsafe_ptrs ptr toqimage toqpixmap tofile dump dumps ctypes cffi
getmask getmask2 tobitmap draft
gi_frame gi_code gi_yieldfrom cr_frame cr_code cr_await ag_frame ag_code ag_await f_globals f_locals
f_builtins f_back f_code f_trace tb_frame tb_next co_code func_globals func_code mro memmap fromfile
fromregex loadtxt savetxt genfromtxt load_library imread imwrite imdecode imencode VideoCapture VideoWriter
system popen environ getenv putenv modules builtins globals locals getframe settrace setprofile
open register_open register_save register_extension registered_extensions core bit_generator
font_variant truetype load_path set_printoptions seterr seterrcall setbufsize
""".split()
)

_FORBIDDEN_VALUE_TYPES = (types.ModuleType, types.FrameType, types.CodeType, types.TracebackType)


def _raw_types() -> frozenset[type]:
    """Pillow's C objects (image, draw and font cores, capsules): their methods trust their caller
    (``fillband`` on a mismatched core, ``font.render`` on a wrong buffer corrupt the heap)."""
    im = Image.new("L", (1, 1))
    found: set[type] = {type(im.im), type(im.getim()), type(ImageDraw.Draw(im).draw)}
    for make in (ImageFont.load_default, getattr(ImageFont, "load_default_imagefont", None)):
        if make is not None:
            try:
                found.add(type(make().font))
            except Exception:  # noqa: BLE001 - a Pillow without FreeType has only the bitmap font
                pass
    return frozenset(found)


#: Values user code may never hold (see :func:`_raw_types`).
RAW_TYPES = _raw_types()

_ARRAY_PIXEL_METHODS = frozenset({"astype", "copy", "clip", "round", "view", "fill", "conj"})
_ARRAY_TRANSPOSE = frozenset({"transpose", "swapaxes"})


def guarded_getattr(obj: Any, name: str, *default: Any) -> Any:
    """``getattr`` for user code: no private names, no OS reach, no raw C objects, traced array methods.

    Every attribute user code reads goes through here: ``obj.name`` (compiled to a call of this), the
    ``getattr``/``hasattr`` builtins (also when handed to ``map`` or NumPy) and the field names of format
    strings (:class:`SafeFormatter`).
    """
    if not isinstance(name, str):
        raise TypeError("attribute name must be a string")
    if name.startswith("_") or name in DENY_ATTRS:
        forbid(f"access to attribute '{name}' is not allowed in the sandbox")
    special = _special_attr(obj, name)
    if special is not None:
        return special
    try:
        value = getattr(obj, name)
    except AttributeError:
        if default:
            return default[0]
        raise
    if isinstance(value, _FORBIDDEN_VALUE_TYPES) or type(value) in RAW_TYPES:
        forbid(f"access to '{name}' is not allowed in the sandbox")
    if isinstance(obj, TracedArray) and obj.ndim >= 2:
        if name == "T":
            return _array_transpose(obj, lambda: obj.T, "ndarray.T", (1, 0) + tuple(range(2, obj.ndim))[::-1])
        if callable(value) and not isinstance(value, type):
            return _wrap_array_method(obj, name, value)
    return value


def _is_str_like(obj: Any) -> bool:
    return isinstance(obj, str | bytes) or (isinstance(obj, type) and issubclass(obj, str | bytes))


def _special_attr(obj: Any, name: str) -> Any:
    """Attributes that exist but are handed out in a checked form (None: the plain attribute)."""
    if name in ("format", "format_map") and _is_str_like(obj):
        # Every str subclass (user classes, NumPy's str_) and the classes themselves: the safe formatter.
        if isinstance(obj, type):
            return _FORMAT_UNBOUND[name]
        if isinstance(obj, bytes):
            raise AttributeError(f"'bytes' object has no attribute '{name}'")
        return functools.partial(_FORMAT_UNBOUND[name], obj)
    if isinstance(obj, np.ndarray) and name == "resize":
        forbid(
            "ndarray.resize is not allowed in the sandbox (it can free memory other arrays still use); "
            "use np.resize(a, shape) or a.reshape(shape)"
        )
    if isinstance(obj, Image.Image):
        if name == "getdata":
            return lambda band=None: PixelData(obj, band)
        if name in ("frombytes", "tobytes"):
            return _raw_codec_only(getattr(obj, name), name)
    return None


class SafeFormatter(string.Formatter):
    """``str.format`` whose field names (``{0.attr}``, ``{0[key]}``) go through the sandbox's guards."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, Any]:
        first, rest = _string.formatter_field_name_split(field_name)
        obj = self.get_value(first, args, kwargs)
        for is_attr, key in rest:
            obj = guarded_getattr(obj, key) if is_attr else guarded_getitem(obj, key)
        return obj, first


_FORMATTER = SafeFormatter()


def _safe_format(template: Any, *args: Any, **kwargs: Any) -> str:
    if not isinstance(template, str):
        raise TypeError("format() needs a str template")
    return _FORMATTER.vformat(str(template), args, kwargs)


def _safe_format_map(template: Any, mapping: Any) -> str:
    if not isinstance(template, str):
        raise TypeError("format_map() needs a str template")
    return _FORMATTER.vformat(str(template), (), mapping)


_FORMAT_UNBOUND = {"format": _safe_format, "format_map": _safe_format_map}


class PixelData:
    """What ``image.getdata()`` gives user code: the pixel sequence, without Pillow's raw core."""

    __slots__ = ("_cvs_image", "_cvs_band")

    def __init__(self, image: Image.Image, band: int | None) -> None:
        self._cvs_image = image
        self._cvs_band = band

    def _cvs_flat(self) -> tuple[Any, ...]:
        im = self._cvs_image if self._cvs_band is None else self._cvs_image.getchannel(self._cvs_band)
        return tuple(im.get_flattened_data())

    def __len__(self) -> int:
        return self._cvs_image.width * self._cvs_image.height

    def __getitem__(self, index: Any) -> Any:
        return self._cvs_flat()[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cvs_flat())

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        im = self._cvs_image if self._cvs_band is None else self._cvs_image.getchannel(self._cvs_band)
        a = np.asarray(im)
        a = a.reshape(a.shape[0] * a.shape[1], *a.shape[2:])
        return a if dtype is None else a.astype(dtype)

    def __repr__(self) -> str:
        return f"<pixel data of {len(self)} pixels>"


def _raw_codec_only(method: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``Image.frombytes``/``tobytes`` restricted to the plain ``raw`` codec in the image's own layout
    (Pillow's other decoders and encoders trust their parameters)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        if name == "frombytes":
            codec_args = args[1:] if args else ()
            codec = kwargs.get("decoder_name", codec_args[0] if codec_args else "raw")
            extra = codec_args[1:] or tuple(v for k, v in kwargs.items() if k != "decoder_name")
        else:
            codec = kwargs.get("encoder_name", args[0] if args else "raw")
            extra = args[1:] or tuple(v for k, v in kwargs.items() if k != "encoder_name")
        check_raw_codec(codec, extra, getattr(method, "__self__", None))
        return method(*args, **kwargs)

    return call


def check_raw_codec(codec: Any, extra: tuple[Any, ...], image: Any) -> None:
    """Refuse anything but ``"raw"`` with no raw mode or the image's own mode as the raw mode."""
    mode = getattr(image, "mode", None)
    flat = [x for x in extra if not (isinstance(x, tuple | list) and not x)]
    if codec != "raw" or (flat and not (len(flat) == 1 and flat[0] in (mode, (mode,)))):
        forbid(
            f"codec {codec!r} with arguments {extra!r} is not allowed in the sandbox; only the plain 'raw' "
            "layout of the image's own mode (e.g. Image.frombytes('RGB', size, data))"
        )


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
    return set_geo(out, then(geo_of(arr), None)) if isinstance(out, np.ndarray) and out.ndim >= 2 else out


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
            return set_geo(out, same(g) if keep else then(g, None))
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
        return set_geo(out, then(g, None))  # advanced indexing or new axes: no pixel correspondence
    explicit = [i for i in idx if i is not Ellipsis]
    if Ellipsis in idx:
        pos = idx.index(Ellipsis)
        fill = [slice(None)] * (arr.ndim - len(explicit))
        full = list(idx[:pos]) + fill + list(idx[pos + 1 :])
    else:
        full = explicit + [slice(None)] * (arr.ndim - len(explicit))
    sy, sx = full[0], full[1]
    if not isinstance(sy, slice) or not isinstance(sx, slice):
        return set_geo(out, then(g, None))
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
        ob = self._cvs_ob
        ob[key] = value
        if isinstance(ob, TracedArray) and ob.ndim >= 2:
            _after_write(ob, key, value)

    def __delitem__(self, key: Any) -> None:
        del self._cvs_ob[key]

    def __setattr__(self, name: str, value: Any) -> None:
        forbid(f"setting attribute '{name}' of {type(self._cvs_ob).__name__} is not allowed in the sandbox")


def _after_write(arr: TracedArray, key: Any, value: Any) -> None:
    """Keep an array's source map true after ``arr[key] = value``: a whole-image write of an image takes
    its map and lineage; a partial write of image data leaves mixed content (no map, both lineages)."""
    gv = geo_of(value) if isinstance(value, np.ndarray | Image.Image) else None
    if gv is None:
        return  # scalars and plain data: the pixels stay where they were
    whole = _whole(key) and hw_size(value) == hw_size(arr)
    set_geo(arr, Carry(gv.affine, gv.lineage) if whole else combined(None, arr, value))


def _whole(key: Any) -> bool:
    parts = key if isinstance(key, tuple) else (key,)
    return all(p is Ellipsis or p == slice(None) for p in parts[:2])


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


#: Types ``type(x)`` returns as themselves: plain values, which hold no way out.
_PLAIN_TYPES = frozenset(
    {
        int,
        float,
        complex,
        bool,
        str,
        bytes,
        bytearray,
        list,
        tuple,
        dict,
        set,
        frozenset,
        range,
        slice,
        type(None),
    }
)


def safe_type(*args: Any) -> Any:
    """The ``type`` builtin for user code: ``type(x)`` only (three-argument ``type`` would build classes
    with dunder attributes). Plain value types come back as themselves; any other class as a stand-in that
    prints, compares and works in ``isinstance`` like it but cannot construct, subclass or reach it."""
    if len(args) != 1:
        forbid("type(name, bases, dict) is not allowed in the sandbox; use a `class` statement")
    cls = type(args[0])
    if cls in _PLAIN_TYPES:
        return cls
    return public_type(cls)


def make_builtins(import_fn: Callable[..., Any]) -> dict[str, Any]:
    b: dict[str, Any] = {n: getattr(builtins, n) for n in _SAFE_BUILTIN_NAMES}
    b["getattr"] = guarded_getattr
    b["hasattr"] = guarded_hasattr
    b["type"] = safe_type
    b["__import__"] = import_fn
    b["__build_class__"] = builtins.__build_class__  # class bodies are still restricted (no dunders)
    return b
