"""Curated namespaces user code sees instead of the real ``numpy``/``PIL``/``cv2``/``math`` modules.

Real modules reach the OS without a single underscore (``Image.os``, ``np.ctypeslib``, ``cv2.imwrite``,
``np.fromfile``). A facade exposes only named, image-relevant functions (wrapped so they are traced) and
constants; it has no module attributes and cannot be modified. This module holds the :class:`Facade` type
and what the facades share; each library's facade is built in its own module (``_facade_numpy``,
``_facade_cv2``, ``_facade_pil``, ``_facade_math``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import geometry as A
from ._forbid import forbid
from ._trace import STATE, USER_MODULE


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
    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        forbid(f"{cls.__name__}(...) cannot be constructed in the sandbox")

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, cls._cvs_real)  # type: ignore[attr-defined]

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, cls._cvs_real)  # type: ignore[attr-defined]


def isinstance_only(real: type, name: str, module: str | None = None) -> type:
    """A stand-in usable in ``isinstance`` checks that cannot construct or reach the real type."""
    ns: dict[str, Any] = {"_cvs_real": real, "__slots__": ()}
    if module is not None:
        ns["__module__"] = module
    stand_in = _InstanceOf(name, (), ns)
    _STAND_INS.setdefault(real, stand_in)
    return stand_in


#: The stand-in of each real class user code has been shown (``type(x)`` returns the same object).
_STAND_INS: dict[type, type] = {}


def public_type(cls: type) -> type:
    """The stand-in user code gets for ``cls`` (the facade's own for classes it exposes, e.g.
    ``np.ndarray``, ``Image.Image``; the sandbox's internal subclasses map to those). Classes the user
    code defined itself come back as they are."""
    from PIL import Image

    from ._shared_image import SharedImage
    from ._trace import TracedArray

    cls = {TracedArray: np.ndarray, SharedImage: Image.Image}.get(cls, cls)
    if cls.__module__ == USER_MODULE:
        return cls
    hit = _STAND_INS.get(cls)
    return hit if hit is not None else isinstance_only(cls, cls.__qualname__, cls.__module__)


def record_flip(arr: np.ndarray, axes: set[int], api: str) -> A.Affine | None:
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
