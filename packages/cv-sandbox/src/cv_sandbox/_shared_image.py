"""Zero-copy, copy-on-write input images for sandbox children.

The child maps the shared input region read-only and gives user code an image whose pixels *are* that
mapping (no copy). Pillow treats it as read-only: every operation that would modify it in place (``paste``,
``putpixel``, ``ImageDraw``, ``thumbnail``, ...) first copies it into private memory, and so does ``load()``
when user code calls it directly (the pixel access it returns may be written to). The region cannot be
written through the mapping at all (a write Pillow did not guard would fault and end the child, never
change the region), and the caller rewrites it before every call.
"""

from __future__ import annotations

import mmap
import sys
from typing import Any

from PIL import Image

from ._trace import USER_MODULE
from ._wire import _MAP_MODE, check_image


class SharedImage(Image.Image):
    """A read-only view of shared pixels that becomes a private copy before anything can modify it."""

    def load(self) -> Any:
        if self.readonly and sys._getframe(1).f_globals.get("__name__") == USER_MODULE:
            self._copy()  # user code may write through the pixel access it gets back
        return super().load()

    def frombytes(self, *args: Any, **kwargs: Any) -> None:
        self._ensure_mutable()  # Pillow decodes into the image's own memory without checking
        return super().frombytes(*args, **kwargs)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Image.Image) or type(other) not in (Image.Image, SharedImage):
            return False
        return (
            self.mode == other.mode
            and self.size == other.size
            and self.info == other.info
            and self.getpalette() == other.getpalette()
            and self.tobytes() == other.tobytes()
        )

    __hash__ = None  # type: ignore[assignment]  # as for Image.Image (it defines __eq__)


# Looks like any other image to user code (repr, error messages).
SharedImage.__module__ = Image.Image.__module__
SharedImage.__name__ = SharedImage.__qualname__ = Image.Image.__name__


def map_image(buf: mmap.mmap, meta: Any, nbytes: int) -> Image.Image:
    """The image described by ``meta`` in the first ``nbytes`` of ``buf``: zero-copy for native layouts
    (``buf`` should be a read-only mapping), else a private copy."""
    mode, w, h = check_image(meta, nbytes)
    if nbytes > len(buf):
        raise ValueError("image payload exceeds the shared buffer")
    if not meta.get("native"):
        return Image.frombytes(mode, (w, h), memoryview(buf)[:nbytes])
    base = _MAP_MODE[mode]
    mapped = Image.frombuffer(base, (w, h), buf, "raw", base, 0, 1)
    view = mapped if base == mode else Image.fromarrow(mapped, mode, (w, h))
    im = SharedImage()
    im.im = view.im
    im._mode = view.mode
    im._size = view.size
    im.readonly = 1
    return im
